"""``sitegen stop``: stops the mirror run holding the site, and only a recorded one."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sitegen.cli import EXIT_FAILED, EXIT_LOCKED, EXIT_OK, main
from sitegen.layout import history_page_path, run_page_path
from sitegen.store.lock import lock_holder
from testkit.faults import held_hang, hold_repodata
from testkit.upstream import ExampleUpstream


def write_config(tmp_path: Path, url: str) -> tuple[Path, Path]:
    site = tmp_path / "site"
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {site}\ndownload: {{timeout: 120, retries: 1}}\n"
        f"channels:\n  c/x:\n    url: {url}\n    subdirs: [linux-64]\n"
    )
    return site, config


def records(site: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in (site / "history" / "runs").glob("*.json")]


def wait_for(condition, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


# A process that holds the site lock, records a running mirror run under its pid (or not) and
# ignores SIGTERM (or not), then waits.
HOLDER = """
import signal, sys, time
from pathlib import Path
from sitegen.store.lock import SiteLock
from sitegen.store.site import Site
from sitegen.sync.history import History, new_run_id
from sitegen.sync.report import RunReport
import os
site = Site(Path(sys.argv[1]))
SiteLock(site.state_dir).acquire()
if sys.argv[2] == "record":
    History(site).save(RunReport(id=new_run_id(), started=time.time(), pid=os.getpid()))
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(120)
"""


def start_holder(site: Path, mode: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(site), mode], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


@pytest.mark.integration
def test_stop_ends_a_mirror_run_held_mid_download(
    tmp_path: Path, example_upstream: ExampleUpstream, capsys: pytest.CaptureFixture[str]
) -> None:
    site, config = write_config(tmp_path, example_upstream.url)
    assert main(["stop", "-c", str(config)]) == EXIT_FAILED  # no site, no run
    assert "no mirror run holds the site" in capsys.readouterr().out

    # Every package download of the run hangs until the run hangs up: it holds the site
    # until something stops it.
    held, held_download = held_hang(max_seconds=120)
    for spec in example_upstream.packages:
        for fn in spec.filenames:
            example_upstream.server.add_fault(f"/{spec.subdir}/{fn}", held_download)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sitegen", "mirror", "-c", str(config), "--no-progress"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(held.is_set, "a held download")
        assert lock_holder(site / ".sitegen") == proc.pid
        assert main(["stop", "-c", str(config), "--timeout", "120"]) == EXIT_OK
        out = capsys.readouterr().out
        assert f"(pid {proc.pid}) released the site; recorded as stopped" in out, out
        assert lock_holder(site / ".sitegen") is None
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err
        assert "received SIGTERM: stopping" in err
        (record,) = records(site)
        assert record["status"] == "stopped"
        # Its subdirs were merged, their downloads held: the run never published them, and
        # its record and page say so, not that it found them unchanged.
        rows = {c["subdir"]: c["status"] for c in record["channels"]}
        assert rows == {"linux-64": "not-reached", "noarch": "not-reached"}, rows
        page = (site / run_page_path(record["id"])).read_text()
        assert page.count('<span class="badge badge-not-reached">not reached</span>') == 2
        assert "unchanged" not in page
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert main(["stop", "-c", str(config)]) == EXIT_FAILED  # nothing runs any more


@pytest.mark.integration
def test_a_run_stopped_while_it_fetches_lists_every_subdir_as_not_reached(
    tmp_path: Path, example_upstream: ExampleUpstream, capsys: pytest.CaptureFixture[str]
) -> None:
    """Stopped before it merged anything, the run still says what it was to rebuild: each
    subdir not reached, serving the files the run before published, as the rows of a stop
    after the merge do; its page and the history page show them."""
    site, config = write_config(tmp_path, example_upstream.url)
    assert main(["mirror", "-c", str(config), "--no-progress"]) == EXIT_OK
    (first,) = records(site)
    served = {c["subdir"]: c["packages"] for c in first["channels"]}
    assert served["linux-64"] and served["noarch"], served

    held = hold_repodata(example_upstream.server)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sitegen", "mirror", "-c", str(config), "--no-progress"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(held.is_set, "a held repodata fetch")
        assert main(["stop", "-c", str(config), "--timeout", "120"]) == EXIT_OK
        capsys.readouterr()
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    (record,) = [r for r in records(site) if r["id"] != first["id"]]
    assert record["status"] == "stopped"
    rows = {c["subdir"]: (c["status"], c["packages"]) for c in record["channels"]}
    assert rows == {s: ("not-reached", n) for s, n in served.items()}, rows
    badge = '<span class="badge badge-not-reached">not reached</span>'
    page = (site / run_page_path(record["id"])).read_text()
    assert page.count(badge) == 2, page
    history = (site / history_page_path(1)).read_text()
    assert history.count(badge) == 2
    article = history.split(f'id="run-{record["id"]}"')[1].split("</article>")[0]
    assert f'<td class="n" data-label="Files">{served["linux-64"]}</td>' in article


@pytest.mark.integration
def test_stop_leaves_alone_a_lock_holder_the_ledger_does_not_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A holder without a running record of its pid (a verify --repair, a dry run) and a
    running record of a pid that holds no lock (a killed run's, perhaps reused) are not
    signalled; SIGTERM would kill them (these ignore it only to be observable)."""
    site, config = write_config(tmp_path, "http://127.0.0.1:1/c")
    holder = start_holder(site, "no record")
    try:
        assert main(["stop", "-c", str(config), "--timeout", "0.5"]) == EXIT_LOCKED
        out = capsys.readouterr().out
        assert f"pid {holder.pid} holds the site lock but the run ledger records no" in out
    finally:
        holder.kill()
        holder.wait()
    # Its record outlived it; a process of the same pid would not be signalled either.
    stray = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (site / "history" / "runs").mkdir(parents=True, exist_ok=True)
        (site / "history" / "runs" / "20260102T104000.000Z-1.json").write_text(
            json.dumps({"id": "20260102T104000.000Z-1", "started": 1.0, "pid": stray.pid})
        )
        assert main(["stop", "-c", str(config)]) == EXIT_FAILED
        assert stray.poll() is None
    finally:
        stray.kill()
        stray.wait()


@pytest.mark.integration
def test_a_run_that_does_not_release_the_site_in_time_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site, config = write_config(tmp_path, "http://127.0.0.1:1/c")
    holder = start_holder(site, "record")
    try:
        assert main(["stop", "-c", str(config), "--timeout", "0.3"]) == EXIT_LOCKED
        out = capsys.readouterr().out
        assert f"(pid {holder.pid}) was sent SIGTERM and still holds the site lock" in out
        assert holder.poll() is None and lock_holder(site / ".sitegen") == holder.pid
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.integration
def test_stop_leaves_alone_a_lock_holder_that_reused_a_killed_runs_pid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A killed run's record stays 'running' until the next mirror run; a process that got its
    pid since (a verify --repair, a dry run) and holds the lock is not that run: it started
    after the record did."""
    site, config = write_config(tmp_path, "http://127.0.0.1:1/c")
    holder = start_holder(site, "no record")
    try:
        killed = "20260102T104000.000Z-1"
        (site / "history" / "runs").mkdir(parents=True, exist_ok=True)
        (site / "history" / "runs" / f"{killed}.json").write_text(
            json.dumps(
                {
                    "id": killed,
                    "started": time.time() - 3600,
                    "status": "running",
                    "pid": holder.pid,
                }
            )
        )
        assert main(["stop", "-c", str(config), "--timeout", "0.5"]) == EXIT_LOCKED
        out = capsys.readouterr().out
        assert f"pid {holder.pid} holds the site lock but the run ledger records no" in out, out
    finally:
        holder.kill()
        holder.wait()


# A `sitegen mirror` whose run, once its pipeline is done, takes its time to record how it
# ended (as writing the record of a first run of a large channel does): it says when.
SLOW_RECORD = """
import sys, time
from sitegen.cli import main
from sitegen.sync.history import History
from sitegen.sync.report import RUNNING

save = History.save

def slow_save(self, report):
    if report.status != RUNNING:
        print("recording", flush=True)
        time.sleep(3)
    save(self, report)

History.save = slow_save
sys.exit(main(["mirror", "-c", sys.argv[1], "--no-progress"]))
"""


@pytest.mark.integration
def test_a_stop_while_the_run_records_its_end_leaves_the_record_complete(
    tmp_path: Path, example_upstream: ExampleUpstream, capsys: pytest.CaptureFixture[str]
) -> None:
    """The run is signalled while its record still says "running": the record is finished
    before the signal takes effect, not left "running" (then "interrupted") by it."""
    site, config = write_config(tmp_path, example_upstream.url)
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_RECORD, str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "recording"
        assert [r["status"] for r in records(site)] == ["running"]
        assert main(["stop", "-c", str(config), "--timeout", "60"]) == EXIT_OK
        out = capsys.readouterr().out
        assert f"(pid {proc.pid}) released the site; recorded as completed" in out, out
        assert [r["status"] for r in records(site)] == ["completed"]
        # Then the signal takes effect, as a SIGTERM after the run: the command is interrupted.
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=60)
