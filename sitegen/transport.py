"""An httpx transport for bulk package downloads: pooled keep-alive HTTP/1.1 connections of
the standard library, read in large pieces, used from worker threads.

httpx's own transport spends most of a loopback download's CPU in pure-Python protocol
handling (about 2 ms per file, 64 KiB per read). This one hands the same requests to
``http.client``, whose header parsing and body reads run in C, and returns ordinary
``httpx.Response`` objects: redirects, timeouts, headers and errors stay httpx's. A transfer can
be aborted from another thread (:class:`AbortHandle`), which shuts its socket so a blocked
read returns at once: that is how a cancelled trio task stops its thread.

Environment proxies are honoured by httpx only with its own transport, so
:func:`download_client` uses this one only when no proxy is configured.
"""

from __future__ import annotations

import contextlib
import http.client
import select
import socket
import threading
import urllib.request
from collections.abc import Iterator

import httpx

READ_SIZE = 1 << 18
# Request extension carrying an AbortHandle (httpx passes extensions through to the transport).
ABORT = "sitegen.abort"
_MAX_IDLE_PER_HOST = 64

_Key = tuple[str, str, int]


class AbortHandle:
    """Lets another thread stop one transfer (redirects included): it shuts the socket the
    transfer is using, so a read blocked in it returns at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connection: http.client.HTTPConnection | None = None
        self.aborted = False

    def attach(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            self._connection = connection
            aborted = self.aborted
        if aborted:
            _shut(connection)

    def detach(self) -> bool:
        """The transfer is done with its connection; False when it was aborted meanwhile."""
        with self._lock:
            self._connection = None
            return not self.aborted

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            connection = self._connection
        if connection is not None:
            _shut(connection)


def _shut(connection: http.client.HTTPConnection) -> None:
    if connection.sock is not None:
        with contextlib.suppress(OSError):  # already closed
            connection.sock.shutdown(socket.SHUT_RDWR)


def _still_open(connection: http.client.HTTPConnection) -> bool:
    """An idle connection is readable only when the server closed it (or broke protocol)."""
    if connection.sock is None:
        return False
    poller = select.poll()
    poller.register(connection.sock, select.POLLIN)
    return not poller.poll(0)


class KeepAliveStream(httpx.SyncByteStream):
    """A response body; the connection goes back to the pool once the body was read whole."""

    def __init__(
        self,
        transport: KeepAliveTransport,
        key: _Key,
        connection: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        request: httpx.Request,
    ) -> None:
        self._transport = transport
        self._key = key
        self._connection: http.client.HTTPConnection | None = connection
        self._response = response
        self._request = request
        self._handle: AbortHandle | None = request.extensions.get(ABORT)

    def __iter__(self) -> Iterator[bytes]:
        response = self._response
        while True:
            try:
                chunk = response.read(READ_SIZE)
            except TimeoutError as exc:
                raise httpx.ReadTimeout(str(exc) or "timed out", request=self._request) from exc
            except http.client.IncompleteRead as exc:
                raise httpx.RemoteProtocolError(
                    "peer closed connection without sending complete message body",
                    request=self._request,
                ) from exc
            except (OSError, http.client.HTTPException, ValueError) as exc:
                # ValueError: a response whose connection was shut underneath it.
                raise httpx.ReadError(
                    str(exc) or type(exc).__name__, request=self._request
                ) from exc
            if not chunk:
                if response.length:  # http.client reads a premature end as a plain end
                    raise httpx.RemoteProtocolError(
                        "peer closed connection without sending complete message body",
                        request=self._request,
                    )
                return
            yield chunk

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        reusable = self._handle.detach() if self._handle is not None else True
        response = self._response
        if reusable and response.isclosed() and not response.will_close:
            self._transport._release(self._key, connection)
        else:
            connection.close()


class KeepAliveTransport(httpx.BaseTransport):
    """Thread-safe pool of ``http.client`` connections per (scheme, host, port)."""

    def __init__(self, verify: bool = True) -> None:
        self._ssl = httpx.create_ssl_context(verify=verify)
        self._idle: dict[_Key, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported scheme {url.scheme!r}", request=request)
        key = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        timeouts = request.extensions.get("timeout", {})
        body = request.read()
        handle: AbortHandle | None = request.extensions.get(ABORT)
        connection = self._acquire(key) or self._connect(key, timeouts, request)
        if handle is not None:
            handle.attach(connection)
        response = self._send(connection, request, body, timeouts)
        return httpx.Response(
            status_code=response.status,
            headers=response.getheaders(),
            stream=KeepAliveStream(self, key, connection, response, request),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": response.reason.encode()},
        )

    def _connect(
        self, key: _Key, timeouts: dict[str, float | None], request: httpx.Request
    ) -> http.client.HTTPConnection:
        scheme, host, port = key
        timeout = timeouts.get("connect")
        if scheme == "https":
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, timeout=timeout, context=self._ssl
            )
        else:
            connection = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            connection.connect()
        except TimeoutError as exc:
            connection.close()
            raise httpx.ConnectTimeout(str(exc) or "timed out", request=request) from exc
        except OSError as exc:  # refused, unreachable, TLS failures (ssl.SSLError)
            connection.close()
            raise httpx.ConnectError(str(exc), request=request) from exc
        return connection

    def _send(
        self,
        connection: http.client.HTTPConnection,
        request: httpx.Request,
        body: bytes,
        timeouts: dict[str, float | None],
    ) -> http.client.HTTPResponse:
        assert connection.sock is not None
        connection.sock.settimeout(timeouts.get("read"))
        try:
            connection.putrequest(
                request.method,
                request.url.raw_path.decode("ascii"),
                skip_host=True,
                skip_accept_encoding=True,
            )
            for name, value in request.headers.raw:
                connection.putheader(name, value)
            connection.endheaders(body or None)
            return connection.getresponse()
        except TimeoutError as exc:
            connection.close()
            raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from exc
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise httpx.RemoteProtocolError(
                str(exc) or type(exc).__name__, request=request
            ) from exc

    def _acquire(self, key: _Key) -> http.client.HTTPConnection | None:
        """An idle connection the server has not closed meanwhile, if there is one."""
        while True:
            with self._lock:
                idle = self._idle.get(key)
                connection = idle.pop() if idle else None
            if connection is None or _still_open(connection):
                return connection
            connection.close()

    def _release(self, key: _Key, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if not self._closed and len(idle) < _MAX_IDLE_PER_HOST:
                idle.append(connection)
                return
        connection.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle = [c for connections in self._idle.values() for c in connections]
            self._idle.clear()
        for connection in idle:
            connection.close()


def download_client(timeout: httpx.Timeout, user_agent: str, verify: bool = True) -> httpx.Client:
    """A blocking client for package downloads from worker threads."""
    proxied = any(k in urllib.request.getproxies() for k in ("http", "https", "all"))
    return httpx.Client(
        # With a proxy in the environment, httpx's own transport, which honours it.
        transport=None if proxied else KeepAliveTransport(verify=verify),
        verify=verify,
        follow_redirects=True,
        max_redirects=10,
        timeout=timeout,
        headers={"User-Agent": user_agent},
    )
