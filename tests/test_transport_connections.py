"""The download transport's connections: keep-alive reuse, HTTP/1.1 framing (lengths, chunks,
EOF), broken and malformed answers, stalls. Real HTTP on 127.0.0.1."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest
import trio

from sitegen.net import transport as transport_mod
from testkit.transport import FILES, get, peers, raw_reply, upstream_client, write_files
from testkit.upstream import UpstreamHandler, UpstreamServer, drop_connection, truncate

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path: Path, upstream_server_factory) -> UpstreamServer:
    return upstream_server_factory(write_files(tmp_path / "upstream"))


async def test_requests_share_one_kept_alive_connection(server: UpstreamServer) -> None:
    seen = peers(server, [f"/{n}" for n in FILES])
    async with upstream_client() as client:
        for name, data in FILES.items():
            assert await get(client, f"{server.url}/{name}") == data
    assert len(seen) == len(FILES)
    assert len(set(seen)) == 1
    requests = server.wait_for_requests(len(FILES))
    assert {r.header("accept-encoding") for r in requests} == {"identity"}
    assert {r.header("user-agent") for r in requests} == {"test"}


async def test_a_connection_the_server_closed_while_idle_is_not_reused(
    server: UpstreamServer,
) -> None:
    names = list(FILES)

    def serve_then_close(handler: UpstreamHandler) -> None:
        # The response does not announce it: the client pools the connection, then finds
        # it closed before its next request.
        handler.serve_file(handler.url_path)
        handler.wfile.flush()
        handler.connection.shutdown(socket.SHUT_WR)
        handler.close_connection = True

    server.add_fault(f"/{names[0]}", serve_then_close)
    seen = peers(server, [f"/{names[1]}"])
    async with upstream_client() as client:
        assert await get(client, f"{server.url}/{names[0]}") == FILES[names[0]]
        server.wait_for_requests(1)  # logged once the hook returned, after its shutdown
        assert await get(client, f"{server.url}/{names[1]}") == FILES[names[1]]
    assert len(seen) == 1
    assert [r.status for r in server.wait_for_requests(2)] == [200, 200]


@pytest.mark.parametrize("times", [1, None], ids=["once", "always"])
async def test_a_reused_connection_closed_unanswered_is_asked_again_once(
    server: UpstreamServer, times: int | None
) -> None:
    """The keep-alive race: the server drops a reused connection as the request arrives,
    however briefly it sat idle. The request is sent once more, on a fresh connection; a drop
    there is the server's answer (and the download's retries decide)."""
    server.add_fault("/f2.bin", drop_connection(), times=times)
    seen = peers(server, ["/f1.bin"])
    async with upstream_client() as client:
        assert await get(client, f"{server.url}/f1.bin") == FILES["f1.bin"]
        server.wait_for_requests(1)
        if times:
            assert await get(client, f"{server.url}/f2.bin") == FILES["f2.bin"]
        else:
            with pytest.raises(httpx.RemoteProtocolError):
                await get(client, f"{server.url}/f2.bin")
        assert await get(client, f"{server.url}/f1.bin") == FILES["f1.bin"]
    expected = [200, 0, 200, 200] if times else [200, 0, 0, 200]
    assert [r.status for r in server.wait_for_requests(len(expected))] == expected
    assert len(set(seen)) == 2  # the dropped connection served nothing more


async def test_a_fresh_connection_closed_unanswered_is_not_asked_again(
    server: UpstreamServer,
) -> None:
    server.add_fault("/f2.bin", drop_connection())
    async with upstream_client() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await get(client, f"{server.url}/f2.bin")
    assert [r.status for r in server.wait_for_requests(2, timeout=1)] == [0]


async def test_a_body_cut_short_is_an_error_not_an_end(server: UpstreamServer) -> None:
    name = list(FILES)[3]
    server.add_fault(f"/{name}", truncate(5000))
    async with upstream_client() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await get(client, f"{server.url}/{name}")


CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;ext=1\r\nhello\r\n1A\r\n" + b"x" * 26 + b"\r\n0\r\nTrailer: yes\r\n\r\n"
)


async def connections_for(server: UpstreamServer, reply: bytes) -> int:
    """GET an answer of CHUNKED's body given as ``reply`` (the server keeps the connection
    open), then a file: how many connections the two took."""
    seen = peers(server, ["/f1.bin"])

    def answer(handler: UpstreamHandler) -> None:
        seen.append(handler.client_address)
        raw_reply(reply, close=False)(handler)

    server.add_fault("/raw.bin", answer)
    async with upstream_client() as client:
        assert await get(client, f"{server.url}/raw.bin") == b"hello" + b"x" * 26
        assert await get(client, f"{server.url}/f1.bin") == FILES["f1.bin"]
    assert len(seen) == 2
    return len(set(seen))


async def test_a_chunked_body_is_decoded_and_its_connection_reused(
    server: UpstreamServer,
) -> None:
    assert await connections_for(server, CHUNKED) == 1


@pytest.mark.parametrize(
    "reply",
    [
        CHUNKED[: len(CHUNKED) - 30],  # cut inside the chunks
        CHUNKED.replace(b"1A\r\n", b"zz\r\n"),  # a chunk size that is no number
        CHUNKED.replace(b"1A\r\n", b"-1A\r\n"),
        CHUNKED.replace(b"chunked", b"chunked, chunked"),
        CHUNKED.replace(b"1A\r\n", b"0x1A\r\n"),
        CHUNKED.replace(b"hello\r\n", b"hello!!\r\n"),  # more data than the chunk size
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nContent-Length: 11\r\n\r\n0123456789",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"ICY 200 OK\r\n\r\n",  # not HTTP
        b"HTTP/1.1 200 OK\r\nX: " + b"y" * 70_000 + b"\r\n\r\n",  # head too long
        b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
        b"",  # closed without a word
    ],
)
async def test_a_malformed_answer_is_a_protocol_error(server: UpstreamServer, reply: bytes) -> None:
    server.add_fault("/bad.bin", raw_reply(reply))
    async with upstream_client() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await get(client, f"{server.url}/bad.bin")


async def test_a_body_without_length_ends_with_its_connection(server: UpstreamServer) -> None:
    body = b"until the end" * 1000
    server.add_fault("/eof.bin", raw_reply(b"HTTP/1.0 200 OK\r\n\r\n" + body))
    seen = peers(server, ["/f1.bin", "/f2.bin"])
    async with upstream_client() as client:
        assert await get(client, f"{server.url}/eof.bin") == body
        assert await get(client, f"{server.url}/f1.bin") == FILES["f1.bin"]
        assert await get(client, f"{server.url}/f2.bin") == FILES["f2.bin"]
    assert len(set(seen)) == 1  # a new connection after the EOF one, then kept alive


async def test_a_folded_header_is_unfolded(server: UpstreamServer) -> None:
    reply = b"HTTP/1.1 200 OK\r\nX-Note: one\r\n\ttwo\r\nContent-Length: 2\r\n\r\nok"
    server.add_fault("/folded.bin", raw_reply(reply))
    async with upstream_client() as client, client.stream(f"{server.url}/folded.bin") as response:
        assert response.headers["x-note"] == "one two"
        assert await response.aread() == b"ok"


async def test_both_framings_at_once_use_the_connection_once(server: UpstreamServer) -> None:
    reply = CHUNKED.replace(b"\r\n\r\n", b"\r\nContent-Length: 3\r\n\r\n", 1)
    assert await connections_for(server, reply) == 2


async def test_idle_connections_expire(
    server: UpstreamServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = peers(server, ["/f1.bin", "/f2.bin"])
    monkeypatch.setattr(transport_mod, "IDLE_SECONDS", -1.0)
    async with upstream_client() as client:
        assert await get(client, f"{server.url}/f1.bin") == FILES["f1.bin"]
        assert await get(client, f"{server.url}/f2.bin") == FILES["f2.bin"]
    assert len(set(seen)) == 2


async def test_informational_answers_are_skipped(server: UpstreamServer) -> None:
    reply = b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 200 OK\r\n"
    server.add_fault("/hinted.bin", raw_reply(reply + b"Content-Length: 2\r\n\r\nok"))
    async with upstream_client() as client:
        assert await get(client, f"{server.url}/hinted.bin") == b"ok"


async def test_a_stalled_body_times_out(server: UpstreamServer) -> None:
    def stall(handler: UpstreamHandler) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
        handler.wfile.flush()
        time.sleep(3)
        handler.close_connection = True

    server.add_fault("/stall.bin", stall)
    async with upstream_client(timeout=0.5) as client:
        with trio.fail_after(10), pytest.raises(httpx.ReadTimeout):
            await get(client, f"{server.url}/stall.bin")
