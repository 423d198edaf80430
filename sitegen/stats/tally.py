"""Counting log lines: per period (a UTC day, or a month once rolled up), channel, subdir, file.

Everything is kept in plain dicts keyed by tuples, so ten million lines cost a few dict updates
each. Rows whose period is a day older than the retention are merged into their month by
:meth:`Tally.roll_up`.

Distinct clients: a client is its address together with its user agent, hashed with a random
salt of its day (keyed BLAKE2b, 8 bytes). The raw address is never stored; the salt and the
hashes of a day are kept only while that day is *open* (its lines may still arrive) and are
dropped by :meth:`Tally.close_days`, after which nobody can tell which hash was which address.
Only the counts remain.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from sitegen.stats.logline import (
    COMBINED_RE,
    SHARDS_DIR,
    SITEGEN_RE,
    Kind,
    PathClassifier,
    Target,
    day_key,
    tool_of,
    utc_day,
)

# Skip reasons, as shown in stats.json.
MALFORMED = "malformed"  # not a log line of a known format (binary garbage, a cut line)
TOO_LONG = "too_long"  # longer than logline.MAX_LINE; never read into memory whole
HOSTILE = "hostile"  # request path with dot-segments, markup or undecodable bytes
BAD_TIME = "bad_time"

# Fetcher outcomes for a package file of a passive channel served with 200.
FETCHED, STORED, FROM_DISK = "fetched", "stored", "disk"
_OUTCOMES = {b"fetched": FETCHED, b"stored": STORED}

_CACHE_LIMIT = 100_000  # entries per lookup cache before it is cleared


@dataclass
class OpenDay:
    """A day whose lines may still arrive: its salt and what was seen, for deduplication."""

    salt: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    clients: set[bytes] = field(default_factory=set)
    tool_clients: set[tuple[bytes, str, str]] = field(default_factory=set)
    ranges: set[tuple[bytes, str, str, str]] = field(default_factory=set)


FileKey = tuple[str, str, str, str]  # period, channel, subdir, file name


@dataclass
class Tally:
    # (period, channel, subdir, package file) -> [downloads, bytes, requests]
    files: dict[FileKey, list[int]] = field(default_factory=dict)
    # (period, channel, subdir, metadata file or "shards") -> [fetches, not modified, bytes]
    refreshes: dict[FileKey, list[int]] = field(default_factory=dict)
    # (period, channel, subdir, package file) -> 404 answers
    missing: dict[FileKey, int] = field(default_factory=dict)
    # (period, channel, fetcher outcome) -> package files served with 200
    passive: dict[tuple[str, str, str], int] = field(default_factory=dict)
    # (period, tool, version) -> distinct clients (a month: the sum of its days)
    tools: dict[tuple[str, str, str], int] = field(default_factory=dict)
    # period -> [requests, distinct clients of the channels]
    days: dict[str, list[int]] = field(default_factory=dict)
    # reason -> lines skipped, all time
    skipped: dict[str, int] = field(default_factory=dict)
    open_days: dict[str, OpenDay] = field(default_factory=dict)

    def skip(self, reason: str, count: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + count

    # ------------------------------------------------------------------ reading lines

    def counter(self, channels: Iterable[str]) -> LineCounter:
        return LineCounter(self, PathClassifier(channels))

    # ------------------------------------------------------------------ periods

    def close_days(self, keep_from: str) -> None:
        """Forget the salt and hashes of every open day before ``keep_from`` (ISO date)."""
        for day in [d for d in self.open_days if d < keep_from]:
            del self.open_days[day]

    def roll_up(self, today: date, keep_days: int) -> None:
        """Merge the rows of days more than ``keep_days`` before ``today`` into their month."""
        cutoff = (today - timedelta(days=keep_days)).isoformat()
        for table in (self.files, self.refreshes):
            _roll_lists(table, cutoff)
        for counts in (self.missing, self.passive, self.tools):
            _roll_ints(counts, cutoff)
        for day in [d for d in self.days if len(d) == 10 and d < cutoff]:
            row = self.days.pop(day)
            into = self.days.setdefault(day[:7], [0] * len(row))
            for index, value in enumerate(row):
                into[index] += value


def _roll_lists(table: dict, cutoff: str) -> None:
    for key in [k for k in table if len(k[0]) == 10 and k[0] < cutoff]:
        row = table.pop(key)
        into = table.setdefault((key[0][:7], *key[1:]), [0] * len(row))
        for index, value in enumerate(row):
            into[index] += value


def _roll_ints(counts: dict, cutoff: str) -> None:
    for key in [k for k in counts if len(k[0]) == 10 and k[0] < cutoff]:
        month = (key[0][:7], *key[1:])
        counts[month] = counts.get(month, 0) + counts.pop(key)


class LineCounter:
    """Feeds lines into a :class:`Tally`; caches what repeats (days, paths, user agents,
    clients). The raw address of a client is a cache key in memory during a run, never kept."""

    def __init__(self, tally: Tally, classifier: PathClassifier) -> None:
        self.tally = tally
        self.classifier = classifier
        self.lines = 0
        self._days: dict[bytes, str] = {}
        self._targets: dict[bytes, Target] = {}
        self._agents: dict[bytes, tuple[str, str]] = {}
        self._clients: dict[str, dict[bytes, bytes]] = {}  # day -> address+agent -> hash
        # The regex that matched last goes first: a log holds one format, mostly.
        self._formats = [SITEGEN_RE.match, COMBINED_RE.match]

    def day_of(self, stamp: bytes) -> str:
        """The UTC day of a time stamp, "" when it is not one."""
        key = day_key(stamp)
        day = self._days.get(key)
        if day is None:
            day = self._days[key] = utc_day(stamp) or ""
        return day

    def target_of(self, raw: bytes) -> Target:
        target = self._targets.get(raw)
        if target is None:
            try:
                text = raw.decode("ascii")
            except UnicodeDecodeError:
                target = (Kind.HOSTILE, "", "", "")
            else:
                target = self.classifier.classify(text)
            if len(self._targets) >= _CACHE_LIMIT:
                self._targets.clear()
            self._targets[raw] = target
        return target

    def new_client(self, day: str, key: bytes, agent: bytes) -> bytes:
        """Hash a client first seen in this run on ``day``; count it if the day is new to it."""
        tally = self.tally
        opened = tally.open_days.get(day)
        if opened is None:
            opened = tally.open_days[day] = OpenDay()
        client = hashlib.blake2b(key, key=opened.salt, digest_size=8).digest()
        clients = self._clients.setdefault(day, {})
        if len(clients) >= _CACHE_LIMIT:
            clients.clear()
        clients[key] = client
        if client not in opened.clients:
            opened.clients.add(client)
            tally.days[day][1] += 1
        tool = self._agents.get(agent)
        if tool is None:
            tool = self._agents[agent] = tool_of(agent.decode("latin-1"))
        if (client, *tool) not in opened.tool_clients:
            opened.tool_clients.add((client, *tool))
            key3 = (day, *tool)
            tally.tools[key3] = tally.tools.get(key3, 0) + 1
        return client

    def add(self, lines: Iterable[bytes]) -> None:
        """Count complete lines (without their newline)."""
        tally = self.tally
        files, refreshes, missing, days = tally.files, tally.refreshes, tally.missing, tally.days
        day_cache, targets, target_of = self._days, self._targets, self.target_of
        first, second = self._formats
        current, clients, totals = "", {}, [0, 0]
        count = 0
        for line in lines:
            count += 1
            match = first(line)
            if match is None:
                match = second(line)
                if match is None:
                    tally.skip(MALFORMED)
                    continue
                first, second = second, first
                self._formats = [first, second]
            address, stamp, request, status, size, agent, *fetcher = match.groups()
            day = day_cache.get(stamp[:14] + stamp[20:]) or self.day_of(stamp)
            if not day:
                tally.skip(BAD_TIME)
                continue
            parts = request.split(b" ")
            if len(parts) not in (2, 3) or not parts[0].isalpha():
                tally.skip(MALFORMED)
                continue
            kind, channel, subdir, fn = targets.get(parts[1]) or target_of(parts[1])
            if kind is Kind.HOSTILE:
                tally.skip(HOSTILE)
                continue
            if day != current:
                current = day
                totals = days.get(day)
                if totals is None:
                    totals = days[day] = [0, 0]
                clients = self._clients.get(day) or {}
            totals[0] += 1
            if kind is Kind.OTHER or parts[0] != b"GET":
                continue
            key = address + b" " + agent
            client = clients.get(key)
            if client is None:
                client = self.new_client(day, key, agent)
                clients = self._clients[day]
            if kind is Kind.PACKAGE:
                fkey = (day, channel, subdir, fn)
                if status == b"404":
                    missing[fkey] = missing.get(fkey, 0) + 1
                    continue
                if status != b"200" and status != b"206":
                    continue
                row = files.get(fkey)
                if row is None:
                    row = files[fkey] = [0, 0, 0]
                if size != b"-":
                    row[1] += int(size)
                row[2] += 1
                if status == b"200":
                    row[0] += 1
                    if fetcher:
                        pkey = (day, channel, _OUTCOMES.get(fetcher[0], FROM_DISK))
                        tally.passive[pkey] = tally.passive.get(pkey, 0) + 1
                else:
                    ranges = tally.open_days[day].ranges
                    if (client, channel, subdir, fn) not in ranges:
                        ranges.add((client, channel, subdir, fn))
                        row[0] += 1
            elif status == b"200" or status == b"206" or status == b"304":
                rkey = (day, channel, subdir, SHARDS_DIR if kind is Kind.SHARD else fn)
                row = refreshes.get(rkey)
                if row is None:
                    row = refreshes[rkey] = [0, 0, 0]
                if status == b"304":
                    row[1] += 1
                else:
                    row[0] += 1
                    if size != b"-":
                        row[2] += int(size)
        self.lines += count
