"""``sitegen status`` on plain data: each mirror's last run and next due time, a running,
killed or downloading run, and the text and JSON that show them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from sitegen.config import parse_config
from sitegen.sync.report import (
    COMPLETED,
    FAILED,
    RUNNING,
    ChannelSubdirReport,
    MirrorReport,
    MirrorSubdirReport,
    RunReport,
)
from sitegen.tools.status import build_status
from sitegen.tools.status_format import format_status, status_json


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


CONFIG = parse_config(
    "output: /srv/site\nchannels:\n"
    "  c/x:\n    url: http://127.0.0.1:1/c\n    subdirs: [linux-64]\n    schedule: '0 * * * *'\n"
    "  d/y:\n    url: http://127.0.0.1:1/d\n    subdirs: [linux-64]\n"
    "  e/z:\n    url: http://127.0.0.1:1/t/${E_TOKEN}/e\n    subdirs: [linux-64]\n"
    "    mode: passive\n"
)


def report(run_id: str, started: str, status: str, **mirrors: str) -> RunReport:
    channels = {"c-x": "c/x", "d-y": "d/y", "e-z": "e/z"}
    return RunReport(
        id=run_id,
        started=ts(started),
        ended=ts(started) + 12,
        status=status,
        pid=4242,
        mirrors=[
            MirrorReport(
                name=name,
                channel=channels[name],
                source="s",
                status=s,
                subdirs={
                    "linux-64": MirrorSubdirReport(records=9, kept=7),
                    "noarch": MirrorSubdirReport(),
                },
                errors=["linux-64: upstream answered 503"] if s == FAILED else [],
            )
            for name, s in mirrors.items()
        ],
        channels=[
            ChannelSubdirReport(
                channel=channels[name],
                subdir="linux-64",
                status="published",
                packages=7,
                added=["a.conda", "b.conda"],
                removed=["old.conda"],
                downloaded_files=2,
                downloaded_bytes=3000,
            )
            for name in mirrors
        ],
    )


RUNS = [
    report("20260102T100000.000Z-1", "2026-01-02T10:00:00", FAILED, **{"c-x": COMPLETED}),
    report("20260102T103000.000Z-2", "2026-01-02T10:30:00", FAILED, **{"d-y": FAILED}),
    report("20260101T000000.000Z-3", "2026-01-01T00:00:00", COMPLETED, **{"d-y": COMPLETED}),
]


@pytest.mark.unit
def test_each_mirror_shows_its_last_run_and_next_due_time() -> None:
    now = ts("2026-01-02T10:45:00")
    status = build_status(CONFIG, RUNS, None, {"c/x": (8192, 3)}, now)
    cx, dy, ez = status.mirrors
    assert cx.last_run is not None and cx.last_run.id == "20260102T100000.000Z-1"
    assert cx.last_run.status == COMPLETED and cx.last_run.records_kept == 7
    assert (cx.last_run.packages, cx.last_run.added, cx.last_run.removed) == (7, 2, 1)
    assert cx.next_due == ts("2026-01-02T11:00:00") and not cx.due  # hourly
    # d-y failed last; its schedule (daily) counts from its last completed run: due.
    assert dy.last_run is not None and dy.last_run.status == FAILED
    assert dy.last_run.errors == ("linux-64: upstream answered 503",)
    assert dy.last_completed == ts("2026-01-01T00:00:00")
    assert dy.next_due == ts("2026-01-02T00:00:00") and dy.due
    assert ez.last_run is None and ez.due and ez.next_due == now  # never ran
    assert [(c.channel, c.bytes, c.files) for c in status.channels] == [
        ("c/x", 8192, 3),
        ("d/y", 0, 0),
        ("e/z", 0, 0),
    ]
    assert status.active is None


@pytest.mark.unit
def test_a_run_recorded_in_the_future_is_not_the_last_one() -> None:
    """A run recorded while the clock ran ahead (2031) neither hides the runs since nor
    makes status promise a next run years away: --due does not count from it either."""
    now = ts("2026-01-02T10:45:00")
    ahead = report("20310601T100000.000Z-9", "2031-06-01T10:00:00", COMPLETED, **{"c-x": COMPLETED})
    status = build_status(CONFIG, [ahead, *RUNS], None, {}, now)
    cx, _dy, _ez = status.mirrors
    assert cx.last_run is not None and cx.last_run.id == "20260102T100000.000Z-1"
    assert cx.last_completed == ts("2026-01-02T10:00:00")
    assert cx.next_due == ts("2026-01-02T11:00:00") and not cx.due
    alone = build_status(CONFIG, [ahead], None, {}, now).mirrors[0]
    assert alone.last_completed is None and alone.due and alone.next_due == now
    assert status_json(build_status(CONFIG, [ahead], None, {}, now))["mirrors"][0]["due"]


@pytest.mark.unit
def test_a_run_holding_the_lock_is_named_by_its_ledger_record() -> None:
    running = RunReport(id="20260102T104000.000Z-77", started=ts("2026-01-02T10:40:00"), pid=77)
    stale = RunReport(id="20260101T104000.000Z-5", started=ts("2026-01-01T10:40:00"), pid=5)
    assert running.status == RUNNING and stale.status == RUNNING
    now = ts("2026-01-02T10:45:00")
    status = build_status(CONFIG, [*RUNS, running, stale], 77, {}, now)
    assert status.active is not None
    assert (status.active.pid, status.active.id) == (77, running.id)
    text = format_status(status)
    assert "running: pid 77 holds the site lock, run 20260102T104000.000Z-77" in text
    assert "(5 min ago)" in text
    # A lock holder without a record (a `verify --repair`, or a run that just started).
    status = build_status(CONFIG, RUNS, 99, {}, now)
    assert status.active is not None and status.active.id is None


@pytest.mark.unit
def test_a_killed_run_still_marked_running_is_named() -> None:
    """A run killed outright (OOM, SIGKILL) leaves its record "running", naming no mirror yet,
    until the next run: status says so instead of showing only the runs before it."""
    killed = RunReport(id="20260102T104000.000Z-77", started=ts("2026-01-02T10:40:00"), pid=77)
    now = ts("2026-01-02T10:45:00")
    status = build_status(CONFIG, [*RUNS, killed], None, {}, now)
    assert [(u.id, u.pid) for u in status.unfinished] == [(killed.id, 77)]
    text = format_status(status)
    assert (
        "unfinished: run 20260102T104000.000Z-77 (pid 77) started 2026-01-02T10:40:00Z"
        " and did not finish" in text
    ), text
    assert status_json(status)["unfinished"] == [
        {"id": killed.id, "started": "2026-01-02T10:40:00Z", "pid": 77}
    ]
    # While it holds the lock it is the running run, not an unfinished one.
    status = build_status(CONFIG, [*RUNS, killed], 77, {}, now)
    assert status.unfinished == () and "unfinished" not in format_status(status)


@pytest.mark.unit
def test_a_downloading_run_shows_its_progress() -> None:
    running = RunReport(id="20260102T104000.000Z-77", started=ts("2026-01-02T10:40:00"), pid=77)
    now = ts("2026-01-02T10:45:00")
    counts = {"files": 120, "total_files": 2098, "failed": 1, "bytes": 10_000_000}
    progress = {"pid": 77, "updated": now, **counts, "total_bytes": 303_000_000}
    status = build_status(CONFIG, [*RUNS, running], 77, {}, now, progress)
    assert status.active is not None and status.active.progress == progress
    text = format_status(status)
    assert "downloading: 120/2098 files (1 failed), 10.0 MB of 303.0 MB" in text, text
    assert status_json(status)["running"]["progress"]["files"] == 120
    # A file a killed run left behind names another pid: not shown as this run's progress.
    status = build_status(CONFIG, [*RUNS, running], 77, {}, now, {**progress, "pid": 5})
    assert status.active is not None and status.active.progress is None
    assert "downloading" not in format_status(status)


@pytest.mark.unit
def test_text_and_json_presentations() -> None:
    now = ts("2026-01-02T10:45:00")
    status = build_status(CONFIG, RUNS, None, {"c/x": (2_500_000, 3)}, now)
    text = format_status(status)
    assert "running: no run holds the site now" in text
    assert "mirror c-x (channel c/x, schedule 0 * * * *)" in text
    assert "last run: 20260102T100000.000Z-1, completed, started 2026-01-02T10:00:00Z" in text
    assert "next due: 2026-01-02T11:00:00Z (in 15 min)" in text
    assert "next due: now (since 2026-01-02T00:00:00Z)" in text
    assert "next due: now (never completed)" in text
    assert "error: linux-64: upstream answered 503" in text
    assert "c/x  2.5 MB in 3 files" in text
    assert "  source: http://127.0.0.1:1/c, active, subdirs linux-64, noarch\n" in text
    assert "  source: http://127.0.0.1:1/t/***/e, passive, subdirs linux-64, noarch\n" in text
    data = json.loads(json.dumps(status_json(status)))
    assert data["running"] is None
    cx = data["mirrors"][0]
    assert cx["next_due"] == "2026-01-02T11:00:00Z" and cx["due"] is False
    assert cx["last_run"]["started"] == "2026-01-02T10:00:00Z"
    assert cx["last_run"]["downloaded_bytes"] == 3000
    assert (cx["source"], cx["mode"], cx["subdirs"]) == (
        "http://127.0.0.1:1/c",
        "active",
        ["linux-64", "noarch"],
    )
    assert data["mirrors"][2]["mode"] == "passive"
    assert data["channels"][0] == {"channel": "c/x", "bytes": 2_500_000, "files": 3, "kept": 0}
