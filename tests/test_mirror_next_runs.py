"""End to end, the runs after the first: a rerun changes nothing, upstream's changes reach
the site, and the deletion guard holds a subdir losing most of its files."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import zstandard

from sitegen.cli import main
from sitegen.conda.shards import SHARD_INDEX, decode_index
from sitegen.layout import shard_path, upstream_cache_dir
from sitegen.store.site import Site
from sitegen.tools.example_channel import PackageSpec, write_channel
from testkit.example_mirror import (
    CHANNEL,
    LINUX,
    PACKAGES,
    channel_report,
    package_gets,
    spec,
)
from testkit.invariant import assert_site_invariant
from testkit.site import (
    assert_channel_consistent,
    channel_config,
    files_on_disk,
    fns,
    mirror_unchecked,
    published,
    rewrite_repodata,
    snapshot,
)
from testkit.small_channel import mirrored_small, small_packages
from testkit.upstream import ExampleUpstream, respond

pytestmark = pytest.mark.integration


# --------------------------------------------------------------------------- the next runs


async def test_rerun_is_a_no_op(example_upstream: ExampleUpstream, tmp_path: Path) -> None:
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url)
    await mirror_unchecked(config)
    before = snapshot(site / CHANNEL)
    server = example_upstream.server
    server.reset()

    report = await mirror_unchecked(config)

    assert not report.failed
    assert package_gets(server) == []
    repodata_requests = [r for r in server.requests if "repodata" in r.path]
    assert sorted((r.path, r.status) for r in repodata_requests) == [
        ("/linux-64/repodata.json.zst", 304),
        ("/noarch/repodata.json.zst", 304),
    ]
    assert all(r.header("If-None-Match") for r in repodata_requests)
    assert {s.upstream for s in report.mirrors[0].subdirs.values()} == {"unchanged"}
    assert snapshot(site / CHANNEL) == before  # same bytes and same mtimes: ETags stay valid
    for subdir in ("linux-64", "noarch"):
        cr = channel_report(report, subdir)
        assert (cr.status, cr.downloaded_files, cr.deleted_files) == ("unchanged", 0, 0)
        assert cr.added == cr.removed == cr.updated == []
    assert len(list((site / "history" / "runs").glob("*.json"))) >= 1


async def test_a_zst_missing_for_one_run_is_asked_for_again_by_the_next(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    """A run that found no repodata.json.zst upstream (a CDN's outage, an index being rebuilt)
    reads repodata.json; the runs after it ask for the .zst first again (a fifth of the bytes),
    not the whole JSON for as long as upstream serves both."""
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url)
    server = example_upstream.server
    server.add_fault("/linux-64/repodata.json.zst", respond(404), times=1)
    assert not (await mirror_unchecked(config)).failed
    assert server.count("/linux-64/repodata.json", status=200) == 1

    for status in (200, 304):  # the .zst fetched whole once, then unchanged
        server.reset()
        assert not (await mirror_unchecked(config)).failed
        asked = [(r.path, r.status) for r in server.requests if "linux-64/repodata" in r.path]
        assert asked == [("/linux-64/repodata.json.zst", status)]
    assert_channel_consistent(site, CHANNEL)
    # The JSON that run kept (several times the .zst's size) is not kept beside it.
    ((_channel, mirror),) = config.mirrors
    kept = upstream_cache_dir(site, mirror.name, "linux-64")
    assert sorted(p.name for p in kept.iterdir() if p.is_file()) == [
        "repodata.json.zst",
        "validators.json",
    ]


async def test_a_run_leaves_no_empty_publishing_folders(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    """A subdir's publishing marker goes once its files are renamed in, and the channel's
    folder of markers with it once that holds nothing; a folder holding anything (the marker
    a stopped run left for another channel, a nested channel's folder) stays."""
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url, subdirs="[linux-64, noarch]")
    publishing = Site(site).state_dir / "publishing"
    others = [publishing / "cloud" / "linux-64", publishing / "old" / "noarch"]
    for marker in others:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_bytes(b"")

    report = await mirror_unchecked(config)

    assert not report.failed
    left = sorted(p.relative_to(publishing).as_posix() for p in publishing.rglob("*"))
    assert left == ["cloud", "cloud/linux-64", "old", "old/noarch"]


async def test_upstream_changes_are_reflected(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url)
    await mirror_unchecked(config)
    root, server = example_upstream.root, example_upstream.server

    # Upstream: a new zlib, readline removed, numpy's depends patched in repodata only.
    new_zlib = PackageSpec(
        name="zlib", version="1.3.2", build="h1234567_0", license="Zlib", timestamp_ms=1
    )
    readline = spec("readline")
    numpy = spec("numpy", "py312", "2.1.0")
    changed = [p for p in PACKAGES if p is not readline] + [new_zlib]
    write_channel(root, changed, zst=True)
    for fn in readline.filenames:
        (root / "linux-64" / fn).unlink()
    patched = ["libopenblas >=0.3.27,<1.0a0", "python >=3.12,<3.13.0a0", "zlib >=1.3"]

    def patch(document: dict[str, Any]) -> None:
        for key in ("packages", "packages.conda"):
            for fn, record in document[key].items():
                if fn.startswith(numpy.stem):
                    record["depends"] = patched

    rewrite_repodata(root, "linux-64", patch)
    server.reset()

    report = await mirror_unchecked(config)

    assert not report.failed
    repodata = assert_channel_consistent(site, CHANNEL)
    expected = (LINUX - set(readline.filenames)) | set(new_zlib.filenames)
    assert published(site, CHANNEL, "linux-64") == expected
    assert files_on_disk(site / CHANNEL / "linux-64") == expected
    for fn in numpy.filenames:
        key = "packages.conda" if fn.endswith(".conda") else "packages"
        assert repodata["linux-64"][key][fn]["depends"] == patched
    zst = zstandard.decompress((site / CHANNEL / "linux-64" / "repodata.json.zst").read_bytes())
    assert json.loads(zst)["packages.conda"][numpy.filename("conda")]["depends"] == patched
    # Only the new files were downloaded; the patch needed no download.
    assert sorted(package_gets(server)) == sorted(f"/linux-64/{f}" for f in new_zlib.filenames)
    linux = channel_report(report, "linux-64")
    assert sorted(linux.added) == sorted(new_zlib.filenames)
    assert sorted(linux.removed) == sorted(readline.filenames)
    assert sorted(linux.updated) == sorted(numpy.filenames)
    assert (linux.downloaded_files, linux.deleted_files) == (2, 2)


async def test_a_replaced_upstream_file_of_the_same_size_is_downloaded_again(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    """Upstream swaps a file's bytes under the same name and size (and says so in repodata):
    the mirror must not keep serving the old bytes under the new sha256."""
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url)
    await mirror_unchecked(config)
    root = example_upstream.root
    fn = spec("zlib", version="1.3.1").filename("tar.bz2")
    old = (root / "linux-64" / fn).read_bytes()
    new = old[:-1] + bytes([old[-1] ^ 0xFF])  # same size, other bytes
    (root / "linux-64" / fn).write_bytes(new)

    def replace_checksums(document: dict[str, Any]) -> None:
        record = document["packages"][fn]
        record["sha256"] = hashlib.sha256(new).hexdigest()
        record["md5"] = hashlib.md5(new).hexdigest()

    rewrite_repodata(root, "linux-64", replace_checksums)
    example_upstream.server.reset()

    report = await mirror_unchecked(config)

    assert not report.failed
    assert package_gets(example_upstream.server) == [f"/linux-64/{fn}"]
    assert (site / CHANNEL / "linux-64" / fn).read_bytes() == new
    assert channel_report(report, "linux-64").updated == [fn]
    assert_channel_consistent(site, CHANNEL)


# --------------------------------------------------------------------------- deletion guard


def _truncate_upstream(root: Path) -> set[str]:
    """Upstream suddenly lists two packages (a tenth of linux-64, a fifth of noarch)."""
    keep = [spec("python", version="3.12.4"), spec("pip", version="24.0")]
    for path in list(root.glob("*/*")):
        path.unlink()
    write_channel(root, keep, zst=True)
    return {fn for p in keep for fn in p.filenames}


def test_deletion_guard_holds_a_subdir_until_forced(
    example_upstream: ExampleUpstream, tmp_path: Path, capsys
) -> None:
    site = tmp_path / "site"
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {site}\n"
        f"channels:\n  {CHANNEL}:\n    url: {example_upstream.url}\n    subdirs: [linux-64]\n"
    )
    args = ["mirror", "-c", str(config_path), "--no-progress"]
    assert main(args) == 0
    before = snapshot(site / CHANNEL)
    left = _truncate_upstream(example_upstream.root)

    assert main(args) == 1
    assert snapshot(site / CHANNEL) == before  # repodata and every file as they were
    assert published(site, CHANNEL, "linux-64") == LINUX
    runs = [json.loads(p.read_bytes()) for p in (site / "history" / "runs").glob("*.json")]
    (held_run,) = [r for r in runs if r["status"] == "failed"]
    statuses = {(c["subdir"], c["status"]) for c in held_run["channels"]}
    assert statuses == {("linux-64", "held"), ("noarch", "held")}
    assert any("--force-delete" in e for c in held_run["channels"] for e in c["errors"])

    assert main([*args, "--force-delete"]) == 0
    assert_channel_consistent(site, CHANNEL)
    assert published(site, CHANNEL, "linux-64") | published(site, CHANNEL, "noarch") == left
    assert files_on_disk(site / CHANNEL / "linux-64") == {f for f in left if "python" in f}


async def test_deletion_guard_allows_a_small_loss(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url)
    await mirror_unchecked(config)
    # Losing 38 of 42 linux-64 files is far beyond 50 %, but losing numpy 1.26 (6) is not.
    write_channel(example_upstream.root, [p for p in PACKAGES if p.version != "1.26.4"], zst=True)
    report = await mirror_unchecked(config)
    assert not report.failed
    assert published(site, CHANNEL, "linux-64") == LINUX - fns(PACKAGES, "numpy", "1.26.4")
    assert_channel_consistent(site, CHANNEL)


def test_a_named_pipe_in_a_shards_place_is_written_over_by_the_next_run(tmp_path: Path) -> None:
    """A run that changed some names hashes the shards of the others to keep them: a named
    pipe where one of them is would hold the run forever if opened blocking; it is built and
    written again instead."""
    with mirrored_small(tmp_path) as (config, site, _server):
        directory = site / CHANNEL / "linux-64"
        index = decode_index((directory / SHARD_INDEX).read_bytes())
        shard = directory / shard_path(index.shards["alpha"])
        shard.unlink()
        os.mkfifo(shard)
        extra = (PackageSpec("zeta", "1.0", "h9_0", formats=("conda",)),)
        write_channel(tmp_path / "upstream", small_packages(extra=extra), zst=True)
        command = [sys.executable, "-m", "sitegen", "mirror", "-c", str(config), "--no-progress"]
        # A hang guard: the read of a named pipe blocks until a writer comes.
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert shard.is_file()
        assert_site_invariant(site)
