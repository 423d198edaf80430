"""Access-log lines of one day, as the tests of download statistics on the pages write them.

:func:`line` is a request of a conda client for a path of :data:`PUBLIC` (or any other) at
10:00 UTC of a day; :data:`TODAY` is the day the page tests count on.
"""

from __future__ import annotations

from datetime import date

PUBLIC = "cloud/example"
CONDA = "conda/24.1.2 requests/2.31.0 CPython/3.12.4 Linux/6.5.0"
TODAY = date(2026, 12, 5)


def line(path: str, day: date, status: int = 200, size: int = 1000, ip: str = "192.0.2.1") -> str:
    """One access-log line: a GET of ``path`` on ``day`` by conda from ``ip``."""
    stamp = day.strftime("%d/%b/%Y:10:00:00 +0000")
    return f'{ip} - - [{stamp}] "GET {path} HTTP/1.1" {status} {size} "-" "{CONDA}"'
