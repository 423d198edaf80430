"""The pull-through fetcher under abuse: idle sockets, slow senders and readers, HEAD probes,
many files at once, and stored files sent by the web server rather than through Python."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import httpx
import pytest
import trio

from sitegen.config import SiteConfig, load_config
from sitegen.passive.fetcher import FetcherLimits, delivery
from sitegen.passive.listen import listener_address, open_listeners, serve_fetcher
from sitegen.passive.resolver import Resolver, passive_channels
from sitegen.store.site import Site
from sitegen.sync.run import MirrorOptions, run_mirror
from testkit.fetcher import FakeFetch
from testkit.upstream import ExampleUpstream

CHANNEL = "cloud/conda-forge"


def _site(tmp_path: Path) -> tuple[Site, SiteConfig, dict[str, bytes]]:
    contents = {"a-1.0-0.conda": b"a" * 10, "b-1.0-0.conda": b"b" * 20}
    site = Site(tmp_path / "site")
    directory = site.path(CHANNEL, "linux-64")
    directory.mkdir(parents=True)
    document = {
        "packages": {},
        "packages.conda": {fn: {"size": len(data)} for fn, data in contents.items()},
    }
    (directory / "repodata.json").write_text(json.dumps(document))
    (tmp_path / "channels.yaml").write_text(
        f"output: {site.root}\nchannels:\n  {CHANNEL}:\n"
        "    url: http://upstream.invalid/forge\n    subdirs: [linux-64]\n    mode: passive\n"
    )
    return site, load_config(tmp_path / "channels.yaml"), contents


@pytest.mark.unit
async def test_head_is_answered_from_the_record_without_a_download(tmp_path: Path) -> None:
    site, config, contents = _site(tmp_path)
    fake = FakeFetch(contents)
    async with Resolver(site, passive_channels(config), fake).running() as resolver:
        reply = await resolver.resolve(f"/{CHANNEL}/linux-64/a-1.0-0.conda", head=True)
    assert reply.status == 200 and reply.file is None
    assert ("Content-Length", "10") in reply.headers
    assert fake.calls == []
    assert not site.path(CHANNEL, "linux-64", "a-1.0-0.conda").exists()


@pytest.mark.unit
async def test_too_many_different_downloads_at_once_get_503(tmp_path: Path) -> None:
    site, config, contents = _site(tmp_path)
    fake = FakeFetch(contents, gate=trio.Event())
    channels = passive_channels(config)
    resolver = Resolver(site, channels, fake, max_flights=1)
    async with resolver.running(), trio.open_nursery() as nursery:
        nursery.start_soon(resolver.resolve, f"/{CHANNEL}/linux-64/a-1.0-0.conda")
        with trio.fail_after(5):
            while not resolver.flights:
                await trio.sleep(0.001)
        other = await resolver.resolve(f"/{CHANNEL}/linux-64/b-1.0-0.conda")
        assert other.status == 503 and ("Retry-After", "5") in other.headers
        assert fake.gate is not None
        fake.gate.set()
    assert fake.calls == ["a-1.0-0.conda"]


@pytest.mark.unit
def test_the_web_server_chooses_how_a_stored_file_is_sent() -> None:
    assert delivery([(b"X-Sitegen-Accel", b"/__sitegen_stored")]) == ("accel", "/__sitegen_stored")
    assert delivery([(b"x-sitegen-redirect", b"1")]) == ("redirect", "")
    both = [(b"x-sitegen-redirect", b"1"), (b"x-sitegen-accel", b"/__sitegen_stored")]
    assert delivery(both) == ("accel", "/__sitegen_stored")
    assert delivery([(b"x-sitegen-accel", b"/../etc\r\nX: y")]) == ("stream", "")
    assert delivery([]) == ("stream", "")


# --------------------------------------------------------------------------- over real sockets


async def _passive_site(example_upstream: ExampleUpstream, tmp_path: Path) -> SiteConfig:
    (tmp_path / "channels.yaml").write_text(
        textwrap.dedent(f"""\
            output: {tmp_path}/site
            download: {{retries: 0, timeout: 30}}
            channels:
              {CHANNEL}: {{url: {example_upstream.url}, subdirs: [linux-64], mode: passive}}
            """)
    )
    config = load_config(tmp_path / "channels.yaml")
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert not report.failed
    return config


def _package_requests(example_upstream: ExampleUpstream) -> list[str]:
    return [r.path for r in example_upstream.server.requests if r.path.endswith(".conda")]


@pytest.mark.integration
async def test_500_idle_connections_do_not_lock_out_a_real_request(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    config = await _passive_site(example_upstream, tmp_path)
    fn = next(iter(example_upstream.repodata["linux-64"]["packages.conda"]))
    listeners = await open_listeners("127.0.0.1", 0)
    limits = FetcherLimits(max_connections=100)
    async with trio.open_nursery() as nursery:
        fetcher = await nursery.start(
            lambda **kw: serve_fetcher(config, listeners, limits=limits, **kw)
        )
        host, port = listener_address(listeners).split(":")
        idle = []
        for i in range(500):
            stream = await trio.open_tcp_stream(host, int(port))
            if i % 2:  # half of them start a request and never finish it (slowloris)
                await stream.send_all(b"GET /x.conda HTTP/1.1\r\nHost: a\r\n")
            idle.append(stream)
        with trio.fail_after(20):
            async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
                head = await client.head(f"/{CHANNEL}/linux-64/{fn}")
                got = await client.get(f"/{CHANNEL}/linux-64/{fn}")
        assert head.status_code == 200 and head.content == b""
        assert got.status_code == 200 and got.headers["x-sitegen-fetcher"] == "fetched"
        assert fetcher.open_connections <= limits.max_connections + 1
        for stream in idle:
            await stream.aclose()
        nursery.cancel_scope.cancel()


@pytest.mark.integration
async def test_a_half_sent_request_is_cut_off_and_head_downloads_nothing(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    config = await _passive_site(example_upstream, tmp_path)
    fn = next(iter(example_upstream.repodata["linux-64"]["packages.conda"]))
    path = f"/{CHANNEL}/linux-64/{fn}"
    listeners = await open_listeners("127.0.0.1", 0)
    limits = FetcherLimits(request_timeout=1.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda **kw: serve_fetcher(config, listeners, limits=limits, **kw))
        host, port = listener_address(listeners).split(":")
        slow = await trio.open_tcp_stream(host, int(port))
        await slow.send_all(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: a\r\n")
        with trio.fail_after(5):
            assert await slow.receive_some(1024) == b""  # closed by the fetcher
        await slow.aclose()

        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            head = await client.head(path)
            assert head.status_code == 200
            assert int(head.headers["content-length"]) > 0
            assert _package_requests(example_upstream) == []
            assert not (tmp_path / "site" / CHANNEL / "linux-64" / fn).exists()
            # The web server sends stored files itself: nginx by X-Accel-Redirect ...
            accel = await client.get(path, headers={"X-Sitegen-Accel": "/__sitegen_stored"})
            assert accel.status_code == 200 and accel.content == b""
            assert accel.headers["x-accel-redirect"] == f"/__sitegen_stored/fetched{path}"
            # ... Apache by a redirect back to the same, now static, URL.
            back = await client.get(path, headers={"X-Sitegen-Redirect": "1"})
            assert back.status_code == 302 and back.headers["location"] == fn.replace("+", "%2B")
        assert len(_package_requests(example_upstream)) == 1
        nursery.cancel_scope.cancel()


@pytest.mark.integration
async def test_requests_whose_body_never_comes_do_not_lock_out_a_real_request(
    tmp_path: Path,
) -> None:
    """Request heads announcing a body that never arrives: each gets the request deadline, so
    ``max_connections`` of them cannot hold every slot for good."""
    _unused, config, _contents = _site(tmp_path)
    listeners = await open_listeners("127.0.0.1", 0)
    limits = FetcherLimits(max_connections=4, request_timeout=1.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda **kw: serve_fetcher(config, listeners, limits=limits, **kw))
        host, port = listener_address(listeners).split(":")
        stalled = []
        for _ in range(limits.max_connections):
            stream = await trio.open_tcp_stream(host, int(port))
            await stream.send_all(b"GET /x.conda HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n")
            stalled.append(stream)
        await trio.sleep(limits.request_timeout * 3)  # well past any request deadline
        with trio.fail_after(10):
            async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
                head = await client.head(f"/{CHANNEL}/linux-64/a-1.0-0.conda")
        for stream in stalled:
            await stream.aclose()
        nursery.cancel_scope.cancel()
    assert head.status_code == 200, head.status_code


@pytest.mark.integration
async def test_a_client_that_never_reads_its_answers_does_not_hold_a_slot_for_good(
    tmp_path: Path,
) -> None:
    """Requests pipelined by a client that reads no answer: once the answers fill the socket
    buffers, sending the next one stalls, and the fetcher drops the connection rather than
    wait for good, so the client's writes fail (the hang guard fires otherwise)."""
    _unused, config, _contents = _site(tmp_path)
    listeners = await open_listeners("127.0.0.1", 0)
    # Small buffers both ways (a connection takes the listener's): the answers nobody reads
    # fill them after a few dozen requests.
    listeners[0].socket.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_SNDBUF, 4096)
    limits = FetcherLimits(max_connections=1, request_timeout=1.0)
    request = f"HEAD /{CHANNEL}/linux-64/a-1.0-0.conda HTTP/1.1\r\nHost: a\r\n\r\n".encode()
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda **kw: serve_fetcher(config, listeners, limits=limits, **kw))
        host, port = listener_address(listeners).split(":")
        sock = trio.socket.socket()
        sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, 4096)
        await sock.connect((host, int(port)))
        stalled = trio.SocketStream(sock)
        with trio.fail_after(30), pytest.raises(trio.BrokenResourceError):
            while True:
                await stalled.send_all(request * 1000)
        await stalled.aclose()
        with trio.fail_after(10):
            async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
                head = await client.head(f"/{CHANNEL}/linux-64/a-1.0-0.conda")
        nursery.cancel_scope.cancel()
    assert head.status_code == 200, head.status_code
