"""Work split between worker processes (``concurrent.futures``), for the package pages of a
first render: a page costs about as much CPU to write as to render, so threads would not help.

The workers are forked (Linux), so the work and its inputs (every record of a channel) reach
them without being pickled; only each part's result travels back. A worker runs nothing but
the work it was given: it builds its own state (e.g. its own jinja2 environment) rather than
use an object whose lock another thread of the parent (``sitegen serve --watch`` renders from
a thread) might have held at the fork. Workers are shut down with the pool, on errors too:
parts not started are cancelled and the ones running are waited for (each is small).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

# The work of this process, when it is a worker: set by its initializer (a forked worker
# inherits it with no pickling).
_work: Callable[[int], Any] | None = None


def _install(work: Callable[[int], Any]) -> None:
    global _work
    _work = work


def _run_part(part: int) -> Any:
    assert _work is not None, "a part run outside a worker of the pool"
    return _work(part)


def can_fork() -> bool:
    return sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods()


@contextlib.contextmanager
def parts_in_processes(
    work: Callable[[int], Any], parts: int, processes: int
) -> Iterator[Callable[[], Iterator[Any]]]:
    """Run ``work(part)`` for each part in ``range(parts)`` in ``processes`` forked worker
    processes, which work while the body of the with statement runs; yields a function giving
    the results in the order of the parts. A part that fails raises RuntimeError there."""
    executor = ProcessPoolExecutor(
        max_workers=processes,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_install,
        initargs=(work,),
    )
    try:
        futures = [executor.submit(_run_part, part) for part in range(parts)]
        yield lambda: map(_result, futures)
    except BaseException:
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    executor.shutdown(wait=True)


def _result(future: Future) -> Any:
    try:
        return future.result()
    except BrokenProcessPool as exc:
        raise RuntimeError(f"a worker process died: {exc}") from exc
    except Exception as exc:  # raised by the work, in the worker
        raise RuntimeError(f"a worker process failed: {exc}") from exc
