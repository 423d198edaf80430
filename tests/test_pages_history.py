"""Page models of the history: run summaries and details, history pages and the feed, from
run reports (no disk, no network)."""

from __future__ import annotations

import pytest

from sitegen.sync.report import (
    COMPLETED,
    FAILED,
    INTERRUPTED,
    RUNNING,
    AddedDependency,
    MirrorSubdirReport,
    UnsatisfiedDependency,
)
from sitegen.web.history import feed_entries, feed_groups, history_json, history_pages
from sitegen.web.landing import mirror_state
from sitegen.web.run import run_detail, run_summary
from testkit.reports import run

pytestmark = pytest.mark.unit


def test_run_summary_counts_and_reasons() -> None:
    report = run("r1", 1_700_000_000, FAILED, added=("a-1-h_0.conda",), errors=("boom",))
    summary = run_summary(report)
    assert summary["duration_text"] == "1 min 5 s"
    assert summary["totals"]["added"] == 1 and summary["totals"]["downloaded_bytes"] == 100
    (mirror,) = summary["mirrors"]
    assert mirror["excluded"] == {"license excluded": 2, "invalid size": 1}
    assert (mirror["records"], mirror["kept"], mirror["excluded_total"]) == (10, 7, 3)
    assert summary["all_errors"] == ["m: boom"]
    assert summary["page"] == "history/r1.html"


def test_scrub_is_applied_to_error_text() -> None:
    report = run("r1", 1, FAILED, errors=("GET https://h/t/SECRET/x failed",))
    summary = run_summary(report, lambda s: s.replace("SECRET", "***"))
    assert summary["mirrors"][0]["errors"] == ["GET https://h/t/***/x failed"]


def test_mirror_state_last_status_and_last_success() -> None:
    reports = [
        run("r4", 400, RUNNING),
        run("r3", 300, FAILED, mirror_status=FAILED, errors=("unreachable",)),
        run("r2", 200, INTERRUPTED),
        run("r1", 100, COMPLETED),
    ]
    state = mirror_state(reports, "m")
    assert state["last_status"] == RUNNING and state["last_run"] == "r4"
    assert state["last_success"] == 165  # r1 ended
    assert state["read"] is reports[1].mirrors[0]
    state = mirror_state(reports[1:], "m")
    assert state["last_status"] == FAILED
    assert mirror_state(reports, "unknown")["last_status"] is None
    # A run that could not read upstream at all counts nothing: the counts shown are those of
    # the newest run that could, beside the failed status of the last.
    unreadable = run("r5", 500, FAILED, mirror_status=FAILED, errors=("HTTP 503",))
    unreadable.mirrors[0].subdirs["linux-64"] = MirrorSubdirReport(upstream="error")
    state = mirror_state([unreadable, *reports[1:]], "m")
    assert state["last_status"] == FAILED and state["last_run"] == "r5"
    assert state["read"] is reports[1].mirrors[0] and state["read_run"] == "r3"


def test_history_pages_and_json() -> None:
    reports = [run(f"r{i}", 1000 - i, COMPLETED) for i in range(5)]
    chunks = history_pages([run_summary(r) for r in reports], size=2)
    assert [c["path"] for c in chunks] == [
        "history/index.html",
        "history/page-2.html",
        "history/page-3.html",
    ]
    assert [len(c["runs"]) for c in chunks] == [2, 2, 1]
    assert history_pages([])[0]["runs"] == []
    document = history_json(reports)
    assert [r["id"] for r in document["runs"]] == [f"r{i}" for i in range(5)]
    assert document["runs"][0]["record"] == "history/runs/r0.json"


def test_feed_entries_group_files_by_version() -> None:
    reports = [
        run("r3", 300, RUNNING, added=("x-1-h_0.conda",)),  # not finished: not in the feed
        run("r2", 200, COMPLETED, added=("a-1-h_0.conda", "a-1-h_0.tar.bz2", "b-2-h_0.conda")),
        run("r1", 100, COMPLETED, added=("a-0.9-h_0.conda",)),
    ]
    entries = feed_entries(reports, {"c/x": {"a"}})
    assert [e["title"] for e in entries] == ["a 1 in c/x", "b 2 in c/x", "a 0.9 in c/x"]
    assert entries[0]["files"] == ["linux-64/a-1-h_0.conda", "linux-64/a-1-h_0.tar.bz2"]
    assert entries[0]["page"] == "c/x/packages/a.html"
    assert entries[1]["page"] == "history/r2.html"  # b has no page (any more)
    assert len({e["id"] for e in entries}) == 3
    assert len(feed_entries(reports, {}, limit=2)) == 2
    # Groups computed before (kept by the render between runs) give the same entries.
    groups = {r.id: feed_groups(r) for r in reports}
    assert groups["r2"][0] == [
        "c/x",
        "a",
        "1",
        ["linux-64/a-1-h_0.conda", "linux-64/a-1-h_0.tar.bz2"],
        0,
    ]
    for limit in (1, 2, 3, 100):
        assert feed_entries(reports, {"c/x": {"a"}}, limit, groups=groups) == (
            feed_entries(reports, {"c/x": {"a"}}, limit)
        )


def test_run_detail_lists_changes_and_dependency_report() -> None:
    report = run("r1", 100, COMPLETED, added=("a-1-h_0.conda", "gone-1-h_0.conda"))
    report.mirrors[0].unsatisfied = [UnsatisfiedDependency("linux-64", "q >=2", "a")]
    report.mirrors[0].dependencies_added = [AddedDependency("linux-64", "z.conda", "a")]
    detail = run_detail(report, package_pages={"c/x": {"a"}})
    (change,) = detail["changes"]
    assert change["added"]["items"] == [
        {"fn": "a-1-h_0.conda", "page": "c/x/packages/a.html"},
        {"fn": "gone-1-h_0.conda", "page": None},
    ]
    (mirror,) = detail["mirror_details"]
    assert mirror["unsatisfied_rows"]["items"][0]["spec"] == "q >=2"
    assert mirror["dependencies_added_rows"]["items"][0]["file"] == "z.conda"
    assert mirror["subdirs"][0]["excluded"] == {"license excluded": 2, "invalid size": 1}
