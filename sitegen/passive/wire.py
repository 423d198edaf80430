"""HTTP/1.1 on a trio stream with h11, for the fetcher (see :mod:`sitegen.passive.fetcher`):
receiving a request and its (small) body, and sending answers within deadlines, so that a
client that stops reading cannot hold its connection for good."""

from __future__ import annotations

from typing import Any

import h11
import trio

from sitegen.passive.resolver import Reply

CHUNK = 1 << 18
MAX_BODY = 64 * 1024  # GET has no body; tolerate a small one
SEND_GRACE = 30.0  # a response body gets this long, plus the time at MIN_SEND_RATE
MIN_SEND_RATE = 256 * 1024  # bytes per second


def send_deadline(size: int) -> float:
    """Seconds to send a body of ``size`` bytes to a reader that is not stalling."""
    return SEND_GRACE + size / MIN_SEND_RATE


async def stream_file(
    conn: h11.Connection, stream: trio.abc.Stream, handle: Any, size: int
) -> None:
    remaining = size
    while remaining > 0:
        chunk = await handle.read(min(CHUNK, remaining))
        if not chunk:
            raise trio.BrokenResourceError("file shorter than announced")
        remaining -= len(chunk)
        await send(conn, stream, h11.Data(data=chunk))


async def send(conn: h11.Connection, stream: trio.abc.Stream, event: Any) -> None:
    data = conn.send(event)
    if data:
        await stream.send_all(data)


async def send_within(
    conn: h11.Connection, stream: trio.abc.Stream, seconds: float, *events: Any
) -> None:
    """``events`` sent within ``seconds``, or the connection is given up: a client that
    takes none of it must not hold its slot for good."""
    data = b"".join(conn.send(event) or b"" for event in events)
    with trio.move_on_after(seconds) as sending:
        await stream.send_all(data)
    if sending.cancelled_caught:
        raise trio.BrokenResourceError("the reader is too slow")


async def send_simple(
    conn: h11.Connection,
    stream: trio.abc.Stream,
    reply: Reply,
    within: float,
    head: bool = False,
) -> None:
    """A short answer (no file), sent within ``within`` seconds."""
    headers = [("Content-Type", "text/plain; charset=utf-8"), *reply.headers]
    names = {name.lower() for name, _ in headers}
    if "content-length" not in names:  # a HEAD answer may carry the size of the file
        headers.append(("Content-Length", str(len(reply.body))))
    if sum(name.lower() == "content-type" for name, _ in headers) > 1:
        headers = headers[1:]  # the reply's own type wins
    if reply.status >= 400 and reply.status not in (404, 405):
        headers.append(("Connection", "close"))
    body = [h11.Data(data=reply.body)] if reply.body and not head else []
    response = h11.Response(status_code=reply.status, headers=headers)
    await send_within(conn, stream, within, response, *body, h11.EndOfMessage())


async def receive_request(conn: h11.Connection, stream: trio.abc.Stream) -> h11.Request | None:
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(CHUNK)
            conn.receive_data(data)  # b"" signals the end of the connection
            continue
        if isinstance(event, h11.Request):
            return event
        return None  # ConnectionClosed, or PAUSED after a response that closes


async def drain_body(conn: h11.Connection, stream: trio.abc.Stream) -> bool:
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
