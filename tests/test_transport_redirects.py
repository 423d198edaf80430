"""The download transport's redirects and the credentials they may carry. Real HTTP on
127.0.0.1."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from sitegen.net.client import credentials_go_to
from sitegen.net.download import download
from sitegen.net.failures import UpstreamError
from sitegen.store.site import Site
from sitegen.store.writer import open_disk_writer
from testkit.faults import redirect
from testkit.transport import (
    FILES,
    get,
    job_at,
    peers,
    raw_reply,
    record_for,
    upstream_at,
    upstream_client,
    write_files,
)
from testkit.upstream import UpstreamHandler, UpstreamServer

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path: Path, upstream_server_factory) -> UpstreamServer:
    return upstream_server_factory(write_files(tmp_path / "upstream"))


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


@pytest.mark.parametrize(
    ("location", "base_url", "words"),
    [
        ("ftp://mirror.example/x.conda", None, "redirected to a URL of scheme 'ftp'"),
        ("file:///etc/passwd", None, "redirected to a URL of scheme 'file'"),
        (None, "ftp://mirror.example/linux-64", "a URL of scheme 'ftp'"),  # upstream's CEP-15
    ],
    ids=["ftp redirect", "file redirect", "ftp base_url"],
)
async def test_a_url_away_from_http_fails_the_download_at_once_saying_so(
    server: UpstreamServer, tmp_path: Path, location: str | None, base_url: str | None, words: str
) -> None:
    server.add_fault("/away-1-0.conda", redirect(location or "/away-1-0.conda", 302))
    site = Site(tmp_path / "site")
    target = site.path("linux-64", "away-1-0.conda")
    async with upstream_at(server) as upstream, open_disk_writer() as writer:
        job = job_at(upstream, record_for(target.name, b"x" * 10), target)
        job.base_url = base_url or job.base_url
        result = await download(job, site, writer, retries=3)
    assert not result.ok and not target.exists()
    assert result.error == (
        f"away-1-0.conda: {words}; only http and https are fetched (UnsupportedScheme)"
    )
    # Every retry would be sent there again: none is made.
    assert len(server.wait_for_requests(1)) == 1 if location else server.requests == []


async def test_a_repodata_redirect_away_from_http_fails_at_once_saying_so(
    server: UpstreamServer,
) -> None:
    server.add_fault("/linux-64/repodata.json", redirect("ftp://mirror.example/r.json", 302))
    async with upstream_at(server, retries=3) as upstream:
        with pytest.raises(UpstreamError) as raised:
            await upstream.request(upstream.url("linux-64", "repodata.json"), {})
    assert str(raised.value) == (
        f"{server.url}/linux-64/repodata.json: redirected to a URL of scheme 'ftp';"
        " only http and https are fetched (UnsupportedScheme)"
    )
    assert len(server.wait_for_requests(1)) == 1


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
