"""A file fetched on request reaches its clients as it downloads, never complete unverified.

A slow upstream takes longer than a client waits for bytes (conda's read timeout, a proxy's):
the fetcher sends what has landed as it lands, holding back the last byte until the file is
verified and stored. A corrupted body or an upstream that breaks off ends the client's
connection before its body is complete, and nothing is stored. The clients here are httpx with
a short read timeout, talking HTTP to a real fetcher on 127.0.0.1, directly or through real
nginx and Apache running the configs ``sitegen webconf`` prints, which must pass each piece on
as it comes and a cut-off answer as cut off.
"""

from __future__ import annotations

import hashlib
import json
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from sitegen.config import SiteConfig, load_config
from sitegen.net import download, download_http
from sitegen.passive.fetcher import FetcherLimits
from sitegen.passive.listen import listener_address, open_listeners, serve_fetcher
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import PackageSpec, example_packages, write_channel
from sitegen.tools.webconf import LONG_CACHE
from testkit.apache import require_server, webconf_server, world_readable_dir
from testkit.faults import hang, reset_after, slow_drip
from testkit.upstream import FaultHook, UpstreamHandler, UpstreamServer

pytestmark = pytest.mark.integration

CHANNEL = "cloud/forge"
# 32 bytes every 0.1 s: a package of the example channel (about 1.3 KB) takes 4 s or more.
DRIP = {"chunk": 32, "interval": 0.1}
READ_TIMEOUT = 2.0
PREFIX = "/conda"


@dataclass
class Setup:
    server: UpstreamServer
    config: SiteConfig
    site: Path
    fn: str
    record: dict[str, Any]

    @property
    def target(self) -> Path:
        return self.site / CHANNEL / "linux-64" / self.fn

    def upstream_path(self) -> str:
        return f"/forge/linux-64/{self.fn}"

    def package_requests(self) -> list[str]:
        """The package files asked of upstream, once the first is logged: its handler logs it
        just after the response went out, so the clients may have their file before."""
        self.server.wait_for_count(1, ".conda")
        return [r.path for r in self.server.requests if r.path.endswith(".conda")]

    def leftovers(self) -> list[Path]:
        return list((self.site / CHANNEL).rglob(".sitegen-tmp-*"))


@dataclass
class Got:
    """What one client received."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: Exception | None = None


@asynccontextmanager
async def passive_site(
    tmp_path: Path,
    hook: FaultHook,
    extra: tuple[PackageSpec, ...] = (),
    times: int | None = 1,
    settings: str = "{retries: 0, timeout: 30}",
    limits: FetcherLimits | None = None,
) -> AsyncIterator[tuple[Setup, str]]:
    """A published passive mirror of the example channel (plus ``extra``), its largest linux-64
    package served by ``hook`` (``times`` times; None: always), and the address of a fetcher
    for it (with ``limits``) on a port of its own; ``settings``: its download settings."""
    root = tmp_path / "upstream"
    specs = [*example_packages(seed=0), *extra]
    repodata = write_channel(root / "forge", specs, zst=True)
    packages = repodata["linux-64"]["packages.conda"]
    fn = max(packages, key=lambda name: (packages[name]["size"], name))
    with UpstreamServer(root) as server:
        site = tmp_path / "site"
        config_path = tmp_path / "channels.yaml"
        config_path.write_text(
            textwrap.dedent(
                f"""\
                output: {site}
                download: {settings}
                channels:
                  {CHANNEL}:
                    url: {server.url}/forge
                    subdirs: [linux-64]
                    mode: passive
                """
            )
        )
        config = load_config(config_path)
        assert not (await run_mirror(config, MirrorOptions(progress=False))).failed
        setup = Setup(server, config, site, fn, packages[fn])
        server.add_fault(setup.upstream_path(), hook, times=times)
        listeners = await open_listeners("127.0.0.1", 0)
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(serve_fetcher, config, listeners, limits=limits))
            yield setup, listener_address(listeners)
            nursery.cancel_scope.cancel()


async def get(
    address: str, fn: str, got: Got, prefix: str = "", read: float = READ_TIMEOUT
) -> None:
    """GET the file as a client with a short read timeout (``read``) would."""
    timeout = httpx.Timeout(30, read=read)
    async with httpx.AsyncClient(base_url=f"http://{address}", timeout=timeout) as client:
        try:
            async with client.stream("GET", f"{prefix}/{CHANNEL}/linux-64/{fn}") as response:
                got.status, got.headers = response.status_code, dict(response.headers)
                async for chunk in response.aiter_raw():
                    got.body += chunk
        except httpx.HTTPError as exc:
            got.error = exc


async def test_a_slow_download_reaches_a_client_with_a_short_read_timeout(
    tmp_path: Path,
) -> None:
    async with passive_site(tmp_path, slow_drip(**DRIP)) as (setup, address):
        got = Got()
        with trio.fail_after(30):
            await get(address, setup.fn, got)
    assert got.error is None, repr(got.error)
    assert got.status == 200
    assert int(got.headers["content-length"]) == setup.record["size"]
    assert got.headers["x-sitegen-fetcher"] == "fetched"
    # It could still have been cut off: no cache may keep it as the file for good.
    assert got.headers["cache-control"] == "no-cache"
    assert hashlib.sha256(got.body).hexdigest() == setup.record["sha256"]
    assert hashlib.sha256(setup.target.read_bytes()).hexdigest() == setup.record["sha256"]
    assert setup.package_requests() == [setup.upstream_path()]


async def test_an_upstream_that_never_answers_is_answered_before_the_client_gives_up(
    tmp_path: Path,
) -> None:
    """An upstream that takes the request and says nothing would hold the client for every
    attempt's timeout (3 attempts of 3 s here; 5 of 60 s by default): the fetcher answers 504
    within ``answer_within``, before the client's own read timeout, and stores nothing."""
    limits = FetcherLimits(answer_within=1.0)
    silent = hang(max_seconds=30)
    settings = "{retries: 2, timeout: 3}"
    async with passive_site(tmp_path, silent, times=None, settings=settings, limits=limits) as (
        setup,
        address,
    ):
        got = Got()
        with trio.fail_after(30):
            await get(address, setup.fn, got)
        assert got.error is None, repr(got.error)
        assert got.status == 504, got
        assert got.headers["cache-control"] == "no-store"
        assert not setup.target.exists() and setup.leftovers() == []


async def test_a_download_under_way_outlasts_the_time_to_answer(tmp_path: Path) -> None:
    """What ``answer_within`` bounds is the wait for a first byte: a download that keeps
    coming (some 4 s here) is followed to its end, not cut off at that deadline."""
    limits = FetcherLimits(answer_within=1.0)
    async with passive_site(tmp_path, slow_drip(**DRIP), limits=limits) as (setup, address):
        got = Got()
        with trio.fail_after(30):
            await get(address, setup.fn, got)
    assert got.error is None, repr(got.error)
    assert got.status == 200 and got.headers["x-sitegen-fetcher"] == "fetched"
    assert hashlib.sha256(got.body).hexdigest() == setup.record["sha256"]
    assert hashlib.sha256(setup.target.read_bytes()).hexdigest() == setup.record["sha256"]


def other_package(setup: Setup) -> str:
    """A linux-64 .conda of the channel other than ``setup.fn`` (served without a fault)."""
    repodata = json.loads((setup.target.parent / "repodata.json").read_bytes())
    return next(fn for fn in sorted(repodata["packages.conda"]) if fn != setup.fn)


@pytest.mark.parametrize(
    ("slots", "waited_for"),
    [("concurrency: 1", "download slot"), ("per_host: 1", "connections to mirror cloud-forge")],
)
async def test_a_download_waiting_for_a_slot_is_answered_as_busy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, slots: str, waited_for: str
) -> None:
    """A request that waited ``answer_within`` for one of the ``download.concurrency`` slots
    or of the ``download.per_host`` connections (one here, held by a download that keeps
    coming) is answered before its client gives up: 503, sitegen being busy, not 504, as if
    the mirror had said nothing; the mirror was never asked, and the log says what the
    download waited for."""
    limits = FetcherLimits(answer_within=1.0)
    settings = f"{{retries: 0, timeout: 30, {slots}}}"
    site = passive_site(tmp_path, slow_drip(**DRIP), settings=settings, limits=limits)
    async with site as (setup, address):
        other = other_package(setup)
        slow, queued = Got(), Got()
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(get, address, setup.fn, slow)
                while not slow.body:  # the slow download holds the slot
                    await trio.sleep(0.05)
                await get(address, other, queued)
        assert setup.package_requests() == [setup.upstream_path()]
    assert slow.error is None and slow.status == 200, slow
    assert queued.error is None, repr(queued.error)
    assert queued.status == 503, queued
    assert queued.headers["retry-after"] == "5"
    assert queued.headers["cache-control"] == "no-store"
    said = [r.getMessage() for r in caplog.records if other in r.getMessage()]
    assert len(said) == 1 and waited_for in said[0] and "not asked" in said[0], said


async def test_a_retry_waiting_for_a_connection_is_answered_in_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An attempt that had bytes and broke off lifted ``answer_within``; the retry sets it
    again as it begins, not once it has a connection: here the one connection to the host
    (``per_host: 1``) went meanwhile to a download that keeps coming (some 4 s), and the
    retry, waiting for it, is given up in time rather than after that download."""
    limits = FetcherLimits(answer_within=1.0)
    settings = "{retries: 1, timeout: 30, per_host: 1}"
    broken = reset_after(keep=600, pause=0.5)
    site = passive_site(tmp_path, broken, settings=settings, limits=limits)
    async with site as (setup, address):
        other = other_package(setup)
        setup.server.add_fault(f"/forge/linux-64/{other}", slow_drip(**DRIP), times=1)
        first, slow = Got(), Got()
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(get, address, setup.fn, first)
                await trio.sleep(0.2)  # the first attempt has its connection and sends
                # This download waits for the connection and has it once that attempt breaks.
                await get(address, other, slow)
        assert slow.error is None and slow.status == 200, slow
        assert not setup.target.exists() and setup.leftovers() == []
    said = [m for r in caplog.records if setup.fn in (m := r.getMessage()) and "not stored" in m]
    assert len(said) == 1, said
    assert "connections to mirror cloud-forge's host" in said[0], said
    assert "an attempt before had failed" in said[0], said


async def test_a_client_asking_in_a_retrys_backoff_is_answered_in_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An attempt that had bytes breaks off; its retry follows after a backoff (6 s here)
    longer than ``answer_within`` (1 s). The backoff counts: a client asking during it is
    answered 504 within ``answer_within``, not held until the retry has its bytes."""
    monkeypatch.setattr(download, "retry_delay", lambda attempt, asked: 6.0)
    limits = FetcherLimits(answer_within=1.0)
    # Some bytes, followed after FOLLOW_AFTER (1 s) by the first client, then a reset.
    broken = reset_after(keep=600, pause=1.5)
    settings = "{retries: 1, timeout: 30}"
    site = passive_site(tmp_path, broken, settings=settings, limits=limits)
    async with site as (setup, address):
        first, second = Got(), Got()
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(get, address, setup.fn, first)
                while not setup.server.count(".conda"):  # logged once the reset is sent
                    await trio.sleep(0.05)
                await get(address, setup.fn, second, read=10)
        # Given up by answer_within, in the backoff: held until the retry, it would be a 200.
        assert second.status == 504, second
        assert not setup.target.exists() and setup.leftovers() == []
    assert first.status == 200 and isinstance(first.error, httpx.RemoteProtocolError), first
    said = [m for r in caplog.records if setup.fn in (m := r.getMessage()) and "not stored" in m]
    assert len(said) == 1 and "its retry had not begun" in said[0], said


def assert_cut_off(got: Got, setup: Setup) -> None:
    """The client was told the record's size and got less: an error, not a file."""
    assert got.status == 200, got
    assert int(got.headers["content-length"]) == setup.record["size"]
    assert isinstance(got.error, httpx.RemoteProtocolError), repr(got.error)
    assert 0 < len(got.body) < setup.record["size"]
    assert not setup.target.exists() and setup.leftovers() == []


async def test_a_corrupted_body_reaches_the_client_cut_off_and_is_not_stored(
    tmp_path: Path,
) -> None:
    async with passive_site(tmp_path, slow_drip(**DRIP, flip=True)) as (setup, address):
        got = Got()
        with trio.fail_after(30):
            await get(address, setup.fn, got)
    assert_cut_off(got, setup)


async def test_an_upstream_that_breaks_off_cuts_the_client_off_and_stores_nothing(
    tmp_path: Path,
) -> None:
    # Half the file, then silence (the client gets its part meanwhile), then a reset.
    async with passive_site(tmp_path, reset_after(keep=600, pause=2.5)) as (setup, address):
        got = Got()
        with trio.fail_after(30):
            await get(address, setup.fn, got)
    assert_cut_off(got, setup)
    assert len(got.body) <= 600


async def test_a_client_joining_a_download_under_way_gets_the_verified_file_too(
    tmp_path: Path,
) -> None:
    async with passive_site(tmp_path, slow_drip(**DRIP)) as (setup, address):
        first, second = Got(), Got()
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(get, address, setup.fn, first)
                while len(first.body) < 300:  # well into the download
                    await trio.sleep(0.05)
                await get(address, setup.fn, second)
    for got in (first, second):
        assert got.error is None, repr(got.error)
        assert got.status == 200 and got.headers["x-sitegen-fetcher"] == "fetched"
        assert hashlib.sha256(got.body).hexdigest() == setup.record["sha256"]
    assert setup.package_requests() == [setup.upstream_path()]  # one download for both


async def test_a_client_asking_between_a_broken_attempt_and_its_retry_gets_the_retry_whole(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An attempt breaks off after some bytes, which a client following it got; a client
    asking after that, before the retry has its file (3 s of backoff here, longer than a
    request waits before it follows), is not handed the broken attempt's bytes, to be cut off
    as the retry starts: it follows the retry and gets the verified file whole (waiting for
    its first byte as long as the backoff: ``answer_within`` bounds that wait)."""
    monkeypatch.setattr(download, "retry_delay", lambda attempt, asked: 3.0)
    # Some bytes, followed after FOLLOW_AFTER (1 s) by the first client, then a reset.
    broken = reset_after(keep=600, pause=1.5)
    settings = "{retries: 1, timeout: 30}"
    async with passive_site(tmp_path, broken, settings=settings) as (setup, address):
        first, second = Got(), Got()
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(get, address, setup.fn, first)
                while not setup.server.count(".conda"):  # logged once the reset is sent
                    await trio.sleep(0.05)
                await get(address, setup.fn, second, read=10)
        assert setup.server.wait_for_count(2, ".conda") == 2  # the broken attempt, the retry
    assert second.error is None, repr(second.error)
    assert second.status == 200 and second.headers["x-sitegen-fetcher"] == "fetched"
    assert hashlib.sha256(second.body).hexdigest() == setup.record["sha256"]
    # Cut off as the attempt broke off, not left waiting for the retry past its read timeout.
    assert first.status == 200 and isinstance(first.error, httpx.RemoteProtocolError), first
    assert 0 < len(first.body) <= 600
    assert hashlib.sha256(setup.target.read_bytes()).hexdigest() == setup.record["sha256"]
    cut = [m for r in caplog.records if "cut off after" in (m := r.getMessage())]
    assert len(cut) == 1, cut


async def test_the_next_fetch_after_a_slow_download_is_answered(tmp_path: Path) -> None:
    """The upstream ends the kept-alive connection of a slow answer a moment after its last
    byte, without announcing it (as a server whose keep-alive timeout runs out does): the
    fetch that follows at once, on that pooled connection, is sent again on a fresh one
    rather than failing (``retries: 0`` here)."""
    # Some 3 s in all (so it is followed), then half a second before the close.
    drip = slow_drip(chunk=256, interval=0.5)
    async with passive_site(tmp_path, drip) as (setup, address):
        repodata = json.loads((setup.target.parent / "repodata.json").read_bytes())
        other = next(fn for fn in sorted(repodata["packages.conda"]) if fn != setup.fn)
        slow, then = Got(), Got()
        with trio.fail_after(30):
            await get(address, setup.fn, slow)
            await get(address, other, then)
    for got in (slow, then):
        assert got.error is None, repr(got.error)
        assert got.status == 200, got
    assert slow.headers["x-sitegen-fetcher"] == "fetched"
    assert hashlib.sha256(slow.body).hexdigest() == setup.record["sha256"]
    sha256 = repodata["packages.conda"][other]["sha256"]
    assert hashlib.sha256(then.body).hexdigest() == sha256


def drip_ranges(first: float, others: float, chunk: int = 8192) -> FaultHook:
    """Answer a Range request with its 206, ``chunk`` bytes every ``first`` seconds for the
    range from byte 0 and every ``others`` seconds for the rest: the later parts of a file
    fetched in parallel ranges land before the first."""

    def hook(handler: UpstreamHandler) -> bool | None:
        target = handler.resolve(handler.url_path)
        wanted = handler.headers.get("Range")
        if target is None or not wanted:
            return False
        data = target.read_bytes()
        start, last = (int(x) for x in wanted.removeprefix("bytes=").split("-"))
        body = data[start : last + 1]
        handler.send_response(206)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Content-Range", f"bytes {start}-{last}/{len(data)}")
        handler.end_headers()
        try:
            for offset in range(0, len(body), chunk):
                if offset:
                    time.sleep(first if start == 0 else others)
                handler.wfile.write(body[offset : offset + chunk])
                handler.body_bytes += len(body[offset : offset + chunk])
        except OSError:
            handler.close_connection = True
        return None

    return hook


async def test_a_download_in_parallel_ranges_streams_in_order_and_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file big enough to come in parallel ranges (parts of 64 KiB here, not the 8 MiB of
    ``SPLIT_PART``, to keep it small) reaches its client from the first byte on, in order and
    whole: nothing of a later part, landed early, before the parts before it."""
    monkeypatch.setattr(download_http, "SPLIT_PART", 64 << 10)
    big = PackageSpec("bigdata", "1.0", "h0_0", formats=("conda",), payload_size=600_000)
    # The first part takes some 3 s, longer than the client waits for a byte; the others
    # land within a fraction of a second.
    hook = drip_ranges(first=0.3, others=0.02)
    async with passive_site(tmp_path, hook, extra=(big,), times=None) as (setup, address):
        parts = download_http.split_spans(setup.record["size"])
        assert len(parts) == 4
        got = Got()
        with trio.fail_after(30):
            await get(address, setup.fn, got)
    assert got.error is None, repr(got.error)
    assert got.status == 200 and got.headers["x-sitegen-fetcher"] == "fetched"
    # Every byte where the file has it (the offset of the first that differs, if any).
    data = (tmp_path / "upstream" / setup.upstream_path().lstrip("/")).read_bytes()
    wrong = next((i for i, (a, b) in enumerate(zip(got.body, data, strict=False)) if a != b), None)
    assert (len(got.body), wrong) == (len(data), None)
    assert hashlib.sha256(got.body).hexdigest() == setup.record["sha256"]
    # The upstream logs a request once its handler is done, a moment after its last byte.
    ranges: set[str | None] = set()
    for _ in range(100):
        ranges = {r.header("range") for r in setup.server.requests if r.status == 206}
        if len(ranges) == len(parts):
            break
        await trio.sleep(0.05)
    assert ranges == {f"bytes={start}-{end - 1}" for start, end in parts}


def first_range_silent(seconds: float) -> FaultHook:
    """Answer the Range request from byte 0 with its 206 head and then no byte for ``seconds``
    (or until the client hangs up), every other one at once: the later parts of a file
    fetched in parallel ranges land, the first never does."""
    others = drip_ranges(first=0, others=0)
    silent = hang(max_seconds=seconds)

    def hook(handler: UpstreamHandler) -> bool | None:
        wanted = handler.headers.get("Range", "")
        if not wanted.startswith("bytes=0-"):
            return others(handler)
        start, last = (int(x) for x in wanted.removeprefix("bytes=").split("-"))
        target = handler.resolve(handler.url_path)
        if target is None:
            return False
        handler.send_response(206)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(last + 1 - start))
        handler.send_header("Content-Range", f"bytes {start}-{last}/{target.stat().st_size}")
        handler.end_headers()
        handler.wfile.flush()
        silent(handler)
        return None

    return hook


async def test_bytes_of_a_later_range_do_not_answer_the_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file fetched in parallel ranges whose first range sends nothing: the later ranges'
    bytes, landed, are none its clients can be sent (a file goes from its first byte on), so
    they do not lift ``answer_within``: 504 in time, not a wait for the first range's own
    timeout (10 s here) past the client's read timeout."""
    monkeypatch.setattr(download_http, "SPLIT_PART", 64 << 10)
    big = PackageSpec("bigdata", "1.0", "h0_0", formats=("conda",), payload_size=600_000)
    limits = FetcherLimits(answer_within=1.0)
    hook = first_range_silent(seconds=15)
    settings = "{retries: 0, timeout: 10}"
    site = passive_site(tmp_path, hook, extra=(big,), times=None, settings=settings, limits=limits)
    async with site as (setup, address):
        assert len(download_http.split_spans(setup.record["size"])) == 4
        got = Got()
        with trio.fail_after(30):
            await get(address, setup.fn, got)
        assert got.error is None, repr(got.error)
        assert got.status == 504, got
        assert not setup.target.exists() and setup.leftovers() == []


@pytest.fixture
def public_dir() -> Iterator[Path]:
    with world_readable_dir() as path:
        yield path


@asynccontextmanager
async def through_server(
    server: str, root: Path, hook: FaultHook
) -> AsyncIterator[tuple[Setup, str]]:
    """:func:`passive_site` in ``root`` behind ``server`` running the generated config at
    :data:`PREFIX`; the address of the web server."""
    require_server(server)
    async with passive_site(root, hook) as (setup, fetcher):
        web = webconf_server(server, setup.config, root / "state", prefix=PREFIX, fetcher=fetcher)
        with web:
            yield setup, web.url.removeprefix("http://")


@pytest.mark.parametrize("server", ["nginx", "apache"])
async def test_a_slow_download_streams_through_the_web_server(
    server: str, public_dir: Path
) -> None:
    async with through_server(server, public_dir, slow_drip(**DRIP)) as (setup, address):
        got, again = Got(), Got()
        with trio.fail_after(30):
            await get(address, setup.fn, got, PREFIX)
            await get(address, setup.fn, again, PREFIX)  # stored now: a static file
    assert got.error is None, repr(got.error)
    assert got.status == 200
    assert int(got.headers["content-length"]) == setup.record["size"]
    # The server passes on what the fetcher says of an answer that could still have been cut
    # off (once, no cache lifetime of its own added); the stored file has its year.
    assert got.headers["cache-control"] == "no-cache"
    assert again.headers["cache-control"] == LONG_CACHE
    assert again.body == got.body
    assert hashlib.sha256(got.body).hexdigest() == setup.record["sha256"]
    assert hashlib.sha256(setup.target.read_bytes()).hexdigest() == setup.record["sha256"]
    assert setup.package_requests() == [setup.upstream_path()]


@pytest.mark.parametrize("server", ["nginx", "apache"])
@pytest.mark.parametrize(
    "hook",
    [slow_drip(**DRIP, flip=True), reset_after(keep=600, pause=2.5)],
    ids=["mismatch", "broken off"],
)
async def test_a_failed_download_reaches_the_web_servers_client_cut_off(
    server: str, hook: FaultHook, public_dir: Path
) -> None:
    async with through_server(server, public_dir, hook) as (setup, address):
        got = Got()
        with trio.fail_after(30):
            await get(address, setup.fn, got, PREFIX)
    assert_cut_off(got, setup)
