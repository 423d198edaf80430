"""Downloads into the site: cancellation, slow disks and durable commits, byte ranges in
parallel, connection slots, slow drips and vetoes. Real HTTP on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
import trio.testing

from sitegen.config import DownloadSettings, MirrorConfig
from sitegen.net import download_http
from sitegen.net import upstream as upstream_mod
from sitegen.net.download import download
from sitegen.net.download_job import DownloadJob, DownloadResult
from sitegen.net.upstream import Upstream, make_client
from sitegen.store.site import PendingFile, Site
from sitegen.store.writer import open_disk_writer
from testkit.faults import hang, slow_drip
from testkit.transport import job_at, record_for, temporaries, upstream_at, write_files
from testkit.upstream import UpstreamHandler, UpstreamServer

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path: Path, upstream_server_factory) -> UpstreamServer:
    return upstream_server_factory(write_files(tmp_path / "upstream"))


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


# --------------------------------------------------------------------------- split downloads

BIG = bytes(range(256)) * 1200  # 307,200 bytes: four parts of 64 KiB parts at most


def serve_ranges(
    corrupt_at: int | None = None,
    content_range: str | None = None,
    length: str | None = None,
    ignored_from: int | None = None,
):
    """Answer Range requests with 206 (the test server itself ignores Range); ``length``: the
    complete length the Content-Range states (default: the file's); ``ignored_from``: ranges
    starting there or later are answered as the server does, with the whole file (a server
    pool where only some honour ranges)."""

    def hook(handler: UpstreamHandler) -> bool | None:
        target = handler.resolve(handler.url_path)
        wanted = handler.headers.get("Range")
        if target is None or not wanted:
            return False
        data = target.read_bytes()
        first, last = (int(x) for x in wanted.removeprefix("bytes=").split("-"))
        if ignored_from is not None and first >= ignored_from:
            return False
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


async def test_a_server_ignoring_some_ranges_gets_the_file_asked_for_whole_next(
    server: UpstreamServer, tmp_path: Path, big: str
) -> None:
    """The first part's 206 says ranges work, a later part's 200 says not always: the retry
    does not ask for ranges again (each one would fail alike), it asks for the whole file."""
    server.add_fault(f"/{big}", serve_ranges(ignored_from=1))
    result, target = await fetch(server, tmp_path, big, retries=1)
    assert result.ok, result.error
    assert target.read_bytes() == BIG
    assert not temporaries(target.parent)


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
