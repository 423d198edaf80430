"""One download in progress, and the clients that read it as it arrives.

A big package from a slow upstream takes longer than clients wait for a first byte (conda's
read timeout, mamba's low-speed limit, a proxy's read timeout). So a client does not wait for
the whole file: a :class:`Follower` reads what has landed in the download's pending file (from
disk, through a descriptor of its own: a slow client costs no memory and never slows the
download) and sends it on, **except the last byte**, which it sends only once the file is
verified and stored. When verification fails or the upstream breaks off, the follower fails
and the client's connection is ended before its body is complete: the client sees a truncated
answer and errors out; it never holds unverified bytes as a complete file.

An attempt that fails before the last ends the clients that got some of its bytes as it fails
(a retry writes a new file, whose bytes they have no way of checking against what they were
sent); a client that got none yet, or asks before the retry has its file, follows the retry.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import trio

from sitegen.store.site import PendingFile

CHUNK = 1 << 18
# A download not done by then is followed; one done sooner is answered as a stored file, which
# the web server sends itself (and no client waits this long for a first byte).
FOLLOW_AFTER = 1.0


class FlightFailed(Exception):
    """The download a follower reads ended without a verified file."""


class Flight:
    """One download in progress (a :class:`sitegen.net.download.Watch`); requests for the same
    file wait on it or follow it."""

    def __init__(self, size: int) -> None:
        self.size = size  # the published record's
        self.done = trio.Event()
        self.error: str | None = None
        self.waiters = 0
        self.attempt = 0  # the attempt whose file `fd` is, counted from 1
        # A descriptor of that file, the flight's own; None until it opens, and once it failed.
        self.fd: int | None = None
        self.ready = 0  # bytes [0, ready) of it are on disk
        self._parts: dict[int, int] = {}  # start -> end on disk, of each part being written
        self._changed = trio.Event()

    def opened(self, pending: PendingFile) -> Callable[[int, int], object]:
        self._close()
        self.fd = os.dup(pending.fd)  # readable after the pending file is named or dropped
        self.attempt += 1
        self.ready = 0
        self._parts = {}
        self._changed_now()
        attempt = self.attempt

        def landed(start: int, end: int) -> None:
            if attempt != self.attempt or self.fd is None:
                return  # a late word of an attempt given up
            self._parts[start] = end
            ready = 0
            while self._parts.get(ready, ready) > ready:  # a part ends where the next starts
                ready = self._parts[ready]
            self.ready = ready
            self._changed_now()

        return landed

    def retrying(self) -> None:
        """The attempt under way failed and a retry follows: its followers are cut off now,
        not once the retry has its file (after a backoff and a wait for a connection), and
        nobody follows it from now on."""
        self._close()
        self.ready = 0
        self._parts = {}
        self._changed_now()

    def finish(self, error: str | None) -> None:
        self.error = error
        self._close()
        self.done.set()
        self._changed_now()

    def follow(self) -> Follower | None:
        """A reader of the bytes landed so far and to come; None before any has landed."""
        if self.fd is None or self.ready == 0 or self.done.is_set():
            return None
        return Follower(self, os.dup(self.fd), self.attempt)

    async def changed(self) -> None:
        """Wait until bytes land, an attempt begins, or the download ends."""
        await self._changed.wait()

    def _changed_now(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class Follower:
    """Reads a flight's file as it lands, holding back its last byte until it is verified."""

    def __init__(self, flight: Flight, fd: int, attempt: int) -> None:
        self.flight = flight
        self.size = flight.size
        self.sent = 0
        self._fd = fd
        self._attempt = attempt

    def __enter__(self) -> Follower:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    async def read(self) -> bytes:
        """The next bytes; b"" once the whole verified file was read. Raises FlightFailed."""
        flight = self.flight
        while self.sent < self.size:
            # Another attempt opened a file, or the one read failed and a retry is to come.
            if flight.attempt != self._attempt or (flight.fd is None and not flight.done.is_set()):
                raise FlightFailed("the download started over")
            if flight.done.is_set():
                if flight.error is not None:
                    raise FlightFailed(flight.error)
                limit = self.size  # verified and named: the rest may go
            else:
                limit = min(flight.ready, self.size - 1)
            if self.sent < limit:
                data = await trio.to_thread.run_sync(
                    os.pread, self._fd, min(CHUNK, limit - self.sent), self.sent
                )
                if not data:
                    raise FlightFailed("the file is shorter than it was")
                self.sent += len(data)
                return data
            if flight.done.is_set():
                raise FlightFailed("the stored file is shorter than published")
            await flight.changed()
        return b""
