"""Download progress: a one-line live display on a terminal, periodic log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger("sitegen")


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


class Progress:
    def __init__(self, total_files: int, total_bytes: int, live: bool | None = None) -> None:
        self.total_files = total_files
        self.total_bytes = total_bytes
        self.files = 0
        self.bytes = 0
        self.failed = 0
        self.started = time.monotonic()
        self.live = sys.stderr.isatty() if live is None else live
        self._last_draw = 0.0

    def add_bytes(self, n: int) -> None:
        self.bytes += n
        self._maybe_draw()

    def file_done(self, ok: bool) -> None:
        self.files += 1
        if not ok:
            self.failed += 1
        self._maybe_draw(force=self.files == self.total_files)

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.bytes / elapsed
        remaining = max(self.total_bytes - self.bytes, 0)
        eta = f"{remaining / rate:.0f}s" if rate > 0 else "?"
        failed = f", {self.failed} failed" if self.failed else ""
        return (
            f"{self.files}/{self.total_files} files{failed}, "
            f"{human_bytes(self.bytes)}/{human_bytes(self.total_bytes)}, "
            f"{human_bytes(rate)}/s, ETA {eta}"
        )

    def _maybe_draw(self, force: bool = False) -> None:
        now = time.monotonic()
        interval = 0.2 if self.live else 10.0
        if not force and now - self._last_draw < interval:
            return
        self._last_draw = now
        if self.live:
            sys.stderr.write("\r\x1b[K" + self.line())
            sys.stderr.flush()
        else:
            log.info("download: %s", self.line())

    def close(self) -> None:
        if self.live and self.total_files:
            sys.stderr.write("\r\x1b[K" + self.line() + "\n")
            sys.stderr.flush()
