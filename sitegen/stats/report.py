"""``stats.json``: the counts of a :class:`~sitegen.stats.tally.Tally`, for machines and pages.

Built by a pure function of the tally, the site's channels and the day it describes. Periods
are UTC days (``2026-12-05``) within the retention and months (``2026-09``) before it.
"Clients" are distinct per day; over longer spans they add up days (client-days), since a
client's hash changes with each day's salt. No address, token or client hash appears here.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import date, timedelta

import msgspec

from sitegen.stats.logline import split_package
from sitegen.stats.tally import FETCHED, FROM_DISK, STORED, Tally

FORMAT = 1
SERIES_DAYS = 30  # per-package daily rows kept in stats.json (the trend charts)


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


class PackageRow(msgspec.Struct):
    channel: str
    name: str
    downloads: int = 0
    downloads_7d: int = 0
    downloads_30d: int = 0
    bytes: int = 0


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


class ToolRow(msgspec.Struct):
    tool: str
    version: str
    client_days: int
    client_days_30d: int


class SeriesRow(msgspec.Struct, array_like=True):
    day: str
    channel: str
    name: str
    downloads: int


class StatsDoc(msgspec.Struct):
    format: int
    today: str
    totals: Totals
    channels: list[ChannelRow]
    periods: list[PeriodRow]  # oldest first
    packages: list[PackageRow]  # most downloaded first
    files: list[FileRow]
    tools: list[ToolRow]
    missing: list[MissingRow]  # most requested first
    series: list[SeriesRow]  # per package and day, the last SERIES_DAYS days
    skipped: dict[str, int]


def _window(today: date, days: int) -> str:
    """The first ISO day of the ``days`` days ending with ``today``."""
    return (today - timedelta(days=days - 1)).isoformat()


def _is_day_within(period: str, first: str, today: str) -> bool:
    return len(period) == 10 and first <= period <= today


def build_doc(
    tally: Tally, channels: Iterable[str], passive: Collection[str], today: date
) -> StatsDoc:
    """The statistics document; ``passive`` names channels fed by a passive mirror."""
    now = today.isoformat()
    first7, first30 = _window(today, 7), _window(today, 30)
    channel_rows = {
        c: ChannelRow(channel=c, passive=PassiveCounts() if c in passive else None)
        for c in channels
    }
    periods: dict[str, PeriodRow] = {}
    for period, (requests, clients) in tally.days.items():
        periods[period] = PeriodRow(period=period, requests=requests, clients=clients)
    totals = Totals(
        requests=sum(r.requests for r in periods.values()),
        client_days=sum(r.clients for r in periods.values()),
    )
    packages: dict[tuple[str, str], PackageRow] = {}
    files: dict[tuple[str, str, str], FileRow] = {}
    series: dict[tuple[str, str, str], int] = {}
    for (period, channel, subdir, fn), (downloads, sent, _requests) in tally.files.items():
        name, version, _build = split_package(fn)
        row = periods.setdefault(period, PeriodRow(period=period))
        row.downloads += downloads
        row.bytes += sent
        totals.downloads += downloads
        totals.bytes += sent
        if channel in channel_rows:
            channel_rows[channel].downloads += downloads
            channel_rows[channel].bytes += sent
        package = packages.get((channel, name))
        if package is None:
            package = packages[(channel, name)] = PackageRow(channel=channel, name=name)
        package.downloads += downloads
        package.bytes += sent
        if _is_day_within(period, first30, now):
            package.downloads_30d += downloads
            if downloads:
                key = (period, channel, name)
                series[key] = series.get(key, 0) + downloads
            if period >= first7:
                package.downloads_7d += downloads
        file_row = files.get((channel, subdir, fn))
        if file_row is None:
            file_row = files[(channel, subdir, fn)] = FileRow(
                channel, subdir, fn, name, version, 0, 0
            )
        file_row.downloads += downloads
        file_row.bytes += sent
    for (period, channel, _subdir, _fn), (fetches, not_modified, _sent) in tally.refreshes.items():
        periods.setdefault(period, PeriodRow(period=period)).refreshes += fetches + not_modified
        totals.refreshes += fetches + not_modified
        if channel in channel_rows:
            channel_rows[channel].refreshes += fetches + not_modified
    missing: dict[tuple[str, str, str], int] = {}
    for (_period, channel, subdir, fn), count in tally.missing.items():
        missing[(channel, subdir, fn)] = missing.get((channel, subdir, fn), 0) + count
        totals.missing += count
        if channel in channel_rows:
            channel_rows[channel].missing += count
    for (_period, channel, outcome), count in tally.passive.items():
        counts = channel_rows[channel].passive if channel in channel_rows else None
        if counts is not None:
            if outcome == FETCHED:
                counts.fetched += count
            elif outcome == STORED:
                counts.stored += count
            elif outcome == FROM_DISK:
                counts.disk += count
    tools: dict[tuple[str, str], ToolRow] = {}
    for (period, tool, version), count in tally.tools.items():
        row = tools.get((tool, version))
        if row is None:
            row = tools[(tool, version)] = ToolRow(tool, version, 0, 0)
        row.client_days += count
        if _is_day_within(period, first30, now):
            row.client_days_30d += count
    return StatsDoc(
        format=FORMAT,
        today=now,
        totals=totals,
        channels=sorted(channel_rows.values(), key=lambda r: r.channel),
        periods=[periods[p] for p in sorted(periods)],
        packages=sorted(packages.values(), key=lambda r: (-r.downloads, r.channel, r.name)),
        files=sorted(files.values(), key=lambda r: (r.channel, r.subdir, r.file)),
        tools=sorted(tools.values(), key=lambda r: (-r.client_days, r.tool, r.version)),
        missing=[
            MissingRow(channel, subdir, fn, split_package(fn)[0], count)
            for (channel, subdir, fn), count in sorted(
                missing.items(), key=lambda item: (-item[1], item[0])
            )
        ],
        series=[SeriesRow(d, c, n, v) for (d, c, n), v in sorted(series.items())],
        skipped=dict(sorted(tally.skipped.items())),
    )


def encode_doc(doc: StatsDoc) -> bytes:
    return msgspec.json.format(msgspec.json.encode(doc), indent=1)


def decode_doc(data: bytes) -> StatsDoc:
    return msgspec.json.decode(data, type=StatsDoc)
