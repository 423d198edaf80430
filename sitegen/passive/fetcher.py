"""The verifying pull-through cache behind the web server, for channels with passive mirrors.

A passive mirror publishes repodata but downloads no package files. The web server (see
:mod:`sitegen.tools.webconf`) serves every file that is stored and hands a request for a missing
package file of such a channel to this small HTTP/1.1 service (``sitegen fetcher``), with the
site prefix already stripped: ``GET /<channel path>/<subdir>/<filename>``.

For each request the fetcher

1. finds the channel by path (only channels of ``channels.yaml`` with a passive mirror) and reads
   that subdir's *published* ``repodata.json`` (parsed once per change of the file) and the
   origins map ``.sitegen/origins/<channel>/<subdir>.json`` written by ``sitegen mirror``, which
   names the mirror that supplied each file. A file no published repodata lists is a 404: the
   fetcher never becomes an open proxy to upstream;
2. streams the file when it is already stored with the published size;
3. otherwise downloads it from that mirror's upstream with :func:`sitegen.net.download.download`,
   exactly as ``sitegen mirror`` does: the bytes stream into a nameless file in the target's
   directory while being hashed, and only when size and sha256 (md5 when the record has no
   sha256) match the published record does the file get its published name (atomically).
   **This is how the site never serves a wrong file under a published name**: unverified
   bytes have no name at all (or, on filesystems without O_TMPFILE, a ``.sitegen-tmp-*``
   name, which the web server refuses to serve), and are dropped on failure. A mismatch or
   an upstream failure answers 502 and stores nothing;
4. runs at most one download per file: concurrent requests for the same file wait for it (the
   download runs in the service's own nursery, so a client that gives up does not abort it for
   the others), then every waiter streams the stored file with its ``Content-Length``.

Once stored, a file is a static file again and the web server serves it without the fetcher;
files stay stored when the upstream is down later (a proxy feed that keeps serving).

Tokens stay in the fetcher's environment (``${ENV}`` references in ``channels.yaml``); upstream
URLs never appear in responses or logs, which name only the channel, subdir, file and mirror.
Request paths are resolved with :meth:`sitegen.store.site.Site.path`, so no path can leave the site,
and only names listed in published repodata are ever written.

The HTTP side is a minimal HTTP/1.1 server on trio streams with h11 (keep-alive, GET and HEAD):
it only ever talks to the local web server.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

import h11
import msgspec
import trio

from sitegen.conda.records import Record
from sitegen.conda.schema import (
    CONDA_SUFFIX,
    FILES_DECODER,
    TAR_BZ2_SUFFIX,
    FileEntry,
    FilesDoc,
    format_of,
)
from sitegen.config import ChannelConfig, MirrorConfig, SiteConfig
from sitegen.layout import origins_path
from sitegen.net.download import DownloadJob, download
from sitegen.net.upstream import Upstream, open_upstreams
from sitegen.store.origins import Origins, read_origins
from sitegen.store.site import Site, UnsafePathError
from sitegen.store.writer import DiskWriter, open_disk_writer
from sitegen.sync.progress import human_bytes

log = logging.getLogger("sitegen.passive.fetcher")

DEFAULT_LISTEN = ("127.0.0.1", 8901)
CONTENT_TYPES = {CONDA_SUFFIX: "application/octet-stream", TAR_BZ2_SUFFIX: "application/x-bzip2"}
LONG_CACHE = "public, max-age=31536000, immutable"
CHUNK = 1 << 18
MAX_HEAD = 16 * 1024  # request line + headers
MAX_BODY = 64 * 1024  # GET has no body; tolerate a small one
REQUEST_TIMEOUT = 60.0  # to receive a request head; an idle keep-alive connection is closed

T = TypeVar("T")


# --------------------------------------------------------------------------- published metadata


def _read_published(path: Path) -> FilesDoc:
    return FILES_DECODER.decode(path.read_bytes())


class _StatCache:
    """Parsed files, re-read only when the file changes (new inode, mtime or size)."""

    def __init__(self) -> None:
        self._entries: dict[Path, tuple[tuple[int, int, int], Any]] = {}
        self._locks: dict[Path, trio.Lock] = {}

    async def get(self, path: Path, parse: Callable[[Path], T]) -> T | None:
        lock = self._locks.setdefault(path, trio.Lock())
        async with lock:
            try:
                st = path.stat()
            except FileNotFoundError:
                self._entries.pop(path, None)
                return None
            key = (st.st_ino, st.st_mtime_ns, st.st_size)
            hit = self._entries.get(path)
            if hit is not None and hit[0] == key:
                return hit[1]
            value = await trio.to_thread.run_sync(parse, path)
            self._entries[path] = (key, value)
            return value


# --------------------------------------------------------------------------- requests


@dataclass
class Reply:
    """What to answer: a status with a short text body, or a stored file to stream."""

    status: int
    body: bytes = b""
    file: Path | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    outcome: str = ""  # for the log: "stored", "fetched", reason of an error


class _Flight:
    """One download in progress; requests for the same file wait on it."""

    def __init__(self) -> None:
        self.done = trio.Event()
        self.error: str | None = None
        self.waiters = 0


def _error(status: int, message: str) -> Reply:
    return Reply(status, (message + "\n").encode(), headers=[("Cache-Control", "no-store")])


class Fetcher:
    """Resolves request paths to published package files and fetches missing ones, verified."""

    def __init__(self, config: SiteConfig) -> None:
        self.config = config
        self.site = Site(config.output)
        self.channels: dict[str, ChannelConfig] = {
            c.path: c for c in config.channels if any(m.mode == "passive" for m in c.mirrors)
        }
        self.upstreams: dict[str, Upstream] = {}
        self.unavailable: dict[str, str] = {}  # mirror name -> why it cannot be used
        self.flights: dict[Path, _Flight] = {}
        self.fetched = 0  # files downloaded and stored since start
        self._cache = _StatCache()
        self._nursery: trio.Nursery | None = None
        self._limiter = trio.CapacityLimiter(config.download.concurrency)
        self._writer: DiskWriter | None = None  # while running

    # ------------------------------------------------------------------ lifecycle

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Fetcher]:
        """Open the upstream clients and the nursery downloads run in."""
        async with AsyncExitStack() as stack:
            mirrors = (m for channel in self.channels.values() for m in channel.mirrors)
            self.upstreams, self.unavailable = await open_upstreams(
                mirrors, self.config.download, stack
            )
            for name, why in self.unavailable.items():
                log.error("mirror %s: %s; its files cannot be fetched", name, why)
            self._writer = await stack.enter_async_context(open_disk_writer())
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                try:
                    yield self
                finally:
                    self._nursery = None
                    nursery.cancel_scope.cancel()

    # ------------------------------------------------------------------ lookup

    async def reply(self, method: str, target: str) -> Reply:
        """The answer to ``method target`` (target: the URL path, prefix already stripped)."""
        if method not in ("GET", "HEAD"):
            reply = _error(405, "only GET and HEAD")
            reply.headers.append(("Allow", "GET, HEAD"))
            return reply
        path = target.split("?", 1)[0].split("#", 1)[0]
        if not path.startswith("/"):
            return _error(400, "bad request target")
        try:
            path = unquote(path, errors="strict")
        except UnicodeDecodeError:
            return _error(400, "bad request target")
        segments = path[1:].split("/")
        if len(segments) < 3 or not segments[-1].endswith(tuple(CONTENT_TYPES)):
            return _error(404, "not a package file of a passive channel")
        channel_path, subdir, fn = "/".join(segments[:-2]), segments[-2], segments[-1]
        channel = self.channels.get(channel_path)
        if channel is None or subdir not in channel.subdirs:
            return _error(404, "not a package file of a passive channel")
        try:
            target_path = self.site.path(channel_path, subdir, fn)
            repodata = self.site.path(channel_path, subdir, "repodata.json")
        except UnsafePathError:
            return _error(404, "not found")
        try:
            published = await self._cache.get(repodata, _read_published)
        except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.error(
                "%s/%s: cannot read the published repodata.json: %s", channel_path, subdir, exc
            )
            return _error(503, "published metadata unreadable")
        entry = published.get(fn) if published is not None else None
        if entry is None:
            return _error(404, "not listed in the published repodata")
        if _stored(target_path, entry.size):
            return self._file_reply(target_path, "stored")
        error = await self.fetch(channel, subdir, fn, entry, target_path)
        if error is not None:
            return _error(502, f"cannot fetch {fn}: {error}")
        if not _stored(target_path, entry.size):  # replaced or pruned meanwhile
            return _error(502, f"cannot fetch {fn}: gone after download")
        return self._file_reply(target_path, "fetched")

    def _file_reply(self, path: Path, outcome: str) -> Reply:
        return Reply(
            200,
            file=path,
            headers=[
                ("Content-Type", CONTENT_TYPES[format_of(path.name)]),
                ("Cache-Control", LONG_CACHE),
                ("X-Sitegen-Fetcher", outcome),
            ],
            outcome=outcome,
        )

    async def _origin(
        self, channel: ChannelConfig, subdir: str, fn: str
    ) -> tuple[MirrorConfig | None, str | None]:
        """The mirror that supplied a file, and its subdir's CEP-15 base_url, as the mirror run
        recorded them."""
        origins = await self._cache.get(
            origins_path(self.site.root, channel.path, subdir), read_origins
        )
        origins = origins or Origins()
        name = origins.mirror_of(fn)
        if name is None and len(channel.mirrors) == 1:
            name = channel.mirrors[0].name
        mirror = next((m for m in channel.mirrors if m.name == name), None)
        return mirror, origins.base_url_of(name) if name else None

    # ------------------------------------------------------------------ fetch

    async def fetch(
        self, channel: ChannelConfig, subdir: str, fn: str, entry: FileEntry, target: Path
    ) -> str | None:
        """Download ``target`` once however many ask at once; None when stored, else why not."""
        flight = self.flights.get(target)
        if flight is None:
            if self._nursery is None:
                raise RuntimeError("Fetcher.running() is not active")
            flight = self.flights[target] = _Flight()
            self._nursery.start_soon(self._download, flight, channel, subdir, fn, entry, target)
        flight.waiters += 1
        try:
            await flight.done.wait()
        finally:
            flight.waiters -= 1
        return flight.error

    async def _download(
        self,
        flight: _Flight,
        channel: ChannelConfig,
        subdir: str,
        fn: str,
        entry: FileEntry,
        target: Path,
    ) -> None:
        where = f"{channel.path}/{subdir}/{fn}"
        try:
            flight.error = await self._download_one(channel, subdir, fn, entry, target)
        except Exception as exc:  # never let one file take the service down
            detail = f": {exc}" if isinstance(exc, OSError) else ""
            flight.error = f"internal error ({type(exc).__name__}{detail})"
            log.exception("%s: unexpected error while fetching", where)
        finally:
            del self.flights[target]
            flight.done.set()
        if flight.error is None:
            self.fetched += 1

    async def _download_one(
        self, channel: ChannelConfig, subdir: str, fn: str, entry: FileEntry, target: Path
    ) -> str | None:
        where = f"{channel.path}/{subdir}/{fn}"
        mirror, base_url = await self._origin(channel, subdir, fn)
        if mirror is None:
            log.error("%s: no mirror is recorded for it in the origins map", where)
            return "no mirror recorded for this file"
        if mirror.name in self.unavailable:
            log.error("%s: mirror %s: %s", where, mirror.name, self.unavailable[mirror.name])
            return f"mirror {mirror.name} is not configured on this server"
        upstream = self.upstreams[mirror.name]
        record = Record(
            fn=fn,
            subdir=subdir,
            raw={"size": entry.size, "sha256": entry.sha256, "md5": entry.md5},
            origin=mirror.name,
        )
        assert self._writer is not None  # downloads run only while the fetcher is running
        async with self._limiter:
            result = await download(
                DownloadJob(upstream, record, target, durable=True, base_url=base_url),
                self.site,
                self._writer,
                self.config.download.retries,
            )
        if not result.ok:
            log.warning(
                "%s: not stored, fetch from mirror %s failed: %s", where, mirror.name, result.error
            )
            return result.error.removeprefix(f"{fn}: ")
        log.info(
            "%s: fetched from mirror %s, verified, stored (%s)",
            where,
            mirror.name,
            human_bytes(result.bytes),
        )
        return None

    # ------------------------------------------------------------------ HTTP/1.1

    async def handle_connection(self, stream: trio.abc.Stream) -> None:
        """Serve one keep-alive connection (trio.serve_listeners handler)."""
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        try:
            while True:
                request = None
                with trio.move_on_after(REQUEST_TIMEOUT):
                    request = await _receive_request(conn, stream)
                if request is None:
                    return
                if not await _drain_body(conn, stream):
                    await _send_simple(conn, stream, _error(413, "request body too large"))
                    return
                await self._answer(conn, stream, request)
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except h11.RemoteProtocolError:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                with contextlib.suppress(Exception):
                    await _send_simple(conn, stream, _error(400, "bad request"))
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.LocalProtocolError):
            pass  # the client went away, or the connection cannot go on
        except Exception:  # one connection must never take the service down
            log.exception("error while serving a request")
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()

    async def _answer(
        self, conn: h11.Connection, stream: trio.abc.Stream, request: h11.Request
    ) -> None:
        method = request.method.decode("ascii", "replace")
        target = request.target.decode("ascii", "replace")
        reply = await self.reply(method, target)
        log.debug("%s %s -> %d %s", method, target, reply.status, reply.outcome)
        if reply.file is None:
            await _send_simple(conn, stream, reply, head=method == "HEAD")
            return
        try:
            handle = await trio.open_file(reply.file, "rb")
        except FileNotFoundError:
            await _send_simple(conn, stream, _error(502, "gone after download"))
            return
        async with handle:
            st = os.fstat(handle.fileno())
            headers = [
                *reply.headers,
                ("Content-Length", str(st.st_size)),
                ("Last-Modified", formatdate(st.st_mtime, usegmt=True)),
            ]
            await _send(conn, stream, h11.Response(status_code=200, headers=headers))
            if method != "HEAD":
                remaining = st.st_size
                while remaining > 0:
                    chunk = await handle.read(min(CHUNK, remaining))
                    if not chunk:
                        raise trio.BrokenResourceError("file shorter than announced")
                    remaining -= len(chunk)
                    await _send(conn, stream, h11.Data(data=chunk))
        await _send(conn, stream, h11.EndOfMessage())


def _stored(path: Path, size: int) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size == size


async def _send(conn: h11.Connection, stream: trio.abc.Stream, event: Any) -> None:
    data = conn.send(event)
    if data:
        await stream.send_all(data)


async def _send_simple(
    conn: h11.Connection, stream: trio.abc.Stream, reply: Reply, head: bool = False
) -> None:
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(reply.body))),
        *reply.headers,
    ]
    if reply.status >= 400 and reply.status not in (404, 405):
        headers.append(("Connection", "close"))
    await _send(conn, stream, h11.Response(status_code=reply.status, headers=headers))
    if reply.body and not head:
        await _send(conn, stream, h11.Data(data=reply.body))
    await _send(conn, stream, h11.EndOfMessage())


async def _receive_request(conn: h11.Connection, stream: trio.abc.Stream) -> h11.Request | None:
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(CHUNK)
            conn.receive_data(data)  # b"" signals the end of the connection
            continue
        if isinstance(event, h11.Request):
            return event
        return None  # ConnectionClosed, or PAUSED after a response that closes


async def _drain_body(conn: h11.Connection, stream: trio.abc.Stream) -> bool:
    received = 0
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(CHUNK))
            continue
        if isinstance(event, h11.Data):
            received += len(event.data)
            if received > MAX_BODY:
                return False
            continue
        return True  # EndOfMessage (or ConnectionClosed, handled by the caller)


# --------------------------------------------------------------------------- running it


def parse_listen(value: str) -> tuple[str, int]:
    """'127.0.0.1:8901', '[::1]:8901' or '8901' -> (host, port); port 0 picks a free one."""
    text = value.strip()
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = DEFAULT_LISTEN[0], text
    host = host.strip("[]") or DEFAULT_LISTEN[0]
    if not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"--listen {value!r} must be HOST:PORT, e.g. 127.0.0.1:8901")
    return host, int(port)


async def open_listeners(host: str, port: int) -> list[trio.SocketListener]:
    """Bind the fetcher's address (raises OSError, e.g. when the port is taken)."""
    return await trio.open_tcp_listeners(port, host=host)


def listener_address(listeners: list[trio.SocketListener]) -> str:
    """'host:port' of the first listener (the real port when 0 was asked for)."""
    host, port = listeners[0].socket.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def serve_fetcher(
    config: SiteConfig,
    listeners: list[trio.SocketListener],
    *,
    task_status: trio.TaskStatus[Fetcher] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve on ``listeners`` until cancelled; ``task_status.started(fetcher)``."""
    fetcher = Fetcher(config)
    if not fetcher.channels:
        log.warning("no channel has a passive mirror: every request will be answered 404")
    async with fetcher.running(), trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, fetcher.handle_connection, listeners)
        log.info(
            "fetcher for %d passive channel(s) of %s listening on http://%s",
            len(fetcher.channels),
            fetcher.site.root,
            listener_address(listeners),
        )
        task_status.started(fetcher)
