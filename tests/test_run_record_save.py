"""A run reads the ledger and saves its record (``history/runs/<id>.json``, ~35 MB after a
first sync of a large channel) in worker threads: the event loop runs on meanwhile, and a run
cancelled from outside still saves the record it ends with."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import trio

from sitegen.config import load_config
from sitegen.store.site import Site
from sitegen.sync.history import History
from sitegen.sync.report import COMPLETED, RUNNING, STOPPED, RunReport
from sitegen.sync.run import MirrorOptions, run_mirror
from testkit.upstream import ExampleUpstream

pytestmark = pytest.mark.integration

SAVE = History.save
READ = History.read


def write_config(tmp_path: Path, url: str) -> Path:
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {tmp_path / 'site'}\ndownload: {{retries: 0, timeout: 30}}\n"
        f"channels:\n  c/x:\n    url: {url}\n    subdirs: [linux-64]\n"
    )
    return config


class LetGoByTheLoop:
    """Stands for a call as slow as saving (or reading) the record of a first sync at scale:
    it waits until a task of the event loop lets it go, which that task can only do when the
    loop runs on during the call. Where the call holds the loop, a timer lets it go after 10
    seconds instead, and says so."""

    def __init__(self) -> None:
        self.waiting = threading.Event()
        self.go = threading.Event()
        self.by_the_loop = 0
        self.by_the_timer = 0

    def wait(self) -> None:
        self.go.clear()
        self.waiting.set()
        if not self.go.wait(10):
            self.by_the_timer += 1
        self.waiting.clear()

    async def let_go(self) -> None:
        while True:
            if self.waiting.is_set() and not self.go.is_set():
                self.by_the_loop += 1
                self.go.set()
            await trio.sleep(0.01)


def run_beside(config: Path, options: MirrorOptions, held: LetGoByTheLoop) -> str:
    """Run the mirror beside the task that lets ``held`` go; the run's status."""

    async def main() -> str:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(held.let_go)
            report = await run_mirror(load_config(config), options)
            nursery.cancel_scope.cancel()
        return report.status

    return trio.run(main)


def test_the_event_loop_runs_on_while_the_run_saves_its_record(
    tmp_path: Path, example_upstream: ExampleUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = LetGoByTheLoop()

    def slow_save(self: History, report: RunReport) -> None:
        held.wait()
        SAVE(self, report)

    monkeypatch.setattr(History, "save", slow_save)
    config = write_config(tmp_path, example_upstream.url)
    status = run_beside(config, MirrorOptions(progress=False), held)
    assert status == COMPLETED
    assert [r.status for r in History(Site(tmp_path / "site")).runs()] == [COMPLETED]
    assert held.by_the_loop >= 2 and held.by_the_timer == 0  # its first and last record


def test_the_event_loop_runs_on_while_the_run_reads_the_ledger(
    tmp_path: Path, example_upstream: ExampleUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At its start a run closes the records of killed runs, and ``--due`` reads when each
    mirror last completed: both read every record."""
    config = write_config(tmp_path, example_upstream.url)
    assert run_beside(config, MirrorOptions(progress=False), LetGoByTheLoop()) == COMPLETED
    held = LetGoByTheLoop()

    def slow_read(self: History, *, strict: bool = False) -> tuple[list[RunReport], list[Path]]:
        held.wait()
        return READ(self, strict=strict)

    monkeypatch.setattr(History, "read", slow_read)
    # Not due (it ran just now): the run reads the ledger, and ends.
    status = run_beside(config, MirrorOptions(progress=False, due=True), held)
    assert status == COMPLETED
    assert held.by_the_loop >= 1 and held.by_the_timer == 0


def test_a_run_cancelled_from_outside_saves_its_last_record(
    tmp_path: Path, example_upstream: ExampleUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    def save_then_linger(self: History, report: RunReport) -> None:
        # The run's first record is on disk a while before the run goes on.
        SAVE(self, report)
        if report.status == RUNNING:
            time.sleep(1)

    monkeypatch.setattr(History, "save", save_then_linger)
    config = write_config(tmp_path, example_upstream.url)
    history = History(Site(tmp_path / "site"))

    async def main() -> None:
        async def cancel_once_running() -> None:
            while not history.runs():
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(cancel_once_running)
            await run_mirror(load_config(config), MirrorOptions(progress=False))
            raise AssertionError("the run was not cancelled")

    trio.run(main)
    assert [r.status for r in history.runs()] == [STOPPED]
