"""A run waits for its turn at the approval changes (``.sitegen/approvals-waiting.json``) in a
worker thread: an ``approve`` or ``revoke`` holding the file never holds up the event loop, and
one that does not let go leaves the run to end all the same. A run that took no changes leaves
the file, and its lock, alone."""

from __future__ import annotations

import itertools
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import trio

from sitegen.config import load_config
from sitegen.layout import approvals_waiting_lock_path, approvals_waiting_path
from sitegen.store.site import Site
from sitegen.sync import approvals_waiting, run
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


async def run_ticking(config: Path, own: tuple[ApprovalChange, ...] = (OWN,)) -> tuple[str, float]:
    """Run the mirror (publishing ``own``) beside a task that ticks every 20 ms; the run's
    status, and the longest the ticks stopped for."""
    ticks: list[float] = []

    async def tick() -> None:
        while True:
            ticks.append(time.monotonic())
            await trio.sleep(0.02)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(tick)
        options = MirrorOptions(progress=False, approvals=own)
        report = await run_mirror(load_config(config), options)
        nursery.cancel_scope.cancel()
    return report.status, max(b - a for a, b in itertools.pairwise(ticks))


def recorded_over(site: Path) -> bool:
    return any(r.status != RUNNING for r in History(Site(site)).runs())


def test_the_event_loop_runs_on_while_a_run_waits_for_its_turn(
    tmp_path: Path, example_upstream: ExampleUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, example_upstream.url)
    site = tmp_path / "site"
    holders = held_after_take(monkeypatch, site)

    def let_go() -> None:
        # Once the run's record is saved it waits for its turn: two seconds later, the file
        # is free again.
        deadline = time.monotonic() + 60
        while not recorded_over(site) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(2)
        for holder in holders:
            holder.kill()

    releasing = threading.Thread(target=let_go)
    releasing.start()
    try:
        status, longest_pause = trio.run(run_ticking, config)
    finally:
        releasing.join()
        for holder in holders:
            holder.kill()
            holder.wait()
    assert status == COMPLETED
    assert len(holders) == 1
    assert longest_pause < 1, longest_pause
    assert not approvals_waiting_path(site).exists()  # released once the file was free


def test_a_run_whose_turn_does_not_come_ends_all_the_same(
    tmp_path: Path,
    example_upstream: ExampleUpstream,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(run, "RELEASE_SECONDS", 0.5)
    config = write_config(tmp_path, example_upstream.url)
    site = tmp_path / "site"
    holders = held_after_take(monkeypatch, site)

    def let_go() -> None:
        for holder in holders:
            holder.kill()

    # Kept from hanging the tests where the run would wait for good.
    safety = threading.Timer(30, let_go)
    safety.start()
    started = time.monotonic()
    try:
        with caplog.at_level(logging.ERROR, logger="sitegen"):
            status, _pause = trio.run(run_ticking, config)
    finally:
        safety.cancel()
        for holder in holders:
            holder.kill()
            holder.wait()
    assert status == COMPLETED
    assert len(holders) == 1
    assert time.monotonic() - started < 15
    assert "left taken: the file was not free in time" in caplog.text


def test_a_run_that_took_no_changes_leaves_the_file_and_its_lock_alone(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    config = write_config(tmp_path, example_upstream.url)  # no gated channel
    site = tmp_path / "site"
    status, _pause = trio.run(run_ticking, config, ())
    assert status == COMPLETED
    assert recorded_over(site)
    assert not approvals_waiting_lock_path(site).exists()
    assert not approvals_waiting_path(site).exists()
