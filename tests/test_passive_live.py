"""A file fetched on request reaches its clients as it downloads, never complete unverified.

A slow upstream takes longer than a client waits for bytes (conda's read timeout, a proxy's):
the fetcher sends what has landed as it lands, holding back the last byte until the file is
verified and stored. A corrupted body or an upstream that breaks off ends the client's
connection before its body is complete, and nothing is stored. The clients here are httpx with
a short read timeout, talking HTTP to a real fetcher on 127.0.0.1; through real web servers in
test_passive_live_servers.py, downloads in parallel ranges in test_passive_live_ranges.py.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest
import trio

from sitegen.net import download
from sitegen.passive.fetcher import FetcherLimits
from testkit.faults import hang, reset_after, slow_drip
from testkit.live_fetcher import (
    DRIP,
    Got,
    Setup,
    assert_cut_off,
    get,
    passive_site,
)

pytestmark = pytest.mark.integration


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
