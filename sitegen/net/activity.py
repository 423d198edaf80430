"""What is in flight upstream right now, so that a run waiting on the network can say so.

Every request to an upstream (repodata or a package file) is entered here while it runs, with
the bytes it received so far; :func:`heartbeat` logs the ones that have been waiting a while,
so neither a person at a terminal nor a cron log sees minutes of silence.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import trio

from sitegen.wording import human_bytes

log = logging.getLogger("sitegen")

HEARTBEAT_SECONDS = 10.0
SHOWN = 3  # requests named in one heartbeat line; the rest are counted


@dataclass
class Transfer:
    """One request in flight: what it fetches (safe to show) and what arrived so far."""

    what: str
    started: float = field(default_factory=trio.current_time)
    received: int = 0


class Activity:
    """The requests in flight, and the bytes received since the run began."""

    def __init__(self) -> None:
        self._running: dict[int, Transfer] = {}
        self._ids = itertools.count()
        self.received = 0

    @contextmanager
    def transfer(self, what: str) -> Iterator[Transfer]:
        """Enter a request for as long as it runs; count its bytes with :meth:`add`."""
        key = next(self._ids)
        self._running[key] = entry = Transfer(what)
        try:
            yield entry
        finally:
            del self._running[key]

    def add(self, transfer: Transfer, size: int) -> None:
        transfer.received += size
        self.received += size

    def waiting_line(self, now: float, at_least: float) -> str | None:
        """The heartbeat: the requests in flight for ``at_least`` seconds, longest first;
        None when there are none."""
        slow = sorted(
            (t for t in self._running.values() if now - t.started >= at_least),
            key=lambda t: t.started,
        )
        if not slow:
            return None
        shown = ", ".join(
            f"{t.what} ({now - t.started:.0f} s, {human_bytes(t.received)})" for t in slow[:SHOWN]
        )
        more = f" and {len(slow) - SHOWN} more" if len(slow) > SHOWN else ""
        plural = "s" if len(slow) > 1 else ""
        return (
            f"waiting on the network: {len(slow)} request{plural} in flight: {shown}{more};"
            f" {human_bytes(self.received)} received so far"
        )


async def heartbeat(activity: Activity, interval: float = HEARTBEAT_SECONDS) -> None:
    """Log every ``interval`` seconds what has been in flight that long, until cancelled."""
    while True:
        await trio.sleep(interval)
        line = activity.waiting_line(trio.current_time(), interval)
        if line is not None:
            log.info("%s", line)
