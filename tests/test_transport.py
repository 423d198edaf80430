"""The download transport: keep-alive reuse, HTTP/1.1 framing (lengths, chunks, EOF), broken
and malformed peers, timeouts, redirects, credentials, cancellation, byte ranges, proxies from
the environment, TLS. Real HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import json
import logging
import os
import shutil
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import trio
import trio.testing
import zstandard

from sitegen.cli import main
from sitegen.conda.records import Record
from sitegen.config import DownloadSettings, MirrorConfig
from sitegen.net import download_http, zstd_body
from sitegen.net import failures as failures_mod
from sitegen.net import transport as transport_mod
from sitegen.net import upstream as upstream_mod
from sitegen.net.client import UpstreamClient, credentials_go_to, open_client
from sitegen.net.download import download
from sitegen.net.download_job import DownloadJob, DownloadResult
from sitegen.net.transport import EventLoopTransport
from sitegen.net.upstream import Upstream, UpstreamError, make_client
from sitegen.store.site import TEMP_PREFIX, PendingFile, Site
from sitegen.store.writer import open_disk_writer
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import example_packages, write_channel
from testkit.faults import hang, inflating, redirect, slow_drip
from testkit.require import require_tool
from testkit.site import assert_channel_consistent, rewrite_repodata, site_config
from testkit.upstream import (
    FaultHook,
    UpstreamHandler,
    UpstreamServer,
    drop_connection,
    respond,
    truncate,
)

pytestmark = pytest.mark.integration

FILES = {f"f{i}.bin": bytes([i]) * (1000 + 100_000 * i) for i in range(6)}


@pytest.fixture
def server(tmp_path: Path, upstream_server_factory) -> UpstreamServer:
    root = tmp_path / "upstream"
    root.mkdir()
    for name, data in FILES.items():
        (root / name).write_bytes(data)
    return upstream_server_factory(root)


def peers(server: UpstreamServer, paths: list[str]) -> list[tuple[str, int]]:
    """Serve ``paths`` normally while recording the client address of each request."""
    seen: list[tuple[str, int]] = []

    def record(handler: UpstreamHandler) -> bool:
        seen.append(handler.client_address)
        return False  # then serve the file

    for path in paths:
        server.add_fault(path, record)
    return seen


@contextlib.asynccontextmanager
async def upstream_client(
    verify: bool = True, timeout: float = 10
) -> AsyncIterator[UpstreamClient]:
    client = UpstreamClient(
        EventLoopTransport(verify=verify), user_agent="test", timeout=httpx.Timeout(timeout)
    )
    try:
        yield client
    finally:
        await client.aclose()


async def get(client: UpstreamClient, url: str, headers: dict[str, str] | None = None) -> bytes:
    async with client.stream(url, headers) as response:
        assert response.status_code == 200, response.status_code
        return b"".join([chunk async for chunk in response.aiter_raw()])


def raw_reply(data: bytes, close: bool = True) -> FaultHook:
    """Answer with exactly these bytes (head and body as given)."""

    def hook(handler: UpstreamHandler) -> None:
        handler.wfile.write(data)
        handler.wfile.flush()
        handler.close_connection = close

    return hook


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


async def test_redirects_are_followed(server: UpstreamServer) -> None:
    name = list(FILES)[2]
    seen = peers(server, [f"/{name}"])

    def moved(handler: UpstreamHandler) -> None:
        seen.append(handler.client_address)
        redirect(f"/{name}", 301)(handler)

    server.add_fault("/elsewhere.bin", moved)
    async with upstream_client() as client:
        assert await get(client, f"{server.url}/elsewhere.bin") == FILES[name]
    assert [r.status for r in server.wait_for_requests(2)] == [301, 200]
    assert len(seen) == 2 and len(set(seen)) == 1  # the redirect's connection was reused


@pytest.mark.parametrize(
    "head",
    [
        b"Content-Length: 0\r\nContent-Length: 0",  # the same length twice: still one length
        b"Content-Length: 0, 0",
    ],
)
async def test_a_redirect_with_a_repeated_length_is_followed(
    server: UpstreamServer, head: bytes
) -> None:
    reply = b"HTTP/1.1 302 Found\r\nLocation: /f1.bin\r\n" + head + b"\r\n\r\n"
    server.add_fault("/moved.bin", raw_reply(reply, close=False))
    async with upstream_client() as client:
        assert await get(client, f"{server.url}/moved.bin") == FILES["f1.bin"]


async def test_a_large_redirect_body_is_not_read(server: UpstreamServer) -> None:
    chunk = b"z" * 100_000
    body = b"%x\r\n%s\r\n" % (len(chunk), chunk) * 5 + b"0\r\n\r\n"
    head = b"HTTP/1.1 302 Found\r\nLocation: /f1.bin\r\nTransfer-Encoding: chunked\r\n"
    seen = peers(server, ["/f1.bin"])

    def moved(handler: UpstreamHandler) -> None:
        seen.append(handler.client_address)
        raw_reply(head + b"\r\n" + body, close=False)(handler)

    server.add_fault("/moved.bin", moved)
    async with upstream_client() as client:
        assert await get(client, f"{server.url}/moved.bin") == FILES["f1.bin"]
    assert len(set(seen)) == 2  # given up after 64 KiB: a new connection for the target


@pytest.mark.parametrize(
    "location",
    ["http://[::1/x", "http://h:abc/x", "http://xn--/x"],
    ids=["unclosed bracket", "port", "malformed A-label"],
)
async def test_a_redirect_to_an_invalid_url_is_a_protocol_error(
    server: UpstreamServer, location: str
) -> None:
    server.add_fault("/bad.bin", redirect(location, 302))
    async with upstream_client() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await get(client, f"{server.url}/bad.bin")


async def test_a_bad_redirect_fails_the_download_not_the_run(
    server: UpstreamServer, tmp_path: Path
) -> None:
    # A name no resolver can encode: refused before any DNS query leaves the machine.
    server.add_fault("/gone-1-0.conda", redirect("http://a..b/gone-1-0.conda", 302))
    site = Site(tmp_path / "site")
    target = site.path("linux-64", "gone-1-0.conda")
    async with upstream_at(server) as upstream, open_disk_writer() as writer:
        job = job_at(upstream, record_for(target.name, b"x" * 10), target)
        result = await download(job, site, writer, retries=3)
    assert not result.ok
    assert result.error.startswith("gone-1-0.conda: not a valid host name: ")
    assert len(server.wait_for_requests(1)) == 1  # not asked again: no retry reaches it


# Host names no resolver looks up and TLS refuses as a server name.
ODD_HOSTS = {
    "leading dot": ".example",
    "two dots at the end": "mirror.example..",
    "empty label": "mirror..example",
    "label over 63": "x" * 64 + ".example",
    "name over 253": ".".join(["x" * 50] * 6),
}


async def test_repodata_from_a_malformed_host_fails_at_once_without_retries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No request can reach such a host: the retries (and their waits) would change nothing."""
    settings = DownloadSettings(concurrency=1, per_host=1, retries=3, timeout=10)
    url = f"http://{ODD_HOSTS['empty label']}/conda"
    mirror = MirrorConfig(name="odd", url=url, subdirs=("linux-64",))
    client = make_client(settings)
    try:
        upstream = Upstream(mirror, client, settings, trio.CapacityLimiter(1))
        with (
            caplog.at_level(logging.WARNING, logger="sitegen"),
            pytest.raises(UpstreamError, match="not a valid host name"),
        ):
            await upstream.fetch_repodata("linux-64", None)
    finally:
        await client.aclose()
    assert "attempt" not in caplog.text


@pytest.fixture
def connect_proxy() -> Iterator[tuple[str, list[bytes]]]:
    """A proxy that takes every CONNECT, as one that looks names up itself would, then hangs
    up: (its URL, the request lines it was sent)."""
    asked: list[bytes] = []

    class Tunnel(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            asked.append(self.rfile.readline().strip())
            while self.rfile.readline() not in (b"\r\n", b""):
                pass
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self.wfile.flush()
            self.request.recv(1 << 16)

    proxy = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Tunnel)
    proxy.daemon_threads = True
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{proxy.server_address[1]}", asked
    finally:
        proxy.shutdown()
        proxy.server_close()


def proxy_environment(monkeypatch: pytest.MonkeyPatch, https_proxy: str) -> None:
    """https through ``https_proxy`` (a CONNECT tunnel, TLS set up by the client), http
    direct, 127.0.0.1 never proxied: httpx's own client carries every request."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", https_proxy)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")


@pytest.mark.parametrize("host", list(ODD_HOSTS.values()), ids=list(ODD_HOSTS))
@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("proxied", [False, True], ids=["event loop", "httpx behind a proxy"])
async def test_a_redirect_to_a_malformed_host_name_fails_that_request(
    server: UpstreamServer,
    tls_server: UpstreamServer,
    connect_proxy: tuple[str, list[bytes]],
    monkeypatch: pytest.MonkeyPatch,
    host: str,
    scheme: str,
    proxied: bool,
) -> None:
    """A transport error in plain words, whichever client carries the request: left to the
    name's lookup (http) or the TLS setup (https: the server name), the name was refused with
    a ValueError, UnicodeError or ssl.SSLError that httpx's own client let through as it was,
    past the code that catches transport errors."""
    origin = tls_server if scheme == "https" else server
    origin.add_fault("/away.bin", redirect(f"{scheme}://{host}/x.bin", 302))
    if proxied:
        proxy_environment(monkeypatch, connect_proxy[0])
    client = open_client(httpx.Timeout(10), "test", verify=False)
    assert isinstance(client.transport, EventLoopTransport) is not proxied
    try:
        with pytest.raises(httpx.RequestError) as failed:
            await get(client, f"{origin.url}/away.bin")
    finally:
        await client.aclose()
    assert failures_mod.describe_error(failed.value).startswith("not a valid host name: ")
    assert connect_proxy[1] == []  # the name never left the machine


@pytest.mark.parametrize("proxied", [False, True], ids=["event loop", "httpx behind a proxy"])
def test_malformed_host_names_fail_their_files_and_mirrors_not_the_run(
    tmp_path: Path,
    upstream_server_factory,
    connect_proxy: tuple[str, list[bytes]],
    monkeypatch: pytest.MonkeyPatch,
    proxied: bool,
) -> None:
    """``sitegen mirror`` where a package file redirects to such a host and a subdir's CEP-15
    base_url names one: those files and that subdir fail, saying why; every other file and
    mirror is published. (A mirror's own URL with such a host is a configuration error.)"""
    packages = example_packages(seed=0)
    documents = write_channel(tmp_path / "up", packages, zst=True)
    server = upstream_server_factory(tmp_path / "up")
    moved = sorted(documents["linux-64"]["packages.conda"])[0]
    server.add_fault(f"/linux-64/{moved}", redirect(f"http://{ODD_HOSTS['empty label']}/x"))
    write_channel(tmp_path / "cdn", packages, zst=True)
    odd_base = f"https://{ODD_HOSTS['label over 63']}/pkgs"
    rewrite_repodata(
        tmp_path / "cdn", "linux-64", lambda document: document["info"].update(base_url=odd_base)
    )
    cdn = upstream_server_factory(tmp_path / "cdn")
    other = upstream_server_factory(tmp_path / "up")
    if proxied:
        proxy_environment(monkeypatch, connect_proxy[0])
    site = tmp_path / "site"
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {site}\n"
        "download: {concurrency: 8, per_host: 8, retries: 0, timeout: 10}\n"
        "channels:\n"
        f"  one/redirects: {{url: '{server.url}', subdirs: [linux-64]}}\n"
        f"  two/base-url: {{url: '{cdn.url}', subdirs: [linux-64]}}\n"
        f"  four/good: {{url: '{other.url}', subdirs: [linux-64]}}\n"
    )
    assert main(["mirror", "-c", str(config), "--no-progress"]) == 1
    (run,) = (site / "history" / "runs").glob("*.json")
    record = json.loads(run.read_bytes())
    errors = {(c["channel"], c["subdir"]): c["errors"] for c in record["channels"] if c["errors"]}
    why = "not a valid host name: "
    assert set(errors) == {
        ("one/redirects", "linux-64"),
        ("two/base-url", "linux-64"),
    }, errors
    assert len(errors["one/redirects", "linux-64"]) == 1
    assert errors["one/redirects", "linux-64"][0].startswith(f"linux-64/{moved}: {why}")
    assert all(why in error for error in errors["two/base-url", "linux-64"])
    assert [m["channel"] for m in record["mirrors"] if m["errors"]] == []

    def published(channel: str, subdir: str) -> set[str]:
        document = assert_channel_consistent(site, channel)[subdir]
        return {*document["packages"], *document["packages.conda"]}

    def upstream(subdir: str) -> set[str]:
        return {*documents[subdir]["packages"], *documents[subdir]["packages.conda"]}

    assert published("four/good", "linux-64") == upstream("linux-64")
    assert published("one/redirects", "linux-64") == upstream("linux-64") - {moved}
    assert published("two/base-url", "noarch") == upstream("noarch")
    assert connect_proxy[1] == []


async def test_endless_redirects_end(server: UpstreamServer) -> None:
    server.add_fault("/loop.bin", redirect("/loop.bin", 302))
    async with upstream_client() as client:
        with pytest.raises(httpx.TooManyRedirects):
            await get(client, f"{server.url}/loop.bin")
    assert len(server.wait_for_requests(11)) == 11


async def test_credentials_in_the_url_go_to_their_origin_only(
    server: UpstreamServer, tmp_path: Path, upstream_server_factory
) -> None:
    other_root = tmp_path / "other"
    other_root.mkdir()
    (other_root / "moved.bin").write_bytes(b"moved")
    other = upstream_server_factory(other_root)
    name = list(FILES)[1]
    server.add_fault("/away.bin", redirect(f"{other.url}/moved.bin", 302))
    base = server.url.replace("http://", "http://user:p%40ss@")
    async with upstream_client() as client:
        assert await get(client, f"{base}/{name}") == FILES[name]
        assert await get(client, f"{base}/away.bin") == b"moved"
    expected = "Basic " + base64.b64encode(b"user:p@ss").decode()
    assert [r.header("authorization") for r in server.wait_for_requests(2)] == [expected] * 2
    assert [r.header("authorization") for r in other.wait_for_requests(1)] == [None]


@pytest.mark.parametrize(
    ("origin", "target", "sent"),
    [
        ("http://mirror.example/a", "http://mirror.example/b", True),
        ("http://mirror.example/a", "https://mirror.example/b", True),  # made secure
        ("http://mirror.example:80/a", "https://mirror.example:443/b", True),
        ("https://mirror.example/a", "http://mirror.example/b", False),  # made plain
        ("http://mirror.example:8080/a", "https://mirror.example/b", False),  # another server
        ("http://mirror.example/a", "https://mirror.example:8443/b", False),
        ("http://mirror.example/a", "https://cdn.example/b", False),
        ("https://mirror.example/a", "https://mirror.example.evil/b", False),
    ],
)
def test_credentials_follow_a_redirect_to_their_own_host_made_secure_only(
    origin: str, target: str, sent: bool
) -> None:
    """An upstream given as http:// that sends everyone to https:// on the same host keeps
    its credentials; every other change of scheme, host or port drops them."""
    first = httpx.URL(origin)
    assert credentials_go_to(httpx.URL(target), (first.scheme, first.host, first.port)) is sent


@contextlib.asynccontextmanager
async def upstream_at(server: UpstreamServer, timeout: float = 60) -> AsyncIterator[Upstream]:
    """An Upstream for the server; jobs made by :func:`job_at` fetch files from its root."""
    settings = DownloadSettings(concurrency=8, per_host=8, retries=0, timeout=timeout)
    mirror = MirrorConfig(name="up", url=server.url, subdirs=("linux-64",))
    client = make_client(settings)
    try:
        upstream = Upstream(mirror, client, settings, trio.CapacityLimiter(8))
        yield upstream
    finally:
        await client.aclose()


def job_at(upstream: Upstream, record: Record, target: Path, durable: bool = False) -> DownloadJob:
    """A download of a file at the upstream's root (a CEP-15 base_url naming the root)."""
    return DownloadJob(upstream, record, target, durable=durable, base_url=upstream.base)


def record_for(fn: str, data: bytes) -> Record:
    name, version, build = fn.removesuffix(".conda").rsplit("-", 2)
    raw = {"name": name, "version": version, "build": build, "size": len(data)}
    return Record(fn=fn, subdir="linux-64", raw={**raw, "sha256": hashlib.sha256(data).hexdigest()})


def temporaries(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.name.startswith(TEMP_PREFIX)]


async def test_a_cancelled_download_stops_at_once_and_leaves_nothing(
    server: UpstreamServer, tmp_path: Path
) -> None:
    server.add_fault("/stuck-1-0.conda", hang(max_seconds=60))
    site = Site(tmp_path / "site")
    target = site.path("linux-64", "stuck-1-0.conda")
    async with upstream_at(server) as upstream, open_disk_writer() as writer:
        # The read timeout is 60 s: only the cancellation can end the read sooner.
        with trio.fail_after(20), trio.move_on_after(0.5) as scope:
            job = job_at(upstream, record_for(target.name, b"x" * 10), target)
            await download(job, site, writer, retries=0)
    assert scope.cancelled_caught
    assert os.listdir(target.parent) == []


@pytest.mark.parametrize("durable", [False, True])
async def test_a_slow_disk_after_the_last_byte_is_not_a_timeout(
    server: UpstreamServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durable: bool
) -> None:
    """The deadline is for the transfer: naming a verified file may take longer without the
    download failing, or being fetched again."""
    fn, data = "slow-1.0-0.conda", b"s" * 5000
    (server.root / fn).write_bytes(data)
    set_at: list[float] = []

    def deadline(upstream: object, size: int) -> float:
        set_at.append(time.monotonic())
        return 1.0  # ample for 5,000 bytes over loopback

    monkeypatch.setattr(download_http, "deadline", deadline)
    real_commit = PendingFile.commit

    def slow_commit(self: PendingFile, durable: bool = False) -> None:
        time.sleep(max(0.0, set_at[-1] + 1.3 - time.monotonic()))  # outlast the deadline
        real_commit(self, durable)

    monkeypatch.setattr(PendingFile, "commit", slow_commit)
    site = Site(tmp_path / "site")
    target = site.path("linux-64", fn)
    async with upstream_at(server) as upstream, open_disk_writer() as writer:
        job = job_at(upstream, record_for(fn, data), target, durable=durable)
        result = await download(job, site, writer, retries=1)
    assert result.ok, result.error
    assert target.read_bytes() == data
    assert [r.path for r in server.requests] == [f"/{fn}"]


async def test_a_durable_commit_does_not_hold_up_other_files(
    server: UpstreamServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file flushed before it is named (pull-through, repair) is flushed off the disk
    worker: other files' bytes do not wait behind a slow flush."""
    files = {"a-1.0-0.conda": b"a" * 3000, "b-1.0-0.conda": b"b" * 3000}
    for fn, data in files.items():
        (server.root / fn).write_bytes(data)
    entered, release = threading.Event(), threading.Event()
    order: list[str] = []
    real_flush = PendingFile.flush

    def gated_flush(self: PendingFile) -> None:
        entered.set()
        release.wait(10)
        order.append("durable file flushed")
        real_flush(self)

    monkeypatch.setattr(PendingFile, "flush", gated_flush)
    site = Site(tmp_path / "site")
    (a, a_data), (b, b_data) = files.items()
    async with (
        upstream_at(server) as upstream,
        open_disk_writer(workers=1) as writer,
        trio.open_nursery() as nursery,
    ):

        async def durable() -> None:
            job = job_at(upstream, record_for(a, a_data), site.path("linux-64", a), durable=True)
            assert (await download(job, site, writer, retries=0)).ok

        nursery.start_soon(durable)
        await trio.to_thread.run_sync(entered.wait, 10)
        job = job_at(upstream, record_for(b, b_data), site.path("linux-64", b))
        assert (await download(job, site, writer, retries=0)).ok
        order.append("other file named")
        release.set()
    assert order == ["other file named", "durable file flushed"]


# Three reads of the transport and more: every step of the bounded decoding is taken.
TRANSIT_DOCUMENT = b"".join(b'"pkg-%d": {"size": %d},' % (i, i * 7) for i in range(120_000))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def transit_encoded(encoding: str) -> bytes:
    if encoding == "deflate (raw)":
        packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        return packer.compress(TRANSIT_DOCUMENT) + packer.flush()
    if encoding == "deflate":
        return zlib.compress(TRANSIT_DOCUMENT)
    if encoding == "gzip (members)":
        return gzip_members(TRANSIT_DOCUMENT)
    return gzip.compress(TRANSIT_DOCUMENT)


def gzip_members(data: bytes) -> bytes:
    """``data`` as three gzip members one after another (RFC 1952 allows it; concatenated .gz
    files, or a server compressing a body piece by piece, send it so)."""
    third = len(data) // 3
    return b"".join(gzip.compress(data[i : i + third]) for i in range(0, len(data), third))


@pytest.mark.parametrize(
    "encoding", ["gzip", "x-gzip", "deflate", "deflate (raw)", "gzip (members)"]
)
async def test_repodata_may_come_compressed_in_transit(
    server: UpstreamServer, encoding: str
) -> None:
    """Package files are asked for as they are (identity); a plain repodata.json may come
    gzip- or deflate-encoded (the zlib format or bare deflate), and is decoded."""

    def compressed(handler: UpstreamHandler) -> None:
        if "gzip" not in handler.headers.get("Accept-Encoding", ""):
            handler.respond(406)
            return
        coding = encoding.removesuffix(" (raw)").removesuffix(" (members)")
        handler.respond(200, transit_encoded(encoding), {"Content-Encoding": coding})

    server.add_fault("/linux-64/repodata.json.zst", respond(404))
    server.add_fault("/linux-64/repodata.json", compressed)
    async with upstream_at(server) as upstream:
        response = await upstream.fetch_repodata("linux-64", None)
    # (digests: a diff of megabytes would take pytest minutes to show)
    assert sha256(response.body or b"") == sha256(TRANSIT_DOCUMENT)
    assert [r.status for r in server.wait_for_requests(2)] == [404, 200]


@pytest.mark.parametrize("fault", ["cut short", "data past its end", "not gzip"])
async def test_repodata_that_does_not_decode_from_transit_fails(
    server: UpstreamServer, fault: str
) -> None:
    body = gzip.compress(TRANSIT_DOCUMENT)
    body = {
        "cut short": body[: len(body) // 2],
        "data past its end": body + b"<html>",
        "not gzip": TRANSIT_DOCUMENT,
    }[fault]
    server.add_fault("/linux-64/repodata.json.zst", respond(404))
    server.add_fault("/linux-64/repodata.json", respond(200, body, {"Content-Encoding": "gzip"}))
    async with upstream_at(server) as upstream:
        with pytest.raises(UpstreamError, match="DecodingError after 1 attempts"):
            await upstream.fetch_repodata("linux-64", None)


# What the two scripts below (each run in a process of its own, so that a decoding loop that
# never ends cannot hang the suite) start with: a response body arriving in given chunks.
CHUNKED_BODY = """
import gzip, hashlib, sys, httpx, trio
from sitegen.net.transit import decoded_body

class Chunks(httpx.AsyncByteStream):
    def __init__(self, chunks):
        self.chunks = chunks

    async def __aiter__(self):
        for chunk in self.chunks:
            yield chunk
"""

PAST_THE_END = (
    CHUNKED_BODY
    + """
async def main(read):
    body = gzip.compress(b"".join(b'"pkg-%d": {},' % i for i in range(120_000))) + b"<html>"
    chunks = [body[i : i + read] for i in range(0, len(body), read)]
    response = httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=Chunks(chunks))
    try:
        async for _ in decoded_body(response, "repodata.json"):
            pass
    except httpx.DecodingError as exc:
        print(exc)

trio.run(main, int(sys.argv[1]))
"""
)


MEMBERS = (
    CHUNKED_BODY
    + """
async def main(read):
    data = b"".join(b'"pkg-%d": {},' % i for i in range(120_000))
    body = gzip.compress(data[:700_000]) + gzip.compress(b"") + gzip.compress(data[700_000:])
    chunks = [body[i : i + read] for i in range(0, len(body), read)]
    response = httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=Chunks(chunks))
    decoded = hashlib.sha256()
    async for piece in decoded_body(response, "repodata.json"):
        decoded.update(piece)
    print(decoded.hexdigest() == hashlib.sha256(data).hexdigest())

trio.run(main, int(sys.argv[1]))
"""
)


@pytest.mark.parametrize("read", [1 << 20, 4096, 1])
def test_gzip_members_one_after_another_decode_to_their_contents_however_they_arrive(
    read: int,
) -> None:
    """A member may end anywhere in a read, or at its end; an empty one counts too."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", MEMBERS, str(read)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the decoding went round without end")
    assert done.stdout.strip() == "True", done.stderr[-2000:]


@pytest.mark.parametrize("read", [1 << 20, 4096, 1])
def test_bytes_past_the_end_of_a_compressed_body_are_refused_however_they_arrive(
    read: int,
) -> None:
    """Whether the bytes after the end come in the read that ends the stream (zlib then hands
    them back as input still to take when asked for a bounded step) or in a later one."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", PAST_THE_END, str(read)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the decoding went round without end")
    assert "gzip data goes on past its end" in done.stdout, done.stderr[-2000:]


async def test_an_unchanged_answer_naming_a_coding_is_unchanged(server: UpstreamServer) -> None:
    """A 304 has no body to decode, whatever Content-Encoding it names."""
    server.add_fault("/linux-64/repodata.json", respond(304, b"", {"Content-Encoding": "zstd"}))
    previous = upstream_mod.CacheValidators("repodata.json", etag='"1"')
    async with upstream_at(server) as upstream:
        response = await upstream.fetch_repodata("linux-64", previous)
    assert not response.changed and response.validators.etag == '"1"'


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
async def test_an_endless_repodata_body_is_refused(
    server: UpstreamServer, monkeypatch: pytest.MonkeyPatch, encoding: str
) -> None:
    """No more than a repodata.json may be is held in memory, counted after the transfer
    compression is undone (a gzip bomb included)."""
    monkeypatch.setattr(upstream_mod, "MAX_REPODATA_BYTES", 100_000)
    body = b" " * 200_000
    if encoding == "gzip":
        body = gzip.compress(body)  # ~200 bytes on the wire
    server.add_fault("/linux-64/repodata.json.zst", respond(404))
    server.add_fault("/linux-64/repodata.json", respond(200, body, {"Content-Encoding": encoding}))
    async with upstream_at(server) as upstream:
        with pytest.raises(UpstreamError, match="more than 100000 bytes"):
            await upstream.fetch_repodata("linux-64", None)


@pytest.mark.parametrize(
    ("encoding", "refusal"),
    [
        ("gzip", "more than 1048576 bytes"),
        ("deflate", "more than 1048576 bytes"),
        ("zstd", "compressed in transit as 'zstd', which sitegen does not accept"),
        ("gzip, gzip", "compressed in transit as 'gzip, gzip', which sitegen does not accept"),
    ],
)
async def test_a_transit_compression_bomb_costs_no_more_than_the_cap(
    server: UpstreamServer, monkeypatch: pytest.MonkeyPatch, encoding: str, refusal: str
) -> None:
    """No read of a compressed body is decoded whole (one of 256 KiB may hold 64 MiB of gzip,
    or gigabytes of zstd): gzip and deflate are inflated a step at a time and stopped at the
    cap; codings sitegen does not ask for (zstd; gzip over gzip, whose layers would be undone
    at once) are refused before anything is decoded."""
    cap = 1 << 20
    monkeypatch.setattr(upstream_mod, "MAX_REPODATA_BYTES", cap)
    server.add_fault("/linux-64/repodata.json.zst", respond(404))
    server.add_fault("/linux-64/repodata.json", inflating(encoding, 64 << 20))
    tracemalloc.start()
    try:
        async with upstream_at(server) as upstream:
            with pytest.raises(UpstreamError, match=refusal):
                await upstream.fetch_repodata("linux-64", None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * cap, f"{peak >> 20} MiB held for a cap of {cap >> 20} MiB"


async def test_a_large_repodata_coming_steadily_is_not_cut_off(
    server: UpstreamServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A repodata.json that takes longer than four timeouts on a slow link, its bytes coming
    at more than the minimum rate, is read whole: its deadline grows with what arrives, as
    a package file's does."""
    monkeypatch.setattr(failures_mod, "MIN_RATE", 1024)  # the drip below is ~40 KiB/s
    document = bytes(range(256)) * 480  # 120 KiB in 60 pieces over three seconds

    def steady(handler: UpstreamHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(document)))
        handler.end_headers()
        for start in range(0, len(document), 2048):
            handler.wfile.write(document[start : start + 2048])
            handler.wfile.flush()
            time.sleep(0.05)

    server.add_fault("/linux-64/repodata.json", steady)
    settings = DownloadSettings(retries=0, timeout=0.5)  # four timeouts: two seconds
    mirror = MirrorConfig(name="up", url=server.url, subdirs=("linux-64",))
    client = make_client(settings)
    try:
        upstream = Upstream(mirror, client, settings, trio.CapacityLimiter(1))
        answer = await upstream.request(f"{server.url}/linux-64/repodata.json", {})
    finally:
        await client.aclose()
    assert answer.status == 200 and answer.body == document


DECODE_IN_LITTLE_MEMORY = """
import resource, sys, zstandard
from sitegen.net.zstd_body import decode_body
vm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize:"))
limit = vm * 1024 + (1 << 30)  # 1 GiB more address space than this process holds now
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
document = b'{"info": {}, "packages": {}}' + b" " * 300_000
body = zstandard.ZstdCompressor().compress(document)
assert decode_body("repodata.json.zst", body) == document
print("decoded")
"""


def test_a_repodata_zst_is_decoded_without_reserving_its_size_cap() -> None:
    """Decoding takes memory as the JSON needs it: no buffer of the 4 GiB cap up front, which
    a host with less memory (or an address-space limit) cannot give."""
    done = subprocess.run(
        [sys.executable, "-c", DECODE_IN_LITTLE_MEMORY], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "decoded", done.stderr[-2000:]


@pytest.mark.parametrize("pieces", [1, 3])
def test_a_repodata_zst_beyond_the_cap_is_refused(
    monkeypatch: pytest.MonkeyPatch, pieces: int
) -> None:
    monkeypatch.setattr(zstd_body, "MAX_REPODATA_BYTES", 100_000)
    monkeypatch.setattr(zstd_body, "DECODE_PIECE", 100_000 // pieces)
    body = zstandard.ZstdCompressor().compress(b" " * 100_001)
    with pytest.raises(UpstreamError, match="decompresses to more than 100000 bytes"):
        zstd_body.decode_body("repodata.json.zst", body)
    exact = zstandard.ZstdCompressor().compress(b" " * 100_000)
    assert zstd_body.decode_body("repodata.json.zst", exact) == b" " * 100_000


def test_a_repodata_zst_of_one_frame_is_decoded_into_one_buffer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A body that is one frame stating its size (zstd's default) is decoded straight into a
    buffer of that size: not in pieces joined afterwards, which held about twice the JSON."""
    monkeypatch.setattr(zstd_body, "DECODE_PIECE", 1 << 20)
    document = b'{"info": {}, "packages": {}, "x": "' + bytes(range(97, 123)) * 320_000 + b'"}'
    body = zstandard.ZstdCompressor().compress(document)
    tracemalloc.start()
    try:
        decoded = zstd_body.decode_body("repodata.json.zst", body)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert decoded == document
    assert peak < 1.25 * len(document), f"{peak} bytes held for {len(document)}"
    # Several frames, or none stating its size, are decoded piece by piece as before.
    unsized = zstandard.ZstdCompressor(write_content_size=False).compress(document)
    assert zstd_body.decode_body("repodata.json.zst", unsized) == document
    assert zstd_body.decode_body("repodata.json.zst", body + body) == document + document


# --------------------------------------------------------------------------- split downloads

BIG = bytes(range(256)) * 1200  # 307,200 bytes: four parts of 64 KiB parts at most


def serve_ranges(
    corrupt_at: int | None = None, content_range: str | None = None, length: str | None = None
):
    """Answer Range requests with 206 (the test server itself ignores Range); ``length``: the
    complete length the Content-Range states (default: the file's)."""

    def hook(handler: UpstreamHandler) -> bool | None:
        target = handler.resolve(handler.url_path)
        wanted = handler.headers.get("Range")
        if target is None or not wanted:
            return False
        data = target.read_bytes()
        first, last = (int(x) for x in wanted.removeprefix("bytes=").split("-"))
        body = bytearray(data[first : last + 1])
        if corrupt_at is not None and first <= corrupt_at <= last:
            body[corrupt_at - first] ^= 0xFF
        span = content_range or f"bytes {first}-{last}/{length or len(data)}"
        handler.respond(206, bytes(body), {"Content-Range": span})
        return None

    return hook


@pytest.fixture
def big(server: UpstreamServer, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(download_http, "SPLIT_PART", 64 << 10)
    fn = "big-1.0-0.conda"
    (server.root / fn).write_bytes(BIG)
    return fn


async def fetch(server: UpstreamServer, tmp_path: Path, fn: str, retries: int = 0):
    site = Site(tmp_path / "site")
    target = site.path("linux-64", fn)
    async with upstream_at(server) as upstream, open_disk_writer() as writer:
        job = job_at(upstream, record_for(fn, BIG), target)
        result = await download(job, site, writer, retries)
    return result, target


@pytest.mark.parametrize("length", [None, "*"], ids=["length stated", "length unknown"])
async def test_a_large_file_comes_in_parallel_ranges(
    server: UpstreamServer, tmp_path: Path, big: str, length: str | None
) -> None:
    server.add_fault(f"/{big}", serve_ranges(length=length))
    result, target = await fetch(server, tmp_path, big)
    assert result.ok, result.error
    assert target.read_bytes() == BIG
    requests = server.wait_for_requests(4)
    ranges = sorted(
        (r.header("Range") or "" for r in requests),
        key=lambda text: int(text.removeprefix("bytes=").split("-")[0]),
    )
    assert len(ranges) == len(download_http.split_spans(len(BIG))) == 4
    assert [r.status for r in requests] == [206] * 4
    assert ranges[0] == "bytes=0-76799" and ranges[-1] == "bytes=230400-307199"
    assert not temporaries(target.parent)


async def test_downloads_waiting_for_a_connection_slot_hold_no_file_open(
    server: UpstreamServer, tmp_path: Path, big: str
) -> None:
    """A download opens its pending file only once it holds a per-host slot, so the files
    waiting for one cost no descriptor; a file fetched in parts, once its first part does."""
    server.add_fault(f"/{big}", serve_ranges())
    files = {f"small{i}-1.0-0.conda": bytes([i]) * 5000 for i in range(6)}
    for fn, data in files.items():
        (server.root / fn).write_bytes(data)
    files[big] = BIG
    site = Site(tmp_path / "site")
    results: list[DownloadResult] = []
    async with upstream_at(server) as upstream, open_disk_writer() as writer:

        async def fetch_one(fn: str) -> None:
            job = job_at(upstream, record_for(fn, files[fn]), site.path("linux-64", fn))
            results.append(await download(job, site, writer, retries=0))

        slots = upstream.host_limiter
        for holder in range(int(slots.total_tokens)):
            await slots.acquire_on_behalf_of(holder)
        open_before = len(os.listdir("/proc/self/fd"))
        async with trio.open_nursery() as nursery:
            for fn in files:
                nursery.start_soon(fetch_one, fn)
            await trio.testing.wait_all_tasks_blocked()
            assert len(os.listdir("/proc/self/fd")) == open_before
            for holder in range(int(slots.total_tokens)):
                slots.release_on_behalf_of(holder)
    assert [r.error for r in results if not r.ok] == []
    for fn, data in files.items():
        assert site.path("linux-64", fn).read_bytes() == data


async def test_without_range_support_the_first_request_brings_the_whole_file(
    server: UpstreamServer, tmp_path: Path, big: str
) -> None:
    result, target = await fetch(server, tmp_path, big)
    assert result.ok, result.error
    assert target.read_bytes() == BIG
    assert [r.status for r in server.wait_for_requests(1)] == [200]


async def test_the_whole_file_through_the_first_request_has_the_whole_file_deadline(
    server: UpstreamServer, tmp_path: Path, big: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server without range support sends all of a large file to the first part's
    request: that request is given the time the whole file may take, not a part's."""
    sizes: list[int] = []

    def deadline(upstream: object, size: int) -> float:
        sizes.append(size)
        return 60.0 if size == len(BIG) else 0.0  # a part's deadline has passed at once

    monkeypatch.setattr(download_http, "deadline", deadline)
    result, target = await fetch(server, tmp_path, big)
    assert result.ok, result.error
    assert target.read_bytes() == BIG
    assert sizes == [len(BIG)]
    assert [r.status for r in server.wait_for_requests(1)] == [200]


@pytest.mark.parametrize(
    ("hook", "error"),
    [
        (serve_ranges(corrupt_at=200_000), "checksum mismatch: sha256"),
        (serve_ranges(content_range="bytes 0-99/307200"), "unexpected Content-Range"),
    ],
)
async def test_a_bad_part_is_never_published(
    server: UpstreamServer, tmp_path: Path, big: str, hook, error: str
) -> None:
    server.add_fault(f"/{big}", hook)
    result, target = await fetch(server, tmp_path, big, retries=1)
    assert not result.ok
    assert error in result.error
    assert not target.exists()
    assert not temporaries(target.parent)


async def test_a_proxy_in_the_environment_gets_httpx_own_client(
    server: UpstreamServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    direct = open_client(httpx.Timeout(5), "test")
    assert isinstance(direct.transport, EventLoopTransport)
    await direct.aclose()
    # The test server plays the proxy: a proxied request names the whole URL.
    monkeypatch.setenv("HTTP_PROXY", server.url)
    proxied = open_client(httpx.Timeout(5), "test")
    try:
        assert not isinstance(proxied.transport, EventLoopTransport)
        async with proxied.stream("http://upstream.invalid/f1.bin") as response:
            await response.aread()
    finally:
        await proxied.aclose()
    (request,) = server.wait_for_requests(1)
    assert request.header("host") == "upstream.invalid"


# --------------------------------------------------------------------------- TLS


@pytest.fixture
def tls(tmp_path: Path) -> ssl.SSLContext:
    """A server context with a certificate no CA signed (made by openssl)."""
    openssl = shutil.which("openssl")
    require_tool(openssl is not None, "openssl")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    request = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=x"]
    names = ["-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        [str(openssl), *request, *names, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.fixture
def tls_server(tmp_path: Path, tls: ssl.SSLContext, upstream_server_factory) -> UpstreamServer:
    root = tmp_path / "tls-upstream"
    root.mkdir()
    for name, data in FILES.items():
        (root / name).write_bytes(data)
    return upstream_server_factory(root, tls=tls)


async def test_https_without_verification_when_asked(tls_server: UpstreamServer) -> None:
    seen = peers(tls_server, [f"/{n}" for n in FILES])
    async with upstream_client(verify=False) as client:
        for name, data in FILES.items():
            assert await get(client, f"{tls_server.url}/{name}") == data
    assert len(set(seen)) == 1  # kept alive over TLS too


async def test_https_certificates_are_verified_by_default(tls_server: UpstreamServer) -> None:
    async with upstream_client() as client:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await get(client, f"{tls_server.url}/{next(iter(FILES))}")
    assert tls_server.requests == []


@pytest.mark.parametrize("verify_tls", [False, True])
async def test_verify_tls_decides_a_mirror_run_over_https(
    tmp_path: Path, tls: ssl.SSLContext, upstream_server_factory, verify_tls: bool
) -> None:
    root = tmp_path / "channel"
    write_channel(root, example_packages(seed=0), zst=True)
    server = upstream_server_factory(root, tls=tls)
    body = f"""
channels:
  secure:
    url: {server.url}
    subdirs: [linux-64]
    verify_tls: {str(verify_tls).lower()}
"""
    report = await run_mirror(site_config(tmp_path / "site", body), MirrorOptions(progress=False))
    if verify_tls:
        assert report.failed
        assert "TLS certificate not trusted" in " ".join(report.mirrors[0].errors)
        assert not (tmp_path / "site" / "secure" / "linux-64" / "repodata.json").exists()
    else:
        assert not report.failed, report.errors
        assert_channel_consistent(tmp_path / "site", "secure")
        assert list((tmp_path / "site" / "secure" / "linux-64").glob("*.conda"))


async def test_mirrors_on_one_host_share_its_connection_limit_whatever_their_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """per_host is a limit per host and port: two mirrors that log in as different users
    there may not open twice as many connections between them."""
    monkeypatch.setenv("SITEGEN_TEST_PASS_A", "pa")
    monkeypatch.setenv("SITEGEN_TEST_PASS_B", "pb")
    mirrors = [
        MirrorConfig(name=name, url=url, subdirs=("noarch",))
        for name, url in (
            ("a", "https://alice:${SITEGEN_TEST_PASS_A}@conda.example.org:8443/one"),
            ("b", "https://bob:${SITEGEN_TEST_PASS_B}@conda.example.org:8443/two"),
            ("c", "https://conda.example.org:8443/three"),
            ("d", "https://other.example.org/four"),
        )
    ]
    settings = DownloadSettings(per_host=3)
    async with contextlib.AsyncExitStack() as stack:
        upstreams, unusable = await upstream_mod.open_upstreams(mirrors, settings, stack)
        assert unusable == {}
        limiters = {name: upstream.host_limiter for name, upstream in upstreams.items()}
        assert limiters["a"] is limiters["b"] is limiters["c"]
        assert limiters["d"] is not limiters["a"]


async def test_a_drip_below_the_minimum_rate_is_cut_off_whatever_size_it_claims(
    server: UpstreamServer, tmp_path: Path
) -> None:
    """A large file (its claimed size would grant it minutes at the minimum rate) dripping a
    few hundred bytes a second: cut off once its bytes stop paying for the wait, as stalled,
    not left to hold the run until the server itself gives up."""
    fn = "drip-1.0-0.conda"
    data = os.urandom(3 << 20)  # 3 MiB: over three minutes at the minimum rate of 16 KiB/s
    (server.root / fn).write_bytes(data)
    server.add_fault(f"/{fn}", slow_drip(16, 0.05, max_seconds=20))
    site = Site(tmp_path / "site")
    target = site.path("linux-64", fn)
    async with upstream_at(server, timeout=0.5) as upstream, open_disk_writer() as writer:
        result = await download(job_at(upstream, record_for(fn, data), target), site, writer, 0)
    assert not result.ok
    assert "TooSlowError" in result.error, result.error
    assert not target.exists() and not temporaries(target.parent)


@pytest.mark.parametrize("source", ["whole", "parts", "file"])
async def test_a_veto_before_naming_leaves_nothing_under_the_name(
    server: UpstreamServer,
    tmp_path: Path,
    big: str,
    source: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A job's veto is asked once the file is verified and flushed, before it is named (over
    HTTP in one piece or in parts, or from a file:// upstream): a reason there leaves nothing
    under the name and no temporary, and is not retried; no reason, and the file is named."""
    if source == "whole":
        monkeypatch.setattr(download_http, "SPLIT_PART", len(BIG))
    (server.root / "linux-64").mkdir()
    shutil.copy(server.root / big, server.root / "linux-64" / big)  # where no base_url leads
    if source == "parts":
        server.add_fault(f"/linux-64/{big}", serve_ranges())
    site = Site(tmp_path / "site")
    target = site.path("linux-64", big)
    named_when_asked: list[bool] = []

    async def veto(why: str | None) -> str | None:
        named_when_asked.append(target.exists())
        return why

    @contextlib.asynccontextmanager
    async def upstream() -> AsyncIterator[Upstream]:
        if source != "file":
            async with upstream_at(server) as upstream:
                yield upstream
            return
        settings = DownloadSettings(concurrency=8, per_host=8, retries=0, timeout=60)
        mirror = MirrorConfig(name="up", url=server.root.as_uri(), subdirs=("linux-64",))
        client = make_client(settings)
        try:
            yield Upstream(mirror, client, settings, trio.CapacityLimiter(8))
        finally:
            await client.aclose()

    async with upstream() as up, open_disk_writer() as writer:
        job = DownloadJob(up, record_for(big, BIG), target, durable=True)
        job.veto = lambda: veto("the record changed")
        vetoed = await download(job, site, writer, retries=2)
        assert (vetoed.ok, vetoed.error) == (False, f"{big}: the record changed")
        assert not target.exists() and not temporaries(target.parent)
        job.veto = lambda: veto(None)
        named = await download(job, site, writer, retries=0)
    assert named.ok, named.error
    assert target.read_bytes() == BIG and not temporaries(target.parent)
    assert named_when_asked == [False, False]
    firsts = [r for r in server.requests if r.header("Range") in (None, "bytes=0-76799")]
    assert len(firsts) == (0 if source == "file" else 2)  # the vetoed file was not fetched again
