"""``sitegen status``: last run, next due time, a running run and disk use, per mirror."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sitegen.cli import EXIT_OK, main
from sitegen.config import parse_config
from sitegen.store.lock import SiteLock, lock_holder
from sitegen.sync.report import (
    COMPLETED,
    FAILED,
    RUNNING,
    ChannelSubdirReport,
    MirrorReport,
    MirrorSubdirReport,
    RunReport,
)
from sitegen.tools.site_disk import disk_usage
from sitegen.tools.status import build_status, collect_status
from sitegen.tools.status_format import format_status, status_json
from testkit.upstream import ExampleUpstream


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


# --------------------------------------------------------------------------- the model


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


# --------------------------------------------------------------------------- reading the site


@pytest.mark.unit
def test_disk_usage_counts_hard_links_once_and_skips_nested_channels(tmp_path: Path) -> None:
    channel = tmp_path / "c"
    (channel / "linux-64").mkdir(parents=True)
    (channel / "linux-64" / "a.conda").write_bytes(b"x" * 10000)
    os.link(channel / "linux-64" / "a.conda", channel / "linux-64" / "b.conda")
    (channel / "nested" / "linux-64").mkdir(parents=True)
    (channel / "nested" / "linux-64" / "n.conda").write_bytes(b"y" * 50000)
    used, files = disk_usage(channel, {channel / "nested"})
    assert files == 1
    assert 10000 <= used < 50000


@pytest.mark.unit
def test_a_subdir_no_longer_configured_counts_on_its_own_line_not_in_its_channel(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    for subdir, size in (("linux-64", 10000), ("osx-64", 50000)):
        (site / "c/x" / subdir).mkdir(parents=True)
        (site / "c/x" / subdir / "repodata.json").write_text("{}")
        (site / "c/x" / subdir / "p.conda").write_bytes(b"x" * size)
    config = parse_config(
        f"output: {site}\nchannels:\n"
        "  c/x:\n    url: http://127.0.0.1:1/c\n    subdirs: [linux-64]\n"
    )
    status = collect_status(config)
    [osx] = status.unconfigured
    [channel] = status.channels
    assert (osx.path, osx.files, channel.files) == ("c/x/osx-64", 2, 2)
    assert channel.bytes + osx.bytes == disk_usage(site / "c/x", set())[0]
    assert channel.bytes < 50000 <= osx.bytes


@pytest.mark.unit
def test_a_channel_no_longer_configured_inside_a_configured_one_counts_its_own_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its subdirs on their own lines, and its channeldata.json, pages and search index on its
    own line too, not in the disk of the channel it sits in."""
    site = tmp_path / "site"
    for channel, size in (("c/x", 10000), ("c/x/old", 20000)):
        (site / channel / "linux-64").mkdir(parents=True)
        (site / channel / "linux-64" / "repodata.json").write_text("{}")
        (site / channel / "linux-64" / "p.conda").write_bytes(b"x" * size)
    old = site / "c/x/old"
    (old / "channeldata.json").write_bytes(b"{}" * 40000)
    (old / "index.html").write_text("<html></html>")
    (old / "packages").mkdir()
    (old / "packages" / "p.html").write_text("<html></html>")
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {site}\nchannels:\n"
        "  c/x:\n    url: http://127.0.0.1:1/c\n    subdirs: [linux-64]\n"
    )
    status = collect_status(parse_config(config.read_text()))
    [channel] = status.channels
    [subdir] = status.unconfigured
    [gone] = status.unconfigured_channels
    assert (channel.channel, channel.files) == ("c/x", 2)
    assert (subdir.path, subdir.files) == ("c/x/old/linux-64", 2)
    assert (gone.path, gone.files) == ("c/x/old", 3)
    assert channel.bytes < 20000 and gone.bytes >= 80000
    assert channel.bytes + subdir.bytes + gone.bytes == disk_usage(site / "c/x", set())[0]
    assert main(["status", "-c", str(config), "--json"]) == EXIT_OK
    shown = json.loads(capsys.readouterr().out)["unconfigured_channels"]
    assert shown == [{"path": "c/x/old", "bytes": gone.bytes, "files": 3}]
    assert main(["status", "-c", str(config)]) == EXIT_OK
    text = capsys.readouterr().out
    assert "channel not configured, still served: c/x/old (" in text
    assert "`sitegen remove c/x/old` stops serving it" in text


@pytest.mark.unit
def test_lock_holder_reads_the_lock_without_taking_it(tmp_path: Path) -> None:
    state = tmp_path / ".sitegen"
    assert lock_holder(state) is None  # no site yet
    with SiteLock(state):
        assert lock_holder(state) == os.getpid()
    assert lock_holder(state) is None  # released; the file stays


# --------------------------------------------------------------------------- the command


@pytest.mark.integration
def test_status_command_after_a_run_and_while_one_holds_the_lock(
    tmp_path: Path, example_upstream: ExampleUpstream, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site"
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {site}\nchannels:\n  c/x:\n    url: {example_upstream.url}\n"
        "    subdirs: [linux-64]\n    schedule: '@daily'\n"
    )
    assert main(["status", "-c", str(config), "--json"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert data["mirrors"][0]["last_run"] is None and data["mirrors"][0]["due"] is True

    assert main(["mirror", "-c", str(config), "--no-progress"]) == EXIT_OK
    capsys.readouterr()
    assert main(["status", "-c", str(config), "--json"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    [mirror] = data["mirrors"]
    assert mirror["last_run"]["status"] == COMPLETED
    assert mirror["last_run"]["records_kept"] > 0
    assert mirror["last_run"]["downloaded_files"] == mirror["last_run"]["packages"] > 0
    assert mirror["due"] is False and mirror["next_due"].endswith("T00:00:00Z")
    assert data["running"] is None
    assert data["channels"][0]["bytes"] > 0 and data["channels"][0]["files"] > 0

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from pathlib import Path; from sitegen.store.lock import SiteLock\n"
            f"SiteLock(Path({str(site / '.sitegen')!r})).acquire(); print('locked', flush=True)\n"
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert main(["status", "-c", str(config)]) == EXIT_OK
        text = capsys.readouterr().out
        assert f"running: pid {holder.pid} holds the site lock" in text
        assert "mirror c-x (channel c/x, schedule @daily)" in text
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.integration
async def test_a_run_reports_its_downloads_to_status_while_they_last(tmp_path: Path) -> None:
    """While files download, the run keeps a progress file that `sitegen status` reads (its
    pid matches the lock holder); it is gone when the downloads are over."""
    from sitegen.layout import progress_path
    from sitegen.tools.example_channel import write_channel
    from testkit.faults import delay
    from testkit.site import mirror_watching_progress
    from testkit.small_channel import site_config, small_packages
    from testkit.upstream import UpstreamServer

    root = tmp_path / "upstream"
    specs = small_packages()
    write_channel(root, specs, zst=True)
    slow = next(fn for s in specs if s.subdir == "linux-64" for fn in s.filenames)
    site = tmp_path / "site"
    with UpstreamServer(root) as server:
        server.add_fault(f"/linux-64/{slow}", delay(1.5))
        config = site_config(site, server.url, timeout=10)
        report, seen = await mirror_watching_progress(config)
    assert not report.failed, report.errors
    assert seen and seen[0]["pid"] == os.getpid()
    assert seen[0]["total_files"] == len({fn for s in specs for fn in s.filenames}), seen
    assert not progress_path(site).exists()


@pytest.mark.unit
def test_status_names_the_frozen_channels_and_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A channel frozen by `sitegen freeze` or by channels.yaml is named, with who froze it,
    when and why: runs keep its published state, which nothing else in the status tells."""
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {tmp_path / 'site'}\nchannels:\n"
        "  c/x:\n    url: http://127.0.0.1:1/c\n    subdirs: [linux-64]\n"
        "  d/y:\n    url: http://127.0.0.1:1/d\n    subdirs: [linux-64]\n    frozen: true\n"
        "  e/z:\n    url: http://127.0.0.1:1/e\n    subdirs: [linux-64]\n"
    )
    assert main(["freeze", "c/x", "-c", str(config), "--by", "ops", "--reason", "exams"]) == 0
    capsys.readouterr()
    assert main(["status", "-c", str(config)]) == EXIT_OK
    out = capsys.readouterr().out
    frozen = [line for line in out.splitlines() if line.startswith("frozen:")]
    assert len(frozen) == 2, out
    assert "c/x" in frozen[0] and "by ops" in frozen[0] and "exams" in frozen[0]
    assert "sitegen unfreeze c/x" in frozen[0]
    assert "d/y" in frozen[1] and "frozen: true in channels.yaml" in frozen[1]
    assert main(["status", "-c", str(config), "--json"]) == EXIT_OK
    document = json.loads(capsys.readouterr().out)
    assert [(f["channel"], f["in_config"], f["by"]) for f in document["frozen"]] == [
        ("c/x", False, "ops"),
        ("d/y", True, None),
    ]


@pytest.mark.integration
def test_status_names_published_subdirs_the_configuration_no_longer_names(
    tmp_path: Path,
    example_upstream: ExampleUpstream,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    site = tmp_path / "site"
    config = tmp_path / "channels.yaml"

    def configure(*channels: tuple[str, str]) -> None:
        text = f"output: {site}\nchannels:\n"
        for path, subdirs in channels:
            text += f"  {path}:\n    url: {example_upstream.url}\n    subdirs: [{subdirs}]\n"
        config.write_text(text)

    configure(("c/x", "linux-64"), ("c/old", "linux-64"))
    assert main(["mirror", "-c", str(config), "--no-progress"]) == EXIT_OK
    capsys.readouterr()
    assert main(["status", "-c", str(config), "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["unconfigured"] == []

    # The channel leaves channels.yaml; a run leaves its files as they were. A subdir taken
    # out of a mirror's list is left the same way (the example upstream has one platform
    # subdir: a copy of linux-64 stands in for another one published before).
    configure(("c/x", "linux-64"))
    shutil.copytree(site / "c/x/linux-64", site / "c/x/osx-64")
    caplog.clear()
    assert main(["mirror", "-c", str(config), "--no-progress"]) == EXIT_OK
    assert (site / "c/old/linux-64/repodata.json").is_file()
    warned = [r.getMessage() for r in caplog.records if "still published" in r.getMessage()]
    assert [w.split()[0] for w in warned] == ["c/old/linux-64", "c/old/noarch", "c/x/osx-64"]
    capsys.readouterr()
    assert main(["status", "-c", str(config), "--json"]) == EXIT_OK
    unconfigured = json.loads(capsys.readouterr().out)["unconfigured"]
    assert [u["path"] for u in unconfigured] == ["c/old/linux-64", "c/old/noarch", "c/x/osx-64"]
    old_linux = unconfigured[0]
    assert old_linux["files"] > 1 and old_linux["bytes"] > 0
    assert main(["status", "-c", str(config)]) == EXIT_OK
    text = capsys.readouterr().out
    assert "not configured, still served: c/old/linux-64 (" in text
    assert "`sitegen remove c/old/linux-64` stops serving it" in text

    for gone in ("c/old", "c/x/osx-64"):
        shutil.rmtree(site / gone)
    assert main(["status", "-c", str(config), "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["unconfigured"] == []
