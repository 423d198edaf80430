"""``sitegen stop``: stop the mirror run that holds the site now, as SIGTERM does.

The run to stop is the process holding the site lock (read from the kernel's lock table, see
:func:`sitegen.store.lock.lock_holder`) whose ledger record is still running under that pid.
A lock holder without such a record (``verify --repair``, a dry run, a run that has not
recorded itself yet) is left alone, and so is a pid a record names that does not hold the lock
(a killed run's pid, perhaps reused by an unrelated process). A killed run's record stays
``running`` until the next mirror run: a holder that got its pid since started after the run
did (as :func:`sitegen.store.lock.process_started` tells), and is left alone too. The signal goes through a pidfd
opened before the lock is read again, so it reaches the process that held the lock even if
that process exits meanwhile and its pid is reused.

A mirror run turns SIGTERM into a clean stop recorded as ``stopped`` (see
:func:`sitegen.sync.run.run_mirror`) and then releases the lock; :func:`stop_run` waits for
that release. The process may go on afterwards (a ``sitegen mirror`` renders the pages of the
stopped run; a ``sitegen watch`` whose publish it was ends too, as on SIGTERM).
"""

from __future__ import annotations

import errno
import os
import signal
import time
from dataclasses import dataclass

from sitegen.config import SiteConfig
from sitegen.store.lock import lock_holder, may_have_written, process_started
from sitegen.store.site import Site
from sitegen.sync.history import History
from sitegen.sync.report import RUNNING, RunReport

# How the stop went; the command maps these to exit statuses.
STOPPED_RUN = "stopped"  # the run released the site
NOTHING = "nothing"  # no run holds the site
NOT_A_RUN = "not a run"  # the site is held, but not by a recorded mirror run
NOT_PERMITTED = "not permitted"  # the run belongs to another user
TIMED_OUT = "timed out"  # signalled; still holds the site

# How long a lock holder without a record is given to record itself: a run records itself
# right after it takes the lock (and reads the freezes and approvals).
RECORD_GRACE = 5.0
POLL = 0.1


@dataclass(frozen=True)
class StopResult:
    outcome: str
    pid: int | None = None
    run: RunReport | None = None  # the run's record: as running, then as it ended

    def describe(self) -> str:
        run = f"run {self.run.id} (pid {self.pid})" if self.run else f"pid {self.pid}"
        if self.outcome == NOTHING:
            return "no mirror run holds the site"
        if self.outcome == NOT_A_RUN:
            return (
                f"pid {self.pid} holds the site lock but the run ledger records no mirror run"
                " of it (a verify --repair or a dry run); it was not signalled"
            )
        if self.outcome == NOT_PERMITTED:
            return f"not permitted to signal {run}: run sitegen stop as the user that runs it"
        if self.outcome == TIMED_OUT:
            return f"{run} was sent SIGTERM and still holds the site lock"
        status = self.run.status if self.run else "unknown"
        return f"{run} released the site; recorded as {status}"


def running_record(history: History, pid: int) -> RunReport | None:
    """The newest record still running under ``pid`` that the process of that pid can have
    written: one that started no earlier than the process (a killed run's record names a pid
    that another process may hold now)."""
    started = process_started(pid)
    mine = [
        r
        for r in history.runs()
        if r.status == RUNNING and r.pid == pid and may_have_written(started, r.started)
    ]
    return max(mine, key=lambda r: r.started, default=None)


def _find_run(site: Site, history: History, grace: float) -> tuple[int, RunReport] | StopResult:
    deadline = time.monotonic() + grace
    while True:
        holder = lock_holder(site.state_dir)
        if holder is None:
            return StopResult(NOTHING)
        record = running_record(history, holder)
        if record is not None:
            return holder, record
        if time.monotonic() >= deadline:
            return StopResult(NOT_A_RUN, holder)
        time.sleep(POLL)


def _terminate(site: Site, pid: int) -> bool:
    """SIGTERM to ``pid`` if it still holds the site lock; False when it no longer does.
    Raises PermissionError when the process is another user's."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.ENOSYS, errno.EPERM):
            raise
        # No pidfds (an old kernel or a sandbox): the lock is read right before the kill.
        if lock_holder(site.state_dir) != pid:
            return False
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        return True
    try:
        # The pidfd names the process the pid named when it was opened: if that one still
        # holds the lock now, it is the run found, whatever happens to the pid after.
        if lock_holder(site.state_dir) != pid:
            return False
        signal.pidfd_send_signal(pidfd, signal.SIGTERM)
    except ProcessLookupError:
        return False
    finally:
        os.close(pidfd)
    return True


def stop_run(config: SiteConfig, timeout: float) -> StopResult:
    """Stop the mirror run holding the site and wait up to ``timeout`` seconds for it to
    release the site."""
    site = Site(config.output)
    history = History(site)
    found = _find_run(site, history, min(RECORD_GRACE, timeout))
    if isinstance(found, StopResult):
        return found
    pid, record = found
    try:
        signalled = _terminate(site, pid)
    except PermissionError:
        return StopResult(NOT_PERMITTED, pid, record)
    deadline = time.monotonic() + timeout
    while signalled and lock_holder(site.state_dir) == pid:
        if time.monotonic() >= deadline:
            return StopResult(TIMED_OUT, pid, record)
        time.sleep(POLL)
    # Released (or it finished before the signal): the record tells how the run ended.
    ended = next((r for r in history.runs() if r.id == record.id), record)
    return StopResult(STOPPED_RUN, pid, ended)
