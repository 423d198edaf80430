"""Download progress: a one-line live display on a terminal, periodic log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

from sitegen.wording import human_bytes

__all__ = ["Progress", "human_bytes"]

log = logging.getLogger("sitegen")


REPORT_SECONDS = 2.0  # how often the counts go to the report (a file `sitegen status` reads)


class _ClearLine(logging.Filter):
    """Clears the live line before a log record is written to the terminal, so that the
    record (a retry, a stop on SIGINT) starts on its own line; the next bytes draw it again."""

    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress

    def filter(self, record: logging.LogRecord) -> bool:
        self.progress.clear()
        return True


class Progress:
    def __init__(
        self,
        total_files: int,
        total_bytes: int,
        live: bool | None = None,
        report: Callable[[dict[str, int]], None] | None = None,
    ) -> None:
        # ``report``: told the counts every few seconds and at the end (for `sitegen status`).
        self.report = report
        self._last_report = 0.0
        self.total_files = total_files
        self.total_bytes = total_bytes
        self.files = 0
        self.bytes = 0
        self.failed = 0
        self.started = time.monotonic()
        self.live = sys.stderr.isatty() if live is None else live
        self._last_draw = 0.0
        self._shown = False  # the live line is on the terminal, without its newline
        self._clear = _ClearLine(self)
        # The handlers that write to the terminal the live line is drawn on.
        self._handlers = [
            h
            for h in logging.getLogger().handlers
            if self.live and getattr(h, "stream", None) is sys.stderr
        ]
        for handler in self._handlers:
            handler.addFilter(self._clear)

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

    def clear(self) -> None:
        """Take the live line off the terminal; it is drawn again with the next bytes."""
        if self._shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self._shown = False
            self._last_draw = 0.0

    def counts(self) -> dict[str, int]:
        return {
            "files": self.files,
            "total_files": self.total_files,
            "failed": self.failed,
            "bytes": self.bytes,
            "total_bytes": self.total_bytes,
        }

    def _maybe_report(self, force: bool) -> None:
        now = time.monotonic()
        if self.report is None or (not force and now - self._last_report < REPORT_SECONDS):
            return
        self._last_report = now
        self.report(self.counts())

    def _maybe_draw(self, force: bool = False) -> None:
        self._maybe_report(force)
        now = time.monotonic()
        interval = 0.2 if self.live else 10.0
        if not force and now - self._last_draw < interval:
            return
        self._last_draw = now
        if self.live:
            sys.stderr.write("\r\x1b[K" + self.line())
            sys.stderr.flush()
            self._shown = True
        else:
            log.info("download: %s", self.line())

    def close(self) -> None:
        for handler in self._handlers:
            handler.removeFilter(self._clear)
        if self.live and self.total_files:
            sys.stderr.write("\r\x1b[K" + self.line() + "\n")
            sys.stderr.flush()
            self._shown = False
