"""The two kinds of tests, ``unit`` and ``integration``, and the checks that keep them honest.

Unit tests are pure and fast: no servers, no subprocesses, no network. Integration tests run
real HTTP servers on 127.0.0.1, nginx, Apache, Chromium, conda installs and subprocesses. Every
test carries exactly one of the two markers (``make test-fast`` runs only the unit tests, so an
unmarked test would silently drop out of one of the runs), and a unit test that binds or
connects a socket or starts a process fails: :class:`UnitGuard` watches for it through
Python's audit hooks (PEP 578), the interpreter's own report of these events.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Iterable

KINDS = ("unit", "integration")

# Audit events that a unit test must not raise: a socket that binds or connects (a server, a
# client) and a new process. (socket.socketpair, with which trio and asyncio wake themselves
# up, raises none of them.)
FORBIDDEN_IN_UNIT = frozenset(
    {
        "socket.bind",
        "socket.connect",
        "subprocess.Popen",
        "os.fork",
        "os.forkpty",
        "os.posix_spawn",
        "os.exec",
        "os.system",
    }
)


def kind_problem(marker_names: Iterable[str]) -> str | None:
    """Why a test with these markers is not exactly one kind, or None when it is."""
    kinds = sorted(set(marker_names) & set(KINDS))
    if len(kinds) == 1:
        return None
    if not kinds:
        return "carries neither kind (pytestmark = pytest.mark.unit or pytest.mark.integration)"
    return f"carries both kinds ({', '.join(kinds)})"


def describe_event(event: str, args: tuple[object, ...]) -> str:
    """``socket.connect ('127.0.0.1', 8080)`` or ``subprocess.Popen nginx``: for the failure."""
    if event.startswith("socket.") and len(args) > 1:
        return f"{event} {args[1]!r}"
    if event == "subprocess.Popen" and args:
        return f"{event} {args[0]}"
    return event


def during_import() -> bool:
    """True inside the import of a module: what a library does when first imported (croniter
    runs ``file`` on the interpreter to learn its architecture) is not what the test does."""
    frame = inspect.currentframe()
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


class UnitGuard:
    """An audit hook that records the forbidden events while a unit test runs.

    Audit hooks cannot be removed once added, so one guard is added per session and switched
    on and off around each unit test. Every thread counts: trio starts processes from a worker
    thread.
    """

    def __init__(self) -> None:
        self.active = False
        self.seen: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, event: str, args: tuple[object, ...]) -> None:
        if self.active and event in FORBIDDEN_IN_UNIT and not during_import():
            with self.lock:
                self.seen.append(describe_event(event, args))

    def start(self) -> None:
        with self.lock:
            self.seen = []
            self.active = True

    def stop(self) -> list[str]:
        """Switch off and forget; the forbidden events seen since :meth:`start`, each once."""
        with self.lock:
            self.active = False
            seen, self.seen = self.seen, []
        return list(dict.fromkeys(seen))
