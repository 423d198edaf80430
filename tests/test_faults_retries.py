"""A flaky upstream's HTTP errors (5xx, 429 with Retry-After, 404, a re-upload whose new bytes
cannot be had): retried, reported, and nothing broken published. Real HTTP on 127.0.0.1."""

from __future__ import annotations

import gzip
import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest

from sitegen.cli import main
from sitegen.config import parse_config
from sitegen.net.failures import MAX_RETRY_AFTER, retry_after
from sitegen.store.origins import load_origins
from sitegen.store.site import Site
from sitegen.sync.report import COMPLETED, FAILED
from testkit.fault_runs import (
    BYSTANDER,
    BYSTANDER_FN,
    LINUX,
    VICTIM,
    VICTIM_FN,
    Upstream,
    channel_report,
    first_run,
    listed,
    on_disk,
    seed_jitter,
    serve_small_upstream,
)
from testkit.invariant import assert_site_invariant, make_sandbox, site_digest
from testkit.site import mirror_unchecked
from testkit.small_channel import (
    CHANNEL,
    config_text,
    filenames,
    site_config,
    small_packages,
    write_config,
)
from testkit.upstream import respond

pytestmark = pytest.mark.integration


seeded = pytest.fixture(autouse=True, name="seeded")(seed_jitter)
upstream = pytest.fixture(name="upstream")(serve_small_upstream)


# --------------------------------------------------------------------------- transient 5xx


@pytest.mark.parametrize("status", [500, 502, 503, 429])
async def test_package_5xx_then_success_is_published(
    upstream: Upstream, tmp_path: Path, status: int
) -> None:
    site = make_sandbox(tmp_path)
    upstream.publish([*upstream.specs, VICTIM])
    upstream.server.add_fault(upstream.path(VICTIM_FN), respond(status), times=2)
    report = await mirror_unchecked(site_config(site, upstream.server.url, retries=2))
    assert report.status == COMPLETED and not report.failed
    assert upstream.server.count(upstream.path(VICTIM_FN), status=status) == 2
    assert upstream.server.count(upstream.path(VICTIM_FN), status=200) == 1
    assert VICTIM_FN in listed(site) and VICTIM_FN in on_disk(site)
    assert channel_report(report, LINUX).downloaded_files == len(filenames(upstream.specs, LINUX))
    assert_site_invariant(site)


async def test_repodata_5xx_then_success_is_published(upstream: Upstream, tmp_path: Path) -> None:
    site = make_sandbox(tmp_path)
    upstream.server.add_fault("/linux-64/repodata.json.zst", respond(503), times=2)
    report = await mirror_unchecked(site_config(site, upstream.server.url, retries=2))
    assert report.status == COMPLETED and not report.failed
    assert upstream.server.count("/linux-64/repodata.json.zst", status=503) == 2
    assert upstream.server.count("/linux-64/repodata.json.zst", status=200) == 1
    assert listed(site) == on_disk(site) == filenames(upstream.specs, LINUX)
    assert_site_invariant(site)


@pytest.mark.parametrize("what", ["package", "repodata"])
async def test_a_retry_waits_as_long_as_retry_after_asks(
    upstream: Upstream, tmp_path: Path, what: str, caplog: pytest.LogCaptureFixture
) -> None:
    """429/503 with Retry-After: the next attempt waits that long (the backoff of a first
    retry is at most 0.25 s), as the log line that announces it says."""
    site = make_sandbox(tmp_path)
    upstream.publish([*upstream.specs, VICTIM])
    path = upstream.path(VICTIM_FN) if what == "package" else "/linux-64/repodata.json.zst"
    upstream.server.add_fault(path, respond(429, headers={"Retry-After": "1"}), times=1)
    with caplog.at_level(logging.WARNING, logger="sitegen"):
        report = await mirror_unchecked(site_config(site, upstream.server.url, retries=1))
    assert report.status == COMPLETED and not report.failed
    (retry,) = [r.getMessage() for r in caplog.records if "attempt 1 of 2" in r.getMessage()]
    assert retry.endswith("HTTP 429; trying again in 1.0 s"), retry


async def test_a_package_compressed_in_transit_fails_at_once_saying_why(
    upstream: Upstream, tmp_path: Path
) -> None:
    """Asked for as stored, the server gzips the file anyway: other bytes than the checksums
    name, every time. Not retried; the error says what the server did."""
    site = make_sandbox(tmp_path)
    upstream.publish([*upstream.specs, VICTIM])
    body = gzip.compress((upstream.root / "linux-64" / VICTIM_FN).read_bytes())
    answer = respond(200, body, headers={"Content-Encoding": "gzip"})
    upstream.server.add_fault(upstream.path(VICTIM_FN), answer)
    report = await mirror_unchecked(site_config(site, upstream.server.url, retries=2))
    assert upstream.server.count(upstream.path(VICTIM_FN)) == 1
    (error,) = channel_report(report, LINUX).errors
    assert error.endswith("compressed the file in transit (Content-Encoding: gzip) though it"
                          " was asked for as stored")  # fmt: skip
    assert VICTIM_FN not in listed(site) and VICTIM_FN not in on_disk(site)
    assert_site_invariant(site)


def test_retry_after_is_read_as_rfc_9110_says_and_capped() -> None:
    now = 1_800_000_000.0
    assert retry_after({"retry-after": "7"}, now) == 7.0
    assert retry_after({"retry-after": "9" * 40}, now) == MAX_RETRY_AFTER
    when = "Fri, 15 Jan 2027 08:00:05 GMT"  # 5 s after ``now``
    assert retry_after({"retry-after": when}, now) == 5.0
    assert retry_after({"retry-after": "Fri, 15 Jan 2027 07:00:00 GMT"}, now) == 0.0
    for useless in ("", "-3", "1.5", "soon", "Fri, 15 Jan 2027 08:00:05"):
        assert retry_after({"retry-after": useless}, now) is None, useless
    assert retry_after({}, now) is None


async def test_package_5xx_beyond_retries_is_not_published(
    upstream: Upstream, tmp_path: Path
) -> None:
    site = make_sandbox(tmp_path)
    cfg = await first_run(upstream, site, retries=2)
    upstream.publish([*upstream.specs, VICTIM, BYSTANDER])
    upstream.server.add_fault(upstream.path(VICTIM_FN), respond(503))
    upstream.server.reset()
    report = await mirror_unchecked(cfg)
    assert report.status == FAILED and report.failed
    assert upstream.server.count(upstream.path(VICTIM_FN)) == 3  # 1 + 2 retries
    linux = channel_report(report, LINUX)
    assert linux.errors == [f"linux-64/{VICTIM_FN}: HTTP 503"]
    assert linux.status == "published" and linux.added == [BYSTANDER_FN]
    assert listed(site) == on_disk(site) == filenames(upstream.specs, LINUX) - {VICTIM_FN}
    assert_site_invariant(site)


async def test_a_reupload_that_cannot_be_downloaded_leaves_the_published_file(
    upstream: Upstream, tmp_path: Path
) -> None:
    """Upstream re-uploads every linux-64 file under its published name, and all but one of the
    new files fail past their retries: those stay published as they were (listed with their
    records, their bytes on disk, their mirror in the origins map), nothing is deleted whatever
    the deletion guard allows, the failures are reported, and the next run replaces them."""
    site = make_sandbox(tmp_path)
    cfg = await first_run(upstream, site, retries=1)
    everything = filenames(upstream.specs, LINUX)
    before = site_digest(site)
    upstream.publish(small_packages(seed=1))  # other bytes under every name
    arrives = "beta-2.0-h1_0.conda"
    failing = sorted(everything - {arrives})
    assert len(failing) / len(everything) > 0.5  # more than the guard would ever let go
    for fn in failing:
        upstream.server.add_fault(upstream.path(fn), respond(503))
    report = await mirror_unchecked(cfg)

    assert report.status == FAILED and report.failed
    linux = channel_report(report, LINUX)
    assert linux.status == "published"
    assert sorted(linux.errors) == [f"linux-64/{fn}: HTTP 503" for fn in failing]
    assert (linux.updated, linux.removed, linux.deleted_files) == ([arrives], [], 0)
    assert listed(site) == on_disk(site) == everything
    after = site_digest(site)
    for fn in failing:
        assert after[f"{CHANNEL}/{LINUX}/{fn}"] == before[f"{CHANNEL}/{LINUX}/{fn}"]
    assert after[f"{CHANNEL}/{LINUX}/{arrives}"] != before[f"{CHANNEL}/{LINUX}/{arrives}"]
    origins = load_origins(Site(site), CHANNEL, LINUX)
    (mirror_name,) = {m.name for _c, m in cfg.mirrors}
    assert {fn: origins.mirror_of(fn) for fn in everything} == dict.fromkeys(
        everything, mirror_name
    )
    assert_site_invariant(site)

    upstream.server.clear_faults()
    report = await mirror_unchecked(cfg)
    assert not report.failed, report.channels
    assert channel_report(report, LINUX).updated == failing
    assert listed(site) == on_disk(site) == everything
    for fn in everything:
        assert (site / CHANNEL / LINUX / fn).read_bytes() == (
            upstream.root / LINUX / fn
        ).read_bytes()
    assert_site_invariant(site)


async def test_a_failed_reupload_keeps_the_published_file_only_if_the_filters_still_allow_it(
    upstream: Upstream, tmp_path: Path
) -> None:
    """gamma is published under a licence the channel's filters now exclude; upstream
    re-uploads it under an allowed one and the new bytes cannot be had. The published record
    is judged by the filters like any other: excluded, it is not listed again (and its file
    goes with it), whereas alpha, re-uploaded as well and still allowed, stays as it was."""
    site = make_sandbox(tmp_path)
    old = [replace(s, license="GPL-3.0-only") if s.name == "gamma" else s for s in upstream.specs]
    upstream.publish(old)
    await first_run(upstream, site, retries=1)
    before = site_digest(site)
    gamma = filenames([s for s in old if s.name == "gamma"], LINUX)
    alpha = filenames([s for s in old if s.name == "alpha"], LINUX)
    renewed = [
        replace(s, license="MIT", seed=1) if s.name in ("gamma", "alpha") else s for s in old
    ]
    upstream.publish(renewed)
    for fn in gamma | alpha:
        upstream.server.add_fault(upstream.path(fn), respond(503))
    text = config_text(site, upstream.server.url, retries=1)
    filtered = parse_config(text + "    filters: {licenses: {exclude: [GPL-*]}}\n")
    report = await mirror_unchecked(filtered)

    assert report.status == FAILED and report.failed
    linux = channel_report(report, LINUX)
    assert linux.status == "published"
    assert linux.removed == sorted(gamma)
    assert listed(site) == on_disk(site) == filenames(old, LINUX) - gamma
    after = site_digest(site)
    assert all(
        after[f"{CHANNEL}/{LINUX}/{fn}"] == before[f"{CHANNEL}/{LINUX}/{fn}"] for fn in alpha
    )
    assert_site_invariant(site)


# --------------------------------------------------------------------------- 404


async def test_listed_file_404_is_reported_and_others_published(
    upstream: Upstream, tmp_path: Path
) -> None:
    site = make_sandbox(tmp_path)
    cfg = await first_run(upstream, site)
    upstream.publish([*upstream.specs, VICTIM, BYSTANDER])
    (upstream.root / LINUX / VICTIM_FN).unlink()  # listed, but upstream has no such file
    upstream.server.reset()
    report = await mirror_unchecked(cfg)
    assert report.failed
    # A just-listed file may 404 while a CDN catches up: it is retried, then reported.
    assert upstream.server.count(upstream.path(VICTIM_FN), status=404) == 2
    linux = channel_report(report, LINUX)
    assert linux.errors == [f"linux-64/{VICTIM_FN}: HTTP 404"]
    assert linux.added == [BYSTANDER_FN]
    assert VICTIM_FN not in on_disk(site) and VICTIM_FN not in listed(site)
    assert listed(site) == on_disk(site) == filenames(upstream.specs, LINUX) - {VICTIM_FN}
    assert channel_report(report, "noarch").errors == []
    assert_site_invariant(site)


def test_listed_file_404_exits_1(upstream: Upstream, tmp_path: Path) -> None:
    site = make_sandbox(tmp_path)
    upstream.publish([*upstream.specs, VICTIM])
    (upstream.root / LINUX / VICTIM_FN).unlink()
    config = write_config(tmp_path / "channels.yaml", site, upstream.server.url)
    assert main(["mirror", "-c", str(config), "--no-progress"]) == 1
    assert listed(site) == on_disk(site) == filenames(upstream.specs, LINUX) - {VICTIM_FN}
    assert_site_invariant(site)
    (run,) = (site / "history" / "runs").glob("*.json")
    record = json.loads(run.read_bytes())
    assert record["status"] == "failed"
    assert record["channels"][0]["errors"] == [f"linux-64/{VICTIM_FN}: HTTP 404"]


@pytest.mark.parametrize("what", ["package", "repodata"])
async def test_a_retry_after_in_other_digits_is_retried_as_without_one(
    upstream: Upstream, tmp_path: Path, caplog: pytest.LogCaptureFixture, what: str
) -> None:
    """``Retry-After: ²`` (latin-1 0xB2): a digit to str.isdigit, not to float() nor to RFC
    9110, whose delay-seconds are ASCII digits. The answer is a 503 like any other: retried
    after the backoff, not an error of sitegen's own."""
    site = make_sandbox(tmp_path)
    upstream.publish([*upstream.specs, VICTIM])
    path = upstream.path(VICTIM_FN) if what == "package" else "/linux-64/repodata.json.zst"
    upstream.server.add_fault(path, respond(503, headers={"Retry-After": "\u00b2"}), times=1)
    with caplog.at_level(logging.WARNING, logger="sitegen"):
        report = await mirror_unchecked(site_config(site, upstream.server.url, retries=1))
    assert report.status == COMPLETED and not report.failed, report
    assert upstream.server.count(path, status=503) == 1
    assert VICTIM_FN in listed(site) and VICTIM_FN in on_disk(site)
    (retry,) = [r.getMessage() for r in caplog.records if "attempt 1 of 2" in r.getMessage()]
    assert "HTTP 503; trying again in" in retry, retry
    assert_site_invariant(site)
