"""Work split between worker processes (``concurrent.futures``), for the package pages of a
first render: a page costs about as much CPU to write as to render, so threads would not help.

The workers are fresh interpreters (started, not forked): a forked worker would share the
render's whole heap, every record of the channel, and copy each page of it whose objects it
so much as counted a reference to (at 800,000 records, ~0.25 GB per worker). So each part of
the work travels to a worker as one compact, pickled payload, made only when a worker is about
to need it, a few parts ahead: the payloads never add up to a second copy of the records. Each
worker makes its own state once (e.g. its own jinja2 environment) from the ``setup`` it is
given. Workers are shut down with the pool, on errors too: parts not sent are dropped and the
ones running are waited for (each is small).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

# Parts sent to the workers and not yet done, per worker: enough that none waits for its next
# part, few enough that their payloads stay a small share of the records.
AHEAD_PER_PROCESS = 2

# How often a worker looks whether the process that started it is still there.
PARENT_CHECK_SECONDS = 0.5

# The work of this process, when it is a worker: made by its initializer.
_work: Callable[[Any], Any] | None = None


class NoWorkers(Exception):
    """The worker processes cannot be started: none may be made now, or what they are to be
    made from cannot be sent to them. The caller does the work itself."""


def _install(make_work: Callable[[Any], Callable[[Any], Any]], setup: Any, parent: int) -> None:
    global _work
    # A worker whose render was killed (SIGKILL, the OOM killer) would wait for its next part
    # for ever, holding the render's stderr (and a cron job's, or a test's, pipe) open: it
    # leaves once the process that started it (``parent``, named by that process itself, as
    # it may be gone before this runs) is gone.
    threading.Thread(target=_leave_with, args=(parent,), daemon=True).start()
    _work = make_work(setup)


def _leave_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(1)


def _run_part(payload: Any) -> Any:
    assert _work is not None, "a part run outside a worker of the pool"
    return _work(payload)


def _started() -> None:
    """Nothing: submitted once per worker, so that all are started at once (see below)."""


@contextlib.contextmanager
def parts_in_processes(
    make_work: Callable[[Any], Callable[[Any], Any]],
    setup: Any,
    payloads: Iterable[Any],
    processes: int,
) -> Iterator[Callable[[], Iterator[Any]]]:
    """Run ``work(payload)`` for each of ``payloads`` in ``processes`` worker processes, where
    ``work = make_work(setup)`` is made once per worker (``make_work`` a module-level function,
    ``setup`` and the payloads picklable). The workers work while the body of the with
    statement runs; yields a function giving the results in the order of the payloads. A part
    that fails raises RuntimeError there. Raises NoWorkers when the processes cannot start."""
    executor = ProcessPoolExecutor(
        max_workers=processes,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_install,
        initargs=(make_work, setup, os.getpid()),
    )
    try:
        # Every worker started now (a process for each part submitted while none is idle),
        # where an error in starting one can still be met by doing the work here instead.
        for _ in range(processes):
            executor.submit(_started)
    except BaseException as exc:
        executor.shutdown(wait=True, cancel_futures=True)
        # No process left to this user; or a setup that does not pickle (each worker is sent
        # it as it starts).
        if isinstance(exc, (OSError, pickle.PicklingError, TypeError, AttributeError)):
            raise NoWorkers(f"{type(exc).__name__}: {exc}") from exc
        raise
    sent: queue.SimpleQueue[Future | BaseException | None] = queue.SimpleQueue()
    room = threading.Semaphore(processes * AHEAD_PER_PROCESS)
    done = threading.Event()

    def feed() -> None:
        # The payloads are made here, one part at a time, while the render's thread goes on.
        try:
            for payload in payloads:
                while not room.acquire(timeout=0.1):
                    if done.is_set():
                        return
                if done.is_set():
                    return
                future = executor.submit(_run_part, payload)
                future.add_done_callback(lambda _future: room.release())
                sent.put(future)
        except BaseException as exc:  # making a payload failed: raised in the results
            sent.put(exc)
        finally:
            sent.put(None)

    feeder = threading.Thread(target=feed, name="sitegen-page-parts", daemon=True)
    feeder.start()

    def results() -> Iterator[Any]:
        while (item := sent.get()) is not None:
            if isinstance(item, BrokenProcessPool):  # met by the feeder, sending a part
                raise _died(item) from item
            if isinstance(item, BaseException):
                raise item
            yield _result(item)

    completed = False
    try:
        yield results
        completed = True
    finally:
        done.set()
        feeder.join()
        # After an error, the parts not sent are dropped; the running ones are waited for.
        executor.shutdown(wait=True, cancel_futures=not completed)


def _result(future: Future) -> Any:
    try:
        return future.result()
    except BrokenProcessPool as exc:
        raise _died(exc) from exc
    except Exception as exc:  # raised by the work, in the worker
        raise RuntimeError(f"a worker process failed: {exc}") from exc


def _died(exc: BrokenProcessPool) -> RuntimeError:
    return RuntimeError(f"a worker process died: {exc}")
