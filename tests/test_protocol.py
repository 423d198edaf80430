"""HTTP/1.1 as the upstream transport reads it, byte for byte: a raw socket server on 127.0.0.1
writes exact answers (bare-LF heads, hostile header values, protocol switches, foreign
transfer codings, chunked bodies cut short, framing edge cases) and sees whether the client
keeps or closes each connection."""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
import trio

from sitegen.config import DownloadSettings, MirrorConfig
from sitegen.net.client import UpstreamClient
from sitegen.net.http11 import HEAD_LIMIT
from sitegen.net.transport import EventLoopTransport
from sitegen.net.upstream import Upstream, UpstreamError, make_client

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Reply:
    """An answer to one request: ``parts`` written as they are, a moment apart, then the
    connection is kept open for the next request ("keep"), closed ("close"), or closed for
    writing only while the server waits for the client to hang up ("half")."""

    parts: tuple[bytes, ...]
    then: str = "keep"


def reply(data: bytes, then: str = "keep") -> Reply:
    return Reply((data,), then)


class RawServer:
    """Answers each request, whichever connection it comes on, with the next scripted reply.

    ``requests`` holds the raw request heads in arrival order; ``connections`` counts the
    accepted connections; ``hangups`` is released whenever the client closes a connection
    the server still held open."""

    def __init__(self, replies: list[Reply]) -> None:
        self._replies = list(replies)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # closing it does not wake a thread in accept()
        self._stopped = threading.Event()
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.requests: list[bytes] = []
        self.connections = 0
        self.hangups = threading.Semaphore(0)
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def __enter__(self) -> RawServer:
        self._start(self._accept)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopped.set()
        self._threads[0].join(5)  # the accepting thread: no connection is added after this
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads[1:]:
            thread.join(5)

    def _start(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        with self._listener:
            while not self._stopped.is_set():
                try:
                    sock, _address = self._listener.accept()
                except TimeoutError:
                    continue
                sock.settimeout(None)
                with self._lock:
                    self.connections += 1
                    self._sockets.append(sock)
                self._start(self._serve, sock)

    def _serve(self, sock: socket.socket) -> None:
        with sock:
            while (head := self._read_head(sock)) is not None:
                with self._lock:
                    self.requests.append(head)
                    answer = self._replies.pop(0)
                try:
                    for i, part in enumerate(answer.parts):
                        if i:
                            time.sleep(0.05)
                        sock.sendall(part)
                except OSError:
                    return  # the client gave up on the answer
                if answer.then == "close":
                    return
                if answer.then == "half":
                    sock.shutdown(socket.SHUT_WR)
            self.hangups.release()

    @staticmethod
    def _read_head(sock: socket.socket) -> bytes | None:
        """The next request head; None when the client hung up (or the test ended)."""
        data = b""
        while b"\r\n\r\n" not in data:
            try:
                more = sock.recv(65536)
            except OSError:
                return None
            if not more:
                return None
            data += more
        return data

    def hung_up(self, seconds: float = 2.0) -> bool:
        return self.hangups.acquire(timeout=seconds)


@contextlib.contextmanager
def raw_server(*replies: Reply) -> Iterator[RawServer]:
    with RawServer(list(replies)) as server:
        yield server


@contextlib.asynccontextmanager
async def client(timeout: float = 2.0) -> AsyncIterator[UpstreamClient]:
    upstream = UpstreamClient(
        EventLoopTransport(), user_agent="test", timeout=httpx.Timeout(timeout)
    )
    try:
        yield upstream
    finally:
        await upstream.aclose()


async def get(upstream: UpstreamClient, url: str, headers: dict[str, str] | None = None) -> bytes:
    async with upstream.stream(url, headers) as response:
        assert response.status_code == 200, response.status_code
        return b"".join([chunk async for chunk in response.aiter_raw()])


async def hung_up(server: RawServer) -> bool:
    """Whether the client closed a connection within two seconds (the client stays open)."""
    return await trio.to_thread.run_sync(server.hung_up)


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


# --------------------------------------------------------------------------- heads


async def test_bare_lf_line_endings_in_a_head_are_tolerated() -> None:
    bare = b"HTTP/1.1 200 OK\nContent-Length: 5\nX-Note: lf\n\nhello"
    with raw_server(reply(bare), reply(OK)) as server:
        async with client() as upstream:
            async with upstream.stream(f"{server.url}/a") as response:
                assert response.headers["x-note"] == "lf"
                assert await response.aread() == b"hello"
            assert await get(upstream, f"{server.url}/b") == b"ok"
    assert server.connections == 1  # and the connection was kept alive


@pytest.mark.parametrize(
    "etag",
    [
        b'"a\rX-Injected: 1"',  # a lone CR inside a value
        b'"a\x01b"',  # a control character
        b'"a\x00b"',
        b'"a\x7fb"',
    ],
)
async def test_a_header_value_with_control_characters_is_refused(etag: bytes) -> None:
    hostile = b"HTTP/1.1 200 OK\r\nETag: " + etag + b"\r\nContent-Length: 2\r\n\r\nok"
    with raw_server(reply(hostile)) as server:
        async with client() as upstream:
            with pytest.raises(httpx.RemoteProtocolError):
                await get(upstream, f"{server.url}/a")
            assert await hung_up(server)


@pytest.mark.parametrize("name", [b"X Y", b"X\x01", b"(x)", b"X\x00"])
async def test_an_invalid_header_name_is_refused(name: bytes) -> None:
    hostile = b"HTTP/1.1 200 OK\r\n" + name + b": 1\r\nContent-Length: 2\r\n\r\nok"
    with raw_server(reply(hostile)) as server:
        async with client() as upstream:
            with pytest.raises(httpx.RemoteProtocolError):
                await get(upstream, f"{server.url}/a")


async def test_a_hostile_etag_is_never_kept_as_a_validator() -> None:
    """What upstream.py does with an ETag: stores it, and sends it back as If-None-Match on
    the next run. A value with a CR would smuggle a header into that request."""
    hostile = b'HTTP/1.1 200 OK\r\nETag: "v1\rX-Injected: 1"\r\nContent-Length: 2\r\n\r\n{}'
    settings = DownloadSettings(concurrency=1, per_host=1, retries=0, timeout=2)
    with raw_server(reply(hostile)) as server:
        mirror = MirrorConfig(name="up", url=server.url, subdirs=("linux-64",))
        upstream_client = make_client(settings)
        try:
            upstream = Upstream(mirror, upstream_client, settings, trio.CapacityLimiter(1))
            with pytest.raises(UpstreamError, match="RemoteProtocolError"):
                await upstream.fetch_repodata("linux-64", None)
        finally:
            await upstream_client.aclose()


@pytest.mark.parametrize("value", ['"v1"\r\nX-Injected: 1', '"v1"\nX-Injected: 1', '"v1\x00"'])
async def test_a_hostile_request_header_never_reaches_the_wire(value: str) -> None:
    with raw_server(reply(OK)) as server:
        async with client() as upstream:
            with pytest.raises(httpx.LocalProtocolError):
                await get(upstream, f"{server.url}/a", {"If-None-Match": value})
            assert await get(upstream, f"{server.url}/b") == b"ok"
    assert [head.split(b"\r\n", 1)[0] for head in server.requests] == [b"GET /b HTTP/1.1"]


async def test_informational_answers_are_skipped_on_a_kept_connection() -> None:
    early = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n" + OK
    )
    with raw_server(reply(early), reply(OK)) as server:
        async with client() as upstream:
            assert await get(upstream, f"{server.url}/a") == b"ok"
            assert await get(upstream, f"{server.url}/b") == b"ok"
    assert server.connections == 1


async def test_a_switch_of_protocols_is_an_error_not_an_informational_answer() -> None:
    """A 101 ends HTTP on the connection: what follows is another protocol, even when it
    looks like HTTP."""
    switch = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    )
    with raw_server(reply(switch + OK)) as server:
        async with client() as upstream:
            with pytest.raises(httpx.RemoteProtocolError):
                await get(upstream, f"{server.url}/a")
            assert await hung_up(server)


@pytest.mark.parametrize("whole", [True, False])
async def test_a_head_longer_than_the_limit_is_refused(whole: bool) -> None:
    """Whether the head comes in one write or dribbles in."""
    line = b"X-Pad: " + b"p" * 1000 + b"\r\n"
    head = b"HTTP/1.1 200 OK\r\n" + line * (HEAD_LIMIT // len(line) + 1)
    data = head + b"Content-Length: 2\r\n\r\nok"
    parts = (data,) if whole else tuple(data[i : i + 16384] for i in range(0, len(data), 16384))
    with raw_server(Reply(parts)) as server:
        async with client() as upstream:
            with pytest.raises(httpx.RemoteProtocolError):
                await get(upstream, f"{server.url}/a")


async def test_a_head_just_under_the_limit_is_read() -> None:
    line = b"X-Pad: " + b"p" * 1000 + b"\r\n"
    head = b"HTTP/1.1 200 OK\r\n" + line * (HEAD_LIMIT // len(line) - 1)
    with raw_server(reply(head + b"Content-Length: 2\r\n\r\nok")) as server:
        async with client() as upstream:
            assert await get(upstream, f"{server.url}/a") == b"ok"


# --------------------------------------------------------------------------- framing


async def test_a_transfer_coding_other_than_chunked_is_an_error() -> None:
    """A gzip-coded body is not handed on still encoded, as if it were the file."""
    body = gzip.compress(b"the file" * 100)
    coded = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n" + body
    with raw_server(reply(coded, "close")) as server:
        async with client() as upstream:
            with pytest.raises(httpx.RemoteProtocolError):
                await get(upstream, f"{server.url}/a")


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
CHUNKS = b"5;name=value\r\nhello\r\n6\r\n world\r\n"


@pytest.mark.parametrize(
    "cut",
    [
        CHUNKS[:20],  # inside a chunk's data
        CHUNKS[:12],  # inside a chunk-size line
        CHUNKS,  # before the last chunk
        CHUNKS + b"0\r\n",  # the last chunk, then no end of the trailer section
        CHUNKS + b"0\r\nTrailer: yes\r\n",  # inside the trailer section
        CHUNKS + b"0\r\nTrailer: yes\r\n\r",
    ],
)
async def test_a_chunked_body_cut_short_is_an_error_and_its_connection_closed(cut: bytes) -> None:
    """The server stops writing (and keeps reading): the client must fail the body and hang
    up, never put the connection back in its pool."""
    with raw_server(reply(CHUNKED_HEAD + cut, "half")) as server:
        async with client() as upstream:
            with pytest.raises(httpx.RemoteProtocolError):
                await get(upstream, f"{server.url}/a")
            assert await hung_up(server)


@pytest.mark.parametrize(
    "ending",
    [b"0\r\n\r\n", b"0;last\r\n\r\n", b"0\r\nTrailer: yes\r\nOther: 2\r\n\r\n"],
)
async def test_a_whole_chunked_body_keeps_its_connection(ending: bytes) -> None:
    with raw_server(reply(CHUNKED_HEAD + CHUNKS + ending), reply(OK)) as server:
        async with client() as upstream:
            assert await get(upstream, f"{server.url}/a") == b"hello world"
            assert await get(upstream, f"{server.url}/b") == b"ok"
    assert server.connections == 1


async def test_chunked_framing_wins_over_a_content_length_and_the_connection_is_dropped() -> None:
    both = CHUNKED_HEAD.replace(b"\r\n\r\n", b"\r\nContent-Length: 4\r\n\r\n")
    with raw_server(reply(both + CHUNKS + b"0\r\n\r\n"), reply(OK)) as server:
        async with client() as upstream:
            assert await get(upstream, f"{server.url}/a") == b"hello world"
            assert await hung_up(server)  # used once, then closed
            assert await get(upstream, f"{server.url}/b") == b"ok"
    assert server.connections == 2


async def test_a_content_length_body_is_read_exactly_and_extra_bytes_drop_the_connection() -> None:
    """The bytes past the announced length are not the next answer: that connection is
    closed rather than reused with a stray answer waiting in it."""
    extra = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfour" + b"HTTP/1.1 200 OK\r\n"
    with raw_server(reply(extra), reply(OK)) as server:
        async with client() as upstream:
            assert await get(upstream, f"{server.url}/a") == b"four"
            assert await hung_up(server)
            assert await get(upstream, f"{server.url}/b") == b"ok"
    assert server.connections == 2


async def test_connection_close_is_honoured() -> None:
    close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    with raw_server(reply(close), reply(OK)) as server:
        async with client() as upstream:
            assert await get(upstream, f"{server.url}/a") == b"ok"
            assert await hung_up(server)
            assert await get(upstream, f"{server.url}/b") == b"ok"
    assert server.connections == 2


@pytest.mark.parametrize(
    "answer",
    [
        b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\n',
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found",
    ],
)
async def test_a_body_in_hand_but_never_read_keeps_its_connection(answer: bytes) -> None:
    """An answer whose body (empty, or small) came with its head needs no read for its
    connection to serve the next request."""
    with raw_server(reply(answer), reply(OK)) as server:
        async with client() as upstream:
            async with upstream.stream(f"{server.url}/a") as response:
                assert response.status_code in (304, 404)
            assert await get(upstream, f"{server.url}/b") == b"ok"
    assert server.connections == 1


async def test_an_abandoned_body_closes_its_connection() -> None:
    big = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 1000
    with raw_server(reply(big)) as server:
        async with client() as upstream:
            async with upstream.stream(f"{server.url}/a") as response:
                async for _chunk in response.aiter_raw():
                    break
            assert await hung_up(server)


async def test_a_large_body_comes_in_large_reads() -> None:
    """The body is handed on as the socket delivers it, not in small pieces."""
    size = 8 << 20
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size
    with raw_server(reply(head + b"b" * size)) as server:
        async with client() as upstream, upstream.stream(f"{server.url}/a") as response:
            sizes = [len(chunk) async for chunk in response.aiter_raw()]
    assert sum(sizes) == size
    assert max(sizes) > 64 * 1024
