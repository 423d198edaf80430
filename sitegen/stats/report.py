"""``stats.json``: the counts of a :class:`~sitegen.stats.tally.Tally`, for machines and pages.

Built by a pure function of the tally, the site's channels and the day it describes. Periods
are UTC days (``2026-12-05``) within the retention and months (``2026-09``) before it.
"Clients" are distinct per day; over longer spans they add up days (client-days), since a
client's hash changes with each day's salt. No address, token or client hash appears here.
The installer folders' downloads are rows of their own (``installers``): the totals, periods
and tools count the channels' only.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import date, timedelta

import msgspec

from sitegen.stats.counter import FETCHED, FROM_DISK, STORED
from sitegen.stats.logline import join, split, split_package
from sitegen.stats.missing import KEEP, cut, is_file, versionless
from sitegen.stats.tally import Tally

FORMAT = 1
SERIES_DAYS = 30  # days of per-package downloads in stats.json (the trend charts)


class Totals(msgspec.Struct):
    downloads: int = 0
    bytes: int = 0
    refreshes: int = 0  # repodata and shard-index fetches, 304 answers included
    missing: int = 0  # 404 answers for package files
    requests: int = 0  # every counted request, pages too
    client_days: int = 0


class PassiveCounts(msgspec.Struct):
    fetched: int = 0  # downloaded from upstream by the fetcher for this request
    stored: int = 0  # streamed by the fetcher from disk
    disk: int = 0  # served by the web server from disk


class ChannelRow(msgspec.Struct):
    channel: str
    downloads: int = 0
    bytes: int = 0
    refreshes: int = 0
    missing: int = 0
    passive: PassiveCounts | None = None  # only for channels fed by a passive mirror


class PeriodRow(msgspec.Struct):
    period: str
    downloads: int = 0
    bytes: int = 0
    refreshes: int = 0
    requests: int = 0
    clients: int = 0
    # More distinct clients came on a day of it than a day tells apart: ``clients`` (and its
    # tools' client-days) are at least as counted
    clients_capped: bool = False


class PackageRow(msgspec.Struct):
    channel: str
    name: str
    downloads: int = 0
    downloads_7d: int = 0
    downloads_30d: int = 0
    bytes: int = 0
    # Downloads per day over the last SERIES_DAYS days, oldest first, ending with "today".
    daily: list[int] = msgspec.field(default_factory=lambda: [0] * SERIES_DAYS)


class FileRow(msgspec.Struct):
    channel: str
    subdir: str
    file: str
    name: str
    version: str
    downloads: int
    bytes: int


class MissingRow(msgspec.Struct):
    channel: str
    subdir: str
    file: str
    name: str
    requests: int


class InstallerFileRow(msgspec.Struct):
    file: str
    downloads: int = 0
    downloads_30d: int = 0
    bytes: int = 0


class InstallerRow(msgspec.Struct):
    """An installer folder's downloads (counted apart: the totals, periods and tools are the
    channels')."""

    folder: str
    downloads: int = 0
    downloads_30d: int = 0
    bytes: int = 0
    files: list[InstallerFileRow] = msgspec.field(default_factory=list)  # by name


class ToolRow(msgspec.Struct):
    tool: str
    version: str
    client_days: int
    client_days_30d: int


class StatsDoc(msgspec.Struct):
    format: int
    today: str
    totals: Totals
    channels: list[ChannelRow]
    periods: list[PeriodRow]  # oldest first
    packages: list[PackageRow]  # most downloaded first
    files: list[FileRow]
    tools: list[ToolRow]
    # The most requested first, KEEP at most (the totals and channels count every 404).
    missing: list[MissingRow]
    skipped: dict[str, int]
    # The channels private when it was written: theirs are every count; of each other channel
    # only those of the days after it was last private. None in a document from before it said
    # (then every channel's counts may hold such days).
    private: list[str] | None = None
    # Every installer folder configured or counted, by path (none in a document from before
    # they were counted).
    installers: list[InstallerRow] = msgspec.field(default_factory=list)


def _window(today: date, days: int) -> str:
    """The first ISO day of the ``days`` days ending with ``today``."""
    return (today - timedelta(days=days - 1)).isoformat()


def _public_all_time(tally: Tally, marks: dict[str, str]) -> dict[str, list[int]]:
    """The all-time counts without those of the days a channel of ``marks`` was private in
    (through its mark), added up again from the periods after them for those channels."""
    if not marks:
        return tally.all_time
    prefixes = tuple(join(channel, "") for channel in marks)
    out = {key: row for key, row in tally.all_time.items() if not key.startswith(prefixes)}
    for period, rows in tally.files.items():
        for key, (downloads, sent, _requests) in rows.items():
            if key.startswith(prefixes) and period > marks[split(key)[0]]:
                into = out.setdefault(key, [0, 0])
                into[0] += downloads
                into[1] += sent
    return out


def _installer_rows(tally: Tally, folders: Iterable[str], today: date) -> list[InstallerRow]:
    """The downloads of each installer folder of ``folders`` or of the counts, and of its
    files, in all and over the 30 days ending with ``today``."""
    first30, now = _window(today, 30), today.isoformat()
    rows = {folder: InstallerRow(folder) for folder in folders}
    files: dict[str, InstallerFileRow] = {}
    for period, counts in tally.installers.items():
        recent = len(period) == 10 and first30 <= period <= now
        for key, (downloads, sent, _requests) in counts.items():
            folder, fn = split(key)
            row = rows.get(folder)
            if row is None:
                row = rows[folder] = InstallerRow(folder)
            file = files.get(key)
            if file is None:
                file = files[key] = InstallerFileRow(fn)
                row.files.append(file)
            for counted in (row, file):
                counted.downloads += downloads
                counted.bytes += sent
                if recent:
                    counted.downloads_30d += downloads
    for row in rows.values():
        row.files.sort(key=lambda f: f.file)
    return [rows[folder] for folder in sorted(rows)]


def build_doc(
    tally: Tally,
    channels: Iterable[str],
    passive: Collection[str],
    today: date,
    private: Collection[str] = (),
    installers: Iterable[str] = (),
) -> StatsDoc:
    """The statistics document; ``passive`` names channels fed by a passive mirror,
    ``private`` the channels private now, ``installers`` the installer folders. Of every other channel, the counts of the days it
    was private in (``tally.private``) are left out: they name what it served then, to token
    holders only, and may be packages it no longer has. Site-wide sums keep them."""
    now = today.isoformat()
    marks = {c: day for c, day in tally.private.items() if c not in private}

    def shown(channel: str, period: str) -> bool:
        """Whether counts of ``channel`` in ``period`` (a day or a month) go in: a month
        sorts before each of its days, so one holding a private day is left out whole."""
        return channel not in marks or period > marks[channel]

    first30 = _window(today, 30)
    series_index = {
        (today - timedelta(days=back)).isoformat(): SERIES_DAYS - 1 - back
        for back in range(SERIES_DAYS)
    }
    channel_rows = {
        c: ChannelRow(channel=c, passive=PassiveCounts() if c in passive else None)
        for c in channels
    }
    periods = {
        period: PeriodRow(period, downloads, sent, 0, requests, clients, period in tally.capped)
        for period, (requests, clients, downloads, sent) in tally.days.items()
    }
    files: list[FileRow] = []
    packages: dict[tuple[str, str], PackageRow] = {}
    package_of: dict[str, PackageRow] = {}  # by channel|subdir|file
    for key, (downloads, sent) in _public_all_time(tally, marks).items():
        channel, subdir, fn = split(key)
        name, version, _build = split_package(fn)
        files.append(FileRow(channel, subdir, fn, name, version, downloads, sent))
        package = packages.get((channel, name))
        if package is None:
            package = packages[(channel, name)] = PackageRow(channel=channel, name=name)
        package_of[key] = package
        package.downloads += downloads
        package.bytes += sent
        if channel in channel_rows:
            channel_rows[channel].downloads += downloads
            channel_rows[channel].bytes += sent
    # The last SERIES_DAYS days, per package: the trend and the 7- and 30-day windows.
    for period, rows in tally.files.items():
        index = series_index.get(period)
        if index is None:
            continue
        hidden = tuple(join(c, "") for c in marks if not shown(c, period))
        for key, row in rows.items():
            if row[0] and not key.startswith(hidden):
                package_of[key].daily[index] += row[0]
    for package in packages.values():
        package.downloads_7d = sum(package.daily[-7:])
        package.downloads_30d = sum(package.daily[-30:])
    totals = Totals(
        downloads=sum(r.downloads for r in periods.values()),
        bytes=sum(r.bytes for r in periods.values()),
        requests=sum(r.requests for r in periods.values()),
        client_days=sum(r.clients for r in periods.values()),
    )
    for period, rows in tally.refreshes.items():
        for key, (fetches, not_modified, _sent) in rows.items():
            channel = split(key)[0]
            periods.setdefault(period, PeriodRow(period=period)).refreshes += fetches + not_modified
            totals.refreshes += fetches + not_modified
            if channel in channel_rows and shown(channel, period):
                channel_rows[channel].refreshes += fetches + not_modified
    missing: dict[str, int] = {}
    for period, rows in tally.missing.items():
        for key, count in rows.items():
            totals.missing += count
            if shown(split(key)[0], period):
                missing[key] = missing.get(key, 0) + count
    for key, count in missing.items():
        channel = split(key)[0]
        if channel in channel_rows:
            channel_rows[channel].missing += count
    for period, rows in tally.passive.items():
        for key, count in rows.items():
            channel, _subdir, outcome = split(key)
            if not shown(channel, period):
                continue
            counts = channel_rows[channel].passive if channel in channel_rows else None
            if counts is not None and outcome in (FETCHED, STORED, FROM_DISK):
                setattr(counts, outcome, getattr(counts, outcome) + count)
    client_days: dict[str, int] = {}
    for rows in tally.tools.values():
        for key, count in rows.items():
            client_days[key] = client_days.get(key, 0) + count
    cut(client_days, versionless)  # the versions of every period together: as many as one's
    tools: dict[str, ToolRow] = {}
    for period, rows in tally.tools.items():
        for listed, count in rows.items():
            key = listed if listed in client_days else versionless(listed)
            row = tools.get(key)
            if row is None:
                row = tools[key] = ToolRow(*split(key), 0, 0)
            row.client_days += count
            if len(period) == 10 and first30 <= period <= now:
                row.client_days_30d += count
    return StatsDoc(
        format=FORMAT,
        today=now,
        totals=totals,
        channels=sorted(channel_rows.values(), key=lambda r: r.channel),
        periods=[periods[p] for p in sorted(periods)],
        packages=sorted(packages.values(), key=lambda r: (-r.downloads, r.channel, r.name)),
        files=sorted(files, key=lambda r: (r.channel, r.subdir, r.file)),
        tools=sorted(tools.values(), key=lambda r: (-r.client_days, r.tool, r.version)),
        missing=[
            MissingRow(*split(key), split_package(split(key)[2])[0], count)
            for key, count in sorted(
                ((key, count) for key, count in missing.items() if is_file(key)),
                key=lambda item: (-item[1], item[0]),
            )[:KEEP]
        ],
        skipped=dict(sorted(tally.skipped.items())),
        private=sorted(private),
        installers=_installer_rows(tally, installers, today),
    )


def encode_doc(doc: StatsDoc) -> bytes:
    return msgspec.json.format(msgspec.json.encode(doc), indent=1)


def decode_doc(data: bytes) -> StatsDoc:
    return msgspec.json.decode(data, type=StatsDoc)
