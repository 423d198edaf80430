"""A TCP server on 127.0.0.1 for connection-level misbehaviour: an upstream that is "up"
(it accepts connections) but never says a word, or resets them."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time

from testkit import StartStop


class RawServer(StartStop):
    """A TCP server on 127.0.0.1 that accepts connections and then misbehaves.

    ``mode="silent"``: read whatever the client sends and never answer (until it hangs up or
    ``max_seconds`` pass). ``mode="reset"``: read the request, then reset the connection.
    """

    def __init__(self, mode: str = "silent", max_seconds: float = 10.0) -> None:
        if mode not in ("silent", "reset"):
            raise ValueError(f"unknown mode {mode!r}")
        self.mode = mode
        self.max_seconds = max_seconds
        self.connections = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def start(self) -> RawServer:
        thread = threading.Thread(target=self._accept_loop, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _addr = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        deadline = time.monotonic() + self.max_seconds
        with conn:
            try:
                conn.settimeout(0.05)
                if self.mode == "reset":
                    with contextlib.suppress(TimeoutError):
                        conn.recv(65536)
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                while time.monotonic() < deadline and not self._stop.is_set():
                    try:
                        if conn.recv(65536) == b"":
                            return  # the client gave up
                    except TimeoutError:
                        continue
            except OSError:
                return

    def stop(self) -> None:
        self._stop.set()
        self._sock.close()
        for thread in self._threads:
            thread.join(timeout=2)
