"""A run waits for its turn at the approval changes (``.sitegen/approvals-waiting.json``) in a
worker thread: an ``approve`` or ``revoke`` holding the file never holds up the event loop, and
one that does not let go leaves the run to end all the same. A run that took no changes leaves
the file, and its lock, alone."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import trio

from sitegen.config import load_config
from sitegen.layout import approvals_waiting_lock_path, approvals_waiting_path
from sitegen.store.site import Site
from sitegen.sync import approvals_waiting, running
from sitegen.sync.history import History
from sitegen.sync.report import COMPLETED, RUNNING, ApprovalChange
from sitegen.sync.run import MirrorOptions, run_mirror
from testkit.upstream import ExampleUpstream

pytestmark = pytest.mark.integration

# Another process taking its turn at the file, as `approve` does, and keeping it until killed.
HOLDER = """
import sys, time
from pathlib import Path
from sitegen.store.lock import taking_turns
with taking_turns(Path(sys.argv[1])):
    print("holding", flush=True)
    time.sleep(120)
"""


def hold_turn(site: Path) -> subprocess.Popen[str]:
    lock = approvals_waiting_lock_path(site)
    lock.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    return proc


def write_config(tmp_path: Path, url: str) -> Path:
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {tmp_path / 'site'}\ndownload: {{retries: 0, timeout: 30}}\n"
        f"channels:\n  c/x:\n    url: {url}\n    subdirs: [linux-64]\n"
    )
    return config


# The change of an `approve` that started the run: the run takes it, and releases it at its end.
OWN = ApprovalChange(action="approve", channel="c/x", spec="*", by="tester", why="a test")


def held_after_take(monkeypatch: pytest.MonkeyPatch, site: Path) -> list[subprocess.Popen[str]]:
    """Once the run took its changes, another process takes its turn at the file and keeps it
    until killed: the one started, once it is."""
    take = approvals_waiting.take
    holders: list[subprocess.Popen[str]] = []

    def take_then_hold(*args: Any, **kwargs: Any) -> list[ApprovalChange]:
        taken = take(*args, **kwargs)
        holders.append(hold_turn(site))
        return taken

    monkeypatch.setattr(approvals_waiting, "take", take_then_hold)
    return holders


async def run_beside(
    config: Path, own: tuple[ApprovalChange, ...] = (OWN,), task: Any = None
) -> str:
    """Run the mirror (publishing ``own``) beside ``task`` (an async function, if any); the
    run's status."""
    async with trio.open_nursery() as nursery:
        if task is not None:
            nursery.start_soon(task)
        options = MirrorOptions(progress=False, approvals=own)
        report = await run_mirror(load_config(config), options)
        nursery.cancel_scope.cancel()
    return report.status


def recorded_over(site: Path) -> bool:
    return any(r.status != RUNNING for r in History(Site(site)).runs())


def test_the_event_loop_runs_on_while_a_run_waits_for_its_turn(
    tmp_path: Path, example_upstream: ExampleUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, example_upstream.url)
    site = tmp_path / "site"
    holders = held_after_take(monkeypatch, site)
    let_go_by: list[str] = []

    async def let_go_once_recorded() -> None:
        # Once the run's record is saved it waits for its turn: a task of the event loop frees
        # the file then, which it can only do if the loop runs on while the run waits.
        while not recorded_over(site):
            await trio.sleep(0.01)
        let_go_by.append("the loop")
        for holder in holders:
            holder.kill()

    def let_go_by_timer() -> None:  # where the wait holds the event loop
        let_go_by.append("the timer")
        for holder in holders:
            holder.kill()

    safety = threading.Timer(30, let_go_by_timer)
    safety.start()
    try:
        status = trio.run(run_beside, config, (OWN,), let_go_once_recorded)
    finally:
        safety.cancel()
        for holder in holders:
            holder.kill()
            holder.wait()
    assert status == COMPLETED
    assert len(holders) == 1
    assert let_go_by == ["the loop"], let_go_by
    assert not approvals_waiting_path(site).exists()  # released once the file was free


class Told(logging.Handler):
    """Sets ``seen`` once a record holding ``words`` is logged, from whichever thread logs it."""

    def __init__(self, words: str) -> None:
        super().__init__(logging.ERROR)
        self.words = words
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.words in record.getMessage():
            self.seen.set()


def test_a_run_whose_turn_does_not_come_ends_all_the_same(
    tmp_path: Path, example_upstream: ExampleUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(running, "RELEASE_SECONDS", 0.5)
    config = write_config(tmp_path, example_upstream.url)
    site = tmp_path / "site"
    holders = held_after_take(monkeypatch, site)

    let_go_by_timer: list[bool] = []

    def let_go() -> None:
        let_go_by_timer.append(True)
        for holder in holders:
            holder.kill()

    # Kept from hanging the tests where the run would wait for good: it must end without it.
    safety = threading.Timer(30, let_go)
    safety.start()
    # The run gives its turn up and ends; the thread that waited for the turn says so once it
    # sees the run gave up, which may be after the run returned.
    told = Told("left taken: the file was not free in time")
    logger = logging.getLogger("sitegen")
    logger.addHandler(told)
    try:
        status = trio.run(run_beside, config)
        assert told.seen.wait(30)  # a guard against a hang, not a measure
    finally:
        logger.removeHandler(told)
        safety.cancel()
        for holder in holders:
            holder.kill()
            holder.wait()
    assert status == COMPLETED
    assert len(holders) == 1
    assert let_go_by_timer == []


def test_a_run_that_took_no_changes_leaves_the_file_and_its_lock_alone(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    config = write_config(tmp_path, example_upstream.url)  # no gated channel
    site = tmp_path / "site"
    status = trio.run(run_beside, config, ())
    assert status == COMPLETED
    assert recorded_over(site)
    assert not approvals_waiting_lock_path(site).exists()
    assert not approvals_waiting_path(site).exists()
