"""CEP-47 ``indexed_timestamp``: upstream's kept, otherwise the first time this mirror published
the record, stable across reruns, re-downloads and a site rebuilt from its state, never below
``timestamp``; in repodata.json, current_repodata.json and the shards."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pytest
import trio

from sitegen.conda.indexed import (
    INDEXED_TIMESTAMP,
    decode_first_seen,
    encode_first_seen,
    indexed_ms,
    same_as_published,
    same_except_indexed,
    stamp_records,
)
from sitegen.conda.records import Record
from sitegen.conda.shards import SHARD_INDEX, SHARDS_DIR, decode_index, decode_shard
from sitegen.conda.version import timestamp_ms
from sitegen.layout import indexed_timestamps_path
from sitegen.sync.prepare import first_seen_now_ms
from sitegen.sync.report import RunReport
from sitegen.sync.run import MirrorOptions, run_mirror
from testkit.records import JAN_2024, raw_record
from testkit.site import channel_config, read_repodata, rewrite_repodata
from testkit.upstream import ExampleUpstream

CHANNEL = "cloud/example"
NOW = JAN_2024 + 86_400_000 * 365


def record(fn_name: str, **extra: Any) -> Record:
    raw = raw_record(fn_name, **extra)
    return Record(fn=f"{fn_name}-1.0-0.conda", subdir="linux-64", raw=raw)


# --------------------------------------------------------------------------- the rules


@pytest.mark.unit
def test_a_new_record_is_stamped_now_and_keeps_it_on_later_runs() -> None:
    first_seen: dict[str, int] = {}
    a = record("a")
    assert stamp_records([a], first_seen, NOW) == 1
    assert a.raw[INDEXED_TIMESTAMP] == NOW == first_seen[a.fn]
    # A later run, with a fresh copy of upstream's record (a re-download, a rebuilt site).
    again = record("a")
    assert stamp_records([again], first_seen, NOW + 5000) == 0
    assert again.raw[INDEXED_TIMESTAMP] == NOW


@pytest.mark.unit
def test_upstreams_value_is_kept_and_not_remembered() -> None:
    first_seen: dict[str, int] = {}
    a = record("a", indexed_timestamp=JAN_2024 + 1)
    assert stamp_records([a], first_seen, NOW) == 0
    assert a.raw[INDEXED_TIMESTAMP] == JAN_2024 + 1 and first_seen == {}


@pytest.mark.unit
@pytest.mark.parametrize("timestamp", [NOW + 60_000, (NOW + 60_000) // 1000])
def test_never_below_timestamp_in_seconds_or_milliseconds(timestamp: int) -> None:
    future = record("a", timestamp=timestamp)
    stamp_records([future], {}, NOW)
    assert future.raw[INDEXED_TIMESTAMP] == NOW + 60_000
    # An upstream value below the record's own timestamp is raised to it.
    odd = record("b", timestamp=timestamp, indexed_timestamp=JAN_2024)
    stamp_records([odd], {}, NOW)
    assert odd.raw[INDEXED_TIMESTAMP] == NOW + 60_000


class _Seconds(int):
    """An int of another type, as a caller's own number type may be."""


@pytest.mark.unit
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_700_000_000, 1_700_000_000_000),  # seconds
        (1_700_000_000_123, 1_700_000_000_123),  # milliseconds
        (1_700_000_000.5, 1_700_000_000_500),
        (_Seconds(1_700_000_000), 1_700_000_000_000),
        (True, 0),  # JSON true is no time
        (0, 0),
        (-5, 0),
        ("1700000000", 0),
        (None, 0),
    ],
)
def test_time_fields_read_as_milliseconds(value: Any, expected: int) -> None:
    assert indexed_ms({INDEXED_TIMESTAMP: value}) == expected
    assert timestamp_ms({"timestamp": value}) == expected


@pytest.mark.unit
def test_records_stamped_with_one_value_share_one_number() -> None:
    """A stamp is one object per distinct value (a few per subdir, one per run that first
    saw records), not one per record: 800,000 of them, or the map's own numbers, would stay
    in memory through publishing. The map here is decoded, as a run reads it."""
    old = [record(f"old{i}") for i in range(50)]
    new = [record(f"new{i}") for i in range(50)]
    first_seen = decode_first_seen(encode_first_seen({r.fn: JAN_2024 + 1000 for r in old}))
    assert stamp_records([*old, *new], first_seen, NOW) == 50
    stamps = [r.raw[INDEXED_TIMESTAMP] for r in (*old, *new)]
    assert stamps == [JAN_2024 + 1000] * 50 + [NOW] * 50
    assert len({id(stamp) for stamp in stamps}) == 2


@pytest.mark.unit
def test_a_site_whose_state_was_lost_keeps_its_published_values() -> None:
    published = record("a")
    published.raw[INDEXED_TIMESTAMP] = JAN_2024 + 7
    first_seen: dict[str, int] = {}
    fresh = record("a")
    assert stamp_records([fresh], first_seen, NOW, {fresh.fn: published}) == 1
    assert fresh.raw[INDEXED_TIMESTAMP] == JAN_2024 + 7 == first_seen[fresh.fn]


@pytest.mark.unit
@pytest.mark.parametrize("state", ["kept", "lost"])
def test_other_bytes_under_a_published_name_are_stamped_when_they_first_appear(state: str) -> None:
    """CEP-47: the time an artifact first appears in the channel. A package rebuilt and
    uploaded again under its file name is another artifact: it takes the time it appears
    (whether the map of first sightings was kept or lost), not its predecessor's, which would
    let it past a client's exclude-newer cooldown as an old package; it keeps that time later."""
    published = record("a")
    published.raw[INDEXED_TIMESTAMP] = JAN_2024 + 7
    first_seen = {published.fn: JAN_2024 + 7} if state == "kept" else {}
    other = record("a", sha256="1" * 64)
    assert stamp_records([other], first_seen, NOW, {other.fn: published}) == 1
    assert other.raw[INDEXED_TIMESTAMP] == NOW == first_seen[other.fn]
    again = record("a", sha256="1" * 64)
    assert stamp_records([again], first_seen, NOW + 5000, {again.fn: other}) == 0
    assert again.raw[INDEXED_TIMESTAMP] == NOW
    same = record("a")  # the same bytes again beside a published copy: nothing new
    kept = {same.fn: JAN_2024 + 7}
    assert stamp_records([same], kept, NOW, {same.fn: published}) == 0
    assert same.raw[INDEXED_TIMESTAMP] == JAN_2024 + 7


@pytest.mark.unit
def test_a_record_read_as_its_published_twin_keeps_the_published_stamp() -> None:
    # load_published reads a published record that differs from its twin about to be
    # published only by its stamp as that twin itself, and keeps the stamp aside: the twin is
    # unstamped, so only the kept stamp knows the value published.
    fresh = record("a")
    first_seen: dict[str, int] = {}
    assert stamp_records([fresh], first_seen, NOW, {fresh.fn: fresh}, {fresh.fn: JAN_2024 + 7})
    assert fresh.raw[INDEXED_TIMESTAMP] == JAN_2024 + 7 == first_seen[fresh.fn]


@pytest.mark.unit
def test_a_remembered_first_sighting_below_the_timestamp_is_raised_to_it() -> None:
    # The file was first seen before the record (same file name) now says it was built.
    later = record("a", timestamp=NOW)
    first_seen = {later.fn: JAN_2024}
    assert stamp_records([later], first_seen, NOW + 5000) == 0
    assert later.raw[INDEXED_TIMESTAMP] == NOW
    assert first_seen[later.fn] == JAN_2024  # the sighting itself is never rewritten


@pytest.mark.unit
def test_same_as_published_compares_the_stamp_of_a_shared_record() -> None:
    a = record("a")
    a.raw[INDEXED_TIMESTAMP] = NOW
    # Shared with the previous publication: the same, unless it was published with another
    # stamp (a record published without one needs no other: its stamp is not kept aside).
    assert same_as_published(a, a, {a.fn: NOW})
    assert not same_as_published(a, a, {a.fn: JAN_2024})
    assert same_as_published(a, a, {})
    # A record of its own: compared field by field, the stamp included.
    twin = record("a")
    twin.raw[INDEXED_TIMESTAMP] = NOW
    assert same_as_published(a, twin, {})
    restamped = record("a")
    restamped.raw[INDEXED_TIMESTAMP] = JAN_2024
    assert not same_as_published(a, restamped, {})
    assert not same_as_published(a, None, {})  # a record new to the subdir


@pytest.mark.unit
def test_the_map_round_trips_and_only_the_stamp_may_differ() -> None:
    first_seen = {"a-1.0-0.conda": NOW, "b-1.0-0.tar.bz2": JAN_2024}
    assert decode_first_seen(encode_first_seen(first_seen)) == first_seen
    raw = raw_record("a")
    assert same_except_indexed({**raw, INDEXED_TIMESTAMP: NOW}, raw)
    assert not same_except_indexed({**raw, "size": 1}, raw)


# --------------------------------------------------------------------------- a mirror run


async def _mirror(config: Any) -> RunReport:
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert report.status == "completed" and not report.failed
    return report


def _stamps(site: Path, subdir: str, name: str = "repodata.json") -> dict[str, int]:
    document = read_repodata(site / CHANNEL / subdir, name)
    return {
        fn: r[INDEXED_TIMESTAMP]
        for key in ("packages", "packages.conda")
        for fn, r in document[key].items()
    }


def _shard_stamps(directory: Path) -> dict[str, int]:
    index = decode_index((directory / SHARD_INDEX).read_bytes())
    stamps = {}
    for digest in index.shards.values():
        shard = decode_shard((directory / SHARDS_DIR / f"{digest.hex()}.msgpack.zst").read_bytes())
        for key in ("packages", "packages.conda"):
            stamps.update({fn: r[INDEXED_TIMESTAMP] for fn, r in shard[key].items()})
    return stamps


@pytest.mark.integration
async def test_stamps_are_stable_across_reruns_redownloads_and_a_rebuilt_site(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url)
    await _mirror(config)
    first = {subdir: _stamps(site, subdir) for subdir in ("linux-64", "noarch")}
    linux = site / CHANNEL / "linux-64"
    assert first["linux-64"] and first["linux-64"] == _shard_stamps(linux)
    current = _stamps(site, "linux-64", "current_repodata.json")
    assert current and all(first["linux-64"][fn] == stamp for fn, stamp in current.items())
    upstream = example_upstream.repodata["linux-64"]
    for key in ("packages", "packages.conda"):
        for fn, raw in upstream[key].items():
            assert first["linux-64"][fn] >= raw["timestamp"]
    assert indexed_timestamps_path(site, CHANNEL, "linux-64").is_file()

    await trio.sleep(0.01)  # a later clock: a re-stamp would show
    # A rerun; then a package file lost and downloaded again; then a site rebuilt from its
    # state (the published metadata deleted).
    await _mirror(config)
    assert _stamps(site, "linux-64") == first["linux-64"]
    lost = next(fn for fn in first["linux-64"] if fn.endswith(".conda"))
    (linux / lost).unlink()
    await _mirror(config)
    assert (linux / lost).is_file()
    assert _stamps(site, "linux-64") == first["linux-64"]
    for subdir in ("linux-64", "noarch"):
        (site / CHANNEL / subdir / "repodata.json").unlink()
    await _mirror(config)
    assert {s: _stamps(site, s) for s in ("linux-64", "noarch")} == first
    assert _shard_stamps(linux) == first["linux-64"]


@pytest.mark.integration
async def test_upstreams_stamp_is_published_and_a_new_record_gets_a_later_one(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url)
    await _mirror(config)
    first = _stamps(site, "linux-64")
    marked, removed = sorted(fn for fn in first if fn.endswith(".tar.bz2"))[:2]

    def change(document: dict[str, Any]) -> None:
        # Upstream starts stamping one record, and drops another (which comes back later).
        document["packages"][marked][INDEXED_TIMESTAMP] = 1_900_000_000_000
        document["packages"].pop(removed)

    original = read_repodata(example_upstream.root / "linux-64")
    rewrite_repodata(example_upstream.root, "linux-64", change)
    await _mirror(config)
    stamps = _stamps(site, "linux-64")
    assert stamps[marked] == 1_900_000_000_000
    assert removed not in stamps

    # Back upstream: it keeps the time it first appeared in this mirror.
    def restore(document: dict[str, Any]) -> None:
        document.clear()
        document.update(original)

    rewrite_repodata(example_upstream.root, "linux-64", restore)
    await _mirror(config)
    assert _stamps(site, "linux-64") == first


@pytest.mark.integration
async def test_a_package_uploaded_again_with_other_bytes_is_stamped_anew(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url)
    await _mirror(config)
    first = _stamps(site, "linux-64")
    fn = sorted(f for f in first if f.endswith(".tar.bz2"))[0]
    path = example_upstream.root / "linux-64" / fn
    old = path.read_bytes()
    new = old[:-1] + bytes([old[-1] ^ 0xFF])  # same name and size, other bytes
    path.write_bytes(new)

    def reupload(document: dict[str, Any]) -> None:
        document["packages"][fn]["sha256"] = hashlib.sha256(new).hexdigest()
        document["packages"][fn]["md5"] = hashlib.md5(new).hexdigest()

    rewrite_repodata(example_upstream.root, "linux-64", reupload)
    await trio.sleep(0.01)  # a later clock
    await _mirror(config)
    stamps = _stamps(site, "linux-64")
    assert stamps[fn] > first[fn]
    assert {f: t for f, t in stamps.items() if f != fn} == {
        f: t for f, t in first.items() if f != fn
    }
    assert _shard_stamps(site / CHANNEL / "linux-64") == stamps
    await _mirror(config)
    assert _stamps(site, "linux-64") == stamps


@pytest.mark.integration
async def test_stamps_that_cannot_be_saved_fail_only_their_subdir_and_say_where(
    example_upstream: ExampleUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url)
    # Where linux-64's first sightings are kept, a folder: the stamps cannot be read or saved.
    state = indexed_timestamps_path(site, CHANNEL, "linux-64")
    state.mkdir(parents=True)
    report = await run_mirror(config, MirrorOptions(progress=False))
    rows = {c.subdir: c for c in report.channels}
    assert rows["noarch"].status == "published"
    assert rows["linux-64"].status == "failed"
    assert not (site / CHANNEL / "linux-64" / "repodata.json").exists()
    (error,) = rows["linux-64"].errors
    assert error.startswith("linux-64: could not publish: Is a directory")
    assert error.endswith(f"({state}); kept the previous state")
    # Logged as the other publishing failures are, the file named.
    assert any(str(state) in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)


@pytest.mark.unit
@pytest.mark.parametrize("value", ["1700000000", "²", "١٧٠٠٠٠٠٠٠٠", "soon", ""], ids=repr)
def test_source_date_epoch_is_read_in_ascii_digits_only(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SOURCE_DATE_EPOCH fixes the first-seen stamp (reproducible sites) when it is what the
    convention says, ASCII digits; any other value is no time at all, never an error that stops
    the run ("²" is a digit to str.isdigit, not to int())."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", value)
    before = time.time() * 1000
    stamp = first_seen_now_ms()
    if value == "1700000000":
        assert stamp == 1_700_000_000_000
    else:
        assert before - 1 <= stamp <= time.time() * 1000 + 1
