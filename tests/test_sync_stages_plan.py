"""The plan of a subdir, on plain data: what a run downloads, stages, re-hashes, removes
and withdraws."""

from __future__ import annotations

import pytest

from sitegen.sync.plan import files_to_check
from testkit.sync_stages import A, B, C, at, by_fn, plan

pytestmark = pytest.mark.unit


def test_plan_downloads_what_is_absent_or_of_the_wrong_size() -> None:
    result = plan([A, B, C], published=[A, B], present={"a-1.0-0.conda": 1000, B.fn: 999})
    assert [r.fn for r in result.to_download] == [B.fn, C.fn]
    assert result.to_stage == [] and result.to_remove == []
    assert (result.jobs, result.bytes) == (2, 2000)
    # A file of the wrong size is fetched again, never re-hashed.
    assert files_to_check(by_fn(A, B, C), by_fn(A, B), {A.fn: 1000, B.fn: 999}, (), False) == []


def test_plan_trusts_a_published_file_by_its_size_unless_verifying() -> None:
    present = {A.fn: 1000}
    assert files_to_check(by_fn(A), by_fn(A), present, (), verify=False) == []
    assert plan([A], published=[A], present=present).jobs == 0
    assert files_to_check(by_fn(A), by_fn(A), present, (), verify=True) == [A.fn]
    bad = plan([A], published=[A], present=present, checked={A.fn: False}, verify=True)
    assert bad.to_download == [A]
    good = plan([A], published=[A], present=present, checked={A.fn: True}, verify=True)
    assert good.jobs == 0


def test_plan_rehashes_a_file_no_published_record_vouches_for() -> None:
    present = {A.fn: 1000}
    assert files_to_check(by_fn(A), {}, present, (), verify=False) == [A.fn]
    assert plan([A], present=present, checked={A.fn: True}).jobs == 0
    assert plan([A], present=present, checked={A.fn: False}).to_download == [A]
    # Unchecked, nothing vouches for it: fetched.
    assert plan([A], present=present).to_download == [A]


def test_plan_stages_a_reupload_under_a_published_name() -> None:
    new_a = at(A, sha256="1" * 64)
    assert files_to_check(by_fn(new_a), by_fn(A), {A.fn: 1000}, (), False) == [A.fn]
    result = plan([new_a], published=[A], present={A.fn: 1000}, checked={A.fn: False})
    assert result.to_stage == [new_a] and result.to_download == []
    # Staged bytes are fetched too: they count in what the run needs room for.
    assert (result.jobs, result.bytes) == (1, new_a.size)
    # Already the new bytes on disk (a run that stopped after moving them into place).
    assert plan([new_a], published=[A], present={A.fn: 1000}, checked={A.fn: True}).jobs == 0


def test_plan_removes_wrong_passive_files_and_downloads_none() -> None:
    passive_a, passive_b = at(A, "lazy"), at(B, "lazy")
    result = plan(
        [passive_a, passive_b, C],
        present={A.fn: 5, "old-1.0-0.tar.bz2": 10},
        passive={"lazy"},
    )
    assert result.to_remove == [A.fn]  # the absent passive file is left to the fetcher
    assert result.to_download == [C]
    assert result.unreferenced == 1


def test_plan_withdraws_a_stored_passive_file_its_upstream_replaced() -> None:
    """The published record names the stored bytes until the new one is published: the file
    goes then (withdrawn at publishing), not before."""
    new_a, passive_b = at(A, "lazy", sha256="1" * 64), at(B, "lazy")
    published = [at(A, "lazy"), passive_b]
    present = {A.fn: 1000, B.fn: 5}
    result = plan([new_a, passive_b], published, present, {A.fn: False}, passive={"lazy"})
    assert (result.to_withdraw, result.to_remove) == ([A.fn], [B.fn])
    assert result.jobs == 0
    # Withdrawn whatever bytes it holds: not re-hashed first, even when verifying.
    for verify in (False, True):
        records, before = by_fn(new_a, passive_b), by_fn(*published)
        assert files_to_check(records, before, present, {"lazy"}, verify) == []
    # Not stored when the run looks, it may be before the new record is published: the
    # fetcher stores the old bytes, verified against the record published until then.
    absent = plan([new_a, passive_b], published, {B.fn: 5}, passive={"lazy"})
    assert (absent.to_withdraw, absent.to_remove) == ([A.fn], [B.fn])
    # Stored with the new bytes already (put in by hand): the fetcher, which compares sizes
    # with the record published until then, may store the old bytes over them meanwhile.
    checked = {A.fn: True, B.fn: False}
    new_stored = plan([new_a, passive_b], published, present, checked, passive={"lazy"})
    assert (new_stored.to_withdraw, new_stored.to_remove) == ([A.fn], [B.fn])
