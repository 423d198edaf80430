"""One run at a time per site: an advisory lock on ``<site>/.sitegen/lock``.

``flock`` locks die with their process, so a run killed with SIGKILL never leaves a stale lock
behind; the file keeps the holder's pid only to name it in the message. Writers of one set of
files take turns with :func:`taking_turns`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from sitegen.layout import LOCK_NAME

TURN_POLL = 0.2  # seconds between tries of a wait for a turn that can be stopped
# How much later than a record's stamp a process may seem to have started and still have
# written it: /proc gives the boot time in whole seconds, and a clock stepped forward meanwhile
# moves every process's start as computed from it.
START_SLACK = 60.0


class SiteLocked(Exception):
    """Another run holds the site."""


class Stopped(Exception):
    """Work given up because its ``stop`` event was set (see :func:`taking_turns`)."""


class SiteLock:
    """``create=False`` never creates a site: when the state directory does not exist yet
    there is no site to protect, and acquiring locks nothing. ``writes=False`` (a dry run)
    writes nothing into the site at all: it holds the lock file a run left, keeping runs out
    meanwhile, without writing its pid into it, and locks nothing where there is none yet."""

    def __init__(self, state_dir: Path, *, create: bool = True, writes: bool = True) -> None:
        self.path = state_dir / LOCK_NAME
        self.create = create and writes
        self.writes = writes
        self._fd: int | None = None

    def acquire(self) -> None:
        if self.create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.parent.is_dir():
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT if self.writes else os.O_RDONLY, 0o644)
        except FileNotFoundError:
            if self.writes:
                raise
            return  # no run has held the site yet
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            # The kernel names the holder; the file names the last holder that wrote its pid,
            # which a dry run holding the lock is not.
            holder = lock_holder(self.path.parent) or (
                os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            )
            os.close(fd)
            raise SiteLocked(
                f"another sitegen run (pid {holder}) is working on {self.path.parent.parent}"
            ) from None
        if self.writes:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> SiteLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_holder(state_dir: Path) -> int | None:
    """The pid of the process holding the site lock now, or None when no run holds it.

    Read from the kernel's table of locks (``/proc/locks``) without taking the lock: even a
    moment's probe could make a run starting at that moment exit as locked.
    """
    try:
        st = (state_dir / LOCK_NAME).stat()
        table = Path("/proc/locks").read_text()
    except OSError:
        return None
    # "1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234 0 EOF"; "1: -> FLOCK ..." lines are waiters.
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in table.splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == device:
            return int(fields[4])
    return None


def process_started(pid: int) -> float | None:
    """When the process ``pid`` started, in seconds since the epoch (from ``/proc``); None when
    that cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            line.split()[1]
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        # After the command name (in parentheses, which it may hold too): state is field 3,
        # starttime field 22, in clock ticks since boot.
        ticks = int(stat[stat.rindex(")") + 2 :].split()[19])
        return int(boot) + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def may_have_written(started: float | None, stamp: float) -> bool:
    """Whether a process that started at ``started`` (None: not known) can have written what
    is stamped ``stamp`` under its pid: a run killed outright leaves its record and progress
    file naming a pid that a later process (after a reboot, say) may hold now."""
    return started is None or started <= stamp + START_SLACK


@contextlib.contextmanager
def taking_turns(
    lock: Path,
    mode: int = 0o644,
    *,
    stop: threading.Event | None = None,
    waiting: Callable[[], object] | None = None,
) -> Iterator[None]:
    """Wait for, then hold, the lock on the file ``lock`` (created with ``mode`` if absent):
    writers of one set of files take turns (renders of a site, the web server's token files,
    the freezes), each holding it only while it writes. ``waiting`` is called once when another
    holds it. With ``stop`` the wait is given up (:class:`Stopped`) once ``stop`` is set: a
    blocked ``flock`` cannot be interrupted, so the lock is tried every TURN_POLL seconds."""
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, mode)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting is not None:
                waiting()
            if stop is None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            else:
                _wait_turn(fd, stop)
        yield
    finally:
        os.close(fd)  # releases the lock


def _wait_turn(fd: int, stop: threading.Event) -> None:
    while not stop.wait(TURN_POLL):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            continue
    raise Stopped
