"""A run reads the ledger and saves its record (``history/runs/<id>.json``, ~35 MB after a
first sync of a large channel) in worker threads: the event loop runs on meanwhile, and a run
cancelled from outside still saves the record it ends with."""

from __future__ import annotations

import itertools
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


def slow_save(self: History, report: RunReport) -> None:
    """A save as slow as encoding and syncing a record of a first sync at scale."""
    time.sleep(1.5)
    SAVE(self, report)


def slow_read(self: History, *, strict: bool = False) -> tuple[list[RunReport], list[Path]]:
    """A read of the ledger as slow as that of a record of a first sync at scale."""
    time.sleep(1.5)
    return READ(self, strict=strict)


def run_ticking(config: Path, options: MirrorOptions) -> tuple[str, float]:
    """Run the mirror beside a task that ticks every 20 ms; the run's status, and the longest
    the ticks stopped for."""
    ticks: list[float] = []

    async def main() -> str:
        async def tick() -> None:
            while True:
                ticks.append(time.monotonic())
                await trio.sleep(0.02)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(tick)
            report = await run_mirror(load_config(config), options)
            ticks.append(time.monotonic())  # the time since the last tick counts too
            nursery.cancel_scope.cancel()
        return report.status

    status = trio.run(main)
    return status, max(b - a for a, b in itertools.pairwise(ticks))


def test_the_event_loop_runs_on_while_the_run_saves_its_record(
    tmp_path: Path, example_upstream: ExampleUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(History, "save", slow_save)
    config = write_config(tmp_path, example_upstream.url)
    status, longest_pause = run_ticking(config, MirrorOptions(progress=False))
    assert status == COMPLETED
    assert [r.status for r in History(Site(tmp_path / "site")).runs()] == [COMPLETED]
    assert longest_pause < 1, longest_pause


def test_the_event_loop_runs_on_while_the_run_reads_the_ledger(
    tmp_path: Path, example_upstream: ExampleUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At its start a run closes the records of killed runs, and ``--due`` reads when each
    mirror last completed: both read every record."""
    config = write_config(tmp_path, example_upstream.url)
    first, _pause = run_ticking(config, MirrorOptions(progress=False))
    assert first == COMPLETED
    monkeypatch.setattr(History, "read", slow_read)
    # Not due (it ran just now): the run reads the ledger, and ends.
    status, longest_pause = run_ticking(config, MirrorOptions(progress=False, due=True))
    assert status == COMPLETED
    assert longest_pause < 1, longest_pause


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
