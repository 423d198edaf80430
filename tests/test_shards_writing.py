"""CEP-16 shards without a network: publishing order and flushes, incremental writes, and
grace-period pruning and its configuration."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path, PosixPath

import msgspec
import pytest

from sitegen.conda.records import Record, Repodata
from sitegen.conda.shards import (
    SHARD_INDEX,
    SHARDS_DIR,
    decode_index,
)
from sitegen.config import ConfigError
from sitegen.store.site import Site
from sitegen.sync.prune import expire_shards, prune_shards
from sitegen.sync.publish import publish_subdir
from sitegen.sync.publish_shards import (
    changed_names,
    grace_shard_problems,
    shard_problems,
    unchanged_shards,
    write_shards,
)
from sitegen.sync.subdir_metadata import SubdirMetadata
from testkit.shards import raw, records
from testkit.site import site_config

pytestmark = pytest.mark.unit


DAY = 86400.0


def shard_files(directory: Path) -> set[str]:
    shards = directory / SHARDS_DIR
    return {p.name for p in shards.iterdir()} if shards.is_dir() else set()


# --------------------------------------------------------------------------- publishing


class RecordingSite(Site):
    """A site that notes, in order, which files it writes."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.events: list[str] = []

    def write_bytes(self, target: Path, data: bytes, *, durable: bool = True) -> bool:
        written = super().write_bytes(target, data, durable=durable)
        if written:
            self.events.append(target.name)
        return written

    def write_addressed(self, folder: Path, name: str, data: bytes) -> bool:
        written = super().write_addressed(folder, name, data)
        if written:
            self.events.append(name)
        return written

    def write_many(self, items: list[tuple[Path, bytes]]) -> list[Path]:
        written = super().write_many(items)
        self.events.extend(p.name for p in written)
        return written

    def sync(self, directories: Iterable[Path]) -> None:
        super().sync(directories)
        self.events.extend(f"sync {d.name}" for d in directories)


async def publish(
    site: Site, recs: dict[str, Record], grace_days: float = 7.0, repodata_bz2: bool = False
) -> list[str]:
    meta = SubdirMetadata("linux-64", recs, extra={"repodata_version": 1})
    return await publish_subdir(site, "chan", meta, grace_days, repodata_bz2)


async def test_shards_are_written_before_the_index_and_the_index_before_repodata(
    tmp_path: Path,
) -> None:
    site = RecordingSite(tmp_path)
    await publish(site, records(raw("zlib", "1"), raw("python", "3.12")))
    shards = [e for e in site.events if e.endswith(".msgpack.zst") and e != SHARD_INDEX]
    assert len(shards) == 2
    position = {name: i for i, name in enumerate(site.events)}
    assert max(position[s] for s in shards) < position[SHARD_INDEX] < position["repodata.json"]
    directory = tmp_path / "chan" / "linux-64"
    assert (
        shard_problems(directory, "linux-64", records(raw("zlib", "1"), raw("python", "3.12")))
        == []
    )


async def test_new_shards_are_flushed_once_together_before_the_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fsynced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsynced.append(fd), real_fsync(fd))[1])
    site = RecordingSite(tmp_path)
    await publish(site, records(*(raw(f"pkg{i}", "1") for i in range(30))), repodata_bz2=True)
    flushes = [e for e in site.events if e.startswith("sync ")]
    assert flushes == [f"sync {SHARDS_DIR}"]
    position = {name: i for i, name in enumerate(site.events)}
    shards = [e for e in site.events if e.endswith(".msgpack.zst") and e != SHARD_INDEX]
    assert len(shards) == 30
    assert max(position[s] for s in shards) < position[flushes[0]] < position[SHARD_INDEX]
    # One fsync per metadata file (repodata.json and its four siblings) and one for the
    # marker that is on disk while they are renamed in; none per shard.
    assert len(fsynced) == 6


async def test_an_empty_subdir_gets_an_empty_index(tmp_path: Path) -> None:
    site = Site(tmp_path)
    await publish(site, {})
    index = decode_index((tmp_path / "chan" / "linux-64" / SHARD_INDEX).read_bytes())
    assert (index.subdir, index.shards) == ("linux-64", {})


async def test_a_rerun_writes_only_the_shards_of_changed_names(tmp_path: Path) -> None:
    site = RecordingSite(tmp_path)
    directory = tmp_path / "chan" / "linux-64"
    base = [raw(f"pkg{i}", "1") for i in range(20)]
    await publish(site, records(*base))
    assert len(shard_files(directory)) == 20
    index_before = (directory / SHARD_INDEX).read_bytes()

    site.events.clear()
    assert await publish(site, records(*base)) == []
    assert site.events == []  # a no-op run writes nothing, not even the index
    assert (directory / SHARD_INDEX).read_bytes() == index_before

    changed = [*base[:3], raw("pkg3", "1", license="MIT"), *base[4:], raw("pkg3", "2")]
    await publish(site, records(*changed))
    new_shards = [e for e in site.events if e.endswith(".msgpack.zst") and e != SHARD_INDEX]
    assert len(new_shards) == 1
    index = decode_index((directory / SHARD_INDEX).read_bytes())
    assert shard_files(directory) >= {f"{d.hex()}.msgpack.zst" for d in index.shards.values()}
    # pkg3's previous shard stays for the grace period.
    assert len(shard_files(directory)) == 21


async def test_a_rerun_builds_only_the_shards_of_changed_names(tmp_path: Path) -> None:
    site = Site(tmp_path)
    directory = tmp_path / "chan" / "linux-64"
    base = [raw(f"pkg{i}", "1") for i in range(10)]
    await publish(site, records(*base))
    previous = Repodata("linux-64", records=records(*base))
    published = decode_index((directory / SHARD_INDEX).read_bytes()).shards
    # pkg3 changed, pkg4 gained a version, pkg5 lost its only one.
    changed = [*base[:3], raw("pkg3", "1", license="MIT"), base[4], raw("pkg4", "2"), *base[6:]]
    now = records(*changed)
    current = unchanged_shards(directory, changed_names(now, previous))
    assert current == {n: d for n, d in published.items() if n not in ("pkg3", "pkg4", "pkg5")}
    site_spy = RecordingSite(tmp_path)
    written = write_shards(site_spy, directory, now, current={**current, "gone": b"x" * 32})
    built = [e for e in site_spy.events if e.endswith(".msgpack.zst")]
    assert (written.written, len(built)) == (2, 2)
    # Exactly the index a full build makes (a name with no records is never listed).
    assert written.shards == write_shards(Site(tmp_path), directory, now).shards

    # A record shared with the previous publication (see load_published) whose stamp
    # changed: its name's shard is built again.
    shared = Repodata("linux-64", records=dict(now), stamps={"pkg7-1-h0_0.conda": 1})
    now["pkg7-1-h0_0.conda"].raw["indexed_timestamp"] = 2
    assert set(published) - set(unchanged_shards(directory, changed_names(now, shared))) == {"pkg7"}

    # A shard file gone from disk, or cut short, or of other bytes of its size, is built again.
    (directory / SHARDS_DIR / f"{published['pkg0'].hex()}.msgpack.zst").unlink()
    short = directory / SHARDS_DIR / f"{published['pkg1'].hex()}.msgpack.zst"
    short.write_bytes(short.read_bytes()[:-1])
    other = directory / SHARDS_DIR / f"{published['pkg2'].hex()}.msgpack.zst"
    other.write_bytes(bytes(b ^ 1 for b in other.read_bytes()))
    reused = unchanged_shards(directory, changed_names(now, previous))
    assert {"pkg0", "pkg1", "pkg2"}.isdisjoint(reused)
    assert "pkg6" in reused


async def test_shards_no_longer_named_are_pruned_after_the_grace_period(tmp_path: Path) -> None:
    site = Site(tmp_path)
    directory = tmp_path / "chan" / "linux-64"
    await publish(site, records(raw("zlib", "1")))
    (old,) = shard_files(directory)
    await publish(site, records(raw("zlib", "2")), grace_days=7)
    assert old in shard_files(directory)  # within the grace period
    await publish(site, records(raw("zlib", "2")), grace_days=0)
    assert old not in shard_files(directory)
    assert len(shard_files(directory)) == 1


class PrunedWhileRead(PosixPath):
    """A path whose shard files a run prunes just as they are opened: after they were listed."""

    def __fspath__(self) -> str:
        text = str(self)
        if self.parent.name == SHARDS_DIR:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(text)
        return text


async def test_a_shard_pruned_while_verify_reads_it_is_damage_only_when_named(
    tmp_path: Path,
) -> None:
    """A run beside ``sitegen verify`` prunes a shard whose grace period ended: gone, it is
    served to no one, so nothing is wrong with it. A shard the index names is missed."""
    site = Site(tmp_path)
    directory = tmp_path / "chan" / "linux-64"
    await publish(site, records(raw("zlib", "1")))
    (old,) = shard_files(directory)
    now = records(raw("zlib", "2"))
    await publish(site, now, grace_days=7)
    assert old in shard_files(directory)  # within the grace period

    assert grace_shard_problems(PrunedWhileRead(directory)) == []
    assert old not in shard_files(directory)
    (named,) = shard_files(directory)
    assert shard_problems(PrunedWhileRead(directory), "linux-64", now) == [
        (f"{SHARDS_DIR}/{named}", "missing (shard of 'zlib')")
    ]


def test_expiry_counts_from_when_a_shard_was_first_seen_unnamed() -> None:
    expired, since = expire_shards({"a", "b"}, {"a": 0.0}, now=7 * DAY, grace=7 * DAY)
    assert (expired, since) == (["a"], {"b": 7 * DAY})
    # Named again: forgotten, so a later retirement starts a new grace period.
    assert expire_shards(set(), since, now=8 * DAY, grace=7 * DAY) == ([], {})


def test_a_named_shard_is_never_pruned(tmp_path: Path) -> None:
    site = Site(tmp_path)
    shards_dir = tmp_path / "shards"
    shards_dir.mkdir()
    named = "a" * 64 + ".msgpack.zst"
    unnamed = "b" * 64 + ".msgpack.zst"
    for name in (named, unnamed, "notes.txt"):
        (shards_dir / name).write_bytes(b"x")
    state = tmp_path / "state.json"
    state.write_bytes(msgspec.json.encode({named: 0.0, unnamed: 0.0}))
    removed = prune_shards(site, shards_dir, {named}, state, now=30 * DAY, grace=7 * DAY)
    assert removed == [unnamed]
    assert {p.name for p in shards_dir.iterdir()} == {named, "notes.txt"}


# --------------------------------------------------------------------------- configuration


def test_grace_days_is_configurable(tmp_path: Path) -> None:
    body = "channels:\n  c: {url: 'https://example.org/c', subdirs: [noarch]}\n"
    assert site_config(tmp_path, body).shard_grace_days == 7.0
    assert site_config(tmp_path, "shards: {grace_days: 2.5}\n" + body).shard_grace_days == 2.5
    with pytest.raises(ConfigError, match="grace_days"):
        site_config(tmp_path, "shards: {grace_days: -1}\n" + body)
    with pytest.raises(ConfigError, match="unknown key"):
        site_config(tmp_path, "shards: {keep: 1}\n" + body)
