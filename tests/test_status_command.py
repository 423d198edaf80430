"""The ``sitegen status`` command: after a run, while one holds the lock or downloads,
with frozen channels, and with published subdirs the configuration no longer names."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from sitegen.cli import EXIT_OK, main
from sitegen.layout import progress_path
from sitegen.sync.report import COMPLETED
from testkit.site_lock import lock_held
from testkit.upstream import ExampleUpstream


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

    with lock_held(site / ".sitegen") as holder:
        assert main(["status", "-c", str(config)]) == EXIT_OK
        text = capsys.readouterr().out
        assert f"running: pid {holder.pid} holds the site lock" in text
        assert "mirror c-x (channel c/x, schedule @daily)" in text


@pytest.mark.integration
def test_status_does_not_take_a_killed_runs_record_for_a_holder_that_reused_its_pid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run killed outright (a reboot, the OOM killer) leaves its record "running" and its
    progress file naming its pid until the next mirror run; a process that got that pid since
    (a dry run, a verify --repair, after a reboot) and holds the lock started after the record
    did: it is not that run, whose record is an unfinished one, as ``sitegen stop`` tells."""
    site = tmp_path / "site"
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {site}\nchannels:\n  c/x:\n    url: http://127.0.0.1:1/c\n"
        "    subdirs: [linux-64]\n"
    )
    with lock_held(site / ".sitegen") as holder:
        killed = "20260102T104000.000Z-1"
        started = time.time() - 3600
        (site / "history" / "runs").mkdir(parents=True)
        (site / "history" / "runs" / f"{killed}.json").write_text(
            json.dumps({"id": killed, "started": started, "status": "running", "pid": holder.pid})
        )
        progress_path(site).write_text(
            json.dumps({"pid": holder.pid, "updated": started + 60, "files": 3, "total_files": 9})
        )
        assert main(["status", "-c", str(config), "--json"]) == EXIT_OK
        data = json.loads(capsys.readouterr().out)
        assert data["running"]["pid"] == holder.pid
        assert data["running"]["id"] is None and data["running"]["progress"] is None, data
        assert [u["id"] for u in data["unfinished"]] == [killed]


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
