"""SIGTERM stops ``sitegen mirror`` cleanly (exit status 130, the run recorded as ``stopped``,
no temporaries left, the settled invariant holds), and a rerun removes every temporary a killed
run left. The channel and the kills: :mod:`testkit.crash`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from testkit.crash import (
    SOURCE_DATE_EPOCH,
    World,
    built_world,
    fresh_site,
    kill_when,
    new_packages,
    rerun_and_compare,
    run_records,
    temp_download,
)
from testkit.invariant import assert_site_invariant, temporaries
from testkit.small_channel import CHANNEL

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH)
        with built_world(tmp_path_factory.mktemp("crash")) as world:
            yield world


@pytest.mark.parametrize("moment", ["download", "publish", "download, twice"])
def test_sigterm_stops_cleanly(world: World, moment: str) -> None:
    """SIGTERM mid-download, and as the last download lands (publishing starts); and twice
    in a row (a service manager or an impatient operator): the second lands while the run
    stops, and must not kill it before its record is saved."""
    site = fresh_site(world, f"term-{moment.replace(', ', '-')}")
    before = run_records(site)
    if moment.startswith("download"):
        trigger = temp_download(1)
    else:
        trigger = new_packages(world, len(world.new_files))
    times = 2 if moment.endswith("twice") else 1
    sent, status, err = kill_when(world, site, trigger, signal.SIGTERM, times)
    assert sent, "the run ended before the signal"
    assert status == 130, err.decode()
    (run,) = run_records(site) - before
    record = json.loads((site / "history" / "runs" / run).read_bytes())
    assert record["status"] == "stopped", record["status"]
    assert "stopped by a signal" in " ".join(record["errors"])
    assert not temporaries(site), "temporaries left behind"
    assert_site_invariant(site)  # settled: a stop is not a crash
    rerun_and_compare(world, site)


def test_rerun_removes_every_temporary_a_killed_run_left(world: World) -> None:
    """Temporaries of a dead process go wherever it was writing: subdirs, beside
    channeldata.json, in the ledger. The next run removes every one of them."""
    site = fresh_site(world, "stale")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    pid = int(dead.stdout)  # a process that has exited: its temporaries are garbage
    leftovers = [
        site / CHANNEL / f".sitegen-tmp-{pid}-channeldata.json.0badf00d",
        site / CHANNEL / "linux-64" / f".sitegen-tmp-{pid}-repodata.json.0badf00d",
        site / "history" / "runs" / f".sitegen-tmp-{pid}-20240101T000000Z-1.json.0badf00d",
        site / ".sitegen" / f".sitegen-tmp-{pid}-lock.0badf00d",
    ]
    for path in leftovers:
        path.write_bytes(b"half written")
    rerun_and_compare(world, site)
    assert not temporaries(site), temporaries(site)
