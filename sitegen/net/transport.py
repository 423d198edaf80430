"""HTTP to upstreams inside the trio event loop: pooled keep-alive HTTP/1.1 connections on
non-blocking standard-library sockets, behind httpx's transport interface. Every request to an
upstream (repodata and package files) goes through it.

A mirror moves thousands of mostly small files. httpx's own transport parses each response
in pure Python in small reads (about 2 ms of CPU per file), and blocking clients in worker
threads spend more in GIL hand-offs than in the transfer (tens of futex calls per file). Here
one thread waits on every socket at once: a response head is split with a few C-level bytes
operations, a body comes in reads of up to 256 KiB straight from the socket, and a waiting
transfer costs nothing but its file descriptor in the event loop's epoll set. Requests and
responses stay httpx objects; :class:`UpstreamClient` adds what httpx's client would (default
headers, timeouts, redirects, credentials from the URL) for the few things a GET upstream
needs.

With a proxy in the environment, requests go through httpx's own client instead, which
honours HTTP(S)_PROXY / NO_PROXY.
"""

from __future__ import annotations

import base64
import math
import re
import select
import socket
import ssl
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from functools import partial
from typing import TypeVar

import httpx
import trio

READ_SIZE = 1 << 18
HEAD_LIMIT = 64 * 1024  # a response head (or a chunk-size line) larger than this is hostile
MAX_REDIRECTS = 10
REDIRECT_STATUS = {301, 302, 303, 307, 308}
_MAX_IDLE_PER_HOST = 64
_SMALL_BODY = 64 * 1024  # redirect bodies up to this size are read so the connection is reused
IDLE_SECONDS = 60.0  # a pooled connection unused this long is closed rather than tried
STALE_AFTER = 3.0  # a pooled connection idle this long may have been closed as it was reused

_Key = tuple[str, str, int]
T = TypeVar("T")
_INCOMPLETE = "peer closed connection without sending complete message body"
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")


class _Connection:
    """One non-blocking socket (TLS or plain) with the bytes received past what was asked."""

    def __init__(self, sock: socket.socket, key: _Key) -> None:
        self.sock = sock
        self.key = key
        self.buffer = bytearray()

    def close(self) -> None:
        self.sock.close()

    def idle_and_open(self) -> bool:
        """An idle connection is readable only when the server closed it (or broke protocol)."""
        if self.buffer or self.sock.fileno() < 0:
            return False
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return False
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        return not poller.poll(0)

    async def send_all(self, data: bytes, timeout: float | None) -> None:
        view = memoryview(data)
        while view:
            sent = await _io(self.sock, partial(self.sock.send, view), _WRITABLE, timeout)
            view = view[sent:]

    async def receive(self, max_bytes: int, timeout: float | None) -> bytes:
        """Up to ``max_bytes`` (buffered ones first); b"" at the end of the stream."""
        if self.buffer:
            data = bytes(self.buffer[:max_bytes])
            del self.buffer[:max_bytes]
            return data
        return await self._recv(max_bytes, timeout)

    async def receive_until(self, separator: bytes, timeout: float | None) -> bytes | None:
        """Bytes up to ``separator`` (consumed, not returned); None at a premature end."""
        start = 0
        while (end := self.buffer.find(separator, start)) < 0:
            if len(self.buffer) > HEAD_LIMIT:
                raise httpx.RemoteProtocolError("response head or line too long")
            start = max(0, len(self.buffer) - len(separator) + 1)
            data = await self._recv(READ_SIZE, timeout)
            if not data:
                return None
            self.buffer += data
        if end > HEAD_LIMIT:
            raise httpx.RemoteProtocolError("response head or line too long")
        line = bytes(self.buffer[:end])
        del self.buffer[: end + len(separator)]
        return line

    async def _recv(self, max_bytes: int, timeout: float | None) -> bytes:
        return await _io(self.sock, partial(self.sock.recv, max_bytes), _READABLE, timeout)


_Wait = Callable[[socket.socket], Awaitable[None]]
_READABLE: _Wait = trio.lowlevel.wait_readable
_WRITABLE: _Wait = trio.lowlevel.wait_writable


async def _io(sock: socket.socket, op: Callable[[], T], blocked: _Wait, timeout: float | None) -> T:
    """``op`` on a non-blocking socket, retried as the socket becomes ready: ``blocked`` is
    what a plain EWOULDBLOCK waits for, while TLS may ask for either direction (a handshake,
    a renegotiation). Every call is a checkpoint, so other tasks and cancellation get a turn
    even when the socket never makes it wait."""
    waited = False
    while True:
        try:
            result = op()
        except BlockingIOError:
            wait = blocked
        except ssl.SSLWantReadError:
            wait = _READABLE
        except ssl.SSLWantWriteError:
            wait = _WRITABLE
        else:
            if not waited:
                await trio.lowlevel.checkpoint()
            return result
        with trio.fail_after(math.inf if timeout is None else timeout):
            await wait(sock)
        waited = True


class _Unanswered(Exception):
    """The server closed or reset the connection before answering; ``error`` is what that
    means when the request is not asked again."""

    def __init__(self, error: httpx.TransportError) -> None:
        super().__init__(str(error))
        self.error = error


class _Head:
    """A parsed response head and how its body is framed."""

    def __init__(self, raw: bytes, method: str) -> None:
        lines = raw.split(b"\r\n")
        version, _, rest = lines[0].partition(b" ")
        status, _, reason = rest.partition(b" ")
        if not version.startswith(b"HTTP/1.") or len(status) != 3 or not status.isdigit():
            raise httpx.RemoteProtocolError(f"malformed status line {lines[0][:80]!r}")
        self.status = int(status)
        self.reason = reason
        self.headers: list[tuple[bytes, bytes]] = []
        for line in lines[1:]:
            if line[:1] in (b" ", b"\t") and self.headers:
                # obs-fold: a continuation of the previous field's value (RFC 9112 5.2)
                name, value = self.headers[-1]
                self.headers[-1] = (name, value + b" " + line.strip())
                continue
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip():
                raise httpx.RemoteProtocolError("malformed header line")
            self.headers.append((name, value.strip()))
        lengths: set[bytes] = set()
        codings: list[bytes] = []
        tokens: set[bytes] = set()
        for name, value in self.headers:
            lowered = name.lower()
            if lowered == b"content-length":
                lengths |= {v.strip() for v in value.split(b",")}
            elif lowered == b"transfer-encoding":
                codings += [c for c in (c.strip().lower() for c in value.split(b",")) if c]
            elif lowered == b"connection":
                tokens |= {t.strip().lower() for t in value.split(b",")}
        if codings.count(b"chunked") > 1 or b"chunked" in codings[:-1]:
            raise httpx.RemoteProtocolError("invalid Transfer-Encoding")
        self.chunked = bool(codings) and codings[-1] == b"chunked"
        self.length: int | None = None
        if method == "HEAD" or self.status in (204, 304) or self.status < 200:
            self.length = 0
        elif codings:
            if not self.chunked:
                self.length = None  # some other coding: the body ends with the connection
        elif lengths:
            if len(lengths) > 1 or not all(v.isdigit() for v in lengths):
                raise httpx.RemoteProtocolError("invalid Content-Length")
            self.length = int(lengths.pop())
        self.keep_alive = (
            version == b"HTTP/1.1"
            and b"close" not in tokens
            and (self.chunked or self.length is not None)
            # Both framings at once smell of request smuggling: use the connection once.
            and not (codings and lengths)
        )


class _Body(httpx.AsyncByteStream):
    """A response body read from its connection; the connection goes back to the pool once the
    body was read whole, and is closed otherwise."""

    def __init__(
        self,
        transport: EventLoopTransport,
        connection: _Connection,
        head: _Head,
        timeout: float | None,
    ) -> None:
        self._transport = transport
        self._connection: _Connection | None = connection
        self._head = head
        self._timeout = timeout
        self._left = head.length  # bytes left of the body, or of the current chunk
        self._chunk_done = False  # chunked: the CRLF after a chunk's data is due
        self._complete = head.length == 0

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        connection = self._connection
        if self._complete or connection is None:
            raise StopAsyncIteration
        try:
            if self._head.chunked:
                data = await self._next_chunk(connection)
            elif self._left is None:  # until the connection ends
                data = await connection.receive(READ_SIZE, self._timeout)
                self._complete = not data
            else:
                data = await self._counted(connection)
                self._complete = self._left == 0
        except trio.TooSlowError as exc:
            raise httpx.ReadTimeout("timed out reading the response body") from exc
        except OSError as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__) from exc
        if not data:
            raise StopAsyncIteration
        return data

    async def _next_chunk(self, connection: _Connection) -> bytes:
        if not self._left:
            if self._chunk_done and await connection.receive_until(b"\r\n", self._timeout) != b"":
                raise httpx.RemoteProtocolError("malformed chunked encoding")
            line = await connection.receive_until(b"\r\n", self._timeout)
            if line is None:
                raise httpx.RemoteProtocolError(_INCOMPLETE)
            size = line.split(b";", 1)[0].strip()
            if not _CHUNK_SIZE.fullmatch(size):
                raise httpx.RemoteProtocolError("malformed chunk size")
            self._left = int(size, 16)
            self._chunk_done = True
            if self._left == 0:
                while await connection.receive_until(b"\r\n", self._timeout):
                    pass  # trailer fields: not needed
                self._complete = True
                return b""
        return await self._counted(connection)

    async def _counted(self, connection: _Connection) -> bytes:
        """The next bytes of the ``_left`` still due; the stream ending first is an error."""
        assert self._left is not None
        data = await connection.receive(min(READ_SIZE, self._left), self._timeout)
        if not data:
            raise httpx.RemoteProtocolError(_INCOMPLETE)
        self._left -= len(data)
        return data

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if self._complete and self._head.keep_alive and not connection.buffer:
            self._transport._release(connection)
        else:
            connection.close()


class EventLoopTransport(httpx.AsyncBaseTransport):
    """Keep-alive HTTP/1.1 connections per (scheme, host, port), for GET and HEAD requests
    without a body, driven by trio."""

    def __init__(self, verify: bool = True) -> None:
        self._verify = verify
        self._ssl: ssl.SSLContext | None = None  # made on the first https connection
        self._idle: dict[_Key, list[tuple[float, _Connection]]] = {}
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported scheme {url.scheme!r}", request=request)
        # raw_host: the IDNA (xn--) form, for DNS, the pool and the TLS server name alike.
        host = url.raw_host.decode("ascii")
        key = (url.scheme, host, url.port or (443 if url.scheme == "https" else 80))
        timeouts = request.extensions.get("timeout", {})
        read_timeout = timeouts.get("read")
        connection, idle = self._acquire(key)
        while True:
            if connection is None:
                connection, idle = await self._connect(key, timeouts.get("connect")), 0.0
            try:
                head = await self._exchange(connection, request, timeouts)
                break
            except _Unanswered as exc:
                # A server closes idle connections after its keep-alive timeout; the poll in
                # _acquire sees that only once the close has arrived. A connection that sat
                # idle for a while and was closed unanswered is asked again on a fresh one.
                if idle < STALE_AFTER:
                    raise exc.error from exc.__cause__
                connection = None
        return httpx.Response(
            status_code=head.status,
            headers=head.headers,
            stream=_Body(self, connection, head, read_timeout),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": head.reason},
        )

    async def _connect(self, key: _Key, timeout: float | None) -> _Connection:
        scheme, host, port = key
        try:
            with trio.fail_after(math.inf if timeout is None else timeout):
                stream = await trio.open_tcp_stream(host, port)
                sock = socket.socket(fileno=stream.socket.detach())
                sock.setblocking(False)
                if scheme == "https":
                    sock = await self._handshake(sock, host, timeout)
        except trio.TooSlowError as exc:
            raise httpx.ConnectTimeout("timed out connecting") from exc
        except (OSError, UnicodeError) as exc:
            # refused, unreachable, DNS (a name the resolver cannot encode included), TLS
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        return _Connection(sock, key)

    async def _handshake(
        self, sock: socket.socket, host: str, timeout: float | None
    ) -> ssl.SSLSocket:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context(verify=self._verify)  # ~20 ms: the CA bundle
        tls = self._ssl.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
        try:
            await _io(tls, tls.do_handshake, _READABLE, timeout)
        except BaseException:
            tls.close()
            raise
        return tls

    async def _exchange(
        self, connection: _Connection, request: httpx.Request, timeouts: dict[str, float | None]
    ) -> _Head:
        """Send the request and read the response head; the connection is closed on failure."""
        lines = [b"%s %s HTTP/1.1" % (request.method.encode(), request.url.raw_path)]
        lines += [b"%s: %s" % (name, value) for name, value in request.headers.raw]
        try:
            try:
                await connection.send_all(b"\r\n".join(lines) + b"\r\n\r\n", timeouts.get("write"))
            except (BrokenPipeError, ConnectionResetError) as exc:
                raise _Unanswered(httpx.WriteError(str(exc))) from exc
            except trio.TooSlowError as exc:
                raise httpx.WriteTimeout("timed out sending the request") from exc
            except OSError as exc:
                raise httpx.WriteError(str(exc) or type(exc).__name__) from exc
            try:
                while True:
                    raw = await connection.receive_until(b"\r\n\r\n", timeouts.get("read"))
                    if raw is None:
                        raise _Unanswered(
                            httpx.RemoteProtocolError("server disconnected without a response")
                        )
                    head = _Head(raw, request.method)
                    if not 100 <= head.status < 200:
                        return head  # 1xx: informational, the real answer follows
            except ConnectionResetError as exc:
                raise _Unanswered(httpx.ReadError(str(exc))) from exc
            except trio.TooSlowError as exc:
                raise httpx.ReadTimeout("timed out waiting for the response") from exc
            except OSError as exc:
                raise httpx.ReadError(str(exc) or type(exc).__name__) from exc
        except BaseException:
            connection.close()
            raise

    def _acquire(self, key: _Key) -> tuple[_Connection | None, float]:
        """An idle connection the server has not closed meanwhile, if there is one, and how
        long it has been idle."""
        idle = self._idle.get(key)
        self._expire(idle)
        while idle:
            since, connection = idle.pop()
            if connection.idle_and_open():
                return connection, time.monotonic() - since
            connection.close()
        return None, 0.0

    def _release(self, connection: _Connection) -> None:
        idle = self._idle.setdefault(connection.key, [])
        self._expire(idle)
        if self._closed or len(idle) >= _MAX_IDLE_PER_HOST:
            connection.close()
        else:
            idle.append((time.monotonic(), connection))

    @staticmethod
    def _expire(idle: list[tuple[float, _Connection]] | None) -> None:
        """Close connections idle for long (servers close theirs after a while; the
        pull-through fetcher may not ask that host again for hours). Oldest come first."""
        deadline = time.monotonic() - IDLE_SECONDS
        while idle and idle[0][0] < deadline:
            idle.pop(0)[1].close()

    async def aclose(self) -> None:
        self._closed = True
        for connections in self._idle.values():
            for _since, connection in connections:
                connection.close()
        self._idle.clear()


class _ClientTransport(httpx.AsyncBaseTransport):
    """httpx's own client seen as a transport: it applies the environment's proxy settings."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._client.send(request, stream=True)

    async def aclose(self) -> None:
        await self._client.aclose()


class UpstreamClient:
    """GETs upstream through one transport: default headers, timeouts, redirects and
    credentials from the URL (sent to its own origin only)."""

    def __init__(
        self, transport: httpx.AsyncBaseTransport, *, user_agent: str, timeout: httpx.Timeout
    ) -> None:
        self.transport = transport
        # identity: package files are compressed already, and sizes are checked as sent.
        self._headers = {"User-Agent": user_agent, "Accept": "*/*", "Accept-Encoding": "identity"}
        self._timeout = timeout.as_dict()

    @asynccontextmanager
    async def stream(
        self, url: str, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[httpx.Response]:
        """The final response to GET ``url``, its body not read yet; closed on exit."""
        response = await self._send(httpx.URL(url), headers or {})
        try:
            yield response
        finally:
            await response.aclose()

    async def _send(self, url: httpx.URL, headers: Mapping[str, str]) -> httpx.Response:
        origin = (url.scheme, url.host, url.port)
        credentials = _basic_auth(url)
        for _ in range(MAX_REDIRECTS + 1):
            request = httpx.Request(
                "GET",
                url,
                headers={**self._headers, **headers},
                extensions={"timeout": self._timeout},
            )
            if credentials and (url.scheme, url.host, url.port) == origin:
                request.headers["Authorization"] = credentials
            response = await self.transport.handle_async_request(request)
            response.request = request
            location = response.headers.get("location")
            if response.status_code not in REDIRECT_STATUS or not location:
                return response
            try:
                await _drain(response)
            finally:
                await response.aclose()
            try:
                url = request.url.join(location)
            except httpx.InvalidURL as exc:
                raise httpx.RemoteProtocolError(
                    "redirect to an invalid URL", request=request
                ) from exc
            if url.scheme not in ("http", "https"):
                raise httpx.UnsupportedProtocol(
                    f"redirect to unsupported scheme {url.scheme!r}", request=request
                )
        raise httpx.TooManyRedirects("too many redirects", request=request)

    async def aclose(self) -> None:
        await self.transport.aclose()


async def _drain(response: httpx.Response) -> None:
    """Read a small body to its end, so its connection can serve the next request."""
    read = 0
    async for chunk in response.aiter_raw():
        read += len(chunk)
        if read > _SMALL_BODY:
            return  # not worth it: the connection is closed instead


def _basic_auth(url: httpx.URL) -> str | None:
    if not url.username and not url.password:
        return None
    pair = f"{url.username}:{url.password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def proxy_configured() -> bool:
    return any(k in urllib.request.getproxies() for k in ("http", "https", "all"))


def open_client(timeout: httpx.Timeout, user_agent: str, verify: bool = True) -> UpstreamClient:
    """The client for upstreams: the event-loop transport, or httpx's own client when the
    environment names a proxy."""
    if proxy_configured():
        client = httpx.AsyncClient(verify=verify, timeout=timeout, follow_redirects=False)
        transport: httpx.AsyncBaseTransport = _ClientTransport(client)
    else:
        transport = EventLoopTransport(verify=verify)
    return UpstreamClient(transport, user_agent=user_agent, timeout=timeout)
