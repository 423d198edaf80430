"""The run report assembled from the stage results, on plain data, and the document of
the records the filters left out."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from sitegen.conda.records import Repodata
from sitegen.config import ChannelConfig, FilterSpec, MirrorConfig
from sitegen.filters.apply import FilterResult
from sitegen.layout import runs_dir
from sitegen.store.site import Site
from sitegen.sync.closure_model import Addition, DependencyReport, MirrorSelection
from sitegen.sync.download import DownloadOutcome
from sitegen.sync.fetch import FetchResult, ParseResult
from sitegen.sync.filtered import filtered_document
from sitegen.sync.history import History
from sitegen.sync.merge import DeletionGuard, Feed, merge_subdir
from sitegen.sync.publish import PublishOutcome
from sitegen.sync.report import MESSAGE_CHARS, MESSAGES_KEPT, RunReport, recorded_text
from sitegen.sync.report_build import RunResults, build_report, clean_rebuild
from sitegen.sync.selection import ClosureResult
from sitegen.sync.subdir_metadata import SubdirMetadata
from testkit.records import rec
from testkit.sync_stages import GUARD, A, B, C, at, by_fn, plan, repodata

pytestmark = pytest.mark.unit


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


def test_errors_and_warnings_are_recorded_cut_and_counted(tmp_path: Path) -> None:
    """An error quoting a long upstream text (1 MB here) is kept as its start and its length,
    and a mirror keeps its first MESSAGES_KEPT errors and warnings with a count of the rest:
    the run's record, and history.json with every run kept, stay small."""
    long_text = "<html>" + "x" * 1_000_000
    one = mirror("one", tuple(f"sub-{n}" for n in range(MESSAGES_KEPT + 5)))
    fresh = merge_subdir("c", "noarch", [Feed("one", repodata(A), by_fn(A))], [], None, GUARD)
    assert fresh is not None
    results = RunResults(
        mirrors=[(channel(one), one)],
        fetched={(one.name, s): FetchResult("error", error=long_text) for s in one.subdirs},
        warnings={one.name: [f"feed {n}: {long_text}" for n in range(MESSAGES_KEPT + 2)]},
        merged=[fresh],
        # A failed download is an error each: an upstream failing mid-run makes thousands.
        downloads={
            ("c", "noarch"): DownloadOutcome(
                0, 0, {A.fn}, [long_text] + [f"f-{n}: 503" for n in range(MESSAGES_KEPT + 7)]
            )
        },
        publish={("c", "noarch"): PublishOutcome("failed", None, error=long_text)},
        errors=[long_text] * (MESSAGES_KEPT + 3),
    )
    report = RunReport(id="20240101T000000.000Z-1", started=0.0)
    build_report(report, {one.name}, results)
    (m_one,) = report.mirrors
    assert len(m_one.errors) == len(m_one.warnings) == MESSAGES_KEPT + 1
    error = f"sub-0: {long_text}"
    assert m_one.errors[0] == f"{error[:MESSAGE_CHARS]}... ({len(error):,} characters)"
    assert m_one.errors[-1] == "and 5 more errors, not recorded"
    assert m_one.warnings[-1] == "and 2 more warnings, not recorded"
    assert report.errors == [recorded_text(long_text)] * MESSAGES_KEPT + [
        "and 3 more errors, not recorded"
    ]
    assert all(len(e) < MESSAGE_CHARS + 30 for e in [*m_one.errors, *m_one.warnings])
    (c_noarch,) = report.channels
    assert c_noarch.errors[:2] == [recorded_text(long_text), "f-0: 503"]
    assert len(c_noarch.errors) == MESSAGES_KEPT + 1
    assert c_noarch.errors[-1] == "and 9 more errors, not recorded"
    History(Site(tmp_path)).save(report)
    assert (runs_dir(tmp_path) / f"{report.id}.json").stat().st_size < 500_000
