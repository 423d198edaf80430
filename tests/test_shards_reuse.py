"""Shards reused across runs stay true to repodata.json: a site from before stamping, a
value whose type alone changed, a replaced file published in two steps with no grace period,
a shard of other bytes of its size found by the run after one stopped while publishing."""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio
import zstandard

from sitegen.conda.published_repodata import load_published
from sitegen.conda.records import Repodata, parse_repodata
from sitegen.conda.shards import SHARD_INDEX, SHARDS_DIR, ShardError, shard_filename
from sitegen.layout import publishing_marker_path
from sitegen.store.site import Site
from sitegen.sync import publish as publish_module
from sitegen.sync import publish_shards
from sitegen.sync.prepare import find_changed_names, stamp_indexed
from sitegen.sync.publish import publish_subdir, publish_target
from sitegen.sync.publish_shards import read_index, shard_problems
from sitegen.sync.subdir_metadata import SubdirMetadata

pytestmark = pytest.mark.unit


def raw(name: str, **fields: Any) -> dict[str, Any]:
    seed = name.encode()
    return {
        "name": name,
        "version": "1",
        "build": "h0_0",
        "build_number": 0,
        "depends": [],
        "md5": hashlib.md5(seed).hexdigest(),
        "sha256": hashlib.sha256(seed).hexdigest(),
        "size": 100,
        "subdir": "linux-64",
        "timestamp": 1700000000000,
        **fields,
    }


def upstream(raws: Iterable[dict[str, Any]]) -> Repodata:
    doc = {
        "info": {"subdir": "linux-64"},
        "packages.conda": {f"{r['name']}-1-h0_0.conda": r for r in raws},
    }
    return parse_repodata(msgspec.json.encode(doc), "linux-64")


def run(site: Site, raws: Iterable[dict[str, Any]], *, stamp: bool = True) -> Path:
    directory = site.path("chan", "linux-64")
    feed = upstream(raws).records
    previous = None
    if (directory / "repodata.json").exists():
        previous = load_published((directory / "repodata.json").read_bytes(), "linux-64", feed)
    meta = SubdirMetadata("linux-64", dict(feed), extra={"repodata_version": 1})
    if stamp:
        stamp_indexed(site, "chan", meta, previous)
        find_changed_names(site, "chan", meta, previous)
    trio.run(publish_subdir, site, "chan", meta)
    return directory


def problems(directory: Path) -> list[tuple[str, str]]:
    published = parse_repodata((directory / "repodata.json").read_bytes(), "linux-64")
    return shard_problems(directory, "linux-64", published.records)


def test_site_published_before_stamping(tmp_path: Path) -> None:
    site = Site(tmp_path)
    base = [raw(f"pkg{i}") for i in range(5)]
    directory = run(site, base, stamp=False)  # a site from before indexed_timestamp
    assert problems(directory) == []
    run(site, [*base, raw("new")])  # upgraded sitegen, one name added
    assert problems(directory) == []


def test_a_value_whose_type_alone_changed(tmp_path: Path) -> None:
    site = Site(tmp_path)
    base = [raw(f"pkg{i}") for i in range(5)]
    directory = run(site, base)
    assert problems(directory) == []
    run(site, [raw("pkg0", timestamp=1700000000000.0), *base[1:], raw("new")])
    assert problems(directory) == []


def test_grace_zero_with_a_staged_replacement(tmp_path: Path) -> None:
    site = Site(tmp_path)
    base = [raw(f"pkg{i}") for i in range(3)]
    directory = run(site, base)
    fn = "pkg0-1-h0_0.conda"
    (directory / fn).write_bytes(b"old")
    # pkg0 replaced upstream (new sha256): its new bytes wait under their staging name.
    new = [raw("pkg0", sha256="ab" * 32), *base[1:]]
    feed = upstream(new).records
    previous = load_published((directory / "repodata.json").read_bytes(), "linux-64", feed)
    meta = SubdirMetadata("linux-64", dict(feed), extra={"repodata_version": 1})
    stamp_indexed(site, "chan", meta, previous)
    find_changed_names(site, "chan", meta, previous)
    site.staging_for(directory / fn).write_bytes(b"new")
    listed = previous.records.keys()
    trio.run(partial(publish_target, site, "chan", meta, [fn], {}, 0.0, kept={}, listed=listed))
    assert problems(directory) == []


def test_replacements_are_published_only_once_their_bytes_are_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two files re-uploaded upstream under their published names (new sha256): while their new
    bytes wait under staging names, the published repodata.json never promises the new bytes
    (README, Guarantees); once published, every replacement holds its new bytes and no
    staging name is left."""
    site = Site(tmp_path)
    base = [raw(f"pkg{i}") for i in range(3)]
    directory = run(site, base)
    replaced = ["pkg0-1-h0_0.conda", "pkg1-1-h0_0.conda"]
    for fn in replaced:
        (directory / fn).write_bytes(b"old")
    new = [raw("pkg0", sha256="ab" * 32), raw("pkg1", sha256="cd" * 32), base[2]]
    feed = upstream(new).records
    previous = load_published((directory / "repodata.json").read_bytes(), "linux-64", feed)
    meta = SubdirMetadata("linux-64", dict(feed), extra={"repodata_version": 1})
    stamp_indexed(site, "chan", meta, previous)
    find_changed_names(site, "chan", meta, previous)
    for fn in replaced:
        site.staging_for(directory / fn).write_bytes(b"new " + fn.encode())

    promised_early: list[str] = []
    commit = site.commit

    def watched(temp: Path, target: Path) -> None:
        if target.name in replaced and temp == site.staging_for(target):
            listed = parse_repodata((directory / "repodata.json").read_bytes(), "linux-64")
            for fn in replaced:
                record = listed.records.get(fn)
                promises_new = record is not None and record.sha256 == feed[fn].sha256
                if promises_new and (directory / fn).read_bytes() == b"old":
                    promised_early.append(fn)
        commit(temp, target)

    monkeypatch.setattr(site, "commit", watched)
    listed = previous.records.keys()
    trio.run(
        partial(publish_target, site, "chan", meta, list(replaced), {}, 7.0, kept={}, listed=listed)
    )
    assert promised_early == []
    published = parse_repodata((directory / "repodata.json").read_bytes(), "linux-64")
    for fn in replaced:
        assert published.records[fn].sha256 == feed[fn].sha256
        assert (directory / fn).read_bytes() == b"new " + fn.encode()
        assert not site.staging_for(directory / fn).exists()
    assert problems(directory) == []


def test_a_run_stopped_between_the_renames_is_mended_by_the_next(tmp_path: Path) -> None:
    """The siblings of a stopped run describe its records; the next run, whose records
    encode to the old repodata.json byte for byte, writes them all again."""
    site = Site(tmp_path / "site")
    base = [raw(f"pkg{i}") for i in range(5)]
    directory = run(site, base)
    body = (directory / "repodata.json").read_bytes()
    # The stopped run: pkg0 changed; its siblings were renamed in, repodata.json was not.
    other = run(Site(tmp_path / "other"), [raw("pkg0", license="MIT"), *base[1:]])
    marker = publishing_marker_path(site.root, "chan", "linux-64")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_bytes(b"")
    for name in ("repodata.json.zst", "current_repodata.json", SHARD_INDEX):
        (directory / name).write_bytes((other / name).read_bytes())
    shutil.copytree(other / SHARDS_DIR, directory / SHARDS_DIR, dirs_exist_ok=True)
    assert problems(directory) != []

    run(site, base)
    assert (directory / "repodata.json").read_bytes() == body
    assert (
        zstandard.ZstdDecompressor().decompress((directory / "repodata.json.zst").read_bytes())
        == body
    )
    current = msgspec.json.decode((directory / "current_repodata.json").read_bytes())
    assert "license" not in current["packages.conda"]["pkg0-1-h0_0.conda"]
    assert problems(directory) == []
    assert not marker.exists()


def test_a_stopped_run_then_a_damaged_shard_of_its_size_is_written_again(tmp_path: Path) -> None:
    """After a run stopped while publishing, the next builds every shard again: one on disk of
    the right size but other bytes is written again, not named by the new index."""
    site = Site(tmp_path)
    base = [raw(f"pkg{i}") for i in range(5)]
    directory = run(site, base)
    marker = publishing_marker_path(site.root, "chan", "linux-64")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_bytes(b"")
    shard = directory / SHARDS_DIR / shard_filename(read_index(directory).shards["pkg0"])
    shard.write_bytes(bytes(b ^ 1 for b in shard.read_bytes()))
    run(site, base)
    assert problems(directory) == []


class _Stopped(BaseException):
    """A run killed at a given point."""


def test_a_shard_named_again_gets_its_full_grace_period_even_after_a_stopped_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """X goes unnamed on day 0, is named again on day 6.9 by a run stopped right after its
    renames (before it pruned), and unnamed again on day 7.1: an index published 0.2 days
    before named it, so it stays until its grace period, counted from then, runs out."""
    now = [1.8e9]
    monkeypatch.setattr(time, "time", lambda: now[0])
    site = Site(tmp_path)
    base = [raw(f"pkg{i}") for i in range(3)]
    changed = [raw("pkg0", license="MIT"), *base[1:]]
    directory = run(site, base)
    x = shard_filename(read_index(directory).shards["pkg0"])
    run(site, changed)
    now[0] += 6.9 * 86400

    def stopped(*args: Any) -> None:
        raise _Stopped

    with monkeypatch.context() as patch:
        patch.setattr(publish_module, "prune_unnamed", stopped)
        with pytest.raises(_Stopped):
            run(site, base)
    assert shard_filename(read_index(directory).shards["pkg0"]) == x
    now[0] += 0.2 * 86400
    run(site, changed)
    assert (directory / SHARDS_DIR / x).is_file()
    now[0] += 7 * 86400
    run(site, changed)
    assert not (directory / SHARDS_DIR / x).exists()


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1])
def test_a_record_no_shard_can_hold_fails_its_subdir_with_a_reason(
    tmp_path: Path, value: int
) -> None:
    """JSON carries integers of any size, msgpack up to 64 bits: such a record is named."""
    site = Site(tmp_path)
    with pytest.raises(ShardError, match=r"pkg0-1-h0_0\.conda: holds an integer"):
        run(site, [raw("pkg0", x_counter=value), raw("pkg1")])


def test_a_record_no_shard_can_hold_keeps_the_subdir_as_published(tmp_path: Path) -> None:
    """Publishing many subdirs, one of which holds such a record: that subdir fails with the
    reason and keeps what it published; the run goes on."""
    site = Site(tmp_path)
    directory = run(site, [raw("pkg0"), raw("pkg1")])
    before = (directory / "repodata.json").read_bytes()
    feed = upstream([raw("pkg0", x_counter=2**64), raw("pkg1")]).records
    meta = SubdirMetadata("linux-64", dict(feed), extra={"repodata_version": 1})
    outcomes: dict[tuple[str, str], publish_module.PublishOutcome] = {}
    target = ("chan", meta, [], {}, {}, (), [])
    trio.run(publish_module.publish_all, site, [target], outcomes)
    outcome = outcomes[("chan", "linux-64")]
    assert outcome.status == "failed"
    assert "pkg0-1-h0_0.conda: holds an integer" in outcome.error
    assert outcome.error.endswith("kept the previous state")
    assert (directory / "repodata.json").read_bytes() == before
    assert problems(directory) == []


def _counting_builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    built: list[str] = []
    real = publish_shards.build_shard

    def counted(name: str, *args: Any) -> Any:
        built.append(name)
        return real(name, *args)

    monkeypatch.setattr(publish_shards, "build_shard", counted)
    return built


def test_only_the_rest_of_repodata_changed_builds_no_shard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same records, repodata.json published again for the rest of it (a file upstream
    lists as removed): the shards published are kept, none is built or written."""
    site = Site(tmp_path)
    base = [raw(f"pkg{i}") for i in range(3)]
    directory = run(site, base)
    index = (directory / SHARD_INDEX).read_bytes()
    feed = upstream(base).records
    previous = load_published((directory / "repodata.json").read_bytes(), "linux-64", feed)
    meta = SubdirMetadata(
        "linux-64", dict(feed), removed=["gone-1-h0_0.conda"], extra={"repodata_version": 1}
    )
    stamp_indexed(site, "chan", meta, previous)
    find_changed_names(site, "chan", meta, previous)
    built = _counting_builds(monkeypatch)
    written = trio.run(publish_subdir, site, "chan", meta)
    assert "repodata.json" in written
    assert built == []
    assert (directory / SHARD_INDEX).read_bytes() == index
    assert problems(directory) == []


def test_a_staged_replacement_builds_the_shards_of_its_name_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Published in two steps (the replaced file unlisted, then listed with its new bytes):
    neither step builds the shards of the names that did not change."""
    site = Site(tmp_path)
    base = [raw(f"pkg{i}") for i in range(3)]
    directory = run(site, base)
    fn = "pkg0-1-h0_0.conda"
    (directory / fn).write_bytes(b"old")
    feed = upstream([raw("pkg0", sha256="ab" * 32), *base[1:]]).records
    previous = load_published((directory / "repodata.json").read_bytes(), "linux-64", feed)
    meta = SubdirMetadata("linux-64", dict(feed), extra={"repodata_version": 1})
    stamp_indexed(site, "chan", meta, previous)
    find_changed_names(site, "chan", meta, previous)
    site.staging_for(directory / fn).write_bytes(b"new")
    built = _counting_builds(monkeypatch)
    listed = previous.records.keys()
    trio.run(partial(publish_target, site, "chan", meta, [fn], {}, kept={}, listed=listed))
    assert built == ["pkg0"]
    assert problems(directory) == []
