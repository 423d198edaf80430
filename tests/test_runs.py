"""Which mirrors a run syncs: --due by each mirror's last completed run, --only by name."""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
from pathlib import Path

import pytest

from sitegen.cli import EXIT_OK, main
from sitegen.config import ConfigError
from sitegen.store.site import Site
from sitegen.sync import running
from sitegen.sync.history import History
from sitegen.sync.report import (
    COMPLETED,
    FAILED,
    ChannelSubdirReport,
    MirrorReport,
    MirrorSubdirReport,
    RunReport,
)
from sitegen.sync.run import MirrorOptions, run_mirror, select_mirrors
from sitegen.tools.example_channel import PackageSpec, write_channel
from testkit.site import published, site_config, snapshot
from testkit.upstream import ExampleUpstream, UpstreamServer
from testkit.zone import ts


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
