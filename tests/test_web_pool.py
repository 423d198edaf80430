"""The worker pool of the package pages: results in order, from other processes (fresh ones,
which share no memory with the render's), from any thread; payloads made only a few parts
ahead; failures raised in the render's process; no worker left behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sitegen.web import pool
from sitegen.web.pool import NoWorkers, parts_in_processes

pytestmark = pytest.mark.integration  # worker processes


def child_processes() -> set[int]:
    """The processes this one started and has not reaped (any thread's), but for
    multiprocessing's resource tracker: one per process, for as long as it lives."""
    out: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            out.update(int(pid) for pid in (task / "children").read_text().split())
    return {pid for pid in out if b"resource_tracker" not in command_line(pid)}


def command_line(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # gone meanwhile
        return b""


# The works below are made in the workers from their setup: module-level, as a worker
# imports them by name.


def squares(offset: int) -> Callable[[list[int]], list[tuple[int, int, int]]]:
    return lambda part: [(os.getpid(), os.getppid(), n * n + offset) for n in part]


def failing_at(bad: int) -> Callable[[int], int]:
    def work(part: int) -> int:
        if part == bad:
            raise ValueError(f"no page for part {bad}")
        return part

    return work


def touching(directory: str) -> Callable[[int], None]:
    def work(part: int) -> None:
        time.sleep(0.2)
        (Path(directory) / str(part)).touch()

    return work


def dying(_setup: None) -> Callable[[int], int]:
    def work(part: int) -> int:
        if part == 0:
            os._exit(3)  # as a worker the kernel kills for memory
        return part

    return work


# A value the render's process sets: a fresh worker does not see it (a forked one would).
MARK = "as imported"


def marks(_setup: None) -> Callable[[int], str]:
    return lambda _part: MARK


def test_results_come_in_order_from_workers_started_by_any_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = child_processes()
    inputs = list(range(40))

    def payloads() -> Iterator[list[int]]:
        for start in range(0, len(inputs), 4):
            yield inputs[start : start + 4]

    found: list[list[tuple[int, int, int]]] = []

    def render() -> None:
        with parts_in_processes(squares, 1, payloads(), 2) as results:
            for part in results():
                found.append(part)

    thread = threading.Thread(target=render)  # as `sitegen serve --watch` renders
    thread.start()
    thread.join(60)
    assert not thread.is_alive()
    assert [square for part in found for _pid, _parent, square in part] == [
        n * n + 1 for n in inputs
    ]
    assert os.getpid() not in {pid for part in found for pid, _parent, _square in part}
    assert {parent for part in found for _pid, parent, _square in part} == {os.getpid()}
    assert child_processes() == before


def test_a_payload_is_made_only_when_a_worker_has_room_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The payloads never add up to a second copy of the records: two processes, one part
    ahead each, so when a payload is made at most two parts are sent and not yet done (each
    part's file is touched before its worker takes the next)."""
    monkeypatch.setattr(pool, "AHEAD_PER_PROCESS", 1)
    ahead: list[int] = []  # when each payload is made: payloads made before it, less parts done

    def payloads() -> Iterator[int]:
        for part in range(8):
            ahead.append(part - len(list(tmp_path.iterdir())))
            yield part

    with parts_in_processes(touching, str(tmp_path), payloads(), 2) as results:
        assert list(results()) == [None] * 8
    assert len(ahead) == 8 and max(ahead) <= 2


def test_workers_start_fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "MARK", "set here")
    with parts_in_processes(marks, None, range(4), 2) as results:
        assert list(results()) == ["as imported"] * 4


def test_a_failing_part_raises_here_and_leaves_no_worker() -> None:
    before = child_processes()
    with (
        pytest.raises(RuntimeError, match="no page for part 3"),
        parts_in_processes(failing_at, 3, range(6), 2) as results,
    ):
        list(results())
    assert child_processes() == before


def test_a_failing_payload_raises_here_and_leaves_no_worker() -> None:
    before = child_processes()

    def payloads() -> Iterator[int]:
        yield 1
        raise KeyError("no records for part 2")

    with (
        pytest.raises(KeyError, match="no records for part 2"),
        parts_in_processes(failing_at, -1, payloads(), 2) as results,
    ):
        assert next(results()) == 1
        list(results())
    assert child_processes() == before


def test_an_error_meanwhile_cancels_the_parts_not_started(tmp_path: Path) -> None:
    before = child_processes()
    with pytest.raises(KeyError), parts_in_processes(touching, str(tmp_path), range(30), 2):
        time.sleep(0.5)  # the workers started
        raise KeyError("the listings failed")  # while the workers render
    assert child_processes() == before
    assert len(list(tmp_path.iterdir())) < 10  # 30 parts would take 3 s


def test_a_setup_that_does_not_pickle_starts_no_worker() -> None:
    """Each worker is sent its setup as it starts: one that cannot be pickled (say, a value
    holding a lock) is NoWorkers at once, for the caller to do the work itself."""
    before = child_processes()
    with (
        pytest.raises(NoWorkers, match="pickle"),
        parts_in_processes(squares, threading.Lock(), range(4), 2),
    ):
        pytest.fail("no workers to work with")
    assert child_processes() == before


def test_a_worker_that_dies_is_named_as_such_and_leaves_no_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whether the results meet the broken pool first, or the feeder does as it sends the
    next part, the render hears that a worker died."""
    monkeypatch.setattr(pool, "AHEAD_PER_PROCESS", 1)
    before = child_processes()
    with (
        pytest.raises(RuntimeError, match="a worker process died"),
        parts_in_processes(dying, None, range(50), 2) as results,
    ):
        list(results())
    assert child_processes() == before


# A render that starts its workers, names them, and waits.
RENDER = textwrap.dedent("""\
    import os, sys, time
    from pathlib import Path
    from sitegen.web.pool import parts_in_processes

    def napping(_setup):
        return lambda part: time.sleep(600)

    if __name__ == "__main__":
        with parts_in_processes(napping, None, range(4), 2) as results:
            children = []  # every process whose parent this is
            for entry in Path("/proc").iterdir():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:  # no process, or gone
                    continue
                if int(stat.rpartition(")")[2].split()[1]) == os.getpid():
                    children.append(entry.name)
            print(" ".join(children), flush=True)
            list(results())
    """)


def test_workers_leave_once_their_render_is_killed(tmp_path: Path) -> None:
    """A render killed with SIGKILL (the OOM killer) leaves no worker waiting for ever for
    its next part, holding the render's output (a cron job's, a test's pipe) open."""
    script = tmp_path / "render.py"
    script.write_text(RENDER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    render = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    try:
        assert render.stdout is not None
        started = {int(pid) for pid in render.stdout.readline().split()}
        assert len(started) >= 2  # the two workers (and the resource tracker)
        render.send_signal(signal.SIGKILL)
        # Its output ends once the workers are gone (this waits for their end: a hang guard).
        render.communicate(timeout=60)
    finally:
        if render.poll() is None:
            render.kill()
            render.wait()
    # A process's output closes as it exits, a moment before it is done: wait for that (a
    # hang guard: a worker left behind runs on for ever).
    deadline = time.monotonic() + 30
    while (left := [pid for pid in started if running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left


def running(pid: int) -> bool:
    """Whether the process ``pid`` runs: it exists and is no zombie (ended, not yet reaped
    by the process it was handed to when its parent died)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # gone
        return False
    return not any(
        line.split()[1:2] == ["Z"] for line in status.splitlines() if line.startswith("State:")
    )
