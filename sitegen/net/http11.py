"""One HTTP/1.1 client connection: h11 speaks the protocol, a trio byte stream (TCP, or TLS
over it) carries the bytes.

h11 frames every message (Content-Length, chunked, until-close), validates status lines and
header fields, tolerates bare-LF line endings and refuses what it cannot frame (a transfer
coding other than chunked, an unasked-for protocol switch, a body cut short). This module adds
what h11 leaves to its caller: reads of up to READ_SIZE bytes, one deadline per wait, the
limit on a response head, and the failures mapped to httpx's exception types, so that the
transport above behaves like any httpx transport.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import h11
import httpx
import trio

READ_SIZE = 1 << 18
HEAD_LIMIT = 64 * 1024  # a response head (or a chunk-size line) larger than this is hostile

PoolKey = tuple[str, str, int]  # scheme, IDNA host, port

# h11 lets control characters other than NUL through in field values, for the sake of
# browsers' cookies. Here no field is a cookie, and a validator (ETag) is sent back on the
# next run: a field value with a control character (HTAB aside) is refused either way.
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


class Unanswered(Exception):
    """The server closed or reset the connection before answering; ``error`` is what that
    means when the request is not asked again."""

    def __init__(self, error: httpx.TransportError) -> None:
        super().__init__(str(error))
        self.error = error


def deadline_at(timeout: float | None) -> float:
    """The deadline ``timeout`` seconds from now; None waits for ever."""
    return math.inf if timeout is None else trio.current_time() + timeout


def os_cause(exc: BaseException) -> OSError | None:
    """The OSError behind a broken trio stream (TLS wraps the transport's own error)."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, OSError):
        cause = cause.__cause__
    return cause


def reason(exc: BaseException) -> str:
    """What went wrong, from the deepest cause trio kept."""
    cause = os_cause(exc) or exc.__cause__ or exc
    return str(cause) or type(cause).__name__


class Connection:
    """A connection to one (scheme, host, port), one request at a time.

    ``socket`` is the TCP socket under ``stream``: closing it ends the connection at once,
    without a TLS close_notify exchange, from synchronous code (pool expiry) and cancelled
    code alike.
    """

    def __init__(self, stream: trio.abc.Stream, socket: trio.socket.SocketType, key: PoolKey):
        self.stream = stream
        self.socket = socket
        self.key = key
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=HEAD_LIMIT)
        # Cleared for an answer whose framing was ambiguous: that connection is used once.
        self.reusable = True

    def close(self) -> None:
        self.socket.close()

    def idle_and_open(self) -> bool:
        """An idle connection is readable only when the server closed it (or broke protocol)."""
        return self.socket.fileno() >= 0 and not self.socket.is_readable()

    async def exchange(
        self, request: httpx.Request, timeouts: Mapping[str, float | None]
    ) -> h11.Response:
        """Send the request head (GET and HEAD carry no body) and read the final response
        head; informational (1xx) answers are skipped. A server that had closed or reset the
        connection, or ended it before a head was complete, makes it :class:`Unanswered`."""
        data = self._request_head(request)
        sent = False
        # One cancel scope for both waits, its deadline moved before each: a scope costs
        # more than the rest of a small file's exchange with the event loop.
        with trio.CancelScope(deadline=deadline_at(timeouts.get("write"))) as scope:
            try:
                await self.stream.send_all(data)
            except trio.BrokenResourceError as exc:
                error = httpx.WriteError(reason(exc))
                if isinstance(os_cause(exc), BrokenPipeError | ConnectionResetError):
                    raise Unanswered(error) from exc
                raise error from exc
            sent = True
            return await self._receive_head(scope, timeouts.get("read"))
        if sent:
            raise httpx.ReadTimeout("timed out waiting for the response")
        raise httpx.WriteTimeout("timed out sending the request")

    def _request_head(self, request: httpx.Request) -> bytes:
        for name, value in request.headers.raw:
            if _CONTROL.search(value):
                raise httpx.LocalProtocolError(f"control character in the {name!r} header")
        try:
            data = self.h11.send(
                h11.Request(
                    method=request.method.encode("ascii"),
                    target=request.url.raw_path,
                    headers=request.headers.raw,
                )
            )
            return data + self.h11.send(h11.EndOfMessage())
        except h11.LocalProtocolError as exc:
            # A header value with CR, LF or NUL never reaches the wire either.
            raise httpx.LocalProtocolError(str(exc)) from exc

    async def _receive_head(self, scope: trio.CancelScope, timeout: float | None) -> h11.Response:
        while True:
            event = self._next_event()
            if event is h11.NEED_DATA:
                scope.deadline = deadline_at(timeout)
                data = await self._read(head=True)
                if not data:
                    raise Unanswered(
                        httpx.RemoteProtocolError("server disconnected without a response")
                    )
                self.h11.receive_data(data)
                continue
            if not isinstance(event, h11.InformationalResponse | h11.Response):
                raise httpx.RemoteProtocolError(f"unexpected {type(event).__name__}")
            # h11 limits a head still incomplete; one that came whole in a single read is
            # measured here, by its status line and fields.
            size = len(event.reason) + 16
            for name, value in event.headers.raw_items():
                size += len(name) + len(value) + 4
                if _CONTROL.search(value):
                    raise httpx.RemoteProtocolError(f"control character in the {name!r} header")
            if size > HEAD_LIMIT:
                raise httpx.RemoteProtocolError("response head too long")
            if isinstance(event, h11.Response):
                names = {name for name, _value in event.headers}
                # Both framings at once smell of request smuggling: use the connection once.
                if b"transfer-encoding" in names and b"content-length" in names:
                    self.reusable = False
                return event

    async def receive_data(self, timeout: float | None) -> bytes | None:
        """The next piece of the response body; None at its end."""
        while True:
            event = self._next_event()
            if event is h11.NEED_DATA:
                try:
                    with trio.fail_after(math.inf if timeout is None else timeout):
                        data = await self._read(head=False)
                except trio.TooSlowError as exc:
                    raise httpx.ReadTimeout("timed out reading the response body") from exc
                self.h11.receive_data(data)
            elif isinstance(event, h11.Data):
                return event.data
            elif isinstance(event, h11.EndOfMessage):
                return None
            else:
                raise httpx.RemoteProtocolError(f"unexpected {type(event).__name__}")

    def finish(self) -> bool:
        """After a response: whether the connection may serve another request (then it is
        ready to). What is left of the body in hand (an empty one, say, never iterated) is
        skipped; a body not received whole rules the connection out."""
        h = self.h11
        try:
            while h.their_state is h11.SEND_BODY:
                if h.next_event() is h11.NEED_DATA:
                    return False
        except h11.RemoteProtocolError:
            return False
        if not (self.reusable and h.our_state is h11.DONE and h.their_state is h11.DONE):
            return False
        if h.trailing_data[0]:
            return False  # bytes past the answer: the server and we disagree on framing
        h.start_next_cycle()
        return True

    def _next_event(self) -> h11.Event | type[h11.PAUSED] | type[h11.NEED_DATA]:
        try:
            return self.h11.next_event()
        except h11.RemoteProtocolError as exc:
            raise httpx.RemoteProtocolError(str(exc)) from exc

    async def _read(self, *, head: bool) -> bytes:
        """Up to READ_SIZE bytes; b"" at the end of the stream."""
        try:
            return await self.stream.receive_some(READ_SIZE)
        except trio.BrokenResourceError as exc:
            error = httpx.ReadError(reason(exc))
            if head and isinstance(os_cause(exc), ConnectionResetError):
                raise Unanswered(error) from exc
            raise error from exc
