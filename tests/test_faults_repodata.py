"""Bad, cut or unreachable repodata and a shrunken subdir keep the previous state (the deletion
guard). Real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import zstandard

from sitegen.cli import main
from sitegen.config import parse_config
from sitegen.net.upstream_cache import UpstreamCache
from sitegen.sync.report import COMPLETED, FAILED, RunReport
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import PackageSpec, write_channel
from testkit.fault_runs import (
    BYSTANDER,
    LINUX,
    VICTIM,
    Upstream,
    channel_report,
    first_run,
    listed,
    on_disk,
    seed_jitter,
    serve_small_upstream,
)
from testkit.faults import redirect
from testkit.invariant import assert_site_invariant, make_sandbox, site_digest
from testkit.raw_server import RawServer
from testkit.site import mirror_unchecked, rewrite_repodata
from testkit.small_channel import filenames, set_repodata, site_config, small_packages, write_config
from testkit.upstream import FaultHook, UpstreamHandler, drop_connection, respond, truncate

pytestmark = pytest.mark.integration


seeded = pytest.fixture(autouse=True, name="seeded")(seed_jitter)
upstream = pytest.fixture(name="upstream")(serve_small_upstream)


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


def _a_list_beside_records(data: bytes) -> tuple[bytes, bytes]:
    """Refused after its records were found: what was read of them is still held (a map of
    the body, see sitegen.store.spill) when the parse fails."""
    document = json.loads(data)
    assert document["packages.conda"]
    document["packages"] = [1, 2]
    bad = json.dumps(document).encode()
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
    "packages is a list beside records": _a_list_beside_records,
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
    report = await mirror_unchecked(cfg)
    _assert_previous_state_kept(site, before, report)
    assert upstream.server.count(".conda") == upstream.server.count(".tar.bz2") == 0
    # The broken body was not cached as "last seen": a fixed upstream is picked up next time.
    set_repodata(upstream.root, LINUX, good)
    report = await mirror_unchecked(cfg)
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
    report = await mirror_unchecked(cfg)
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
    report = await mirror_unchecked(cfg)
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
    report = await mirror_unchecked(cfg)
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
    report = await mirror_unchecked(cfg)
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
        report = await mirror_unchecked(cfg)
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
    report = await mirror_unchecked(cfg)
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
    report = await mirror_unchecked(cfg)

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
    report = await mirror_unchecked(cfg, force_delete=True)
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
