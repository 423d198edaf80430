"""The download transport: keep-alive reuse, broken peers, aborts from another thread, and
a cancelled download stopping its worker thread. Real HTTP on 127.0.0.1."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio
from support import require_tool
from support.faults import hang, redirect
from support.site import assert_channel_consistent, site_config
from support.upstream import UpstreamHandler, UpstreamServer, truncate

from sitegen import download as download_mod
from sitegen.config import DownloadSettings, MirrorConfig
from sitegen.download import DownloadJob, download
from sitegen.example_channel import example_packages, write_channel
from sitegen.mirror import MirrorOptions, run_mirror
from sitegen.records import Record
from sitegen.storage import TEMP_PREFIX, Site
from sitegen.transport import ABORT, AbortHandle, KeepAliveTransport, download_client
from sitegen.upstream import Upstream, make_client, make_download_client

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


def client() -> httpx.Client:
    return httpx.Client(transport=KeepAliveTransport(), timeout=10, follow_redirects=True)


def test_requests_share_one_kept_alive_connection(server: UpstreamServer) -> None:
    seen = peers(server, [f"/{n}" for n in FILES])
    with client() as http:
        for name, data in FILES.items():
            assert http.get(f"{server.url}/{name}").content == data
    assert len(seen) == len(FILES)
    assert len(set(seen)) == 1


def test_a_connection_the_server_closed_while_idle_is_not_reused(server: UpstreamServer) -> None:
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
    with client() as http:
        assert http.get(f"{server.url}/{names[0]}").content == FILES[names[0]]
        server.wait_for_requests(1)  # logged once the hook returned, after its shutdown
        assert http.get(f"{server.url}/{names[1]}").content == FILES[names[1]]
    assert len(seen) == 1
    assert [r.status for r in server.wait_for_requests(2)] == [200, 200]


def test_a_body_cut_short_is_an_error_not_an_end(server: UpstreamServer) -> None:
    name = list(FILES)[3]
    server.add_fault(f"/{name}", truncate(5000))
    with (
        client() as http,
        pytest.raises(httpx.RemoteProtocolError),
        http.stream("GET", f"{server.url}/{name}") as response,
    ):
        b"".join(response.iter_bytes())


def test_redirects_are_followed_by_httpx(server: UpstreamServer) -> None:
    name = list(FILES)[2]
    server.add_fault("/elsewhere.bin", redirect(f"/{name}", 301))
    with client() as http:
        response = http.get(f"{server.url}/elsewhere.bin")
    assert response.content == FILES[name]
    assert [r.status for r in server.wait_for_requests(2)] == [301, 200]


def test_abort_from_another_thread_ends_a_blocked_read(server: UpstreamServer) -> None:
    server.add_fault("/stuck.bin", hang(max_seconds=60))
    handle = AbortHandle()
    outcome: list[BaseException] = []

    def fetch() -> None:
        with httpx.Client(transport=KeepAliveTransport(), timeout=60) as http:
            try:
                http.get(f"{server.url}/stuck.bin", extensions={ABORT: handle})
            except BaseException as exc:
                outcome.append(exc)

    thread = threading.Thread(target=fetch)
    thread.start()
    for _ in range(500):  # until the request is on its way (an earlier abort works too)
        if handle._connection is not None:
            break
        time.sleep(0.01)
    time.sleep(0.1)
    handle.abort()
    thread.join(timeout=20)  # the read timeout is 60 s: only the abort can end it sooner
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], httpx.TransportError)


@contextlib.asynccontextmanager
async def upstream_at(server: UpstreamServer) -> AsyncIterator[Upstream]:
    """An Upstream whose package files live at the server's root."""
    settings = DownloadSettings(concurrency=8, per_host=8, retries=0, timeout=60)
    mirror = MirrorConfig(name="up", url=server.url, subdirs=("linux-64",))
    async with make_client(settings) as async_client:
        with make_download_client(settings) as blocking:
            upstream = Upstream(
                mirror, async_client, settings, trio.CapacityLimiter(8), downloads=blocking
            )
            upstream.package_bases["linux-64"] = server.url
            yield upstream


def record_for(fn: str, data: bytes) -> Record:
    name, version, build = fn.removesuffix(".conda").rsplit("-", 2)
    raw = {"name": name, "version": version, "build": build, "size": len(data)}
    return Record(fn=fn, subdir="linux-64", raw={**raw, "sha256": hashlib.sha256(data).hexdigest()})


def temporaries(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.name.startswith(TEMP_PREFIX)]


async def test_a_cancelled_download_stops_its_thread_and_leaves_nothing(
    server: UpstreamServer, tmp_path: Path
) -> None:
    server.add_fault("/stuck-1-0.conda", hang(max_seconds=60))
    site = Site(tmp_path / "site")
    target = site.path("linux-64", "stuck-1-0.conda")
    async with upstream_at(server) as upstream:
        # Without the abort, the thread would sit in its read until the server gives up
        # (60 s) and the guard would fail the test.
        with trio.fail_after(20), trio.move_on_after(0.5) as scope:
            job = DownloadJob(upstream, record_for(target.name, b"x" * 10), target)
            await download(job, site, retries=0)
    assert scope.cancelled_caught
    assert not target.exists()
    assert not temporaries(target.parent)


# --------------------------------------------------------------------------- split downloads

BIG = bytes(range(256)) * 1200  # 307,200 bytes: four parts of 64 KiB parts at most


def serve_ranges(corrupt_at: int | None = None, content_range: str | None = None):
    """Answer Range requests with 206 (the test server itself ignores Range)."""

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
        span = content_range or f"bytes {first}-{last}/{len(data)}"
        handler.respond(206, bytes(body), {"Content-Range": span})
        return None

    return hook


@pytest.fixture
def big(server: UpstreamServer, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(download_mod, "SPLIT_PART", 64 << 10)
    fn = "big-1.0-0.conda"
    (server.root / fn).write_bytes(BIG)
    return fn


async def fetch(server: UpstreamServer, tmp_path: Path, fn: str, retries: int = 0):
    site = Site(tmp_path / "site")
    target = site.path("linux-64", fn)
    async with upstream_at(server) as upstream:
        result = await download(DownloadJob(upstream, record_for(fn, BIG), target), site, retries)
    return result, target


async def test_a_large_file_comes_in_parallel_ranges(
    server: UpstreamServer, tmp_path: Path, big: str
) -> None:
    server.add_fault(f"/{big}", serve_ranges())
    result, target = await fetch(server, tmp_path, big)
    assert result.ok, result.error
    assert target.read_bytes() == BIG
    requests = server.wait_for_requests(4)
    ranges = sorted(
        (r.header("Range") or "" for r in requests),
        key=lambda text: int(text.removeprefix("bytes=").split("-")[0]),
    )
    assert len(ranges) == len(download_mod.split_spans(len(BIG))) == 4
    assert [r.status for r in requests] == [206] * 4
    assert ranges[0] == "bytes=0-76799" and ranges[-1] == "bytes=230400-307199"
    assert not temporaries(target.parent)


async def test_without_range_support_the_first_request_brings_the_whole_file(
    server: UpstreamServer, tmp_path: Path, big: str
) -> None:
    result, target = await fetch(server, tmp_path, big)
    assert result.ok, result.error
    assert target.read_bytes() == BIG
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


def test_a_proxy_in_the_environment_gets_httpx_own_transport(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with download_client(httpx.Timeout(5), "test") as direct:
        assert isinstance(direct._transport, KeepAliveTransport)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    with download_client(httpx.Timeout(5), "test") as proxied:
        assert not isinstance(proxied._transport, KeepAliveTransport)


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


def test_https_without_verification_when_asked(tls_server: UpstreamServer) -> None:
    seen = peers(tls_server, [f"/{n}" for n in FILES])
    with httpx.Client(transport=KeepAliveTransport(verify=False), timeout=10) as http:
        for name, data in FILES.items():
            assert http.get(f"{tls_server.url}/{name}").content == data
    assert len(set(seen)) == 1  # kept alive over TLS too


def test_https_certificates_are_verified_by_default(tls_server: UpstreamServer) -> None:
    with (
        httpx.Client(transport=KeepAliveTransport(), timeout=10) as http,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        http.get(f"{tls_server.url}/{next(iter(FILES))}")
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
