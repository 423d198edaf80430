"""Log lines counted into a :class:`~sitegen.stats.tally.Tally`, with what repeats cached.

Distinct clients: a client is its address together with its user agent, hashed with a random
salt of its day (keyed BLAKE2b, 8 bytes). The raw address is never stored; the salt and the
hashes of a day are kept only while that day is *open* (its lines may still arrive) and are
dropped by :meth:`Tally.close_days`, after which nobody can tell which hash was which address.
Only the counts remain. (Lines of a closed day that turn up later, in a log rotated in after
it closed, are counted under a new salt: their clients may count twice for that day.) Anyone can
send endless user agents, each a client: a day tells apart :data:`~sitegen.stats.open_day.CLIENTS_KEPT`, past which its
clients and tools are a lower bound (:attr:`Tally.capped`); its downloads all count. It holds
as many pairs of a client and a file for ranges (:meth:`~sitegen.stats.open_day.OpenDay.first_range`) and for
redirects (:meth:`~sitegen.stats.open_day.OpenDay.redirect`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date, timedelta

from sitegen.layout import SHARDS_DIR
from sitegen.stats.logline import (
    CLOCK_RE,
    COMBINED_RE,
    SITEGEN_RE,
    Kind,
    PathClassifier,
    day_key,
    join,
    tool_of,
    utc_day,
)
from sitegen.stats.missing import HELD, cut, cut_at, versionless
from sitegen.stats.open_day import OpenDay
from sitegen.stats.tally import Tally

# Skip reasons, as shown in stats.json.
MALFORMED = "malformed"  # not a log line of a known format (binary garbage, a cut line)
TOO_LONG = "too_long"  # longer than logline.MAX_LINE; never read into memory whole
HOSTILE = "hostile"  # request path with dot-segments, markup or undecodable bytes
BAD_TIME = "bad_time"
# Dated after tomorrow (UTC) at the time of the count: a server clock set wrong, a log copied
# from another host. Counted, such a line would keep its day open (its salt and client hashes)
# until that date, and mark the channels private at the count as private through it.
FUTURE = "future"

# Fetcher outcomes for a package file of a passive channel served with 200.
FETCHED, STORED, FROM_DISK = "fetched", "stored", "disk"
_OUTCOMES = {b"fetched": FETCHED, b"stored": STORED}

CACHE_LIMIT = 100_000  # entries per lookup cache before it is cleared
# What the line counter caches per request target: kind, channel|subdir|file, and
# channel|subdir| (or channel| for an installer), which a fetcher outcome's key starts with.
CountedTarget = tuple[Kind, str, str]


def line_counter(
    tally: Tally, channels: Iterable[str], today: date, installers: Iterable[str] = ()
) -> LineCounter:
    """A counter of lines into ``tally`` for the channels and installer folders, on ``today``
    (UTC): lines of a later day than the next are skipped (:data:`FUTURE`)."""
    classifier = PathClassifier(channels, installers)
    return LineCounter(tally, classifier, (today + timedelta(days=1)).isoformat())


class LineCounter:
    """Feeds lines into a :class:`Tally`; caches what repeats (days, paths, user agents,
    clients). The raw address of a client is a cache key in memory during a run, never kept."""

    def __init__(self, tally: Tally, classifier: PathClassifier, latest: str) -> None:
        self.tally = tally
        self.classifier = classifier
        self.latest = latest  # the last UTC day counted (ISO)
        self.lines = 0
        self._days: dict[bytes, str] = {}
        self._targets: dict[bytes, CountedTarget] = {}
        self._agents: dict[bytes, str] = {}
        self._clients: dict[str, dict[bytes, bytes]] = {}  # day -> address+agent -> hash
        self._cut_at: dict[str, int] = {}  # day -> the size of its 404 rows that cuts them
        # The regex that matched last goes first: a log holds one format, mostly.
        self._formats = [SITEGEN_RE.match, COMBINED_RE.match]

    def day_of(self, stamp: bytes) -> str:
        """The UTC day of a time stamp, "" when it is not one or is after :attr:`latest`; a
        cached day answers for the seconds and mostly the minutes unchecked (see add)."""
        key = day_key(stamp)
        day = self._days.get(key)
        if day is None:
            if len(self._days) >= CACHE_LIMIT:  # 1440 keys a day with a part-hour offset
                self._days.clear()
            day = utc_day(stamp)
            if day is None:
                # Not cached: a bad time is its line's own, and the key leaves parts of it out.
                return ""
            day = self._days[key] = "" if day > self.latest else day
        return day

    def target_of(self, raw: bytes) -> CountedTarget:
        target = self._targets.get(raw)
        if target is None:
            try:
                text = raw.decode("ascii")
            except UnicodeDecodeError:
                target = (Kind.HOSTILE, "", "")
            else:
                kind, channel, subdir, fn = self.classifier.classify(text)
                fn = SHARDS_DIR if kind is Kind.SHARD else fn
                place = join(channel, "") if kind is Kind.INSTALLER else join(channel, subdir, "")
                target = (kind, place + fn, place)
            if len(self._targets) >= CACHE_LIMIT:
                self._targets.clear()
            self._targets[raw] = target
        return target

    def new_client(self, day: str, key: bytes, agent: bytes) -> bytes:
        """Hash a client first seen in this run on ``day``; count it, and its tool, if the day
        is new to it and tells apart one more."""
        tally = self.tally
        opened = tally.open_days.get(day)
        if opened is None:
            opened = tally.open_days[day] = OpenDay()
        client = hashlib.blake2b(key, key=opened.salt, digest_size=8).digest()
        clients = self._clients.setdefault(day, {})
        if len(clients) >= CACHE_LIMIT:
            clients.clear()
        clients[key] = client
        taken = opened.take_client(client)
        if taken is None:
            tally.capped.add(day)
        if not taken:
            return client
        tally.days[day][1] += 1
        tool = self._agents.get(agent)
        if tool is None:
            if len(self._agents) >= CACHE_LIMIT:
                self._agents.clear()
            tool = self._agents[agent] = join(*tool_of(agent.decode("latin-1")))
        tools = tally.tools.setdefault(day, {})
        tools[tool] = tools.get(tool, 0) + 1
        if len(tools) >= HELD:  # a user agent names any version it likes
            cut(tools, versionless)
        return client

    def installer(self, day: str, key: str, status: bytes, size: bytes, seen: bytes) -> None:
        """Count a GET of an installer file (``folder|file``) as a package file's download is
        counted: a 200, or the 206 ranges of one file by one client once per day. Its client
        (address and user agent, ``seen``) is hashed with the day's salt for that only: it is
        no client of the channels, which the day's clients and tools count."""
        if status != b"200" and status != b"206":
            return
        tally = self.tally
        rows = tally.installers.setdefault(day, {})
        row = rows.get(key)
        if row is None:
            row = rows[key] = [0, 0, 0]
        row[1] += 0 if size == b"-" else int(size)
        row[2] += 1
        if status == b"206":
            opened = tally.open_days.get(day)
            if opened is None:
                opened = tally.open_days[day] = OpenDay()
            client = hashlib.blake2b(seen, key=opened.salt, digest_size=8).digest()
            if not opened.first_range(client, key):
                return
        row[0] += 1

    def add(self, lines: Iterable[bytes]) -> None:
        """Count complete lines (without their newline)."""
        tally = self.tally
        day_cache, targets, target_of = self._days, self._targets, self.target_of
        first, second = self._formats
        current, clients, totals = "", {}, [0, 0, 0, 0]
        all_time = tally.all_time
        files: dict[str, list[int]] = {}
        refreshes: dict[str, list[int]] = {}
        missing: dict[str, int] = {}
        cut_missing = HELD
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
            # day_key inlined for a whole-hour offset, nearly every log's; a stamp with a
            # part-hour offset is cached under a longer key only, so it misses here. The keys
            # leave out the seconds and mostly the minutes: the day of 10:30 would stand for 10:99;
            # utc_day tells a bad time from a future day, for these few lines only.
            day = day_cache.get(stamp[:14] + stamp[20:]) or self.day_of(stamp)
            if not day or not CLOCK_RE.match(stamp, 14):  # a bad time or a future day
                tally.skip(FUTURE if utc_day(stamp) else BAD_TIME)
                continue
            parts = request.split(b" ")
            if len(parts) not in (2, 3) or not parts[0].isalpha():
                tally.skip(MALFORMED)
                continue
            kind, key, place = targets.get(parts[1]) or target_of(parts[1])
            if kind is Kind.HOSTILE:
                tally.skip(HOSTILE)
                continue
            if day != current:
                current = day
                totals = tally.days.setdefault(day, [0, 0, 0, 0])
                files = tally.files.setdefault(day, {})
                refreshes = tally.refreshes.setdefault(day, {})
                missing = tally.missing.setdefault(day, {})
                cut_missing = self._cut_at.get(day) or self._cut_at.setdefault(day, cut_at(missing))
                clients = self._clients.get(day) or {}
            totals[0] += 1
            if kind is Kind.OTHER or parts[0] != b"GET":
                continue
            seen = address + b" " + agent
            if kind is Kind.INSTALLER:
                self.installer(day, key, status, size, seen)
                continue
            client = clients.get(seen)
            if client is None:
                client = self.new_client(day, seen, agent)
                clients = self._clients[day]
            if kind is Kind.PACKAGE:
                if status == b"404":
                    missing[key] = missing.get(key, 0) + 1
                    if len(missing) >= cut_missing:  # anyone can ask for endless names
                        cut(missing)
                        cut_missing = self._cut_at[day] = cut_at(missing)
                    continue
                if status == b"302" and fetcher and fetcher[0] in _OUTCOMES:
                    # Apache: the fetcher stored the file and sent the client back to the
                    # static URL; the 200 that follows tells this outcome, not "from disk".
                    tally.open_days[day].redirect(client, key, fetcher[0])
                    continue
                if status != b"200" and status != b"206":
                    continue
                row = files.get(key)
                if row is None:
                    row = files[key] = [0, 0, 0]
                whole = all_time.get(key)
                if whole is None:
                    whole = all_time[key] = [0, 0]
                sent = 0 if size == b"-" else int(size)
                row[1] += sent
                row[2] += 1
                whole[1] += sent
                totals[3] += sent
                if status == b"200":
                    if fetcher:
                        told = tally.open_days[day].redirected.pop((client, key), fetcher[0])
                        outcome = place + _OUTCOMES.get(told, FROM_DISK)
                        passive = tally.passive.setdefault(day, {})
                        passive[outcome] = passive.get(outcome, 0) + 1
                elif not tally.open_days[day].first_range(client, key):
                    continue
                row[0] += 1
                whole[0] += 1
                totals[2] += 1
            elif status == b"200" or status == b"206" or status == b"304":
                row = refreshes.get(key)
                if row is None:
                    row = refreshes[key] = [0, 0, 0]
                if status == b"304":
                    row[1] += 1
                else:
                    row[0] += 1
                    if size != b"-":
                        row[2] += int(size)
        self.lines += count
