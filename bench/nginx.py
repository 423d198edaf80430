"""A real nginx on 127.0.0.1 serving a directory, with an access log the benchmarks can count.

The tests' launcher (:class:`testkit.nginx.NginxServer`), tuned: a timing log format, more
connections, keep-alive requests by the million, a quieter error log.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import BenchError
from testkit.nginx import NginxServer

# $msec: when the response was finished; $request_time: seconds since the first request byte.
LOG_FORMAT = (
    "$msec $request_time $status $request_method $request_uri $body_bytes_sent "
    "$connection $connection_requests"
)


@dataclass
class LogLine:
    end: float  # $msec
    duration: float
    status: int
    method: str
    uri: str
    bytes: int
    connection: int

    @property
    def start(self) -> float:
        return self.end - self.duration


class Nginx(NginxServer):
    """``with Nginx(root, workdir) as n: n.url`` — nginx in the foreground, its own prefix."""

    error = BenchError
    log_format = LOG_FORMAT
    error_log_level = "warn"
    worker_connections = 1024
    keepalive_timeout = 60
    keepalive_requests = 1_000_000

    def __init__(self, root: Path, workdir: Path) -> None:
        super().__init__(root, workdir, extra_http="    tcp_nopush on;")

    def log_mark(self) -> int:
        """Current end of the access log, to read only what a later run requested."""
        time.sleep(0.15)  # nginx logs a request after answering it
        try:
            return self.access_log.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, mark: int) -> list[LogLine]:
        time.sleep(0.15)
        try:
            with open(self.access_log, "rb") as handle:
                handle.seek(mark)
                text = handle.read().decode(errors="replace")
        except FileNotFoundError:
            return []
        lines = []
        for raw in text.splitlines():
            parts = raw.split(" ")
            if len(parts) < 8:
                continue
            lines.append(
                LogLine(
                    end=float(parts[0]),
                    duration=float(parts[1]),
                    status=int(parts[2]),
                    method=parts[3],
                    uri=parts[4],
                    bytes=int(parts[5]),
                    connection=int(parts[6]),
                )
            )
        return lines
