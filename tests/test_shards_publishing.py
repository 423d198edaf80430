"""CEP-16 end to end, publishing: what is left out of shards and why, passive mirrors, and the
flushes that put shards on disk before an index names them."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from sitegen.conda.record_check import REASON_UNMIRRORED_SECTION
from sitegen.conda.shards import (
    REASON_UNSHARDABLE,
    SHARD_INDEX,
    SHARDS_DIR,
    decode_index,
)
from sitegen.store.site import Site
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import example_packages, write_channel
from testkit.example_mirror import CHANNEL
from testkit.invariant import assert_site_invariant
from testkit.shards import SUBDIRS, assert_shards_match_repodata, shard_names
from testkit.site import (
    channel_config,
    mirror_checked,
    read_repodata,
    record_filenames,
    rewrite_repodata,
)
from testkit.upstream import ExampleUpstream

pytestmark = pytest.mark.integration


OPTIONS = MirrorOptions(progress=False)


async def test_a_v3_section_is_not_published_and_the_run_says_why(
    tmp_path: Path, upstream_server_factory
) -> None:
    root = tmp_path / "upstream"
    v3_record = {"name": "numpy", "version": "3.0.0", "build": "0", "size": 1, "sha256": "0" * 64}
    extra = {
        "info": {"repodata_revisions": {"v3": {"n_packages": 1}}},
        "v3": {"conda": {"numpy-3.0.0-0": v3_record}},
        "x_future_key": {"list": [1, 2]},
    }
    write_channel(root, example_packages(seed=0), extra, zst=True)
    server = upstream_server_factory(root)
    site = tmp_path / "site"
    report = await mirror_checked(channel_config(site, server.url))
    for subdir in SUBDIRS:
        document = read_repodata(site / CHANNEL / subdir)
        assert "v3" not in document and "repodata_revisions" not in document["info"]
        assert document["x_future_key"] == {"list": [1, 2]}
        rejected = report.mirrors[0].subdirs[subdir].rejected
        assert rejected == {REASON_UNMIRRORED_SECTION: 1}, rejected
        assert_shards_match_repodata(site / CHANNEL / subdir)


async def test_a_passive_mirror_publishes_shards_too(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    await mirror_checked(channel_config(site, example_upstream.url, extra="mode: passive"))
    for subdir in SUBDIRS:
        assert_shards_match_repodata(site / CHANNEL / subdir)
    index = decode_index((site / CHANNEL / "linux-64" / SHARD_INDEX).read_bytes())
    assert {"numpy", "python", "zlib"} <= set(index.shards)


async def test_new_shards_reach_the_disk_in_one_flush_before_the_index(
    example_upstream: ExampleUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No fsync per shard: each subdir's new shards are written, then put on disk by one flush
    of their filesystem (here a passive mirror's, which downloads nothing: no other flush),
    and only then is the index naming them published."""
    site = tmp_path / "site"
    linux = site / "cloud/example" / "linux-64"
    flushes: list[tuple[list[str], int, bool]] = []
    real_sync = Site.sync

    def record_flush(self: Site, directories: list[Path]) -> None:
        shards = len(list((linux / SHARDS_DIR).iterdir())) if (linux / SHARDS_DIR).is_dir() else 0
        names = sorted(str(d.relative_to(site)) for d in directories)
        flushes.append((names, shards, (linux / SHARD_INDEX).exists()))
        real_sync(self, directories)

    fsynced: list[str] = []
    real_fsync = os.fsync

    def record_fsync(fd: int) -> None:
        fsynced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", record_fsync)
    monkeypatch.setattr(Site, "sync", record_flush)
    await mirror_checked(channel_config(site, example_upstream.url, extra="mode: passive\n"))
    names = shard_names(linux)
    assert names
    assert sorted(directories for directories, _shards, _index in flushes) == [
        ["cloud/example/linux-64/shards"],
        ["cloud/example/noarch/shards"],
    ]
    (linux_flush,) = [f for f in flushes if f[0] == ["cloud/example/linux-64/shards"]]
    assert linux_flush[1:] == (len(names), False)
    index = decode_index((linux / SHARD_INDEX).read_bytes())
    assert {f"{d.hex()}.msgpack.zst" for d in index.shards.values()} == names
    # The metadata files and the run's state are fsynced one by one, the shards are not.
    assert fsynced and not [path for path in fsynced if f"/{SHARDS_DIR}/" in path]


@pytest.mark.parametrize(
    "patch",
    [
        lambda record: record.update(x=2**64),
        lambda record: record.update(extra={"build_number": [-(2**63) - 1]}),
    ],
    ids=["unknown field", "nested"],
)
async def test_a_record_no_shard_can_hold_is_refused_alone(
    example_upstream: ExampleUpstream, tmp_path: Path, patch: Any
) -> None:
    """One upstream record with an integer beyond 64 bits (JSON carries it, msgpack cannot):
    that record is refused and named as such, never downloaded; the rest of its subdir is
    published, the next run too."""
    zlib: list[str] = []

    def rewrite(doc: dict[str, Any]) -> None:
        fn, record = next((f, r) for f, r in doc["packages.conda"].items() if r["name"] == "zlib")
        patch(record)
        zlib.append(fn)

    rewrite_repodata(example_upstream.root, "linux-64", rewrite)
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url)
    for _run in range(2):
        report = await run_mirror(config, OPTIONS)
        linux = next(c for c in report.channels if c.subdir == "linux-64")
        assert linux.status != "failed" and not report.failed, (linux.errors, report.errors)
        (mirror,) = report.mirrors
        sub = mirror.subdirs["linux-64"]
        assert sub.rejected_examples == {zlib[0]: REASON_UNSHARDABLE}
        assert sub.rejected == {REASON_UNSHARDABLE: 1}
        published = read_repodata(site / "cloud/example/linux-64")
        assert zlib[0] not in published["packages.conda"]
        assert len(record_filenames(published)) == sub.records == sub.kept > 0
        assert not (site / "cloud/example/linux-64" / zlib[0]).exists()
        assert (site / "cloud/example/linux-64" / SHARD_INDEX).is_file()
        assert_site_invariant(site)
    assert example_upstream.server.count(zlib[0]) == 0


async def test_shards_left_by_a_failed_flush_are_flushed_before_an_index_names_them(
    example_upstream: ExampleUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first run's flush of its shards fails (nothing is published); the next finds them
    there, whole in size, and still flushes them before publishing an index that names them."""
    site = tmp_path / "site"
    linux = site / "cloud/example/linux-64"
    config = channel_config(site, example_upstream.url, extra="mode: passive\n")
    real_sync = Site.sync
    flushed: list[Path] = []

    def full_disk(self: Site, directories: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Site, "sync", full_disk)
    assert (await run_mirror(config, OPTIONS)).failed
    left = {p.name for p in (linux / SHARDS_DIR).iterdir()}
    assert left and not (linux / SHARD_INDEX).exists()

    def recorded(self: Site, directories: Any) -> None:
        flushed.extend(directories)
        real_sync(self, directories)

    monkeypatch.setattr(Site, "sync", recorded)
    assert not (await run_mirror(config, OPTIONS)).errors
    index = decode_index((linux / SHARD_INDEX).read_bytes())
    assert {f"{d.hex()}.msgpack.zst" for d in index.shards.values()} <= left
    assert linux / SHARDS_DIR in flushed
