"""The download transport: keep-alive reuse, broken peers, aborts from another thread, and
a cancelled download stopping its worker thread. Real HTTP on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
import trio
from support.faults import hang, redirect
from support.upstream import UpstreamHandler, UpstreamServer, truncate

from sitegen.config import DownloadSettings, MirrorConfig
from sitegen.download import DownloadJob, download
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
        handler.close_connection = True

    server.add_fault(f"/{names[0]}", serve_then_close)
    seen = peers(server, [f"/{names[1]}"])
    with client() as http:
        assert http.get(f"{server.url}/{names[0]}").content == FILES[names[0]]
        time.sleep(0.3)  # the server hangs up after its response
        assert http.get(f"{server.url}/{names[1]}").content == FILES[names[1]]
    assert len(seen) == 1
    assert [r.status for r in server.requests] == [200, 200]


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
    assert [r.status for r in server.requests] == [301, 200]


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


async def test_a_cancelled_download_stops_its_thread_and_leaves_nothing(
    server: UpstreamServer, tmp_path: Path
) -> None:
    server.add_fault("/stuck-1-0.conda", hang(max_seconds=60))
    settings = DownloadSettings(concurrency=2, per_host=2, retries=0, timeout=60)
    mirror = MirrorConfig(name="up", url=server.url, subdirs=("linux-64",))
    async with make_client(settings) as async_client:
        with make_download_client(settings) as blocking:
            upstream = Upstream(
                mirror, async_client, settings, trio.CapacityLimiter(2), downloads=blocking
            )
            upstream.package_bases["linux-64"] = server.url
            record = Record(
                fn="stuck-1-0.conda",
                subdir="linux-64",
                raw={"name": "stuck", "version": "1", "build": "0", "size": 10, "md5": "0" * 32},
            )
            site = Site(tmp_path / "site")
            target = site.path("linux-64", "stuck-1-0.conda")
            # Without the abort, the thread would sit in its read until the server gives up
            # (60 s) and the guard would fail the test.
            with trio.fail_after(20), trio.move_on_after(0.5) as scope:
                await download(DownloadJob(upstream, record, target), site, retries=0)
    assert scope.cancelled_caught
    assert not target.exists()
    assert not [p for p in target.parent.iterdir() if p.name.startswith(TEMP_PREFIX)]


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
