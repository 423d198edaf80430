"""The merge of a subdir's mirrors, on plain data: the first mirror wins, the previous
state is kept when a mirror is broken, and the deletion guard holds what would lose too much."""

from __future__ import annotations

import msgspec
import pytest

from sitegen.sync.merge import (
    FAILED,
    HELD,
    MERGED,
    DeletionGuard,
    Feed,
    load_previous,
    merge_subdir,
)
from sitegen.sync.prune import deletion_guard
from testkit.sync_stages import GUARD, A, B, C, at, by_fn, repodata

pytestmark = pytest.mark.unit


def test_merge_first_mirror_wins_and_conflicts_are_reported() -> None:
    first, second = at(A, "one"), at(A, "two", sha256="f" * 64)
    same_b = at(B, "two")
    feeds = [
        Feed("one", repodata(first, removed=("x",), tag="one"), by_fn(first, at(B, "one"))),
        Feed("two", repodata(second, same_b, removed=("y",), tag="two"), by_fn(second, same_b)),
    ]
    merged = merge_subdir("c", "linux-64", feeds, [], None, GUARD)
    assert merged is not None and merged.status == MERGED and merged.meta is not None
    assert merged.meta.records[A.fn] is first
    assert merged.meta.records[B.fn].origin == "one"  # the same bytes: no conflict
    assert merged.conflicts == (
        ("two", f"linux-64/{A.fn}: differs from the copy offered by one; kept one's"),
    )
    assert merged.meta.info == {"tag": "one"}
    assert merged.meta.removed == ["x", "y"]
    assert merged.meta.extra == {"repodata_version": 1}


def test_the_previous_state_is_read_as_the_first_feeds_records(tmp_path) -> None:
    """A published record offered unchanged is read as the record the merge keeps: the first
    mirror's where two offer the same file."""
    first, second = at(A, "one"), at(A, "two", sha256="f" * 64)
    only_second = at(B, "two")
    feeds = [
        Feed("one", repodata(first), by_fn(first)),
        Feed("two", repodata(second, only_second), by_fn(second, only_second)),
    ]
    published = {"packages.conda": {r.fn: r.raw for r in (first, only_second, C)}}
    (tmp_path / "repodata.json").write_bytes(msgspec.json.encode(published))
    for offered in (feeds, feeds[:1]):
        previous = load_previous(tmp_path, "linux-64", offered)
        assert previous is not None
        assert previous.records[A.fn] is first
        assert (previous.records[B.fn] is only_second) == (len(offered) == 2)
        assert previous.records[B.fn].raw == only_second.raw
        assert previous.records[C.fn].raw == C.raw
    # The second mirror's copy of A is not what was published: not its twin.
    previous = load_previous(tmp_path, "linux-64", feeds[::-1])
    assert previous is not None and previous.records[A.fn] is not second


def test_merge_keeps_the_previous_state_when_a_mirror_is_broken() -> None:
    previous = repodata(A)
    merged = merge_subdir("c", "linux-64", [], ["two"], previous, GUARD)
    assert merged is not None
    assert (merged.status, merged.meta, merged.previous) == (FAILED, None, previous)
    assert merged.errors == ("not updated: mirror two could not be read; kept the previous state",)


def test_merge_is_held_by_the_deletion_guard_unless_forced() -> None:
    previous = repodata(A, B, C)
    feeds = [Feed("m", repodata(A), by_fn(A))]
    held = merge_subdir("c", "linux-64", feeds, [], previous, GUARD)
    assert held is not None and (held.status, held.meta) == (HELD, None)
    assert "would remove 2 of 3 published files" in held.errors[0]
    forced = merge_subdir("c", "linux-64", feeds, [], previous, DeletionGuard(0.5, force=True))
    assert forced is not None and forced.status == MERGED
    assert forced.meta is not None and list(forced.meta.records) == [A.fn]


def test_merge_takes_a_later_mirror_after_one_that_does_not_serve_the_subdir() -> None:
    feeds = [Feed("one", None, {}), Feed("two", repodata(at(B, "two"), tag="two"), by_fn(B))]
    merged = merge_subdir("c", "linux-64", feeds, [], None, GUARD)
    assert merged is not None and merged.meta is not None
    assert list(merged.meta.records) == [B.fn]
    assert merged.meta.info == {"tag": "two"}


def test_a_published_subdir_no_mirror_serves_any_more_is_emptied_under_the_guard() -> None:
    gone = [Feed("m", None, {})]
    # Published before: merged to nothing, so the deletion guard decides (never skipped, which
    # would leave the old files published for ever).
    held = merge_subdir("c", "linux-64", gone, [], repodata(A), GUARD)
    assert held is not None and held.status == HELD
    emptied = merge_subdir("c", "linux-64", gone, [], repodata(), GUARD)
    assert emptied is not None and emptied.status == MERGED
    assert emptied.meta is not None and emptied.meta.records == {}


def test_the_deletion_guard_lets_anything_replace_nothing() -> None:
    assert deletion_guard([], [A.fn], 0.0) is None
    assert deletion_guard([], [], 0.0) is None
    assert deletion_guard([A.fn, B.fn], [A.fn], 0.5) is None  # exactly the allowed share
    assert deletion_guard([A.fn, B.fn], [], 0.5) is not None


def test_the_deletion_guard_counts_the_published_files_lost_not_the_change_in_count() -> None:
    # An upstream listing swapped for as many other files (a broken index, the wrong subdir)
    # keeps the count and loses every published file: held, like an emptied one.
    why = deletion_guard([A.fn, B.fn], [C.fn, "d-1.0-0.conda"], 0.5)
    assert why is not None and "would remove 2 of 2 published files" in why
    # Files added beside the published ones lose nothing, whatever their number.
    assert deletion_guard([A.fn, B.fn], [A.fn, B.fn, C.fn], 0.0) is None


def test_merge_creates_no_directory_for_a_subdir_nobody_serves() -> None:
    assert merge_subdir("c", "linux-64", [Feed("m", None, {})], [], None, GUARD) is None
    noarch = merge_subdir("c", "noarch", [Feed("m", None, {})], [], None, GUARD)
    assert noarch is not None and noarch.meta is not None and noarch.meta.records == {}
