"""The rows of a run stopped before its merge are counted off the event loop, for a bounded
time: a subdir the last clean run vouches for takes its counts from that run's record, without
reading its repodata.json, and one whose file cannot be read in time leaves the stop prompt."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
import trio

from sitegen.config import load_config
from sitegen.layout import REPODATA
from sitegen.store.site import Site
from sitegen.sync import unreached
from sitegen.sync.history import History
from sitegen.sync.report import STOPPED
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.sync.unreached import NOT_COUNTED
from testkit.faults import hold_repodata
from testkit.fifo import let_reader_go
from testkit.upstream import ExampleUpstream

pytestmark = pytest.mark.integration


def test_a_run_stopped_in_its_fetch_counts_its_rows_off_the_event_loop_for_a_bounded_time(
    tmp_path: Path, example_upstream: ExampleUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(unreached, "COUNT_SECONDS", 1.0)
    site = tmp_path / "site"
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {site}\ndownload: {{timeout: 120, retries: 0}}\n"
        f"channels:\n  c/x:\n    url: {example_upstream.url}\n    subdirs: [linux-64]\n"
    )
    config = load_config(config_path)
    first = trio.run(run_mirror, config, MirrorOptions(progress=False))
    served = {c.subdir: c.packages for c in first.channels}
    assert served["linux-64"] and served["noarch"], served

    # linux-64's file is as the clean run left it (size and mtime) but unreadable: its count
    # can only come from the record. noarch's is a pipe nobody writes: reading it never ends.
    linux = site / "c/x/linux-64" / REPODATA
    before = linux.stat()
    linux.write_bytes(b"x" * before.st_size)
    os.utime(linux, ns=(before.st_atime_ns, before.st_mtime_ns))
    noarch = site / "c/x/noarch" / REPODATA
    noarch.unlink()
    os.mkfifo(noarch)

    held = hold_repodata(example_upstream.server)

    async def stopped_run() -> None:
        with trio.CancelScope() as run_scope:
            async with trio.open_nursery() as running:

                async def stop_once_held() -> None:
                    await trio.to_thread.run_sync(held.wait, abandon_on_cancel=True)
                    run_scope.cancel()

                running.start_soon(stop_once_held)
                await run_mirror(config, MirrorOptions(progress=False))

    # Where the stop waits on reading the pipe (on the event loop, or for as long as it
    # takes), only this lets it go, after 30 seconds: the run must end without it.
    done = threading.Event()
    let_go_by_safety: list[bool] = []

    def safety() -> None:
        if not done.wait(30):
            let_go_by_safety.append(True)
            let_reader_go(noarch)

    guard = threading.Thread(target=safety)
    guard.start()
    try:
        trio.run(stopped_run)
    finally:
        done.set()
        guard.join()
        for _ in range(50):  # a reader left blocked on the pipe, let go
            if let_reader_go(noarch):
                break
            time.sleep(0.05)
    assert let_go_by_safety == []  # the stop ended while the pipe was still being read
    (record,) = [r for r in History(Site(site)).runs() if r.id != first.id]
    assert record.status == STOPPED
    rows = {c.subdir: (c.status, c.packages, c.errors) for c in record.channels}
    assert rows == {
        "linux-64": ("not-reached", served["linux-64"], []),
        "noarch": ("not-reached", 0, [NOT_COUNTED]),
    }, rows
