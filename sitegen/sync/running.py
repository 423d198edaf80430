"""A run once its mirrors and installer folders are chosen: the run record, the changes of
``approve`` and ``revoke`` it publishes, the stages, signals. Apart from :mod:`.run`, which
chooses, so that a ``--due`` with nothing due (a cron job's every minute) loads none of the
stages (:mod:`.pipeline`, :mod:`.installers` and the HTTP client under them).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import nullcontext
from functools import partial
from typing import TypeVar

import trio

from sitegen.config import SiteConfig
from sitegen.net.activity import heartbeat
from sitegen.store.site import Site
from sitegen.sync import approvals_waiting
from sitegen.sync.history import History
from sitegen.sync.installers import sync_installers
from sitegen.sync.options import MirrorOptions
from sitegen.sync.pipeline import run_pipeline
from sitegen.sync.report import (
    COMPLETED,
    FAILED,
    RUNNING,
    STOPPED,
    MirrorReport,
    RunError,
    RunReport,
)
from sitegen.sync.scope import RunScope

log = logging.getLogger("sitegen")

T = TypeVar("T")

# How long a run that is over waits for its turn at the approval changes it took: the commands
# that add to them hold it only while they write, and a run stopped must end promptly.
RELEASE_SECONDS = 10.0


async def run_selected(
    config: SiteConfig,
    options: MirrorOptions,
    site: Site,
    history: History,
    report: RunReport,
    selected: set[str],
    installers: set[str],
) -> RunReport:
    """Run the ``selected`` mirrors and ``installers`` folders of ``config`` under the site lock
    the caller holds, recording the run as ``report``."""
    record = not options.dry_run
    # Changes `approve` and `revoke` left while another run held the site, and the one of
    # the command that started this run: this run publishes them, so its history names who
    # made them. Its records list them only once it is over (see approvals_waiting).
    gated = {c.path for c, m in config.mirrors if c.approval and m.name in selected}
    approvals = (
        await _in_turn(partial(approvals_waiting.take, site, report.id, gated, options.approvals))
        if record
        else list(options.approvals)
    )
    crash: Exception | None = None
    escaping: BaseException | None = None  # raised once the listener is gone
    # From before the record says "running" (which `sitegen stop` looks for) until after
    # its last record is saved, SIGINT and SIGTERM are events for this listener: the first
    # stops the run cleanly, later ones (an impatient operator, a service manager's second
    # try) are taken in too. None of them is left pending for Python's own handlers, which
    # would raise KeyboardInterrupt wherever the run happens to be (a record half written,
    # an import).
    with _signals() as signals:
        async with trio.open_nursery() as listening:
            stop = _StopListener()
            listening.start_soon(stop.listen, signals)
            try:
                if record:
                    await _save(history, report)
                with stop.run_scope:
                    async with trio.open_nursery() as nursery:
                        scope = RunScope.of(config, options, site, selected, installers)
                        scope, linked = scope.without_links_out()
                        report.mirrors.extend(_linked_out(config, selected, linked))
                        # A run waiting on the network says so, every few seconds.
                        nursery.start_soon(heartbeat, scope.activity)
                        if scope.selected:
                            await run_pipeline(scope, report)
                        if scope.installers:
                            await sync_installers(scope, report)
                        nursery.cancel_scope.cancel()  # the heartbeat
                if stop.run_scope.cancelled_caught:
                    report.status = STOPPED
                    report.errors.append("stopped by a signal before it finished")
                else:
                    report.status = FAILED if report.failed else COMPLETED
            except Exception as exc:
                report.status = FAILED
                report.errors.append(f"unexpected error: {_describe(exc)}")
                crash = exc
            except BaseException as exc:  # cancelled from outside, or the like
                report.status = STOPPED
                escaping = exc  # out of the nursery, not wrapped in a group by it
            finally:
                stop.over = True
                report.ended = time.time()
                report.approvals = approvals
                if record:
                    finished = report.status != STOPPED and crash is None
                    approvals_waiting.settle(report, finished=finished)
                for part in (*report.mirrors, *report.installers):
                    if part.status == RUNNING:
                        part.status = report.status if report.status != COMPLETED else part.status
                if record:
                    saved = await _save(history, report)
                    # A run that took no changes has none noted as its own: it leaves the
                    # file (and its lock, on a site without approvals) alone.
                    if approvals:
                        # Shielded: a run cancelled from outside releases them too.
                        with trio.move_on_after(RELEASE_SECONDS, shield=True):
                            release = partial(approvals_waiting.release, site, report)
                            await _in_turn(partial(release, recorded=saved))
                with trio.CancelScope(shield=True):
                    # A signal that came during the save reaches the listener first.
                    await trio.lowlevel.checkpoint()
                    await trio.lowlevel.checkpoint()
                listening.cancel_scope.cancel()
    if escaping is not None:
        raise escaping
    if crash is not None:
        raise RunError(report) from crash
    if stop.late:
        # A signal once the run was over, while its record was saved: the command stops
        # as it does on a signal that comes a moment later.
        raise KeyboardInterrupt
    return report


def _linked_out(
    config: SiteConfig, selected: set[str], linked: dict[str, str]
) -> list[MirrorReport]:
    """The reports of the selected mirrors of channels a link leads out of the site: failed,
    saying which folder, before the rest of the run."""
    out = []
    for channel, mirror in config.mirrors:
        if channel.path in linked and mirror.name in selected:
            why = f"{linked[channel.path]}: the channel is left alone"
            log.error("%s: %s", mirror.name, why)
            mr = MirrorReport(
                mirror.name, channel.path, mirror.display_url(), mirror.mode, mirror.kind
            )
            mr.status = FAILED
            mr.errors.append(why)
            out.append(mr)
    return out


class _StopListener:
    """Takes SIGINT/SIGTERM for a run: the first cancels ``run_scope`` (the run stops
    cleanly); one that comes once the run is ``over`` is noted as ``late``."""

    def __init__(self) -> None:
        self.run_scope = trio.CancelScope()
        self.over = False
        self.late = False

    async def listen(self, signals: AsyncIterator[int]) -> None:
        async for signum in signals:
            if self.over:
                self.late = True
            elif not self.run_scope.cancel_called:
                log.warning("received %s: stopping", signal.Signals(signum).name)
                self.run_scope.cancel()


async def _in_turn(work: Callable[..., T]) -> T:
    """``work(stop=...)`` in a worker thread: it waits on a lock (``store.lock.taking_turns``)
    that another process may hold, which must not hold up the event loop (the stop listener
    among others). Cancelled, this returns at once and ``stop`` tells the thread to give up
    within a moment; where it got its turn first, it finishes what it does under it."""
    stop = threading.Event()
    try:
        return await trio.to_thread.run_sync(partial(work, stop=stop), abandon_on_cancel=True)
    finally:
        stop.set()


def _describe(exc: BaseException) -> str:
    """The error itself, out of the nurseries' groups of one that wrap it."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


async def _save(history: History, report: RunReport) -> bool:
    """Save the run's record; False when it could not be. In a worker thread: after a first
    sync of a large channel it is ~35 MB of JSON, encoded and made durable, which on the event
    loop froze every task (the stop listener among others). Shielded and not bounded: a run
    cancelled from outside saves its last record too, as the next run goes on from it (one
    left "running" is recorded as interrupted). The write is atomic: a kill at any point leaves
    this record or the one before."""
    try:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(history.save, report)
    except OSError as exc:
        # The ledger is not worth failing a run over; a record stuck at "running" is shown as
        # interrupted by the next run.
        report.errors.append(f"could not record the run: {exc.strerror or exc}")
        log.error("could not record run %s: %s", report.id, exc)
        return False
    return True


def _signals():
    """SIGINT/SIGTERM as a stream of events, when the run owns the main thread."""
    if threading.current_thread() is threading.main_thread():
        return trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM)
    return nullcontext(_NoSignals())


class _NoSignals:
    def __aiter__(self) -> _NoSignals:
        return self

    async def __anext__(self) -> int:
        await trio.sleep_forever()
        raise StopAsyncIteration
