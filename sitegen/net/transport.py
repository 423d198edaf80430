"""HTTP to upstreams inside the trio event loop: a pool of keep-alive HTTP/1.1 connections
(:mod:`sitegen.net.http11`) behind httpx's transport interface. Every request to an upstream
(repodata and package files) goes through it, by way of :mod:`sitegen.net.client`.

A mirror moves thousands of mostly small files. httpx's own transport costs about 2 ms of
CPU per file, and blocking clients in worker threads spend more in GIL hand-offs than in the
transfer. Here one thread waits on every socket at once: a body comes in reads of up to
256 KiB, a waiting transfer costs nothing but its file descriptor in the event loop's epoll
set, and a connection is reused as long as the server keeps it open.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator, Mapping

import h11
import httpx
import trio

from sitegen.net.http11 import Connection, PoolKey, Unanswered, deadline_at, os_cause, reason

MAX_IDLE_PER_HOST = 64
IDLE_SECONDS = 60.0  # a pooled connection unused this long is closed rather than tried


# Where the environment names the CAs to trust, in the order they count; requests (and so pip
# and conda) read REQUESTS_CA_BUNDLE, OpenSSL reads SSL_CERT_FILE.
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")


def trusted_cas(configured: str | None, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """The PEM file to verify upstreams with and what named it: ``ca_bundle`` in the
    configuration, else the environment; None for the system's CAs."""
    if configured:
        return configured, "ca_bundle"
    for name in CA_BUNDLE_VARIABLES:
        if environ.get(name):
            return environ[name], name
    return None


def tls_context(verify: bool, ca_bundle: str | None = None) -> ssl.SSLContext:
    """The CAs of ``ca_bundle`` in place of the system's (for a corporate TLS proxy), or the
    system's (SSL_CERT_DIR names others), or no verification at all for a mirror configured
    with ``verify_tls: false``."""
    context = ssl.create_default_context(cafile=ca_bundle if verify else None)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    return context


class ResponseStream(httpx.AsyncByteStream):
    """A response body read from its connection; the connection goes back to the pool once the
    body was received whole (read, or already in hand), and is closed otherwise."""

    def __init__(
        self, transport: EventLoopTransport, connection: Connection, timeout: float | None
    ) -> None:
        self._transport = transport
        self._connection: Connection | None = connection
        self._timeout = timeout
        self._complete = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        connection = self._connection
        if connection is None or self._complete:
            raise StopAsyncIteration
        data = await connection.receive_data(self._timeout)
        if data is None:
            self._complete = True
            raise StopAsyncIteration
        return data

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if connection.finish():
            self._transport.release(connection)
        else:
            connection.close()


class EventLoopTransport(httpx.AsyncBaseTransport):
    """Keep-alive HTTP/1.1 connections per (scheme, host, port), for GET and HEAD requests
    without a body, driven by trio."""

    def __init__(self, verify: bool = True, ca_bundle: str | None = None) -> None:
        self._verify = verify
        self._ca_bundle = ca_bundle
        self._tls: ssl.SSLContext | None = None  # made on the first https connection
        self._idle: dict[PoolKey, list[tuple[float, Connection]]] = {}
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported scheme {url.scheme!r}", request=request)
        # raw_host: the IDNA (xn--) form, for DNS, the pool and the TLS server name alike.
        host = url.raw_host.decode("ascii")
        key = (url.scheme, host, url.port or (443 if url.scheme == "https" else 80))
        timeouts = request.extensions.get("timeout", {})
        connection = self._acquire(key)
        reused = connection is not None
        while True:
            if connection is None:
                connection = await self._connect(key, timeouts.get("connect"))
            try:
                head = await self._exchange(connection, request, timeouts)
                break
            except Unanswered as exc:
                # A server may end a kept-alive connection whenever it likes (its keep-alive
                # timeout, a close it did not announce after a slow answer), and the check in
                # _acquire sees that only once the close has arrived: a request can go out on
                # a connection being closed. Closed before any byte of an answer, the request
                # (a GET or HEAD: safe to send again) goes once more to a fresh connection, as
                # HTTP clients do; there the drop is the server's answer (and a download's
                # retries decide).
                if not reused:
                    raise exc.error from exc.__cause__
                connection, reused = None, False
        return httpx.Response(
            status_code=head.status_code,
            headers=head.headers.raw_items(),
            stream=ResponseStream(self, connection, timeouts.get("read")),
            extensions={"http_version": b"HTTP/" + head.http_version, "reason_phrase": head.reason},
        )

    async def _connect(self, key: PoolKey, timeout: float | None) -> Connection:
        scheme, host, port = key
        try:
            with trio.fail_at(deadline_at(timeout)):
                tcp = await trio.open_tcp_stream(host, port)
                if scheme != "https":
                    return Connection(tcp, tcp.socket, key)
                if self._tls is None:
                    self._tls = tls_context(
                        self._verify, self._ca_bundle
                    )  # some ms: the CA store is read
                tls = trio.SSLStream(tcp, self._tls, server_hostname=host, https_compatible=True)
                try:
                    await tls.do_handshake()
                except BaseException:
                    tcp.socket.close()
                    raise
                return Connection(tls, tcp.socket, key)
        except trio.TooSlowError as exc:
            raise httpx.ConnectTimeout("timed out connecting") from exc
        except trio.BrokenResourceError as exc:
            # TLS: the certificate, the handshake, or the connection under it
            cause = os_cause(exc) or exc.__cause__ or exc
            raise httpx.ConnectError(reason(exc)) from cause
        except (OSError, UnicodeError) as exc:
            # refused, unreachable, DNS (a name the resolver cannot encode included)
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc

    @staticmethod
    async def _exchange(
        connection: Connection, request: httpx.Request, timeouts: dict[str, float | None]
    ) -> h11.Response:
        """Send the request and read the response head; the connection is closed on failure."""
        try:
            return await connection.exchange(request, timeouts)
        except BaseException:
            connection.close()
            raise

    def _acquire(self, key: PoolKey) -> Connection | None:
        """An idle connection the server has not closed meanwhile, if there is one."""
        idle = self._idle.get(key)
        self._expire(idle)
        while idle:
            _since, connection = idle.pop()
            if connection.idle_and_open():
                return connection
            connection.close()
        return None

    def release(self, connection: Connection) -> None:
        """Pool a connection whose last answer was read whole."""
        idle = self._idle.setdefault(connection.key, [])
        self._expire(idle)
        if self._closed or len(idle) >= MAX_IDLE_PER_HOST:
            connection.close()
        else:
            idle.append((time.monotonic(), connection))

    @staticmethod
    def _expire(idle: list[tuple[float, Connection]] | None) -> None:
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
