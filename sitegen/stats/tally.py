"""The counts of log lines: per period (a UTC day, or a month once rolled up), channel, subdir,
file; and the downloads of installer folders per period, folder and file.

Each table maps a period to a dict keyed by ``channel|subdir|file`` (``folder|file`` for the
installers; see :func:`join`): ten
million lines cost a few dict updates each, and the tables are saved and loaded as they are,
without conversion (:mod:`sitegen.stats.state`). Rows of days older than the retention are
merged into their month by :meth:`Tally.roll_up`. The lines are counted into them by a
:class:`~sitegen.stats.counter.LineCounter` (:func:`~sitegen.stats.counter.line_counter`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sitegen.stats.logline import join
from sitegen.stats.missing import cut, versionless
from sitegen.stats.open_day import OpenDay

Table = dict[str, dict[str, list[int]]]  # period -> key -> counts
Counts = dict[str, dict[str, int]]  # period -> key -> count


@dataclass
class Tally:
    # channel|subdir|package file -> [downloads, bytes, requests]
    files: Table = field(default_factory=dict)
    # channel|subdir|metadata file (or "shards") -> [fetches, not modified, bytes]
    refreshes: Table = field(default_factory=dict)
    # installer folder|file -> [downloads, bytes, requests]: apart from the channels' counts
    # (the site-wide rows of days and tools count no installer download, nor its client)
    installers: Table = field(default_factory=dict)
    # channel|subdir|package file -> 404 answers; the most requested files only, and
    # channel|| -> those of the files cut (see sitegen.stats.missing)
    missing: Counts = field(default_factory=dict)
    # channel|subdir|fetcher outcome -> package files served with 200 (by subdir, so that a
    # subdir's removal takes its outcomes with its downloads; channel||outcome: counted before
    # they were kept by subdir)
    passive: Counts = field(default_factory=dict)
    # tool|version -> distinct clients (a month: the sum of its days); tool| -> versions cut
    tools: Counts = field(default_factory=dict)
    # period -> [requests, distinct clients of the channels, downloads, bytes of packages]
    days: dict[str, list[int]] = field(default_factory=dict)
    # channel|subdir|package file -> [downloads, bytes] all time: what the per-period rows add
    # up to, kept as they grow so that a report need not add them up again
    all_time: dict[str, list[int]] = field(default_factory=dict)
    # reason -> lines skipped, all time
    skipped: dict[str, int] = field(default_factory=dict)
    open_days: dict[str, OpenDay] = field(default_factory=dict)
    # channel -> the last day (ISO) its counts may hold requests served while it was private;
    # kept past a removal (lines the old channel served may still be read after it)
    private: dict[str, str] = field(default_factory=dict)
    # Periods with a day of more distinct clients than it tells apart (open_day.CLIENTS_KEPT):
    # their clients, and their tools' clients, are at least as counted.
    capped: set[str] = field(default_factory=set)

    def skip(self, reason: str, count: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + count

    def close_days(self, keep_from: str) -> None:
        """Forget the salt and hashes of every open day before ``keep_from`` (ISO date)."""
        for day in [d for d in self.open_days if d < keep_from]:
            del self.open_days[day]

    def note_private(self, through: dict[str, str]) -> bool:
        """Move channels' private marks on to the days of ``through``; whether one moved."""
        moved = False
        for channel, day in through.items():
            if day > self.private.get(channel, ""):
                self.private[channel] = day
                moved = True
        return moved

    def forget(self, channel: str, subdirs: Collection[str] | None = None) -> bool:
        """Drop every count of ``channel``, or of these ``subdirs`` of it (removed: what is
        published later under their paths starts with none); whether there was any. The
        site-wide rows (days, tools) are sums that name no channel and stay."""
        whole = subdirs is None
        prefixes = (join(channel, ""),) if whole else tuple(join(channel, s, "") for s in subdirs)

        def mine(key: str) -> bool:
            return key.startswith(prefixes)

        tables: list[dict[str, dict[str, Any]]] = [
            self.files,
            self.refreshes,
            self.missing,
            self.passive,
        ]
        found = False
        for rows in [self.all_time, *(r for table in tables for r in table.values())]:
            for key in [k for k in rows if mine(k)]:
                del rows[key]
                found = True
        for opened in self.open_days.values():
            opened.ranges = {pair for pair in opened.ranges if not mine(pair[1])}
            opened.redirected = {p: t for p, t in opened.redirected.items() if not mine(p[1])}
        return found

    def forget_installers(self, folder: str) -> bool:
        """Drop every count of the installer ``folder`` (removed: a folder configured there
        again starts with none); whether there was any."""
        prefix = join(folder, "")
        found = False
        for rows in self.installers.values():
            for key in [k for k in rows if k.startswith(prefix)]:
                del rows[key]
                found = True
        for opened in self.open_days.values():
            opened.ranges = {pair for pair in opened.ranges if not pair[1].startswith(prefix)}
        return found

    def roll_up(self, today: date, keep_days: int) -> None:
        """Merge the rows of days more than ``keep_days`` before ``today`` into their month;
        of the 404s and the tools' versions, keep the most counted of each period (see
        :mod:`sitegen.stats.missing`)."""
        cutoff = (today - timedelta(days=keep_days)).isoformat()
        for table in (self.files, self.refreshes, self.installers):
            for day in _old_days(table, cutoff):
                month = table.setdefault(day[:7], {})
                for key, row in table.pop(day).items():
                    into = month.get(key)
                    if into is None:
                        month[key] = row
                    else:
                        month[key] = [a + b for a, b in zip(into, row, strict=True)]
        for counts in (self.missing, self.passive, self.tools):
            for day in _old_days(counts, cutoff):
                month_counts = counts.setdefault(day[:7], {})
                for key, value in counts.pop(day).items():
                    month_counts[key] = month_counts.get(key, 0) + value
        for rows in self.missing.values():
            cut(rows)
        for rows in self.tools.values():
            cut(rows, versionless)
        self.capped = {p[:7] if len(p) == 10 and p < cutoff else p for p in self.capped}
        for day in _old_days(self.days, cutoff):
            row = self.days.pop(day)
            into = self.days.setdefault(day[:7], [0] * len(row))
            self.days[day[:7]] = [a + b for a, b in zip(into, row, strict=True)]


def _old_days(table: dict[str, object], cutoff: str) -> list[str]:
    return [period for period in table if len(period) == 10 and period < cutoff]
