"""Many connections opened at once, as a mirror run or a parallel client opens them."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def burst(port: int, count: int) -> Iterator[tuple[list[socket.socket], int]]:
    """``count`` connections to ``127.0.0.1:port`` started at once; yields them and how many
    are still not connected after 0.9 s, before the kernel's first SYN retransmit: a server
    whose listen
    backlog is too short leaves the rest waiting a second or more (then 3, 7, 15 s), which on a
    loaded machine outlasts a client's connect timeout. The sockets are closed after."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
        deadline = time.monotonic() + 0.9
        waiting = list(sockets)
        while waiting and (left := deadline - time.monotonic()) > 0:
            _, ready, _ = select.select([], waiting, [], left)
            waiting = [sock for sock in waiting if sock not in ready]
        yield sockets, len(waiting)
    finally:
        for sock in sockets:
            sock.close()
