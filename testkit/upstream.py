"""An upstream channel served over real HTTP/1.1 on 127.0.0.1, with request log and faults.

``UpstreamServer(root)`` serves the files under ``root`` (never directory listings) from a
background thread, with ``ETag`` (sha256 of the content), ``Last-Modified`` and 304 answers to
``If-None-Match`` / ``If-Modified-Since``. Files are read at request time, so a test may change
the channel between requests. Every request is logged in :attr:`UpstreamServer.requests`.

Faults are per URL path: ``server.add_fault("/linux-64/repodata.json", respond(503))`` makes
that path answer 503 (optionally only ``times`` times). A fault is any callable taking the
:class:`UpstreamHandler`; it sends its own response, or returns ``False`` to let the request be
served normally. Ready-made ones: :func:`respond`, :func:`serve_bytes`, :func:`truncate`,
:func:`drop_connection`.
"""

from __future__ import annotations

import email.utils
import hashlib
import ssl
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from testkit import StartStop

FaultHook = Callable[["UpstreamHandler"], bool | None]

CONTENT_TYPES: dict[str, str] = {
    ".json": "application/json",
    ".zst": "application/zstd",
    ".bz2": "application/x-bzip2",
    ".conda": "application/octet-stream",
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".msgpack": "application/octet-stream",
}


def content_type(path: str) -> str:
    for suffix, ctype in CONTENT_TYPES.items():
        if path.endswith(suffix):
            return ctype
    return "application/octet-stream"


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as the server saw it. ``headers`` has lower-case names."""

    method: str
    path: str  # URL path, percent-decoded, without the query
    status: int  # 0 when the connection was dropped without a response
    headers: dict[str, str] = field(default_factory=dict)
    query: str = ""
    body_bytes: int = 0  # response body bytes actually written

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


@dataclass(slots=True)
class _Fault:
    hook: FaultHook
    times: int | None  # remaining uses; None = forever


class UpstreamHandler(BaseHTTPRequestHandler):
    """Serves one connection; fault hooks receive it and may use :meth:`respond`."""

    protocol_version = "HTTP/1.1"  # keep-alive
    server_version = "sitegen-test-upstream/1"
    timeout = 30  # an idle keep-alive connection is closed after this many seconds
    server: _Server

    status: int = 0
    body_bytes: int = 0

    # --- plumbing -------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def send_response(self, code: int, message: str | None = None) -> None:
        self.status = code
        super().send_response(code, message)

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    @property
    def url_path(self) -> str:
        return unquote(urlsplit(self.path).path)

    def _handle(self) -> None:
        self.status = 0
        self.body_bytes = 0
        path = self.url_path
        try:
            hook = self.server.upstream._take_fault(path)
            if hook is None or hook(self) is False:
                self.serve_file(path)
        finally:
            self.server.upstream._record(
                RequestRecord(
                    method=self.command,
                    path=path,
                    status=self.status,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    query=urlsplit(self.path).query,
                    body_bytes=self.body_bytes,
                )
            )

    # --- helpers for hooks ----------------------------------------------------------------
    def respond(
        self,
        status: int,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        content_length: int | None = None,
    ) -> None:
        """Send a complete response (no body for HEAD and 304). Keeps the connection open
        unless ``content_length`` (a lie about the body size) is given."""
        self.send_response(status)
        headers = dict(headers or {})
        if status != HTTPStatus.NOT_MODIFIED:
            headers.setdefault("Content-Type", "application/octet-stream")
            length = len(body) if content_length is None else content_length
            headers["Content-Length"] = str(length)
        for name, value in headers.items():
            self.send_header(name, value)
        if content_length is not None and content_length != len(body):
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD" and status != HTTPStatus.NOT_MODIFIED and body:
            self.wfile.write(body)
            self.body_bytes += len(body)
        self.wfile.flush()

    def resolve(self, path: str) -> Path | None:
        """The file a URL path names under the root, or None (missing, directory, escaping)."""
        parts = [p for p in path.split("/") if p]
        if any(p in (".", "..") or "\x00" in p or "\\" in p for p in parts):
            return None
        candidate = self.server.upstream.root.joinpath(*parts)
        return candidate if parts and candidate.is_file() else None

    def serve_file(self, path: str) -> None:
        """Serve a file under the root with validators and conditional requests."""
        target = self.resolve(path)
        if target is None:
            self.respond(404, b"not found\n", {"Content-Type": "text/plain"})
            return
        data = target.read_bytes()
        stat = target.stat()
        etag = '"' + hashlib.sha256(data).hexdigest() + '"'
        last_modified = email.utils.formatdate(stat.st_mtime, usegmt=True)
        validators = {"ETag": etag, "Last-Modified": last_modified}
        if self.server.upstream.cache_control:
            validators["Cache-Control"] = self.server.upstream.cache_control
        if self._not_modified(etag, int(stat.st_mtime)):
            self.respond(304, headers=validators)
            return
        self.respond(200, data, {"Content-Type": content_type(path), **validators})

    def _not_modified(self, etag: str, mtime: int) -> bool:
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            tags = [t.strip() for t in if_none_match.split(",")]
            return "*" in tags or any(t.removeprefix("W/") == etag for t in tags)
        if_modified_since = self.headers.get("If-Modified-Since")
        if if_modified_since:
            try:
                since = email.utils.parsedate_to_datetime(if_modified_since)
            except (TypeError, ValueError):
                return False
            return mtime <= int(since.timestamp())
        return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver listens with a backlog of 5. A mirror run opens up to 32 connections at
    # once (download.per_host); with the accept thread slowed by a loaded machine, the kernel
    # drops the SYNs past the backlog, and the client tries again after 1, 3, 7 and 15 s, past
    # connect_timeout (10 s): a run with retries 0 then fails. With room for every connection
    # the handshakes complete in the kernel, and a slow accept only delays the answers.
    request_queue_size = 128
    upstream: UpstreamServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            return  # the client hung up, or an idle keep-alive connection timed out
        super().handle_error(request, client_address)


class UpstreamServer(StartStop):
    """Serve ``root`` at ``http://127.0.0.1:<port>`` from a thread; use as a context manager.
    With ``tls`` (a server-side context) it serves https instead."""

    def __init__(
        self,
        root: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        cache_control: str | None = "no-cache",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.root = Path(root)
        self.tls = tls
        # Sent with 200 and 304 answers. "no-cache" makes HTTP caches (rattler's) revalidate
        # every time instead of guessing a freshness lifetime from Last-Modified.
        self.cache_control = cache_control
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._requests: list[RequestRecord] = []
        self._faults: dict[str, _Fault] = {}
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> UpstreamServer:
        if self._httpd is not None:
            raise RuntimeError("server already started")
        httpd = _Server((self._host, self._port), UpstreamHandler)
        httpd.upstream = self
        if self.tls is not None:
            httpd.socket = self.tls.wrap_socket(httpd.socket, server_side=True)
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash; https with ``tls``)."""
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{self._host}:{self.port}"

    # --- request log ----------------------------------------------------------------------
    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of the requests served so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def wait_for_requests(self, n: int, timeout: float = 10.0) -> list[RequestRecord]:
        """The request log once it holds ``n`` entries: a request is logged by its handler
        thread just after the response went out, so a client may finish first."""
        deadline = time.monotonic() + timeout
        while len(self.requests) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.requests

    def wait_for_count(
        self, n: int, path_suffix: str, status: int | None = None, method: str | None = None
    ) -> int:
        """:meth:`count` once it reaches ``n`` (or after 10 s): each request is logged by its
        handler thread just after the response went out, so a client may finish first."""
        deadline = time.monotonic() + 10.0
        while (found := self.count(path_suffix, status, method)) < n:
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
        return found

    def count(
        self,
        path_suffix: str | None = None,
        status: int | None = None,
        method: str | None = None,
    ) -> int:
        """How many logged requests have a path ending in ``path_suffix``, this status, method."""
        return sum(
            1
            for r in self.requests
            if (path_suffix is None or r.path.endswith(path_suffix))
            and (status is None or r.status == status)
            and (method is None or r.method == method)
        )

    def reset(self) -> None:
        """Forget the logged requests (faults stay)."""
        with self._lock:
            self._requests.clear()

    # --- faults ---------------------------------------------------------------------------
    def add_fault(self, path: str, hook: FaultHook, times: int | None = None) -> None:
        """Answer requests for the URL ``path`` with ``hook`` (the next ``times`` of them)."""
        if not path.startswith("/"):
            path = "/" + path
        with self._lock:
            self._faults[path] = _Fault(hook, times)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, path: str) -> FaultHook | None:
        with self._lock:
            fault = self._faults.get(path)
            if fault is None:
                return None
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    del self._faults[path]
            return fault.hook


@dataclass
class ExampleUpstream:
    """A channel written under ``root`` and served by ``server`` (the ``example_upstream``
    fixture holds :func:`sitegen.tools.example_channel.example_packages`)."""

    root: Path
    server: UpstreamServer
    repodata: dict[str, dict[str, Any]]  # per subdir, as written
    packages: list[Any]  # the PackageSpecs written

    @property
    def url(self) -> str:
        """The channel URL, ``http://127.0.0.1:<port>`` (subdirs below it)."""
        return self.server.url


# --- ready-made faults ------------------------------------------------------------------------
def respond(status: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> FaultHook:
    """Answer with this status, body and headers."""

    def hook(handler: UpstreamHandler) -> None:
        handler.respond(status, body, headers)

    return hook


def serve_bytes(body: bytes, content_type: str = "application/octet-stream") -> FaultHook:
    """Answer 200 with other bytes than the file holds (e.g. a corrupted package)."""
    return respond(200, body, {"Content-Type": content_type})


def truncate(keep: int) -> FaultHook:
    """Announce the file's full length, send only its first ``keep`` bytes, then hang up."""

    def hook(handler: UpstreamHandler) -> bool | None:
        target = handler.resolve(handler.url_path)
        if target is None:
            return False
        data = target.read_bytes()
        handler.respond(200, data[:keep], content_length=len(data))
        return None

    return hook


def drop_connection() -> FaultHook:
    """Close the connection without any response."""

    def hook(handler: UpstreamHandler) -> None:
        handler.close_connection = True

    return hook
