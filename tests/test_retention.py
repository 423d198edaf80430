"""History retention: the run ledger keeps the newest runs and recent days only, never the
records --due and status read, and the pages of removed runs go at the next render."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sitegen.cli import EXIT_OK, main
from sitegen.config import ConfigError, HistoryRetention, parse_config
from sitegen.store.site import Site
from sitegen.sync.history import History, installers_completed, new_run_id
from sitegen.sync.report import (
    COMPLETED,
    FAILED,
    RUNNING,
    InstallerReport,
    MirrorReport,
    RunReport,
)
from sitegen.sync.retention import DAY, expired_runs, prune_history
from testkit.upstream import ExampleUpstream

CHANNELS = "channels:\n  c/x:\n    url: http://127.0.0.1:1/c\n    subdirs: [linux-64]\n"
NOW = 1_800_000_000.0


def run(run_id: str, started: float, status: str = COMPLETED, **mirrors: str) -> RunReport:
    return RunReport(
        id=run_id,
        started=started,
        ended=started + 1,
        status=status,
        mirrors=[
            MirrorReport(name=n, channel="c", source="s", status=s) for n, s in mirrors.items()
        ],
    )


# --------------------------------------------------------------------------- what goes


@pytest.mark.unit
def test_runs_past_keep_runs_go_except_those_due_and_status_read() -> None:
    runs = [
        run("r0", NOW - 60, RUNNING),  # left running by a killed run: never removed here
        run("r1", NOW - 50, a=COMPLETED, b=COMPLETED),  # b's newest completed run
        run("r2", NOW - 40, a=COMPLETED),
        run("r3", NOW - 30, FAILED, b=FAILED),  # b's newest run
        run("r4", NOW - 20, a=COMPLETED),
        run("r5", NOW - 10, a=COMPLETED),
        run("r6", NOW, a=COMPLETED),
    ]
    policy = HistoryRetention(keep_runs=2, keep_days=365)
    assert sorted(expired_runs(runs, policy, NOW)) == ["r2", "r4"]
    assert expired_runs(runs, HistoryRetention(keep_runs=100, keep_days=365), NOW) == []


@pytest.mark.unit
def test_runs_older_than_keep_days_go_even_within_keep_runs() -> None:
    runs = [
        run("old", NOW - 40 * DAY, a=COMPLETED),
        run("older", NOW - 50 * DAY, a=FAILED),
        run("recent", NOW - 1 * DAY, a=COMPLETED),
    ]
    policy = HistoryRetention(keep_runs=1000, keep_days=30)
    assert sorted(expired_runs(runs, policy, NOW)) == ["old", "older"]
    # The only completed run of a mirror stays, however old: --due reads it.
    lone = [run("lone", NOW - 400 * DAY, b=COMPLETED), *runs[1:]]
    assert sorted(expired_runs(lone, policy, NOW)) == ["older"]


@pytest.mark.unit
def test_a_run_dated_in_the_future_protects_nothing_once_its_mirror_ran_since() -> None:
    """A run recorded while the clock ran ahead (set back since) is not a mirror's newest
    (completed) run, as for --due and status: it would be kept for as long as the clock is
    behind it, and the mirror's real newest run would go in its place."""
    runs = [
        run("ahead", NOW + 400 * DAY, a=COMPLETED, b=COMPLETED),
        run("r1", NOW - 20, a=COMPLETED),
        run("r2", NOW - 10, a=FAILED),
    ]
    policy = HistoryRetention(keep_runs=1, keep_days=365)
    # r1: a's newest completed run; r2: a's newest run; b has run only then: "ahead" stays.
    assert expired_runs(runs, policy, NOW) == []
    runs.append(run("r3", NOW - 5, b=FAILED))
    assert expired_runs(runs, policy, NOW) == ["ahead"]


@pytest.mark.unit
def test_the_ledger_stays_bounded_for_a_run_every_ten_minutes() -> None:
    runs = [run(f"r{i:06d}", NOW - i * 600, a=COMPLETED) for i in range(5000)]
    kept = {r.id for r in runs} - set(expired_runs(runs, HistoryRetention(), NOW))
    assert len(kept) == HistoryRetention().keep_runs


@pytest.mark.unit
def test_the_runs_due_and_status_read_of_an_installer_folder_stay() -> None:
    """An installer folder's newest run and newest completed one are read as a mirror's are
    (--due, status, its page): a monthly folder beside a mirror run every ten minutes keeps
    them past keep_runs, and --due still counts its schedule from its last completed run."""

    def with_folder(report: RunReport, status: str) -> RunReport:
        report.installers = [InstallerReport("miniconda", "https://example.org", status=status)]
        return report

    runs = [
        with_folder(run("monthly", NOW - 50), COMPLETED),
        with_folder(run("failed", NOW - 40), FAILED),
        *(run(f"r{i}", NOW - 30 + i, a=COMPLETED) for i in range(5)),
    ]
    policy = HistoryRetention(keep_runs=2, keep_days=365)
    expired = expired_runs(runs, policy, NOW)
    assert sorted(expired) == ["r0", "r1", "r2"]
    kept = [r for r in runs if r.id not in expired]
    assert installers_completed(kept, NOW) == {"miniconda": NOW - 50}


@pytest.mark.unit
def test_remove_refuses_names_outside_the_ledger(tmp_path: Path) -> None:
    site = Site(tmp_path)
    (tmp_path / "history").mkdir()
    (tmp_path / "history" / "keep.json").write_text("{}")
    assert not History(site).remove("../keep")
    assert (tmp_path / "history" / "keep.json").exists()


@pytest.mark.unit
def test_a_removed_run_takes_its_filtered_records_along(tmp_path: Path) -> None:
    site = Site(tmp_path)
    history = History(site)
    history.save(run("r1", 1.0))
    listed = tmp_path / "history" / "filtered" / "r1.json"
    listed.parent.mkdir()
    listed.write_text("{}")
    assert history.remove("r1")
    assert not listed.exists() and history.runs() == []


@pytest.mark.unit
def test_a_record_copied_under_another_name_is_not_a_run_and_goes(tmp_path: Path) -> None:
    """The ledger holds each run as <id>.json: a copy under another name would show the run
    twice (history, feed, status) and outlive it, retention removing records by id."""
    site = Site(tmp_path)
    history = History(site)
    history.save(run("r1", NOW - 20, a=COMPLETED))
    history.save(run("r2", NOW - 10, a=COMPLETED))
    runs_dir = tmp_path / "history" / "runs"
    for name in ("r1 (copy).json", "backup.json"):
        (runs_dir / name).write_bytes((runs_dir / "r1.json").read_bytes())
    assert [r.id for r in history.runs()] == ["r2", "r1"]
    assert prune_history(site, HistoryRetention(keep_runs=1, keep_days=365), NOW) == ["r1"]
    assert sorted(p.name for p in runs_dir.iterdir()) == ["r2.json"]


@pytest.mark.unit
def test_a_filtered_list_stays_while_a_kept_run_points_at_it(tmp_path: Path) -> None:
    """Runs that reused an unchanged earlier run's results point at that run's filtered-out
    list (their pages link it and search it): it outlives the earlier run's record, and goes
    with the last run pointing at it."""
    site = Site(tmp_path)
    history = History(site)
    listed = tmp_path / "history" / "filtered"
    listed.mkdir(parents=True)

    def save(run_id: str, started: float, filtered_run: str) -> None:
        report = run(run_id, started, a=COMPLETED)
        report.mirrors[0].filtered_run = filtered_run
        history.save(report)
        if filtered_run == run_id:
            (listed / f"{run_id}.json").write_text("{}")

    save("r1", NOW - 30, "r1")
    save("r2", NOW - 20, "r1")  # unchanged upstream: r1's results reused
    save("r3", NOW - 10, "r1")
    assert prune_history(site, HistoryRetention(keep_runs=2, keep_days=365), NOW) == ["r1"]
    assert (listed / "r1.json").is_file()

    save("r4", NOW - 5, "r4")  # upstream changed: a list of its own
    save("r5", NOW, "r4")
    assert sorted(prune_history(site, HistoryRetention(keep_runs=2, keep_days=365), NOW)) == [
        "r2",
        "r3",
    ]
    assert sorted(p.name for p in listed.iterdir()) == ["r4.json"]


# --------------------------------------------------------------------------- configuration


@pytest.mark.unit
def test_history_retention_is_configurable() -> None:
    assert parse_config(f"output: s\n{CHANNELS}").history == HistoryRetention(1000, 365)
    config = parse_config(f"output: s\nhistory: {{keep_runs: 50, keep_days: 7}}\n{CHANNELS}")
    assert config.history == HistoryRetention(keep_runs=50, keep_days=7)
    config = parse_config(f"output: s\nhistory: {{keep_days: 7}}\n{CHANNELS}")
    assert config.history == HistoryRetention(keep_runs=1000, keep_days=7)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{keep_runs: 0}", r"channels.yaml:2: history.keep_runs: must be at least 1"),
        ("{keep_days: many}", r"channels.yaml:2: history.keep_days: expected a whole number"),
        ("{keep: 3}", r"channels.yaml:2: history.keep: unknown key 'keep'"),
    ],
)
def test_bad_history_settings_name_line_and_key(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(f"output: s\nhistory: {value}\n{CHANNELS}")


# --------------------------------------------------------------------------- a real site


@pytest.mark.integration
def test_old_runs_and_their_pages_go_after_a_run(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    site = tmp_path / "site"
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {site}\nhistory: {{keep_runs: 3, keep_days: 30}}\n"
        f"channels:\n  c/x:\n    url: {example_upstream.url}\n    subdirs: [linux-64]\n"
        "    filters: {names: {include: [python]}}\n"
    )
    history = History(Site(site))
    now = time.time()
    old = [new_run_id(now - 40 * DAY), new_run_id(now - 35 * DAY)]  # past keep_days
    recent = [new_run_id(now - 2 * DAY), new_run_id(now - 1 * DAY)]  # the 3rd and 4th newest
    for run_id, started in zip(old + recent, (40, 35, 2, 1), strict=True):
        history.save(run(run_id, now - started * DAY, **{"c-x": FAILED}))
    assert main(["render", "-c", str(config)]) == EXIT_OK
    for run_id in old + recent:
        assert (site / "history" / f"{run_id}.html").is_file()

    assert main(["mirror", "-c", str(config), "--no-progress"]) == EXIT_OK
    records = {p.stem for p in (site / "history" / "runs").glob("*.json")}
    assert len(records) == 3 and recent[1] in records and recent[0] in records
    for run_id in old:
        assert run_id not in records
        assert not (site / "history" / f"{run_id}.html").exists()
    assert main(["render", "-c", str(config)]) == EXIT_OK
    pages = {p.stem for p in (site / "history").glob("2*.html")}
    assert pages == records
    assert all(run_id not in (site / "history" / "index.html").read_text() for run_id in old)
