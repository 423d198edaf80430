"""Which mirrors a run syncs (--only, --due with cron schedules) and one run at a time."""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sitegen.cli import EXIT_CONFIG, EXIT_FAILED, EXIT_LOCKED, EXIT_OK, main
from sitegen.config import ConfigError, parse_config, schedule
from sitegen.layout import runs_dir
from sitegen.store.lock import SiteLock, SiteLocked
from sitegen.store.site import Site
from sitegen.sync import running
from sitegen.sync.history import History
from sitegen.sync.report import (
    COMPLETED,
    FAILED,
    STOPPED,
    ChannelSubdirReport,
    MirrorReport,
    MirrorSubdirReport,
    RunReport,
)
from sitegen.sync.run import MirrorOptions, run_mirror, select_mirrors
from sitegen.tools.example_channel import PackageSpec, write_channel
from testkit.site import published, site_config, snapshot
from testkit.upstream import ExampleUpstream, UpstreamServer
from testkit.zone import local_zone


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


# --------------------------------------------------------------------------- pure schedule logic


@pytest.mark.unit
def test_a_run_record_keeps_any_text_and_reads_back(tmp_path: Path) -> None:
    """Errors quote upstream text and local paths, which may be neither ASCII nor UTF-8: the
    record keeps them, and reads back with U+FFFD for what no page can hold (a lone
    surrogate), so that every page rendered from the ledger can show it."""
    report = RunReport(id="20240101T000000.000Z-1", started=1.0, ended=2.0, status=COMPLETED)
    report.errors = ["mirror café: 404", "cannot publish it from /srv/caf\udce9/x.conda"]
    report.mirrors.append(MirrorReport(name="m", channel="c", source="https://example.org/c"))
    history = History(Site(tmp_path))
    history.save(report)
    data = (runs_dir(tmp_path) / f"{report.id}.json").read_bytes()
    assert data.isascii()
    assert data == json.dumps(dataclasses.asdict(report), indent=1, sort_keys=True).encode()
    (again,) = history.runs()
    assert again.errors == ["mirror café: 404", "cannot publish it from /srv/caf\ufffd/x.conda"]
    again.errors = report.errors
    assert again.to_json() == report.to_json()


MIRROR = {"name": "cloud-x", "channel": "cloud/x", "source": "/srv/x"}
APPROVAL = {"action": "approve", "channel": "cloud/x", "spec": "zlib", "by": "ann", "why": "w"}
DAMAGED_RECORDS = [
    {"started": "yesterday"},
    {"started": None},
    {"started": 1.0, "ended": "later"},
    {"started": 1.0, "mirrors": [1]},
    {"started": 1.0, "mirrors": {"m": {}}},
    {"started": 1e300},
    {"started": 1.0, "channels": [{"channel": "c", "subdir": "noarch", "added": "a.conda"}]},
    {"id": 5, "started": 1.0},
    # Rows of the right type (objects of strings) that lack a field the pages read.
    {"started": 1.0, "approvals": [{"action": "approve", "channel": "cloud/x"}]},
    {"started": 1.0, "mirrors": [{**MIRROR, "unsatisfied": [{"subdir": "linux-64"}]}]},
    {"started": 1.0, "mirrors": [{**MIRROR, "advisories_blocked": [{"subdir": "linux-64"}]}]},
    {"started": 1.0, "mirrors": [{**MIRROR, "dependencies_added": [{"file": "a-1-0.conda"}]}]},
    {"started": 1.0, "mirrors": [{**MIRROR, "pins_missing": [{"why": "not upstream"}]}]},
    {"started": 1.0, "approvals": [{**APPROVAL, "with_dependencies": "yes"}]},
]


@pytest.mark.unit
@pytest.mark.parametrize(
    "text",
    [json.dumps({"id": "20240102T000000.000Z-2", **d}) for d in DAMAGED_RECORDS]
    + ["[" * 100_000 + "]" * 100_000],
)
def test_a_damaged_or_foreign_run_record_is_skipped_not_fatal(tmp_path: Path, text: str) -> None:
    """Every reader of the ledger (pages, status, --due, retention) sorts and formats the
    records' times: one file of the wrong shape must not stop them all."""
    good = RunReport(id="20240101T000000.000Z-1", started=1.0, ended=2.0, status=COMPLETED)
    history = History(Site(tmp_path))
    history.save(good)
    (runs_dir(tmp_path) / "20240102T000000.000Z-2.json").write_text(text)
    assert [r.id for r in history.runs()] == [good.id]
    # Whoever must not take "cannot tell" for "names nothing" is told (see web/private.py).
    with pytest.raises(OSError, match="unreadable run record"):
        history.runs(strict=True)


@pytest.mark.unit
def test_run_records_read_back_as_every_version_wrote_their_rows(tmp_path: Path) -> None:
    """The rows of a record's lists have been written with these fields since they exist (an
    approval's expiry and dependencies only when given); they read back and are written
    again the same."""
    mirror = {
        **MIRROR,
        "unsatisfied": [{"needed_by": "app-1-0.conda", "spec": "lib >=2", "subdir": "linux-64"}],
        "dependencies_added": [{"file": "lib-2-0.conda", "subdir": "noarch", "why": "lib >=2"}],
        "advisories_blocked": [{"advisory": "GHSA-1", "file": "zlib-1-0.conda", "subdir": "x"}],
        "pins_missing": [
            {"file": "b-1-0.conda", "lockfile": "/l/pixi.lock", "subdir": "x", "why": "gone"}
        ],
    }
    approvals = [
        APPROVAL,
        {**APPROVAL, "action": "revoke", "expires": "2027-01-31", "with_dependencies": "true"},
    ]
    record = {"id": "20240102T000000.000Z-2", "started": 1.0, "mirrors": [mirror]}
    record["approvals"] = approvals
    history = History(Site(tmp_path))
    path = runs_dir(tmp_path) / "20240102T000000.000Z-2.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record))
    (report,) = history.runs(strict=True)
    assert report.mirrors[0].unsatisfied[0].spec == "lib >=2"
    assert report.approvals[1].with_dependencies == "true" and report.approvals[0].expires is None
    data = report.to_json()
    assert data["approvals"] == approvals
    assert {key: data["mirrors"][0][key] for key in mirror} == mirror


@pytest.mark.unit
def test_a_ledger_that_cannot_be_read_reads_empty_or_raises_when_strict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Most readers take an unlistable ledger for no runs; a strict reader (whether webconf
    may serve the records) is told it cannot list it, in the same read that lists them."""
    history = History(Site(tmp_path))
    assert history.runs() == [] and history.runs(strict=True) == []  # no run yet
    good = RunReport(id="20240101T000000.000Z-1", started=1.0, ended=2.0, status=COMPLETED)
    history.save(good)
    assert [r.id for r in history.runs(strict=True)] == [good.id]
    # A damaged record is passed over, but a strict reader cannot tell what it names.
    damaged = history.directory / "20240102T000000.000Z-1.json"
    damaged.write_text('{"id": "20240102T000000.000Z-1", "channels": [{"chann')
    assert [r.id for r in history.runs()] == [good.id]
    with pytest.raises(OSError, match="unreadable run record"):
        history.runs(strict=True)
    # A record deleted between the listing and its reading (retention) is simply gone.
    damaged.unlink()
    read_bytes = Path.read_bytes

    def retained(path: Path) -> bytes:
        if path.name == f"{good.id}.json":
            raise FileNotFoundError(path)
        return read_bytes(path)

    later = RunReport(id="20240103T000000.000Z-1", started=3.0, ended=4.0, status=COMPLETED)
    history.save(later)
    with monkeypatch.context() as patched:
        patched.setattr(Path, "read_bytes", retained)
        assert [r.id for r in history.runs(strict=True)] == [later.id]
    for record in history.directory.iterdir():
        record.unlink()
    history.directory.rmdir()
    history.directory.write_text("not a directory")  # listing it fails
    assert history.runs() == [] and history.read() == ([], [])
    with pytest.raises(OSError):
        history.runs(strict=True)


@pytest.mark.unit
def test_never_completed_mirror_is_due() -> None:
    assert schedule.is_due("0 2 * * *", None, ts("2026-01-01T00:00:00"))


@pytest.mark.unit
@pytest.mark.parametrize(
    ("expression", "last", "now", "due"),
    [
        ("0 2 * * *", "2026-01-01T02:00:05", "2026-01-02T01:59:00", False),
        ("0 2 * * *", "2026-01-01T02:00:05", "2026-01-02T02:00:00", True),
        ("*/15 * * * *", "2026-01-01T10:00:00", "2026-01-01T10:14:59", False),
        ("*/15 * * * *", "2026-01-01T10:00:00", "2026-01-01T10:15:00", True),
        ("0 0 1 * *", "2026-01-01T00:00:10", "2026-01-31T23:00:00", False),
        ("0 0 1 * *", "2026-01-01T00:00:10", "2026-02-01T00:00:00", True),
        (None, "2026-01-01T12:00:00", "2026-01-01T23:59:00", False),  # default: daily
        (None, "2026-01-01T12:00:00", "2026-01-02T00:00:00", True),
    ],
)
def test_schedule_fires_after_last_completed_run(
    expression, last, now, due, monkeypatch: pytest.MonkeyPatch
) -> None:
    with local_zone(monkeypatch, "UTC0"):
        assert schedule.is_due(expression, ts(last), ts(now)) is due


@pytest.mark.unit
def test_a_schedule_is_read_in_local_time_as_cron_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """02:00 is 02:00 where the mirror runs: 17:00 UTC 9 hours east of it, and the hour moves
    with daylight saving (a US zone: 07:00 UTC in winter, 06:00 UTC in summer)."""
    with local_zone(monkeypatch, "JST-9"):
        assert schedule.next_due("0 2 * * *", ts("2026-12-05T18:00:00")) == ts(
            "2026-12-06T17:00:00"
        )
    with local_zone(monkeypatch, "EST5EDT,M3.2.0,M11.1.0"):
        assert schedule.next_due("0 2 * * *", ts("2026-01-10T12:00:00")) == ts(
            "2026-01-11T07:00:00"
        )
        assert schedule.next_due("0 2 * * *", ts("2026-07-10T12:00:00")) == ts(
            "2026-07-11T06:00:00"
        )


@pytest.mark.unit
def test_day_of_month_and_weekday_combine_as_cron_combines_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both restricted: either day fires. But a field starting with ``*`` (``*/2``) leaves the
    other in charge (both must match), as Vixie cron and cronie read it: ``0 0 */2 * mon`` is
    the Mondays on an odd day of the month (2026-01-05 and 19), not also every odd day."""
    with local_zone(monkeypatch, "UTC0"):
        start = ts("2026-01-01T00:00:30")
        assert schedule.next_due("0 0 13 * fri", start) == ts("2026-01-02T00:00:00")
        assert schedule.next_due("0 0 1-31/2 * mon", start) == ts("2026-01-03T00:00:00")
        assert schedule.next_due("0 0 */2 * mon", start) == ts("2026-01-05T00:00:00")
        assert schedule.next_due("0 0 */2 * mon", ts("2026-01-05T00:00:30")) == ts(
            "2026-01-19T00:00:00"
        )
        assert schedule.next_due("0 0 1 * */3", start) == ts("2026-02-01T00:00:00")  # a Sunday
    assert schedule.is_valid("0 0 30 2 mon")
    assert not schedule.is_valid("0 0 30 2 */2")  # cron: the 30th of February, some weekdays


@pytest.mark.unit
def test_a_run_in_the_repeated_hour_of_fall_back_is_not_followed_by_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On 2026-11-01 01:00-02:00 comes twice in a US zone. A run at 01:10 in the second one
    (06:10 UTC; by --only, say) comes after 01:30 of the first (05:30 UTC) fired: the next
    01:30 is the next day's, not the one already past, which would make every --due of the
    hour run the mirror again."""
    with local_zone(monkeypatch, "EST5EDT,M3.2.0,M11.1.0"):
        last = ts("2026-11-01T06:10:00")
        assert schedule.next_due("30 1 * * *", last) == ts("2026-11-02T06:30:00")
        assert not schedule.is_due("30 1 * * *", last, ts("2026-11-01T06:20:00"))
        assert schedule.next_due("*/15 * * * *", last) > last


@pytest.mark.unit
def test_invalid_cron_expression_names_key_and_line() -> None:
    text = (
        "output: site\nchannels:\n  a/b:\n    url: http://127.0.0.1:1/c\n"
        "    subdirs: [linux-64]\n    schedule: '61 * * * *'\n"
    )
    with pytest.raises(ConfigError, match=r"channels.yaml:6: channels.a/b.schedule: invalid cron"):
        parse_config(text)
    backwards = text.replace("61 * * * *", "30-10 * * * *")
    with pytest.raises(ConfigError, match=r"channels.yaml:6: channels.a/b.schedule: .*'30-10'"):
        parse_config(backwards)


@pytest.mark.unit
@pytest.mark.parametrize(
    "expression",
    [
        "0 0 2 * * *",  # seconds first, daily at 02:00: croniter reads it as the 2nd monthly
        "* * * * * *",  # croniter: every second
        "0 2 * * * 2030",  # a year field
        "R 2 * * *",  # croniter: a random minute, drawn anew on every reading
        "r(0-30) 2 * * *",
        "0 2 * * 1,R",
        "H 2 * * *",
        "@daily 5",
        # Backwards ranges: croniter wraps them around (30-59 and 0-10), cron refuses them.
        "1-0 * * * *",
        "30-10 * * * *",
        "0 5-1 * * *",
        "0 0 20-3 * *",
        "0 0 * dec-jan *",
        "0 0 * * fri-mon",
        "0 0 * * 7-0",
        "30-10/5 * * * *",
        pytest.param("9" * 5000 + "-1 * * * *", id="a range from a number int() refuses"),
    ],
)
def test_a_schedule_cron_would_not_read_is_a_config_error(expression: str) -> None:
    assert not schedule.is_valid(expression)


@pytest.mark.unit
@pytest.mark.parametrize(
    "expression",
    [
        "0 2 * * *",
        "*/15 1-5 1,15 jan-dec/2 mon-fri",
        "10-50/20 * * MAR,apr fri",
        "@hourly",
        "5-5 * * * *",
        "0 0 * * 1-7",
        "0 0 * * sun-sat",
    ],
)
def test_cron_expressions_with_names_steps_and_lists_are_valid(expression: str) -> None:
    assert schedule.is_valid(expression)


@pytest.mark.unit
def test_schedules_check_with_croniter_before_6(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyproject.toml allows croniter 2 to 5, whose package does not export CroniterError (its
    croniter.croniter module does, a ValueError): checking a schedule must not need it."""
    import croniter

    monkeypatch.delattr(croniter, "CroniterError", raising=False)
    assert schedule.is_valid("0 2 * * *")
    assert not schedule.is_valid("0 0 31 2 *")


def _two_mirror_config(site: Path, url: str, *, schedule_a: str = "", schedule_b: str = ""):
    return site_config(
        site,
        f"""
        channels:
          one/a:
            url: {url}
            subdirs: [linux-64]
            {f"schedule: '{schedule_a}'" if schedule_a else ""}
          two/b:
            url: {url}
            subdirs: [linux-64]
            {f"schedule: '{schedule_b}'" if schedule_b else ""}
        """,
    )


def _run(started: float, **statuses: str) -> RunReport:
    return RunReport(
        id=f"r{started}",
        started=started,
        mirrors=[
            # The channel each mirror feeds in _two_mirror_config ("one-a" feeds one/a).
            MirrorReport(
                name=n,
                channel=n.replace("-", "/"),
                source="s",
                status=status,
                subdirs={s: MirrorSubdirReport(upstream="updated") for s in ("linux-64", "noarch")},
            )
            for n, status in statuses.items()
        ],
    )


@pytest.mark.unit
def test_select_mirrors_by_due_uses_each_mirrors_last_completed_run(tmp_path: Path) -> None:
    config = _two_mirror_config(
        tmp_path / "site", "http://127.0.0.1:1/c", schedule_a="0 * * * *", schedule_b="0 0 * * *"
    )
    now = ts("2026-01-02T10:30:00")
    runs = [  # newest first, as History.runs() returns them
        _run(ts("2026-01-02T10:00:00"), **{"one-a": COMPLETED, "two-b": FAILED}),
        _run(ts("2026-01-02T09:00:00"), **{"two-b": COMPLETED}),
    ]
    # one-a completed at 10:00, hourly: next at 11:00, not due. two-b last completed 09:00 today,
    # daily at midnight: next 00:00 tomorrow, not due either.
    assert select_mirrors(config, runs, MirrorOptions(due=True), now) == set()
    later = ts("2026-01-02T11:00:00")
    assert select_mirrors(config, runs, MirrorOptions(due=True), later) == {"one-a"}
    assert select_mirrors(config, runs[1:], MirrorOptions(due=True), now) == {"one-a"}
    assert select_mirrors(config, [], MirrorOptions(due=True), now) == {"one-a", "two-b"}
    assert select_mirrors(config, runs, MirrorOptions(only=("two-b",)), now) == {"two-b"}
    with pytest.raises(ConfigError, match="no mirror named nope"):
        select_mirrors(config, runs, MirrorOptions(only=("nope",)), now)
    # A channel's path where its mirror's name belongs: the message names the mirror.
    with pytest.raises(ConfigError, match="'one/a' is a channel, fed by one-a; mirrors are"):
        select_mirrors(config, runs, MirrorOptions(only=("one/a",)), now)


@pytest.mark.unit
def test_a_completed_run_recorded_in_the_future_does_not_stop_due_runs(tmp_path: Path) -> None:
    """The clock ran ahead (to 2031) during a run and was set right since: counting the
    schedule from that run would leave the mirror not due for five years, with --due exiting
    0 as if all were well. A record that starts after now is not the last completed run."""
    config = _two_mirror_config(
        tmp_path / "site", "http://127.0.0.1:1/c", schedule_a="0 * * * *", schedule_b="0 0 * * *"
    )
    now = ts("2026-01-02T10:30:00")
    ahead = _run(ts("2031-06-01T10:00:00"), **{"one-a": COMPLETED, "two-b": COMPLETED})
    assert select_mirrors(config, [ahead], MirrorOptions(due=True), now) == {"one-a", "two-b"}
    # Once the mirrors ran with the clock set right, their schedules count from that run.
    since = _run(ts("2026-01-02T10:10:00"), **{"one-a": COMPLETED, "two-b": COMPLETED})
    assert select_mirrors(config, [ahead, since], MirrorOptions(due=True), now) == set()
    later = ts("2026-01-02T11:00:00")
    assert select_mirrors(config, [ahead, since], MirrorOptions(due=True), later) == {"one-a"}


@pytest.mark.unit
def test_a_run_of_another_channel_or_before_a_removal_is_not_the_last_completed_one(
    tmp_path: Path,
) -> None:
    """The schedule counts from the mirror's last completed run of the channel it feeds now:
    one that built another channel (the channel renamed, the mirror moved), or that a `sitegen
    remove` of the channel came after (the channel added again since), leaves it due."""
    config = _two_mirror_config(tmp_path / "site", "http://127.0.0.1:1/c", schedule_a="0 0 * * *")
    now = ts("2026-01-02T10:30:00")
    done = _run(ts("2026-01-02T10:00:00"), **{"one-a": COMPLETED, "two-b": COMPLETED})
    assert select_mirrors(config, [done], MirrorOptions(due=True), now) == set()
    elsewhere = _run(ts("2026-01-02T10:10:00"), **{"one-a": COMPLETED})
    elsewhere.mirrors[0].channel = "old/a"  # one-a fed old/a then: one/a is not built
    assert select_mirrors(config, [elsewhere, done], MirrorOptions(due=True), now) == {"one-a"}
    removal = RunReport(
        id="removal",
        started=ts("2026-01-02T10:20:00"),
        status=COMPLETED,
        options={"remove": "two/b"},
        channels=[
            ChannelSubdirReport("two/b", s, status="removed") for s in ("linux-64", "noarch")
        ],
    )
    assert select_mirrors(config, [removal, done], MirrorOptions(due=True), now) == {"two-b"}
    # The removal of a subdir the mirror no longer lists leaves its schedule alone.
    removal.channels = [ChannelSubdirReport("two/b", "osx-64", status="removed")]
    assert select_mirrors(config, [removal, done], MirrorOptions(due=True), now) == set()
    # Nor does a run before a subdir was added to the mirror's list count.
    wider = _two_mirror_config(tmp_path / "site", "http://127.0.0.1:1/c", schedule_a="0 0 * * *")
    one_a = dataclasses.replace(
        wider.channels[0].mirrors[0], subdirs=("linux-64", "noarch", "osx-64")
    )
    wider = dataclasses.replace(
        wider,
        channels=[dataclasses.replace(wider.channels[0], mirrors=(one_a,)), *wider.channels[1:]],
    )
    assert select_mirrors(wider, [done], MirrorOptions(due=True), now) == {"one-a"}


# --------------------------------------------------------------------------- real runs


@pytest.mark.integration
async def test_due_run_skips_mirrors_that_ran_and_records_nothing(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    site = tmp_path / "site"
    config = _two_mirror_config(site, example_upstream.url, schedule_a="0 0 1 1 *")
    first = await run_mirror(config, MirrorOptions(progress=False, due=True))
    assert {m.name for m in first.mirrors} == {"one-a", "two-b"}
    runs_dir = site / "history" / "runs"
    assert len(list(runs_dir.glob("*.json"))) == 1
    example_upstream.server.reset()
    second = await run_mirror(config, MirrorOptions(progress=False, due=True))
    assert second.mirrors == [] and second.status == COMPLETED
    assert example_upstream.server.requests == []
    assert len(list(runs_dir.glob("*.json"))) == 1  # a run with nothing due leaves no record


@pytest.mark.integration
@pytest.mark.parametrize("due", [False, True])
async def test_a_run_holds_no_record_of_earlier_runs_while_it_works(
    tmp_path: Path, example_upstream: ExampleUpstream, monkeypatch: pytest.MonkeyPatch, due: bool
) -> None:
    """The ledger is read (with --due) to choose what runs, then let go of: a first sync of a
    large channel leaves a record listing every file it added, tens of MB held through the
    whole run (and its peak) otherwise."""
    site = tmp_path / "site"
    config = _two_mirror_config(site, example_upstream.url)
    earlier = _run(ts("2026-01-02T10:00:00"), **{"one-a": COMPLETED})
    # An id of its own: other tests of this process may keep records of theirs.
    ledger_id = f"{earlier.id}-{os.getpid()}-{id(tmp_path)}"
    History(Site(site)).save(dataclasses.replace(earlier, id=ledger_id, status=COMPLETED))
    del earlier  # only the record read back from the ledger is looked for
    held: list[list[str]] = []
    pipeline = running.run_pipeline

    async def watched(scope, report):
        gc.collect()
        held.append(
            [o.id for o in gc.get_objects() if isinstance(o, RunReport) and o.id == ledger_id]
        )
        await pipeline(scope, report)

    monkeypatch.setattr(running, "run_pipeline", watched)
    run = await run_mirror(config, MirrorOptions(progress=False, due=due))
    assert run.status == COMPLETED and {m.name for m in run.mirrors} == {"one-a", "two-b"}
    assert held == [[]]


@pytest.mark.integration
async def test_a_run_leaves_the_collector_running_with_nothing_frozen(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    """A run parses with the cyclic GC paused and freezes the records it made: a process that
    goes on (a scheduler, a test, another run) finds the collector as it was."""
    config = _two_mirror_config(tmp_path / "site", example_upstream.url)
    assert (await run_mirror(config, MirrorOptions(progress=False))).status == COMPLETED
    assert gc.isenabled() and gc.get_freeze_count() == 0


@pytest.mark.integration
def test_due_builds_a_channel_renamed_or_added_again_at_once(
    tmp_path: Path, example_upstream: ExampleUpstream, capsys: pytest.CaptureFixture[str]
) -> None:
    """A channel renamed in channels.yaml (its mirror keeps its name), or removed with `sitegen
    remove` and added again, is built by the next `mirror --due`, not once the mirror's
    schedule fires again: no completed run built it as configured now."""
    site, config_path = tmp_path / "site", tmp_path / "channels.yaml"

    def configure(channel: str) -> None:
        config_path.write_text(
            f"output: {site}\nchannels:\n  {channel}:\n    mirrors:\n      - name: forge\n"
            f"        url: {example_upstream.url}\n        subdirs: [linux-64]\n"
        )

    def due() -> int:
        return main(["mirror", "--due", "--no-progress", "-c", str(config_path)])

    def next_due() -> str:
        capsys.readouterr()
        assert main(["status", "-c", str(config_path)]) == EXIT_OK
        return capsys.readouterr().out.split("next due: ", 1)[1].split("\n", 1)[0]

    configure("c/x")
    assert due() == EXIT_OK
    assert not next_due().startswith("now")
    configure("c/y")
    assert next_due() == "now (no completed run of c/y as configured now)"
    assert due() == EXIT_OK
    assert published(site, "c/y", "linux-64") == published(site, "c/x", "linux-64") != set()
    assert main(["remove", "c/x", "-c", str(config_path)]) == EXIT_OK
    configure("c/x")
    assert next_due().startswith("now")
    assert due() == EXIT_OK
    assert published(site, "c/x", "linux-64") == published(site, "c/y", "linux-64")
    assert not next_due().startswith("now")


@pytest.mark.integration
async def test_only_rebuilds_one_channel_and_keeps_the_other_mirrors_records(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    site = tmp_path / "site"
    url = example_upstream.url
    config = site_config(
        site,
        f"""
        channels:
          merged/chan:
            mirrors:
              - name: first
                url: {url}
                subdirs: [linux-64]
                filters: {{names: {{include: [numpy]}}}}
              - name: second
                url: {url}
                subdirs: [linux-64]
                filters: {{names: {{include: [zlib]}}}}
          other/chan:
            url: {url}
            subdirs: [linux-64]
            filters: {{names: {{include: [python]}}}}
        """,
    )
    await run_mirror(config, MirrorOptions(progress=False))
    before = published(site, "merged/chan", "linux-64")
    assert any(fn.startswith("zlib-") for fn in before)
    assert any(fn.startswith("numpy-") for fn in before)
    other_before = (site / "other/chan/linux-64/repodata.json").stat().st_mtime_ns
    example_upstream.server.reset()

    report = await run_mirror(config, MirrorOptions(progress=False, only=("first",)))
    assert [m.name for m in report.mirrors] == ["first"]
    assert {c.channel for c in report.channels} == {"merged/chan"}
    # The passenger mirror contributed its cached records: nothing of zlib disappeared.
    assert published(site, "merged/chan", "linux-64") == before
    # Only the selected mirror talked to the upstream: one repodata request per subdir.
    paths = sorted(r.path for r in example_upstream.server.requests)
    # Its repodata, and its CEP-12 run_exports.json (none upstream: the .zst, then the JSON).
    names = ("repodata.json.zst", "run_exports.json", "run_exports.json.zst")
    assert paths == [f"/{subdir}/{name}" for subdir in ("linux-64", "noarch") for name in names]
    assert (site / "other/chan/linux-64/repodata.json").stat().st_mtime_ns == other_before


@pytest.mark.integration
async def test_only_one_mirror_of_a_channel_another_never_ran_holds_the_channel(
    tmp_path: Path, example_upstream: ExampleUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    """The channel cannot be built without the records of a mirror that never ran: it is
    held, and the log says so once per subdir, in plain words."""
    url = example_upstream.url
    mirrors = "".join(
        f"      - name: {name}\n        url: {url}\n        subdirs: [linux-64]\n"
        for name in ("first", "second")
    )
    config = site_config(tmp_path / "site", f"channels:\n  m/c:\n    mirrors:\n{mirrors}")
    with caplog.at_level(logging.INFO, logger="sitegen"):
        report = await run_mirror(config, MirrorOptions(progress=False, only=("first",)))
    assert {(c.subdir, tuple(c.errors)) for c in report.channels} == {
        (s, ("not updated: mirror second could not be read; kept the previous state",))
        for s in ("linux-64", "noarch")
    }
    errors = sorted(r.message for r in caplog.records if r.levelno == logging.ERROR)
    assert errors == [
        f"second: {s}: never fetched; run mirror second first" for s in ("linux-64", "noarch")
    ]


@pytest.mark.integration
async def test_only_one_mirror_of_a_channel_another_s_subdir_gone_upstream_stays_gone(
    tmp_path: Path,
) -> None:
    """A mirror whose last run found a subdir no longer served upstream contributes none of
    its records there when it rides along: not those of the copy kept from before, which
    its channel stopped publishing."""
    roots = {name: tmp_path / name for name in ("one", "two")}
    write_channel(roots["one"], [PackageSpec("alpha", "1.0", "h0_0")])
    write_channel(roots["two"], [PackageSpec("beta", "2.0", "h0_0")])
    with UpstreamServer(roots["one"]) as one, UpstreamServer(roots["two"]) as two:
        site = tmp_path / "site"
        mirrors = "".join(
            f"      - name: {name}\n        url: {url}\n        subdirs: [linux-64]\n"
            for name, url in (("first", one.url), ("second", two.url))
        )
        config = site_config(site, f"channels:\n  m/c:\n    mirrors:\n{mirrors}")
        await run_mirror(config, MirrorOptions(progress=False))
        alpha = {"alpha-1.0-h0_0.conda", "alpha-1.0-h0_0.tar.bz2"}
        beta = {"beta-2.0-h0_0.conda", "beta-2.0-h0_0.tar.bz2"}
        assert published(site, "m/c", "linux-64") == alpha | beta
        # Upstream stops serving second's linux-64 (its package files are still there).
        (roots["two"] / "linux-64" / "repodata.json").unlink()
        before = snapshot(site, exclude={".sitegen/lock"})
        await run_mirror(config, MirrorOptions(progress=False, only=("second",), dry_run=True))
        assert snapshot(site, exclude={".sitegen/lock"}) == before  # a dry run notes nothing
        report = await run_mirror(config, MirrorOptions(progress=False, only=("second",)))
        assert not report.failed
        assert published(site, "m/c", "linux-64") == alpha
        report = await run_mirror(config, MirrorOptions(progress=False, only=("first",)))
        assert not report.failed
        assert published(site, "m/c", "linux-64") == alpha
        # Served again, it is fetched whole when its mirror runs.
        write_channel(roots["two"], [PackageSpec("beta", "2.0", "h0_0")])
        await run_mirror(config, MirrorOptions(progress=False, only=("second",)))
        assert published(site, "m/c", "linux-64") == alpha | beta


@pytest.mark.integration
async def test_only_one_mirror_of_a_channel_another_s_subdir_never_served_is_none(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    """A subdir upstream has never served, riding along: none of its records, as its mirror's
    last run found, not a mirror that never ran holding the channel."""
    url = example_upstream.url
    mirrors = "".join(
        f"      - name: {name}\n        url: {url}\n        subdirs: [linux-64, osx-64]\n"
        for name in ("first", "second")
    )
    config = site_config(tmp_path / "site", f"channels:\n  m/c:\n    mirrors:\n{mirrors}")
    assert not (await run_mirror(config, MirrorOptions(progress=False))).failed
    report = await run_mirror(config, MirrorOptions(progress=False, only=("first",)))
    assert not report.failed, [c.errors for c in report.channels]


def write_cli_config(tmp_path: Path, url: str, download: str = "") -> tuple[Path, Path]:
    """channels.yaml in tmp_path, mirroring linux-64 of url as c/x into tmp_path/site;
    returns (site, config path)."""
    site = tmp_path / "site"
    config_path = tmp_path / "channels.yaml"
    settings = f"download: {download}\n" if download else ""
    config_path.write_text(
        f"output: {site}\n{settings}channels:\n  c/x:\n    url: {url}\n    subdirs: [linux-64]\n"
    )
    return site, config_path


@pytest.mark.integration
def test_second_concurrent_run_exits_3(tmp_path: Path, example_upstream: ExampleUpstream) -> None:
    site, config_path = write_cli_config(tmp_path, example_upstream.url)
    with SiteLock(site / ".sitegen"):
        assert main(["mirror", "-c", str(config_path), "--no-progress"]) == EXIT_LOCKED
        with pytest.raises(SiteLocked, match=str(os.getpid())):
            SiteLock(site / ".sitegen").acquire()
    # The lock dies with its holder: the next run proceeds.
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == EXIT_OK
    assert main(["mirror", "-c", str(config_path), "--only", "zzz"]) == EXIT_CONFIG


@pytest.mark.integration
def test_lock_of_a_killed_process_is_taken_over(tmp_path: Path) -> None:
    state = tmp_path / "site" / ".sitegen"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from sitegen.store.lock import SiteLock\n"
            f"SiteLock(Path({str(state)!r})).acquire(); print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(SiteLocked):
            SiteLock(state).acquire()
        holder.kill()
        holder.wait()
        lock = SiteLock(state)
        lock.acquire()  # the kernel released the dead holder's flock: no stale lock
        lock.release()
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.unit
def test_a_lock_that_may_not_create_leaves_a_missing_site_alone(tmp_path: Path) -> None:
    state = tmp_path / "site" / ".sitegen"
    with SiteLock(state, create=False):
        assert not (tmp_path / "site").exists()
    # Once the site exists it excludes a concurrent run like any lock.
    state.mkdir(parents=True)
    with SiteLock(state, create=False), pytest.raises(SiteLocked):
        SiteLock(state).acquire()


@pytest.mark.unit
def test_a_lock_that_writes_nothing_holds_only_the_file_a_run_left(tmp_path: Path) -> None:
    state = tmp_path / "site" / ".sitegen"
    state.mkdir(parents=True)
    with SiteLock(state, writes=False):
        assert list(state.iterdir()) == []
    (state / "lock").write_text("4242\n")  # left by the last run
    # Held, it keeps runs out; they name its holder, not the pid in the file.
    with SiteLock(state, writes=False), pytest.raises(SiteLocked, match=f"pid {os.getpid()}"):
        SiteLock(state).acquire()
    assert (state / "lock").read_text() == "4242\n"


@pytest.mark.integration
def test_a_dry_run_of_a_new_site_leaves_nothing_on_disk(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    site, config_path = write_cli_config(tmp_path, example_upstream.url)
    assert main(["mirror", "-c", str(config_path), "--dry-run", "--no-progress"]) == EXIT_OK
    assert not site.exists()


@pytest.mark.integration
def test_a_dry_run_writes_no_lock_into_the_site(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    site, config_path = write_cli_config(tmp_path, example_upstream.url)
    dry_run = ["mirror", "-c", str(config_path), "--dry-run", "--no-progress"]
    # Before the first run: a freeze made the state folder, where no run has left a lock.
    assert main(["freeze", "c/x", "-c", str(config_path)]) == EXIT_OK
    assert main(dry_run) == EXIT_OK
    assert not (site / ".sitegen/lock").exists()
    # After a run: the lock file a run left keeps its pid and time, untouched.
    assert main(["unfreeze", "c/x", "-c", str(config_path)]) == EXIT_OK
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == EXIT_OK
    lock = site / ".sitegen/lock"
    lock.write_text("4242\n")
    os.utime(lock, ns=(10**18, 10**18))
    assert main(dry_run) == EXIT_OK
    assert lock.read_text() == "4242\n" and lock.stat().st_mtime_ns == 10**18


@pytest.mark.integration
def test_sigterm_stops_the_run_and_records_it(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    """A slow upstream keeps the run in its download phase while SIGTERM arrives."""

    def slow(handler):
        time.sleep(0.5)
        return False  # then serve the file normally

    slowed = [
        fn
        for spec in example_upstream.packages
        if spec.subdir == "linux-64"
        for fn in spec.filenames
    ]
    assert len(slowed) > 10
    for fn in slowed:
        example_upstream.server.add_fault(f"/linux-64/{fn}", slow)
    site, config_path = write_cli_config(tmp_path, example_upstream.url, "{concurrency: 2}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sitegen", "mirror", "-c", str(config_path), "--no-progress"],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not example_upstream.server.count(status=200):
        time.sleep(0.05)  # wait until downloads are under way (polling, not a timed assertion)
    proc.terminate()
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    records = [json.loads(p.read_text()) for p in (site / "history" / "runs").glob("*.json")]
    assert [r["status"] for r in records] == ["stopped"]
    assert not list(site.rglob(".sitegen-tmp-*"))
    assert not (site / "c/x/linux-64/repodata.json").exists()  # nothing half-built published
    # The next run resumes: it completes and downloads only what the first did not finish.
    example_upstream.server.clear_faults()
    kept = (
        {p.name for p in (site / "c/x/linux-64").glob("*.conda")}
        if (site / "c/x/linux-64").is_dir()
        else set()
    )
    example_upstream.server.reset()
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == EXIT_OK
    fetched = {r.path.rsplit("/", 1)[-1] for r in example_upstream.server.requests}
    assert not (kept & fetched)


@pytest.mark.integration
def test_a_run_failing_as_a_whole_before_its_merge_lists_its_subdirs_as_not_reached(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    """A channel added whose directory links out of the site ends the run while it merges,
    before any subdir was: the record still lists every subdir the run was to rebuild, not
    reached, each with the files it goes on serving."""
    site, config_path = write_cli_config(tmp_path, example_upstream.url)
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == EXIT_OK
    (first,) = History(Site(site)).runs()
    served = {c.subdir: c.packages for c in first.channels}
    assert served["linux-64"], served
    with config_path.open("a") as config:
        config.write(f"  c/y:\n    url: {example_upstream.url}\n    subdirs: [linux-64]\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (site / "c" / "y").symlink_to(outside)
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == EXIT_FAILED
    (record,) = [r for r in History(Site(site)).runs() if r.id != first.id]
    assert record.status == FAILED
    assert any("resolves outside" in e for e in record.errors), record.errors
    rows = {(c.channel, c.subdir): (c.status, c.packages) for c in record.channels}
    assert rows == {
        ("c/x", "linux-64"): ("not-reached", served["linux-64"]),
        ("c/x", "noarch"): ("not-reached", served["noarch"]),
        ("c/y", "linux-64"): ("not-reached", 0),
        ("c/y", "noarch"): ("not-reached", 0),
    }, rows


@pytest.mark.integration
async def test_a_stop_while_repodata_is_renamed_in_still_records_what_was_published(
    tmp_path: Path, example_upstream: ExampleUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGINT lands while a subdir's metadata files are renamed into place: that subdir is
    published, so the stopped run's record lists what it added (the next run compares with
    the published state and never would)."""
    renaming = Site.write_many
    sent: list[int] = []

    def write_many(self: Site, items: list) -> list[Path]:
        written = renaming(self, items)
        if not sent and any(target.name == "repodata.json" for target, _data in items):
            sent.append(signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)  # the renames are done; the stop arrives now
        return written

    monkeypatch.setattr(Site, "write_many", write_many)
    site = tmp_path / "site"
    config = site_config(
        site, f"channels:\n  c/x:\n    url: {example_upstream.url}\n    subdirs: [linux-64]\n"
    )
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert sent and report.status == STOPPED
    (record,) = History(Site(site)).runs()
    assert record.status == STOPPED
    reported = {(c.subdir, fn) for c in record.channels for fn in c.added}
    on_disk = {
        (subdir, fn)
        for subdir in ("linux-64", "noarch")
        if (site / "c/x" / subdir / "repodata.json").is_file()
        for fn in published(site, "c/x", subdir)
    }
    assert on_disk, "nothing was published before the stop"
    assert reported == on_disk
    for c in record.channels:
        if c.added:
            assert c.status == "published" and c.packages == len(c.added)


@pytest.mark.integration
async def test_a_stop_does_not_wait_for_the_flush_of_the_downloads(
    tmp_path: Path, example_upstream: ExampleUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one flush before publishing may take minutes after many GB of downloads: SIGINT
    during it stops the run at once (nothing is published after a stop, and the flush writes
    nothing of its own), rather than when the disk has caught up."""
    release = threading.Event()
    flushing: list[bool] = []  # True once the flush ended

    def sync(self: Site, directories: object) -> None:
        flushing.append(False)
        os.kill(os.getpid(), signal.SIGINT)
        release.wait(20)  # a disk that takes its time; released by the test (or given up)
        flushing[-1] = True

    monkeypatch.setattr(Site, "sync", sync)
    site = tmp_path / "site"
    config = site_config(
        site, f"channels:\n  c/x:\n    url: {example_upstream.url}\n    subdirs: [linux-64]\n"
    )
    try:
        report = await run_mirror(config, MirrorOptions(progress=False))
        assert flushing == [False], "the run waited for the flush to end"
    finally:
        release.set()
    assert report.status == STOPPED
    assert not (site / "c/x/linux-64/repodata.json").exists()  # nothing published
    (record,) = History(Site(site)).runs()
    assert record.status == STOPPED
