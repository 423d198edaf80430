"""Access logs written line by line and read incrementally, as the log-reading tests use them.

:class:`Log` appends numbered lines and reads them back through
:func:`sitegen.stats.logfiles.read_logs`, keeping its cursors between reads;
:func:`line_numbers` gives the numbers of lines read, to tell which came once, twice or never.
"""

from __future__ import annotations

from pathlib import Path

from sitegen.stats.logfiles import Cursor, read_logs


class Log:
    """A log file written line by line, and a reader that remembers its cursors."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.cursors: list[Cursor] = []
        self.written = 0
        self.read_lines: list[bytes] = []
        self.last_bytes = 0

    def write(self, count: int, target: Path | None = None) -> list[bytes]:
        lines = [f"line {self.written + i:06d} {'x' * 40}".encode() for i in range(count)]
        self.written += count
        with open(target or self.path, "ab") as handle:
            handle.write(b"".join(line + b"\n" for line in lines))
        return lines

    def read(self) -> list[bytes]:
        got: list[bytes] = []
        self.cursors, report = read_logs([self.path], self.cursors, got.extend)
        self.read_lines += got
        self.last_bytes = report.bytes_read
        return got


def line_numbers(lines: list[bytes]) -> list[int]:
    """The numbers :meth:`Log.write` gave ``lines``."""
    return [int(line.split()[1]) for line in lines]
