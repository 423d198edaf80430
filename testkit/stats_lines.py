"""Access-log lines built by hand and counted, as the tests of download statistics use them.

:func:`line` writes one line of the combined log format (with the fetcher's field when given)
for a request of :func:`pkg`'s package file or any path; :func:`count` counts lines into a
fresh :class:`~sitegen.stats.tally.Tally` on :data:`TODAY`; :func:`flat` lays a per-period
table out flat to compare.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sitegen.stats.counter import line_counter
from sitegen.stats.logline import split
from sitegen.stats.tally import Tally

CHANNEL = "cloud/example"
PKG = "numpy-2.1.0-py312h1_0.conda"
CONDA_UA = (
    "conda/24.1.2 requests/2.31.0 CPython/3.11.7 Linux/6.5 solver/libmamba"
    " conda-libmamba-solver/24.1.0 libmambapy/1.5.6"
)


def line(
    path: str,
    status: int = 200,
    size: int = 1000,
    *,
    ip: str = "192.0.2.1",
    agent: str = CONDA_UA,
    when: str = "05/Dec/2026:18:34:46 +0000",
    fetcher: str | None = None,
    method: str = "GET",
) -> bytes:
    """One access-log line for ``path``; ``fetcher`` adds the field Apache logs after the agent."""
    text = f'{ip} - - [{when}] "{method} {path} HTTP/1.1" {status} {size} "-" "{agent}"' + (
        f' "{fetcher}"' if fetcher is not None else ""
    )
    return text.encode()


def pkg(fn: str = PKG, subdir: str = "linux-64", prefix: str = "") -> str:
    """The path of package file ``fn`` of :data:`CHANNEL`, under ``prefix``."""
    return f"{prefix}/{CHANNEL}/{subdir}/{fn}"


def flat(table: dict[str, dict[str, Any]]) -> dict[tuple[str, ...], Any]:
    """A per-period table as {(period, *key fields): counts}, without empty periods."""
    return {
        (period, *split(key)): value
        for period, rows in table.items()
        for key, value in rows.items()
    }


TODAY = date(2026, 12, 5)  # the day of line()'s time


def count(
    lines: list[bytes],
    channels: tuple[str, ...] = (CHANNEL,),
    today: date = TODAY,
    installers: tuple[str, ...] = (),
) -> Tally:
    """A new tally of ``lines`` for ``channels`` and the ``installers`` folders, counted on
    ``today``."""
    tally = Tally()
    line_counter(tally, channels, today, installers).add(lines)
    return tally
