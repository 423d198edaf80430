"""Approval changes outlive a run killed with SIGKILL: whoever granted or revoked what, and why,
is recorded once, by a run that published it, wherever the kill lands."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from sitegen.cli import main
from sitegen.store.lock import SiteLock
from sitegen.store.site import Site
from sitegen.sync.history import History
from sitegen.sync.report import ApprovalChange
from testkit.faults import hold_repodata
from testkit.site import published
from testkit.upstream import ExampleUpstream

pytestmark = pytest.mark.integration

SOURCE, GATED = "cloud/example", "internal/approved"

# `sitegen <argv...>` whose History.save, for the record of a run that is over, says "held"
# and waits to be killed: before writing it (argv[1] == "before") or once it is written.
HELD_AT_THE_RECORD = """
import sys, time
from sitegen.cli import main
from sitegen.sync.history import History
from sitegen.sync.report import RUNNING

save = History.save

def held_save(self, report):
    if report.status != RUNNING and sys.argv[1] == "after":
        save(self, report)
    if report.status != RUNNING:
        print("held", flush=True)
        time.sleep(120)
    save(self, report)

History.save = held_save
sys.exit(main(sys.argv[2:]))
"""


def granted_by_each_run(site: Path) -> list[list[tuple[str, str, str, str]]]:
    """The approval changes each recorded run lists, newest run first."""
    return [
        [(a.action, a.spec, a.by, a.why) for a in run.approvals]
        for run in History(Site(site)).runs()
    ]


def flat(runs: list[list[tuple[str, str, str, str]]]) -> list[tuple[str, str, str, str]]:
    """Every change the runs list, in their order."""
    return [change for run in runs for change in run]


def gated_site(tmp_path: Path, url: str) -> tuple[list[str], Path]:
    """A site whose gated channel publishes what is approved of its source, mirrored from
    ``url``; the arguments naming its configuration, and the site."""
    config = tmp_path / "channels.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            output: {tmp_path / "site"}
            download: {{concurrency: 4, per_host: 4, retries: 1, timeout: 10}}
            channels:
              {SOURCE}:
                url: {url}
                subdirs: [linux-64]
              {GATED}:
                approval: {{from: {SOURCE}}}
            """
        )
    )
    args, site = ["-c", str(config)], tmp_path / "site"
    for _ in range(2):
        assert main(["mirror", *args, "--no-progress"]) == 0
    return args, site


def kill_when_held(argv: list[str], held: threading.Event | None = None) -> None:
    """Run ``argv`` (a Python command line) until it is held (``held`` is set, or it prints
    "held"), then SIGKILL it."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if held is None:
            assert proc.stdout is not None
            lines = iter(proc.stdout.readline, "")
            assert any(line.strip() == "held" for line in lines), proc.communicate()
        else:
            deadline = time.monotonic() + 60
            while not held.is_set():
                assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
                time.sleep(0.05)
    finally:
        proc.kill()
        proc.communicate(timeout=60)
    assert proc.returncode == -9


def test_a_waiting_change_taken_by_a_run_killed_while_it_fetches_is_recorded_by_the_next(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    args, site = gated_site(tmp_path, example_upstream.url)
    with SiteLock(site / ".sitegen"):
        assert main(["approve", GATED, "numpy 2.1.0", *args, "--by", "alice", "--reason", "r"]) == 3

    held = hold_repodata(example_upstream.server)
    kill_when_held([sys.executable, "-m", "sitegen", "mirror", *args, "--no-progress"], held)
    example_upstream.server.clear_faults()

    assert main(["mirror", *args, "--no-progress"]) == 0
    assert published(site, GATED, "linux-64")
    runs = granted_by_each_run(site)
    assert runs[0] == [("approve", "numpy 2.1.0", "alice", "r")], runs
    assert flat(runs) == runs[0]  # the killed run's record does not claim it
    assert main(["mirror", *args, "--no-progress"]) == 0
    assert granted_by_each_run(site)[0] == []  # recorded once


def test_the_change_of_an_approve_killed_before_its_record_is_recorded_by_the_next_run(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    """The change is in the approvals file, and may be published already: the run of
    `approve` was killed as it wrote its record."""
    args, site = gated_site(tmp_path, example_upstream.url)
    approve = ["approve", GATED, "numpy 2.1.0", *args, "--by", "alice", "--reason", "r"]
    kill_when_held([sys.executable, "-c", HELD_AT_THE_RECORD, "before", *approve])
    assert main(["mirror", *args, "--no-progress"]) == 0
    assert published(site, GATED, "linux-64")
    runs = granted_by_each_run(site)
    assert runs[0] == [("approve", "numpy 2.1.0", "alice", "r")], runs
    assert flat(runs) == runs[0]


def test_a_change_recorded_by_a_run_killed_just_after_is_not_recorded_again(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    args, site = gated_site(tmp_path, example_upstream.url)
    with SiteLock(site / ".sitegen"):
        assert main(["approve", GATED, "numpy 2.1.0", *args, "--by", "bob", "--reason", "c"]) == 3
    mirror = ["mirror", *args, "--no-progress"]
    kill_when_held([sys.executable, "-c", HELD_AT_THE_RECORD, "after", *mirror])
    runs = granted_by_each_run(site)
    assert runs[0] == [("approve", "numpy 2.1.0", "bob", "c")], runs
    assert main(mirror) == 0
    assert granted_by_each_run(site)[0] == []
    assert flat(granted_by_each_run(site)) == [("approve", "numpy 2.1.0", "bob", "c")]


def test_waiting_changes_of_an_older_sitegen_are_read(tmp_path: Path) -> None:
    """The file as sitegen wrote it before it noted which run took what."""
    from sitegen.layout import approvals_waiting_path
    from sitegen.sync import approvals_waiting

    site = Site(tmp_path / "site")
    path = approvals_waiting_path(site.root)
    path.parent.mkdir(parents=True)
    path.write_text(
        '{"changes": [{"action": "approve", "channel": "g", "spec": "numpy", "by": "a",'
        ' "why": "w"}]}'
    )
    change = ApprovalChange(action="approve", channel="g", spec="numpy", by="a", why="w")
    assert approvals_waiting.take(site, "run-1", {"g"}) == [change]
