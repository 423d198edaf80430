"""The worker pool of the package pages: results in order, from other processes, from any
thread; failures raised in the render's process; no worker left behind."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

import pytest

from sitegen.web.pool import can_fork, parts_in_processes

pytestmark = [
    pytest.mark.integration,  # worker processes
    pytest.mark.skipif(not can_fork(), reason="workers are forked (Linux)"),
]


def child_processes() -> set[int]:
    """The processes this one started and has not reaped (any thread's)."""
    out: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            out.update(int(pid) for pid in (task / "children").read_text().split())
    return out


def test_results_come_in_order_from_workers_started_by_any_thread() -> None:
    before = child_processes()
    inputs = list(range(40))  # reaches the workers by the fork, not pickled
    found: list[list[tuple[int, int]]] = []

    def work(part: int) -> list[tuple[int, int]]:
        return [(os.getpid(), n * n) for n in inputs[part * 4 : (part + 1) * 4]]

    def render() -> None:
        with parts_in_processes(work, 10, 2) as results:
            found.extend(results())

    thread = threading.Thread(target=render)  # as `sitegen serve --watch` renders
    thread.start()
    thread.join(60)
    assert not thread.is_alive()
    assert [square for part in found for _pid, square in part] == [n * n for n in inputs]
    assert os.getpid() not in {pid for part in found for pid, _square in part}
    assert child_processes() == before


def test_a_failing_part_raises_here_and_leaves_no_worker() -> None:
    before = child_processes()

    def work(part: int) -> int:
        if part == 3:
            raise ValueError("no page for part 3")
        return part

    with (
        pytest.raises(RuntimeError, match="no page for part 3"),
        parts_in_processes(work, 6, 2) as results,
    ):
        list(results())
    assert child_processes() == before


def test_an_error_meanwhile_cancels_the_parts_not_started(tmp_path: Path) -> None:
    before = child_processes()

    def work(part: int) -> None:
        time.sleep(0.2)
        (tmp_path / str(part)).touch()

    with pytest.raises(KeyError), parts_in_processes(work, 30, 2):
        raise KeyError("the listings failed")  # while the workers render
    assert child_processes() == before
    assert len(list(tmp_path.iterdir())) < 10  # 30 parts would take 3 s
