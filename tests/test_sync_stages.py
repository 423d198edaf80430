"""The pure stages of a mirror run, on plain data: planning, merging, report assembly."""

from __future__ import annotations

import dataclasses
import json
import urllib.parse
from typing import Any

import msgspec
import pytest
import zstandard

from sitegen.conda.records import Record, Repodata
from sitegen.config import ChannelConfig, FilterSpec, MirrorConfig
from sitegen.filters.apply import FilterResult
from sitegen.net.upstream_secrets import UpstreamSecrets
from sitegen.net.zstd_body import decode_body
from sitegen.sync.closure_model import Addition, DependencyReport, MirrorSelection
from sitegen.sync.download import DownloadOutcome
from sitegen.sync.fetch import FetchResult, ParseResult
from sitegen.sync.filtered import filtered_document
from sitegen.sync.merge import (
    FAILED,
    HELD,
    MERGED,
    DeletionGuard,
    Feed,
    load_previous,
    merge_subdir,
)
from sitegen.sync.plan import DiskSnapshot, files_to_check, plan_subdir
from sitegen.sync.prune import deletion_guard
from sitegen.sync.publish import PublishOutcome
from sitegen.sync.report import RunReport
from sitegen.sync.report_build import RunResults, build_report, clean_rebuild
from sitegen.sync.selection import ClosureResult
from sitegen.sync.subdir_metadata import SubdirMetadata
from sitegen.sync.upstream_copy import hide_secrets
from testkit.records import rec

pytestmark = pytest.mark.unit


def at(record: Record, origin: str = "m", **raw: Any) -> Record:
    """``record`` as offered by mirror ``origin``, with some repodata fields changed."""
    return dataclasses.replace(record, raw={**record.raw, **raw}, origin=origin)


def by_fn(*records: Record) -> dict[str, Record]:
    return {r.fn: r for r in records}


A = at(rec("a"))
B = at(rec("b"))
C = at(rec("c"))


# --------------------------------------------------------------------------- plan


def plan(records, published=(), present=None, checked=None, passive=(), verify=False):
    snapshot = DiskSnapshot(present or {}, checked or {})
    return plan_subdir(by_fn(*records), by_fn(*published), snapshot, set(passive), verify)


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


# --------------------------------------------------------------------------- merge

GUARD = DeletionGuard(max_fraction=0.5)


def repodata(*records: Record, removed: tuple[str, ...] = (), **info: Any) -> Repodata:
    return Repodata(subdir="linux-64", info=info, records=by_fn(*records), removed=list(removed))


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


# --------------------------------------------------------------------------- report assembly


def mirror(name: str, subdirs: tuple[str, ...] = ("linux-64",)) -> MirrorConfig:
    return MirrorConfig(name=name, url=f"https://example.org/{name}", subdirs=subdirs)


def channel(*mirrors: MirrorConfig) -> ChannelConfig:
    return ChannelConfig(path="c", filters=FilterSpec(), mirrors=mirrors)


def test_report_is_assembled_from_the_stage_results() -> None:
    one, two = mirror("one"), mirror("two", ("linux-64", "osx-64"))
    chan = channel(one, two)
    first = at(A, "one")
    parsed_one = Repodata("linux-64", records=by_fn(first, at(B, "one")), rejected={"z": "bad"})
    kept = FilterResult(
        kept=by_fn(first), excluded={B.fn: "not allowed"}, excepted={A.fn: "build excluded"}
    )
    selection = MirrorSelection("one", True, None, {"linux-64": kept})
    deps = DependencyReport(added={"one": [Addition("linux-64", A.fn, "needed by x", "two")]})
    meta = SubdirMetadata("linux-64", by_fn(first))
    published = repodata(at(C, "one"))
    merged = merge_subdir(
        "c", "linux-64", [Feed("one", parsed_one, by_fn(first))], [], published, DeletionGuard(1)
    )
    assert merged is not None
    merged = dataclasses.replace(merged, conflicts=(("two", "linux-64/a: differs"),))
    results = RunResults(
        mirrors=[(chan, one), (chan, two)],
        fetched={
            ("one", "linux-64"): FetchResult("fetched"),
            ("two", "linux-64"): FetchResult("error", error="HTTP 500"),
            ("two", "osx-64"): FetchResult("unchanged"),
        },
        parsed={
            ("one", "linux-64"): ParseResult(parsed_one),
            ("two", "osx-64"): ParseResult(None, error="not JSON"),
        },
        closure=ClosureResult({"one": selection}, deps),
        merged=[merged],
        downloads={("c", "linux-64"): DownloadOutcome(1, 1000, {B.fn}, ["linux-64/b: 404"])},
        publish={("c", "linux-64"): PublishOutcome("published", meta.records, deleted=1)},
        errors=["disk trouble"],
    )
    report = RunReport(id="r", started=0.0, errors=["earlier"])
    everyone = build_report(report, {"one"}, results)
    assert [m.name for m in everyone] == ["one", "two"]
    assert [m.name for m in report.mirrors] == ["one"]  # only the selected mirrors
    data = report.to_json()
    (m_one,) = data["mirrors"]
    assert m_one["errors"] == [] and m_one["status"] == "running"
    assert m_one["subdirs"] == {
        "linux-64": {
            "upstream": "fetched",
            "records": 2,
            "kept": 1,
            "added_as_dependency": 1,
            "excluded": {"not allowed": 1},
            "excepted": {"build excluded": 1},
            "rejected": {"bad": 1},
            "rejected_examples": {"z": "bad"},
        }
    }
    assert m_one["dependencies_added"] == [
        {"subdir": "linux-64", "file": A.fn, "why": "needed by x", "needed_by_channel": "c"}
    ]
    m_two = everyone[1]
    assert m_two.errors == ["linux-64: HTTP 500", "osx-64: not JSON"]
    assert {s: sub.upstream for s, sub in m_two.subdirs.items()} == {
        "linux-64": "error",
        "osx-64": "error",
    }
    assert m_two.conflicts == ["linux-64/a: differs"]
    assert data["channels"] == [
        {
            "channel": "c",
            "subdir": "linux-64",
            "status": "published",
            "packages": 1,
            "added": [A.fn],
            "updated": [],
            "removed": [C.fn],
            "downloaded_files": 1,
            "downloaded_bytes": 1000,
            "local_files": 0,
            "local_bytes": 0,
            "deleted_files": 1,
            "kept_files": 0,
            "errors": ["linux-64/b: 404"],
            "first_step_only": False,
        }
    ]
    assert data["errors"] == ["earlier", "disk trouble"]
    assert not clean_rebuild(report, results)


def test_report_of_held_failed_and_dry_run_subdirs() -> None:
    chan = channel(mirror("m", ("linux-64", "osx-64", "noarch")))
    held = merge_subdir("c", "linux-64", [Feed("m", repodata(), {})], [], repodata(A), GUARD)
    broken = merge_subdir("c", "osx-64", [], ["m"], None, GUARD)
    fresh = merge_subdir("c", "noarch", [Feed("m", repodata(B), by_fn(B))], [], None, GUARD)
    assert held and broken and fresh
    dry = plan([B], present={"old-1.0-0.conda": 3})
    results = RunResults(
        mirrors=[(chan, chan.mirrors[0])],
        dry_run=True,
        merged=[held, broken, fresh],
        plans={("c", "noarch"): dry},
    )
    report = RunReport(id="r", started=0.0)
    build_report(report, {"m"}, results)
    statuses = [(c.subdir, c.status, c.errors != []) for c in report.channels]
    assert statuses == [
        ("linux-64", "held", True),
        ("osx-64", "failed", True),
        ("noarch", "dry-run", False),
    ]
    noarch = report.channels[2]
    assert (noarch.downloaded_files, noarch.downloaded_bytes, noarch.deleted_files) == (1, 1000, 1)
    assert (noarch.added, noarch.packages) == ([B.fn], 1)


def test_a_clean_rebuild_published_every_subdir() -> None:
    chan = channel(mirror("m"))
    merged = merge_subdir("c", "linux-64", [Feed("m", repodata(A), by_fn(A))], [], None, GUARD)
    assert merged is not None and merged.meta is not None
    key = ("c", "linux-64")
    results = RunResults(
        mirrors=[(chan, chan.mirrors[0])],
        fetched={("m", "linux-64"): FetchResult("fetched")},
        merged=[merged],
        downloads={key: DownloadOutcome(1, 1000)},
        publish={key: PublishOutcome("unchanged", merged.meta.records)},
    )
    report = RunReport(id="r", started=0.0)
    build_report(report, {"m"}, results)
    assert clean_rebuild(report, results)
    stopped = dataclasses.replace(results, publish={})  # stopped before publishing
    assert not clean_rebuild(RunReport(id="s", started=0.0), stopped)


def test_a_subdir_that_keeps_its_state_reports_what_it_still_publishes() -> None:
    chan = channel(mirror("m", ("linux-64", "osx-64")))
    held = merge_subdir("c", "linux-64", [Feed("m", repodata(), {})], [], repodata(A, B), GUARD)
    stopped = merge_subdir(
        "c", "osx-64", [Feed("m", repodata(A), by_fn(A))], [], repodata(C), GUARD
    )
    assert held and stopped and held.status == "held"
    # The run stopped before publishing osx-64: no publish outcome.
    results = RunResults(mirrors=[(chan, chan.mirrors[0])], merged=[held, stopped])
    report = RunReport(id="r", started=0.0)
    build_report(report, {"m"}, results)
    assert [(c.subdir, c.packages) for c in report.channels] == [("linux-64", 2), ("osx-64", 1)]


def test_filtered_records_are_kept_by_name_version_build_and_reason() -> None:
    chan = channel(mirror("one", ("linux-64", "noarch")))
    numpy = at(rec("numpy", "2.1.0", "py312_0"))
    numpy_bz2 = dataclasses.replace(numpy, fn=numpy.fn.replace(".conda", ".tar.bz2"))
    old = at(rec("numpy", "1.26.4", "py312_0"))
    parsed = Repodata("linux-64", records=by_fn(numpy, numpy_bz2, old, A))
    kept = FilterResult(
        kept=by_fn(A),
        excluded={numpy.fn: "license excluded", numpy_bz2.fn: "license excluded"}
        | {old.fn: "not in allowlist"},
    )
    nothing = FilterResult(kept={}, excluded={"gone-1.0-0.conda": "not in allowlist"})
    selection = MirrorSelection("one", False, None, {"linux-64": kept, "noarch": nothing})
    results = RunResults(
        mirrors=[(chan, chan.mirrors[0])],
        parsed={("one", "linux-64"): ParseResult(parsed)},
        closure=ClosureResult({"one": selection}, DependencyReport()),
    )
    document = filtered_document("r1", results)
    assert document is not None
    assert (document["run"], document["columns"]) == ("r1", ["name", "version", "build", "reason"])
    (one,) = document["mirrors"]
    assert (one["mirror"], one["channel"]) == ("one", "c")
    reasons = document["reasons"]
    rows = {
        subdir: [(n, v, b, reasons[r]) for n, v, b, r in listed]
        for subdir, listed in one["subdirs"].items()
    }
    assert rows == {
        # One row per build, whatever its formats.
        "linux-64": [
            ("numpy", "1.26.4", "py312_0", "not in allowlist"),
            ("numpy", "2.1.0", "py312_0", "license excluded"),
        ],
        "noarch": [("gone", "1.0", "0", "not in allowlist")],  # named by its file name
    }
    unfiltered = FilterResult(kept=by_fn(A))
    results.closure = ClosureResult(
        {"one": MirrorSelection("one", False, None, {"linux-64": unfiltered})}, DependencyReport()
    )
    assert filtered_document("r2", results) is None


# --------------------------------------------------------------------------- fetch


def test_a_fetched_body_is_kept_without_the_secrets_of_its_mirrors_url() -> None:
    """Upstream echoes the token (in a path) and the password (percent-encoded, in a URL's
    user:password part): the body kept holds their ${ENV} references instead, and reads back
    as it was; a body holding neither is kept as fetched, the same bytes."""
    token, password = "0123456789abcdef", "p@ss/w:rd"
    secrets = UpstreamSecrets({"TOKEN": token, "PASSWORD": password, "SHORT": "abc"})
    encoded = urllib.parse.quote(password, safe="")
    url = f"https://u:{encoded}@host/t/{token}/chan/linux-64/"
    document = json.dumps({"info": {"base_url": url}, "packages": {"abc-1-0.tar.bz2": {}}})
    for variant, body in [
        ("repodata.json", document.encode()),
        ("repodata.json.zst", zstandard.ZstdCompressor().compress(document.encode())),
    ]:
        kept = hide_secrets(secrets, variant, body)
        data = decode_body(variant, kept)
        assert token.encode() not in data and encoded.encode() not in data
        assert b"/t/${TOKEN}/" in data and b"u:%24%7BPASSWORD%7D@" in data
        assert secrets.reveal(data) == document.encode()
        plain = json.dumps({"info": {}, "packages": {}}).encode()
        assert hide_secrets(secrets, variant, plain) is plain
    hidden_url = secrets.hide_text(url)
    assert hidden_url == "https://u:%24%7BPASSWORD%7D@host/t/${TOKEN}/chan/linux-64/"
    assert secrets.reveal_text(hidden_url) == url
