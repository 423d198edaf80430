"""Flaky and hostile upstreams cannot corrupt the mirror.

Every scenario runs sitegen against a misbehaving server on 127.0.0.1 (fault hooks of
:class:`testkit.upstream.UpstreamServer`, or :class:`testkit.raw_server.RawServer` for an upstream
that accepts connections and never answers), then checks the site invariant
(:func:`testkit.invariant.assert_site_invariant`) and the exact outcome: which files exist and
what the run reported. Retries and timeouts are configured small, so each test takes seconds.
"""

from __future__ import annotations

import bz2
import errno
import gzip
import json
import logging
import os
import random
import re
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import zstandard

from sitegen.cli import main
from sitegen.config import SiteConfig, load_config, parse_config
from sitegen.layout import run_page_path
from sitegen.net.failures import MAX_RETRY_AFTER, retry_after
from sitegen.net.upstream_cache import UpstreamCache
from sitegen.passive.listen import open_listeners, serve_fetcher
from sitegen.store.origins import load_origins
from sitegen.store.site import Site
from sitegen.sync import publish as publish_module
from sitegen.sync.history import History
from sitegen.sync.report import COMPLETED, FAILED, STOPPED, ChannelSubdirReport, RunReport
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import PackageSpec, write_channel
from sitegen.web.render import render_site
from testkit.faults import corrupt, hang, oversize, redirect, reset_after, short_length, slow_drip
from testkit.invariant import assert_site_invariant, make_sandbox, site_digest
from testkit.raw_server import RawServer
from testkit.require import in_ci
from testkit.site import rewrite_repodata
from testkit.small_channel import (
    CHANNEL,
    config_text,
    filenames,
    set_repodata,
    site_config,
    small_packages,
    write_config,
)
from testkit.upstream import (
    FaultHook,
    UpstreamHandler,
    UpstreamServer,
    drop_connection,
    respond,
    truncate,
)

pytestmark = pytest.mark.integration

LINUX = "linux-64"
# Added upstream after the first run: one that the fault hits, one that must arrive anyway.
VICTIM = PackageSpec("zeta", "1.0", "h9_0", license="MIT", formats=("conda",), payload_size=1500)
BYSTANDER = PackageSpec("eta", "1.0", "h8_0", license="MIT", formats=("tar.bz2",))
VICTIM_FN = VICTIM.filename("conda")
BYSTANDER_FN = BYSTANDER.filename("tar.bz2")


@pytest.fixture(autouse=True)
def _seeded() -> None:
    random.seed(1234)  # backoff jitter: deterministic, not that any outcome depends on it


@dataclass
class Upstream:
    root: Path
    server: UpstreamServer
    specs: list[PackageSpec]

    def path(self, fn: str, subdir: str = LINUX) -> str:
        return f"/{subdir}/{fn}"

    def publish(self, specs: list[PackageSpec]) -> None:
        """Replace the upstream channel's content (the server reads files per request)."""
        self.specs = specs
        write_channel(self.root, specs, zst=True)


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Upstream]:
    root = tmp_path / "upstream"
    specs = small_packages()
    write_channel(root, specs, zst=True)
    with UpstreamServer(root) as server:
        yield Upstream(root, server, specs)


async def mirror(config: SiteConfig, **options: Any) -> RunReport:
    return await run_mirror(config, MirrorOptions(progress=False, **options))


def channel_report(report: RunReport, subdir: str) -> ChannelSubdirReport:
    (found,) = [c for c in report.channels if c.channel == CHANNEL and c.subdir == subdir]
    return found


def listed(site: Path, subdir: str = LINUX) -> set[str]:
    document = json.loads((site / CHANNEL / subdir / "repodata.json").read_bytes())
    return set(document["packages"]) | set(document["packages.conda"])


def on_disk(site: Path, subdir: str = LINUX) -> set[str]:
    directory = site / CHANNEL / subdir
    return {p.name for p in directory.iterdir() if p.name.endswith((".conda", ".tar.bz2"))}


async def first_run(upstream: Upstream, site: Path, **config: Any) -> SiteConfig:
    """Mirror the initial channel cleanly; returns the config for the next runs."""
    cfg = site_config(site, upstream.server.url, **config)
    report = await mirror(cfg)
    assert report.status == COMPLETED and not report.failed, report
    assert listed(site) == on_disk(site) == filenames(upstream.specs, LINUX)
    assert_site_invariant(site)
    return cfg


# --------------------------------------------------------------------------- transient 5xx


@pytest.mark.parametrize("status", [500, 502, 503, 429])
async def test_package_5xx_then_success_is_published(
    upstream: Upstream, tmp_path: Path, status: int
) -> None:
    site = make_sandbox(tmp_path)
    upstream.publish([*upstream.specs, VICTIM])
    upstream.server.add_fault(upstream.path(VICTIM_FN), respond(status), times=2)
    report = await mirror(site_config(site, upstream.server.url, retries=2))
    assert report.status == COMPLETED and not report.failed
    assert upstream.server.count(upstream.path(VICTIM_FN), status=status) == 2
    assert upstream.server.count(upstream.path(VICTIM_FN), status=200) == 1
    assert VICTIM_FN in listed(site) and VICTIM_FN in on_disk(site)
    assert channel_report(report, LINUX).downloaded_files == len(filenames(upstream.specs, LINUX))
    assert_site_invariant(site)


async def test_repodata_5xx_then_success_is_published(upstream: Upstream, tmp_path: Path) -> None:
    site = make_sandbox(tmp_path)
    upstream.server.add_fault("/linux-64/repodata.json.zst", respond(503), times=2)
    report = await mirror(site_config(site, upstream.server.url, retries=2))
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
        report = await mirror(site_config(site, upstream.server.url, retries=1))
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
    report = await mirror(site_config(site, upstream.server.url, retries=2))
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
    report = await mirror(cfg)
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
    report = await mirror(cfg)

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
    report = await mirror(cfg)
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
    report = await mirror(filtered)

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
    report = await mirror(cfg)
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


# --------------------------------------------------------------------------- broken transfers


@dataclass(frozen=True)
class Transfer:
    """A way to botch the victim's download, and what the run must say about it."""

    name: str
    install: Callable[[UpstreamServer, str, int | None], None]
    errors: tuple[str, ...]  # the report names one of these


def _hook(factory: Callable[[], FaultHook]) -> Callable[[UpstreamServer, str, int | None], None]:
    def install(server: UpstreamServer, path: str, times: int | None) -> None:
        server.add_fault(path, factory(), times)

    return install


def _redirect_loop(server: UpstreamServer, path: str, times: int | None) -> None:
    server.add_fault(path, redirect(path + ".moved"), times)
    server.add_fault(path + ".moved", redirect(path), times)


TRANSFERS = [
    Transfer("reset", _hook(lambda: reset_after(300)), ("ReadError", "RemoteProtocolError")),
    Transfer("truncated", _hook(lambda: truncate(300)), ("RemoteProtocolError",)),
    Transfer("dropped", _hook(drop_connection), ("RemoteProtocolError",)),
    Transfer(
        "longer than listed",
        _hook(oversize),
        ("checksum mismatch: more than the expected",),
    ),
    Transfer("content-length lies", _hook(lambda: short_length(100)), ("checksum mismatch: size",)),
    Transfer("wrong bytes", _hook(corrupt), ("checksum mismatch: sha256",)),
    Transfer("slow drip", _hook(lambda: slow_drip(16, 0.05)), ("TooSlowError",)),
    Transfer("never answers", _hook(hang), ("ReadTimeout", "TooSlowError")),
    Transfer("redirect loop", _redirect_loop, ("too many redirects",)),
]


def _victims() -> dict[str, PackageSpec]:
    """One new upstream package per kind of broken transfer, all hit in the same run."""
    return {
        t.name: PackageSpec(
            f"victim{i}", "1.0", f"h{i}_0", license="MIT", formats=("conda",), payload_size=1500
        )
        for i, t in enumerate(TRANSFERS)
    }


async def test_broken_transfers_are_never_published(upstream: Upstream, tmp_path: Path) -> None:
    site = make_sandbox(tmp_path)
    cfg = await first_run(upstream, site, retries=1, timeout=0.5)
    before = {fn: (site / CHANNEL / LINUX / fn).read_bytes() for fn in on_disk(site)}
    victims = _victims()
    upstream.publish([*upstream.specs, *victims.values(), BYSTANDER])
    for transfer in TRANSFERS:
        transfer.install(
            upstream.server, upstream.path(victims[transfer.name].filename("conda")), None
        )
    upstream.server.reset()
    report = await mirror(cfg)

    assert report.status == FAILED and report.failed
    assert [m.status for m in report.mirrors] == [COMPLETED]  # the mirror itself was read fine
    linux = channel_report(report, LINUX)
    assert linux.status == "published" and linux.added == [BYSTANDER_FN]
    errors = {e.split(": ", 1)[0]: e.split(": ", 1)[1] for e in linux.errors}
    assert len(errors) == len(linux.errors) == len(TRANSFERS)
    for transfer in TRANSFERS:
        fn = victims[transfer.name].filename("conda")
        error = errors[f"linux-64/{fn}"]
        assert any(e in error for e in transfer.errors), (transfer.name, error)
        attempts = upstream.server.count(upstream.path(fn))
        if transfer.name == "redirect loop":
            # One attempt (a loop is not worth retrying): the request and 10 redirects.
            assert attempts + upstream.server.count(upstream.path(fn) + ".moved") == 11
        elif transfer.name == "dropped":
            # retries: 1; an attempt sent on a kept-alive connection that is closed unanswered
            # (which may be the keep-alive race) goes once more to a fresh connection.
            assert 2 <= attempts <= 4, attempts
        else:
            assert attempts == 2, transfer.name  # retries: 1
    expected = filenames(upstream.specs, LINUX) - {v.filename("conda") for v in victims.values()}
    assert BYSTANDER_FN in expected
    assert listed(site) == on_disk(site) == expected
    for fn, data in before.items():
        assert (site / CHANNEL / LINUX / fn).read_bytes() == data
    assert_site_invariant(site)


async def test_transient_broken_transfers_are_retried(upstream: Upstream, tmp_path: Path) -> None:
    site = make_sandbox(tmp_path)
    victims = _victims()
    upstream.publish([*upstream.specs, *victims.values()])
    for transfer in TRANSFERS:
        transfer.install(
            upstream.server, upstream.path(victims[transfer.name].filename("conda")), 1
        )
    report = await mirror(site_config(site, upstream.server.url, retries=1, timeout=0.5))
    assert report.status == COMPLETED and not report.failed, report.channels
    assert listed(site) == on_disk(site) == filenames(upstream.specs, LINUX)
    for victim in victims.values():
        # One botched answer, then the file itself (a redirect loop also asks once more).
        assert upstream.server.count(upstream.path(victim.filename("conda"))) == 2
    assert_site_invariant(site)


# --------------------------------------------------------------------------- repodata


def _zst(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=3).compress(data)


def _broken_json(data: bytes) -> tuple[bytes, bytes]:
    bad = b'{"info": {"subdir": "linux-64"}, "packages": {,}'
    return bad, _zst(bad)


def _truncated_json(data: bytes) -> tuple[bytes, bytes]:
    cut = data[: len(data) // 2]
    return cut, _zst(cut)


def _garbage_zst(data: bytes) -> tuple[bytes, bytes]:
    return data, random.Random(7).randbytes(512)


def _truncated_zst(data: bytes) -> tuple[bytes, bytes]:
    whole = _zst(data)
    return data, whole[: len(whole) // 2]


def _not_an_object(data: bytes) -> tuple[bytes, bytes]:
    return b"[]", _zst(b"[]")


def _packages_not_an_object(data: bytes) -> tuple[bytes, bytes]:
    bad = json.dumps({"info": {}, "packages": [1, 2], "packages.conda": {}}).encode()
    return bad, _zst(bad)


def _nested_too_deep(data: bytes) -> tuple[bytes, bytes]:
    document = json.loads(data)
    document["packages.conda"]["alpha-1.0-h0_0.conda"]["depends"] = ["@@DEEP@@"]
    bad = json.dumps(document).encode().replace(b'"@@DEEP@@"', b"[" * 100_000 + b"]" * 100_000)
    return bad, _zst(bad)


BAD_REPODATA = {
    "invalid JSON": _broken_json,
    "truncated JSON": _truncated_json,
    "garbage zst": _garbage_zst,
    "truncated zst": _truncated_zst,
    "not an object": _not_an_object,
    "packages is a list": _packages_not_an_object,
    "nested too deep": _nested_too_deep,
}


def _assert_previous_state_kept(site: Path, before: dict[str, str], report: RunReport) -> None:
    assert report.failed
    assert [m.status for m in report.mirrors] == [FAILED]
    assert report.mirrors[0].errors, report.mirrors[0]
    for subdir in (LINUX, "noarch"):
        cr = channel_report(report, subdir)
        assert cr.status == "failed"
        assert cr.errors and cr.errors[0].startswith("not updated: mirror cloud-example")
    assert site_digest(site) == before, "the published state changed"
    assert_site_invariant(site)


@pytest.mark.parametrize("damage", list(BAD_REPODATA.values()), ids=list(BAD_REPODATA))
async def test_bad_repodata_keeps_previous_state(
    upstream: Upstream, tmp_path: Path, damage: Callable[[bytes], tuple[bytes, bytes]]
) -> None:
    site = make_sandbox(tmp_path)
    cfg = await first_run(upstream, site)
    before = site_digest(site)
    upstream.publish([*upstream.specs, VICTIM, BYSTANDER])
    good = (upstream.root / LINUX / "repodata.json").read_bytes()
    set_repodata(upstream.root, LINUX, *damage(good))
    upstream.server.reset()
    report = await mirror(cfg)
    _assert_previous_state_kept(site, before, report)
    assert upstream.server.count(".conda") == upstream.server.count(".tar.bz2") == 0
    # The broken body was not cached as "last seen": a fixed upstream is picked up next time.
    set_repodata(upstream.root, LINUX, good)
    report = await mirror(cfg)
    assert not report.failed
    assert listed(site) == on_disk(site) == filenames(upstream.specs, LINUX)
    assert_site_invariant(site)


# Where a two-frame repodata.json.zst is cut, given the whole and its second frame's length.
ZST_CUTS: dict[str, Callable[[int, int], int]] = {
    "inside the second frame": lambda whole, second: whole - second // 2,
    "a byte short": lambda whole, second: whole - 1,
    "inside the first frame header": lambda whole, second: 5,
    "empty": lambda whole, second: 0,
}


@pytest.mark.parametrize("cut", list(ZST_CUTS.values()), ids=list(ZST_CUTS))
async def test_a_repodata_zst_cut_short_is_reported_as_cut(
    upstream: Upstream, tmp_path: Path, cut: Callable[[int, int], int]
) -> None:
    """A repodata.json.zst whose zstd data stops inside a frame (a file cut short upstream or
    on the way) is reported as truncated, not as the invalid JSON its decoded head makes."""
    site = make_sandbox(tmp_path)
    cfg = await first_run(upstream, site)
    before = site_digest(site)
    upstream.publish([*upstream.specs, VICTIM])
    data = (upstream.root / LINUX / "repodata.json").read_bytes()
    second = _zst(data)
    whole = _zst(b" ") + second
    end = cut(len(whole), len(second))
    set_repodata(upstream.root, LINUX, data, whole[:end])
    report = await mirror(cfg)
    _assert_previous_state_kept(site, before, report)
    (error,) = report.mirrors[0].errors
    assert f"repodata.json.zst is {'truncated' if end else 'empty'}" in error, error
    assert "cut short" in error and "JSON" not in error


async def test_repodata_zst_of_several_frames_is_read_whole(
    upstream: Upstream, tmp_path: Path
) -> None:
    """zstd data is one or more frames (RFC 8878; pzstd writes several): every frame of a
    repodata.json.zst is decoded, not just the first."""
    site = make_sandbox(tmp_path)
    cfg = await first_run(upstream, site)
    upstream.publish([*upstream.specs, VICTIM, BYSTANDER])
    data = (upstream.root / LINUX / "repodata.json").read_bytes()
    half = len(data) // 2
    set_repodata(upstream.root, LINUX, data, _zst(data[:half]) + _zst(data[half:]))
    report = await mirror(cfg)
    assert report.status == COMPLETED and not report.failed, report.mirrors[0].errors
    assert listed(site) == on_disk(site) == filenames(upstream.specs, LINUX)
    assert_site_invariant(site)


async def test_a_validator_with_bytes_beyond_ascii_is_sent_back_as_it_came(
    upstream: Upstream, tmp_path: Path
) -> None:
    """An ETag may hold bytes beyond ASCII (RFC 9110 obs-text): the next run asks with the
    same bytes (and is answered 304) instead of failing to build its request."""
    etag = '"caf\xe9"'  # sent and read back as latin-1 by http.server: the byte 0xE9

    def tagged(handler: UpstreamHandler) -> None:
        if handler.headers.get("If-None-Match") == etag:
            handler.respond(304, headers={"ETag": etag})
            return
        data = (upstream.root / LINUX / "repodata.json.zst").read_bytes()
        handler.respond(200, data, {"ETag": etag})

    upstream.server.add_fault("/linux-64/repodata.json.zst", tagged)
    site = make_sandbox(tmp_path)
    cfg = await first_run(upstream, site)
    report = await mirror(cfg)
    assert report.status == COMPLETED and not report.failed, report.mirrors[0].errors
    asked = [r for r in upstream.server.requests if r.path == "/linux-64/repodata.json.zst"]
    assert [(r.header("If-None-Match"), r.status) for r in asked] == [(None, 200), (etag, 304)]
    assert_site_invariant(site)


@pytest.mark.parametrize(
    "hook",
    [respond(500), truncate(40), drop_connection(), redirect("/linux-64/repodata.json.zst")],
    ids=["500", "truncated", "dropped", "redirect loop"],
)
async def test_repodata_transfer_failure_keeps_previous_state(
    upstream: Upstream, tmp_path: Path, hook: FaultHook
) -> None:
    site = make_sandbox(tmp_path)
    cfg = await first_run(upstream, site, retries=1, timeout=1.0)
    before = site_digest(site)
    upstream.publish([*upstream.specs, VICTIM])
    upstream.server.add_fault("/linux-64/repodata.json.zst", hook)
    report = await mirror(cfg)
    _assert_previous_state_kept(site, before, report)
    (error,) = report.mirrors[0].errors
    assert error.startswith(f"linux-64: {upstream.server.url}/linux-64/repodata.json.zst: ")


@pytest.mark.parametrize("mode", ["silent", "reset"])
async def test_upstream_that_never_answers_keeps_previous_state(
    upstream: Upstream, tmp_path: Path, mode: str
) -> None:
    site = make_sandbox(tmp_path)
    await first_run(upstream, site)
    before = site_digest(site)
    with RawServer(mode) as raw:
        url = raw.url
        cfg = site_config(site, url, retries=1, timeout=0.5)
        report = await mirror(cfg)
        assert raw.connections >= 2
    _assert_previous_state_kept(site, before, report)
    expected = ("ReadTimeout",) if mode == "silent" else ("ReadError", "RemoteProtocolError")
    errors = sorted(report.mirrors[0].errors)
    assert len(errors) == 2
    for subdir, error in zip((LINUX, "noarch"), errors, strict=True):
        assert error.startswith(f"{subdir}: {url}/{subdir}/repodata.json.zst: "), error
        assert error.endswith(" after 2 attempts")
        assert any(e in error for e in expected), error


async def test_unreadable_file_source_repodata_fails_that_mirror_alone(tmp_path: Path) -> None:
    """A file:// source whose repodata cannot be read (no permission, EIO; here a directory
    under the name, which even root cannot read) fails its own subdir; the other mirrors of
    the run are still published, and the run is not cut short by a traceback."""
    good, bad = tmp_path / "good", tmp_path / "bad"
    write_channel(good, [PackageSpec("zlib", "1.3", "h0_0", subdir="noarch")])
    write_channel(bad, [PackageSpec("bzip2", "1.0", "h0_0", subdir="noarch")])
    (bad / "noarch" / "repodata.json.zst").mkdir()
    site = make_sandbox(tmp_path)
    cfg = parse_config(
        f"output: {site}\n"
        "channels:\n"
        f"  good: {{url: '{good.as_uri()}', subdirs: [noarch]}}\n"
        f"  bad: {{url: '{bad.as_uri()}', subdirs: [noarch]}}\n"
    )
    report = await run_mirror(cfg, MirrorOptions(progress=False))
    statuses = {(c.channel, c.subdir): c.status for c in report.channels}
    assert statuses == {("good", "noarch"): "published", ("bad", "noarch"): "failed"}
    (error,) = next(m for m in report.mirrors if m.name == "bad").errors
    assert error.startswith("noarch: ") and "repodata.json.zst" in error, error
    assert_site_invariant(site)


async def test_cached_repodata_is_read_off_the_event_loop(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unchanged upstream (304) is served from the cached body: tens to hundreds of MB read
    from disk in a worker thread, not in the event loop while other subdirs are fetched."""
    site = make_sandbox(tmp_path)
    cfg = await first_run(upstream, site)
    read_in_loop: list[bool] = []
    real_body = UpstreamCache.body

    def body(self: UpstreamCache, mirror: str, subdir: str) -> bytes | None:
        read_in_loop.append(trio.lowlevel.in_trio_run())
        return real_body(self, mirror, subdir)

    monkeypatch.setattr(UpstreamCache, "body", body)
    report = await mirror(cfg)
    assert report.status == COMPLETED and not report.failed, report
    assert read_in_loop == [False, False]  # linux-64 and noarch, each from a worker thread


def test_bad_repodata_exits_1(upstream: Upstream, tmp_path: Path) -> None:
    site = make_sandbox(tmp_path)
    config = write_config(tmp_path / "channels.yaml", site, upstream.server.url)
    assert main(["mirror", "-c", str(config), "--no-progress"]) == 0
    before = site_digest(site)
    set_repodata(upstream.root, LINUX, b'{"packages": ')
    assert main(["mirror", "-c", str(config), "--no-progress"]) == 1
    assert site_digest(site) == before
    assert_site_invariant(site)


# --------------------------------------------------------------------------- deletion guard

MANY = [
    PackageSpec(f"pkg{i}", "1.0", f"h{i}_0", license="MIT", formats=("conda",)) for i in range(8)
]


@pytest.mark.parametrize("shrink", ["90% fewer", "empty", "subdir gone"])
async def test_deletion_guard_holds_a_shrunken_subdir(
    upstream: Upstream, tmp_path: Path, shrink: str
) -> None:
    site = make_sandbox(tmp_path)
    upstream.publish(small_packages(extra=tuple(MANY)))
    cfg = await first_run(upstream, site)
    everything = filenames(upstream.specs, LINUX)
    assert len(everything) == 13
    before = site_digest(site)
    keep = sorted(everything)[:1]

    def shrink_to(document: dict[str, Any]) -> None:
        for key in ("packages", "packages.conda"):
            wanted = keep if shrink == "90% fewer" else []
            document[key] = {fn: r for fn, r in document[key].items() if fn in wanted}

    if shrink == "subdir gone":
        for name in ("repodata.json", "repodata.json.zst"):
            (upstream.root / LINUX / name).unlink()
    else:
        rewrite_repodata(upstream.root, LINUX, shrink_to)
    report = await mirror(cfg)

    linux = channel_report(report, LINUX)
    assert linux.status == "held"
    dropped = 12 if shrink == "90% fewer" else 13
    (why,) = linux.errors
    assert why.startswith(f"would remove {dropped} of 13 published files")
    assert "--force-delete" in why
    assert report.failed and channel_report(report, "noarch").errors == []
    assert site_digest(site) == before
    assert listed(site) == on_disk(site) == everything
    assert_site_invariant(site)
    if shrink == "subdir gone":
        assert report.mirrors[0].subdirs[LINUX].upstream == "missing"

    # Forced, the subdir follows upstream, metadata first and deletions after.
    report = await mirror(cfg, force_delete=True)
    assert channel_report(report, LINUX).status == "published"
    assert not report.failed
    expected = set(keep) if shrink == "90% fewer" else set()
    assert listed(site) == on_disk(site) == expected
    assert channel_report(report, LINUX).deleted_files == 13 - len(expected)
    assert_site_invariant(site)


def test_deletion_guard_exits_1(upstream: Upstream, tmp_path: Path) -> None:
    site = make_sandbox(tmp_path)
    upstream.publish(small_packages(extra=tuple(MANY)))
    config = write_config(tmp_path / "channels.yaml", site, upstream.server.url)
    assert main(["mirror", "-c", str(config), "--no-progress"]) == 0
    before = site_digest(site)
    rewrite_repodata(
        upstream.root, LINUX, lambda d: d.update(packages={}, **{"packages.conda": {}})
    )
    assert main(["mirror", "-c", str(config), "--no-progress"]) == 1
    assert site_digest(site) == before
    assert main(["mirror", "-c", str(config), "--no-progress", "--force-delete"]) == 0
    assert listed(site) == on_disk(site) == set()
    assert_site_invariant(site)


# --------------------------------------------------------------------------- the compressed twins


async def test_metadata_twins_match_after_faulty_runs(upstream: Upstream, tmp_path: Path) -> None:
    """After a run with failures, .zst/.bz2 still decompress to exactly repodata.json."""
    site = make_sandbox(tmp_path)
    upstream.publish([*upstream.specs, VICTIM, BYSTANDER])
    upstream.server.add_fault(upstream.path(VICTIM_FN), corrupt())
    report = await mirror(site_config(site, upstream.server.url, repodata_bz2=True))
    assert report.failed
    directory = site / CHANNEL / LINUX
    body = (directory / "repodata.json").read_bytes()
    assert bz2.decompress((directory / "repodata.json.bz2").read_bytes()) == body
    zst = (directory / "repodata.json.zst").read_bytes()
    assert zstandard.ZstdDecompressor().stream_reader(zst).read() == body
    assert VICTIM_FN not in body.decode()
    assert_site_invariant(site)


def test_failures_are_logged(
    upstream: Upstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    site = make_sandbox(tmp_path)
    upstream.publish([*upstream.specs, VICTIM])
    upstream.server.add_fault(upstream.path(VICTIM_FN), corrupt())
    config = write_config(tmp_path / "channels.yaml", site, upstream.server.url)
    with caplog.at_level(logging.INFO, logger="sitegen"):
        assert main(["mirror", "-c", str(config), "--no-progress"]) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(VICTIM_FN in e and "checksum mismatch: sha256" in e for e in errors), errors
    assert_site_invariant(site)


# --------------------------------------------------------------------------- disk full


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs: a disk that can really fill up (root only; skipped elsewhere)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        message = f"cannot mount a tmpfs (needs root): {result.stderr.strip()}"
        if in_ci():
            pytest.fail(f"CI=true: {message}", pytrace=False)
        pytest.skip(message)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill_disk(disk: Path, leave: int) -> None:
    """Fill the file system of ``disk`` with a filler file until ``leave`` bytes are free."""
    filler = disk / "filler"
    # Unbuffered: a write cut short by the full disk leaves nothing behind that closing the
    # file would try (and fail) to write again.
    with open(filler, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    os.truncate(filler, max(0, filler.stat().st_size - leave))
    assert leave <= shutil.disk_usage(disk).free < leave + 65536


def _temps(site: Path) -> list[Path]:
    return list(site.rglob(".sitegen-tmp-*"))


async def test_disk_full_during_download_fails_cleanly(
    upstream: Upstream, small_disk: Path
) -> None:
    site = make_sandbox(small_disk)
    cfg = await first_run(upstream, site)
    before = site_digest(site)
    big = PackageSpec("big", "1.0", "h0_0", formats=("conda",), payload_size=1_200_000)
    upstream.publish([*upstream.specs, big])
    assert (upstream.root / LINUX / big.filename("conda")).stat().st_size > 256 * 1024

    def fill_then_serve(handler: UpstreamHandler) -> bool:
        # The disk fills once the download is under way: before it, the free-space guard
        # would stop the run with nothing downloaded (tests/test_free_space.py).
        fill_disk(small_disk, leave=192 * 1024)
        return False

    upstream.server.add_fault(upstream.path(big.filename("conda")), fill_then_serve, times=1)
    report = await mirror(cfg)

    assert report.status == FAILED
    linux = channel_report(report, LINUX)
    (error,) = linux.errors
    assert error.startswith(f"linux-64/{big.filename('conda')}: ")
    assert "No space left on device" in error
    assert upstream.server.count(upstream.path(big.filename("conda"))) == 1  # not retried
    assert site_digest(site) == before  # the previous repodata and files, untouched
    assert not _temps(site)
    assert_site_invariant(site)


def _bloat(document: dict[str, Any], times: int = 40_000) -> None:
    """A repodata patch that makes repodata.json large but its .zst tiny."""
    for section in ("packages", "packages.conda"):
        for record in document[section].values():
            record["description"] = "patched " * times


async def test_disk_full_during_publish_keeps_previous_state(
    upstream: Upstream, small_disk: Path
) -> None:
    site = make_sandbox(small_disk)
    cfg = await first_run(upstream, site)
    before = site_digest(site)
    rewrite_repodata(upstream.root, LINUX, _bloat)
    assert (upstream.root / LINUX / "repodata.json.zst").stat().st_size < 16 * 1024
    fill_disk(small_disk, leave=640 * 1024)  # room for the .zst; not the JSON files

    report = await mirror(cfg)

    assert report.status == FAILED
    linux = channel_report(report, LINUX)
    assert linux.status == "failed"
    (error,) = linux.errors
    assert error.startswith("linux-64: could not publish: No space left on device")
    assert error.endswith("kept the previous state")
    assert channel_report(report, "noarch").errors == []
    assert site_digest(site) == before  # no new .zst beside an old repodata.json
    assert not _temps(site)
    assert_site_invariant(site)


async def test_disk_full_during_publish_keeps_the_origins_of_the_previous_state(
    upstream: Upstream, small_disk: Path, tmp_path: Path
) -> None:
    """A channel fed by two passive mirrors; a file only the second one lists. The second
    mirror drops it while the first one's repodata grows past the free space: publishing
    fails and the previous repodata.json, which lists the file, stays served. The origins map
    must still say where that file comes from, so the pull-through fetcher fetches it; once a
    run publishes, the map names exactly what is published. (Passive: the site invariant, which
    wants every listed file on disk, does not apply.)"""
    two_root = tmp_path / "two"
    write_channel(two_root, [VICTIM], zst=True)
    site = make_sandbox(small_disk)
    with UpstreamServer(two_root) as two:
        mirrors = "".join(
            f"      - {{name: {name}, url: '{url}', subdirs: [linux-64], mode: passive}}\n"
            for name, url in (("one", upstream.server.url), ("two", two.url))
        )
        config_path = tmp_path / "channels.yaml"
        config_path.write_text(
            f"output: {site}\ndownload: {{retries: 0, timeout: 5}}\n"
            f"channels:\n  {CHANNEL}:\n    mirrors:\n{mirrors}"
        )
        cfg = load_config(config_path)
        report = await mirror(cfg)
        assert not report.failed, report.channels
        everything = filenames(upstream.specs, LINUX) | {VICTIM_FN}
        assert listed(site) == everything and on_disk(site) == set()
        assert load_origins(Site(site), CHANNEL, LINUX).mirror_of(VICTIM_FN) == "two"

        rewrite_repodata(two_root, LINUX, lambda d: d.update(packages={}, **{"packages.conda": {}}))
        # repodata.json and current_repodata.json ~0.5 MB each: more than is left, but less
        # than the disk holds once the filler goes.
        rewrite_repodata(upstream.root, LINUX, partial(_bloat, times=12_000))
        fill_disk(small_disk, leave=640 * 1024)
        report = await mirror(cfg)
        linux = channel_report(report, LINUX)
        assert linux.status == "failed"
        (error,) = linux.errors
        assert error.startswith("linux-64: could not publish: No space left on device")
        assert listed(site) == everything
        assert load_origins(Site(site), CHANNEL, LINUX).mirror_of(VICTIM_FN) == "two"
        listeners = await open_listeners("127.0.0.1", 0)
        async with trio.open_nursery() as nursery:
            fetcher = await nursery.start(serve_fetcher, cfg, listeners)
            reply = await fetcher.reply("GET", f"/{CHANNEL}/{LINUX}/{VICTIM_FN}")
            nursery.cancel_scope.cancel()
        assert (reply.status, reply.outcome) == (200, "fetched"), reply.body
        assert on_disk(site) == {VICTIM_FN}

        (small_disk / "filler").unlink()
        report = await mirror(cfg)
        assert channel_report(report, LINUX).status == "published", report.channels
    assert listed(site) == everything - {VICTIM_FN} and on_disk(site) == set()
    origins = load_origins(Site(site), CHANNEL, LINUX)
    assert set(origins.files) == everything - {VICTIM_FN}


def _reuploaded_beta(specs: list[PackageSpec]) -> list[PackageSpec]:
    """The channel with beta's file uploaded again under its name, with other bytes."""
    return [replace(s, seed=1) if s.name == "beta" else s for s in specs]


def _second_compression_fails(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any, Any], None]:
    """The second repodata.json.zst of the run fails for a full disk (that of the second step
    of a two-step publish); returns the real compression, to put back."""
    compressions: list[int] = []
    real = publish_module.zstd_stream

    def second_fails(source: Any, out: Any) -> None:
        compressions.append(source.size())
        if len(compressions) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(source, out)

    monkeypatch.setattr(publish_module, "zstd_stream", second_fails)
    return real


def _serves_upstreams_bytes(site: Path, upstream: Upstream, fn: str) -> bool:
    """Whether the site's linux-64 file ``fn`` holds what upstream serves under that name."""
    return (site / CHANNEL / LINUX / fn).read_bytes() == (upstream.root / LINUX / fn).read_bytes()


def _results_shown(cfg: SiteConfig, run_id: str) -> list[str]:
    """The pages rendered now: what the run's page and the history page say of linux-64."""
    render_site(cfg)
    row = re.compile(
        rf"<td>{re.escape(CHANNEL)}/{LINUX}</td>\s*<td data-label=\"Result\">"
        r"<span class=\"badge badge-\w+\">([^<]*)</span>"
    )
    pages = (cfg.output / run_page_path(run_id), cfg.output / "history" / "index.html")
    run_page, history = (page.read_text(encoding="utf-8") for page in pages)
    # The history page shows the newest run first.
    return [row.findall(run_page)[0], row.findall(history)[0]]


async def test_disk_full_while_a_replacements_shards_are_written_keeps_previous_state(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upstream re-uploads beta (its only file) with other bytes; the disk has no room for the
    shard of its new record. The subdir fails before anything of it is published: the old
    repodata.json still lists beta, whose old bytes stay in place, as the report says; the
    next run, with room again, publishes the new bytes."""
    site = make_sandbox(tmp_path)
    cfg = await first_run(upstream, site)
    beta = "beta-2.0-h1_0.conda"
    before = site_digest(site)
    upstream.publish(_reuploaded_beta(upstream.specs))
    write_addressed = Site.write_addressed

    def full(self: Site, target: Path, data: bytes) -> bool:
        if not target.exists():  # a shard new to the disk: no room for it
            raise OSError(errno.ENOSPC, "No space left on device", str(target))
        return write_addressed(self, target, data)

    monkeypatch.setattr(Site, "write_addressed", full)
    report = await mirror(cfg)
    linux = channel_report(report, LINUX)
    assert linux.status == "failed"
    (error,) = linux.errors
    assert error.startswith("linux-64: could not publish: No space left on device")
    assert error.endswith("kept the previous state")
    # Its new bytes wait under a staging name of this (live) process, for a later run to clear.
    after = {path: digest for path, digest in site_digest(site).items() if "-staged-" not in path}
    assert after == before
    assert beta in listed(site)
    assert_site_invariant(site, settled=False)

    monkeypatch.setattr(Site, "write_addressed", write_addressed)
    report = await mirror(cfg)
    assert channel_report(report, LINUX).updated == [beta]
    assert _serves_upstreams_bytes(site, upstream, beta)
    assert_site_invariant(site)


async def test_disk_full_in_a_replacements_second_step_says_what_is_published(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upstream re-uploads beta; its subdir is published without it first, then the disk
    fills while the repodata listing its new bytes is compressed. The report says the subdir
    is published without the replaced file (not that it kept its previous state), which the
    repodata shows; the next run lists the new bytes."""
    site = make_sandbox(tmp_path)
    cfg = await first_run(upstream, site)
    beta = "beta-2.0-h1_0.conda"
    upstream.publish(_reuploaded_beta(upstream.specs))
    real = _second_compression_fails(monkeypatch)
    report = await mirror(cfg)
    linux = channel_report(report, LINUX)
    assert linux.status == "failed"
    (error,) = linux.errors
    assert error.startswith("linux-64: could not publish: No space left on device")
    assert error.endswith("published without the files replaced upstream")
    assert beta not in listed(site)
    assert_site_invariant(site)
    shown = "published without the files replaced upstream"
    assert _results_shown(cfg, report.id) == [shown, shown]

    monkeypatch.setattr(publish_module, "zstd_stream", real)
    report = await mirror(cfg)
    assert channel_report(report, LINUX).added == [beta]
    assert _serves_upstreams_bytes(site, upstream, beta)
    assert_site_invariant(site)


@pytest.mark.parametrize(
    "step", ["sitegen.sync.publish_shards.prune_shards", "sitegen.sync.publish.prune_subdir"]
)
async def test_disk_full_after_the_renames_reports_the_subdir_published(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    """Once repodata.json is renamed in, the subdir is published: a disk error in the pruning
    after it (the retired-shards state not written, a file not deleted) leaves something for
    the next run to tidy, and the report still says what was published, never "failed, kept
    the previous state"."""
    site = make_sandbox(tmp_path)
    cfg = await first_run(upstream, site)
    upstream.publish([*upstream.specs, VICTIM])

    def full(*_args: object) -> list[str]:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(step, full)
    report = await mirror(cfg)
    linux = channel_report(report, LINUX)
    assert (linux.status, linux.errors) == ("published", [])
    assert VICTIM_FN in linux.added
    assert VICTIM_FN in listed(site)
    assert_site_invariant(site)


async def test_a_publishing_marker_that_cannot_be_removed_reports_the_subdir_published(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The subdir's files are renamed in, then its publishing marker cannot be removed (an I/O
    error): the subdir is published, as the report says; the next run that publishes it,
    finding the marker, writes its siblings again and removes it."""
    site = make_sandbox(tmp_path)
    cfg = await first_run(upstream, site)
    upstream.publish([*upstream.specs, VICTIM])
    remove = Site.remove

    def failing(self: Site, path: Path) -> bool:
        if path.parent.name == CHANNEL.rpartition("/")[2] and path.name == LINUX:
            raise OSError(errno.EIO, "Input/output error", str(path))
        return remove(self, path)

    monkeypatch.setattr(Site, "remove", failing)
    report = await mirror(cfg)
    linux = channel_report(report, LINUX)
    assert (linux.status, linux.errors) == ("published", [])
    assert VICTIM_FN in linux.added
    assert VICTIM_FN in listed(site)
    marker = site / ".sitegen" / "publishing" / CHANNEL / LINUX
    assert marker.exists()

    monkeypatch.setattr(Site, "remove", remove)
    upstream.publish([s for s in upstream.specs if s != VICTIM])
    report = await mirror(cfg)
    assert channel_report(report, LINUX).removed == [VICTIM_FN]
    assert not marker.exists()
    assert_site_invariant(site)


def test_disk_full_during_publish_exits_1_with_a_clear_message(
    upstream: Upstream, small_disk: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    site = make_sandbox(small_disk)
    config = write_config(small_disk / "channels.yaml", site, upstream.server.url)
    assert main(["mirror", "-c", str(config), "--no-progress"]) == 0
    before = site_digest(site)
    rewrite_repodata(upstream.root, LINUX, _bloat)
    fill_disk(small_disk, leave=640 * 1024)
    capfd.readouterr()
    code = main(["mirror", "-c", str(config), "--no-progress"])
    assert code == 1
    assert site_digest(site) == before
    assert not _temps(site)
    assert_site_invariant(site)
    (record,) = [
        json.loads(p.read_bytes())
        for p in (site / "history" / "runs").glob("*.json")
        if json.loads(p.read_bytes())["status"] != "completed"
    ]
    assert record["status"] == "failed"
    assert any("No space left on device" in e for c in record["channels"] for e in c["errors"])


async def test_a_replacements_failed_second_step_reports_what_its_first_step_published(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upstream re-uploads beta and adds eta; the first step publishes eta (without beta),
    then the second fails. The failed run's record says eta was added and how many files the
    subdir publishes: the next run compares with the repodata that lists eta and never would."""
    site = make_sandbox(tmp_path)
    cfg = await first_run(upstream, site)
    specs = _reuploaded_beta(upstream.specs)
    upstream.publish([*specs, BYSTANDER])
    real = _second_compression_fails(monkeypatch)
    report = await mirror(cfg)
    linux = channel_report(report, LINUX)
    assert linux.status == "failed"
    assert BYSTANDER_FN in listed(site)
    assert linux.added == [BYSTANDER_FN]
    assert linux.packages == len(listed(site))
    assert_site_invariant(site)

    monkeypatch.setattr(publish_module, "zstd_stream", real)
    report = await mirror(cfg)
    assert channel_report(report, LINUX).added == ["beta-2.0-h1_0.conda"]
    assert_site_invariant(site)


async def test_a_replacement_that_cannot_be_moved_into_place_says_what_is_published(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upstream re-uploads beta; its subdir is published without it, then its new bytes
    cannot be moved into place (an I/O error). The report says the subdir is published
    without the replaced file, not that it kept its previous state; the next run lists the
    new bytes."""
    site = make_sandbox(tmp_path)
    cfg = await first_run(upstream, site)
    beta = "beta-2.0-h1_0.conda"
    upstream.publish(_reuploaded_beta(upstream.specs))
    real = Site.commit

    def commit(self: Site, temp: Path, target: Path) -> None:
        if target.name == beta:
            raise OSError(errno.EIO, "Input/output error", str(target))
        real(self, temp, target)

    monkeypatch.setattr(Site, "commit", commit)
    report = await mirror(cfg)
    linux = channel_report(report, LINUX)
    assert linux.status == "failed"
    (error,) = linux.errors
    assert error.endswith("published without the files replaced upstream")
    assert beta not in listed(site)
    assert linux.removed == [beta]
    # Its new bytes wait under a staging name of this (live) process, for a later run to clear.
    assert_site_invariant(site, settled=False)

    monkeypatch.setattr(Site, "commit", real)
    report = await mirror(cfg)
    assert channel_report(report, LINUX).added == [beta]
    assert _serves_upstreams_bytes(site, upstream, beta)
    assert_site_invariant(site)


async def test_a_stop_between_a_replacements_two_steps_reports_what_its_first_step_published(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upstream re-uploads beta and adds eta; SIGINT lands once the first step (eta, without
    beta) is renamed in. The stopped run's record says what that step published (eta added,
    beta's old record gone) and that the subdir is published without the file replaced
    upstream: the next run compares with the repodata that lists eta and never would."""
    site = make_sandbox(tmp_path)
    cfg = await first_run(upstream, site)
    beta = "beta-2.0-h1_0.conda"
    upstream.publish([*_reuploaded_beta(upstream.specs), BYSTANDER])
    renaming = Site.write_many
    sent: list[int] = []

    def write_many(self: Site, items: list[tuple[Path, Any]]) -> list[Path]:
        written = renaming(self, items)
        if not sent and any(
            target.name == "repodata.json" and target.parent.name == LINUX for target, _ in items
        ):
            sent.append(signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)  # the first step is renamed in; stop now
        return written

    monkeypatch.setattr(Site, "write_many", write_many)
    report = await mirror(cfg)
    assert sent and report.status == STOPPED
    assert listed(site) == filenames(upstream.specs, LINUX) - {beta}
    (record,) = [r for r in History(Site(site)).runs() if r.status == STOPPED]
    linux = channel_report(record, LINUX)
    assert (linux.added, linux.removed) == ([BYSTANDER_FN], [beta])
    assert linux.packages == len(listed(site))
    (error,) = linux.errors
    assert error.endswith("published without the files replaced upstream")
    assert_site_invariant(site)
    shown = "published without the files replaced upstream"
    assert _results_shown(cfg, record.id) == [shown, shown]

    monkeypatch.setattr(Site, "write_many", renaming)
    report = await mirror(cfg)
    assert channel_report(report, LINUX).added == [beta]
    assert listed(site) == filenames(upstream.specs, LINUX)
    assert_site_invariant(site)
