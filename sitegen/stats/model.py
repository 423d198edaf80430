"""What the statistics pages show, built from ``stats.json`` alone (so pages and the file agree).

:func:`stats_page` is the model of the site-wide statistics page, :func:`package_stats` the
small block on each package page. Both are pure; charts are ready-made inline SVG strings
(:mod:`sitegen.stats.charts`), every other field is plain data for the templates to escape.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sitegen.stats.charts import bar_chart, hbar_chart, sparkline
from sitegen.stats.report import (
    SERIES_DAYS,
    ChannelRow,
    InstallerFileRow,
    MissingRow,
    PackageRow,
    StatsDoc,
)

TOP = 20
TOP_FILES = 5  # an installer folder's most downloaded files, on the statistics page


@dataclass(frozen=True)
class PackageCount:
    channel: str
    name: str
    downloads: int


@dataclass(frozen=True)
class ToolCount:
    tool: str
    client_days: int


@dataclass(frozen=True)
class InstallerCounts:
    folder: str
    downloads: int
    downloads_30d: int
    bytes: int
    top_files: list[InstallerFileRow]  # most downloaded first, each downloaded at least once


@dataclass(frozen=True)
class StatsPage:
    today: str
    top_7d: list[PackageCount]
    top_30d: list[PackageCount]
    top_all: list[PackageCount]
    per_day: list[tuple[str, int]]  # downloads, the last 30 days, oldest first
    per_day_chart: str
    tools: list[ToolCount]  # client-days over the last 30 days, by tool
    # Days of the last 30 with more distinct clients than a day tells apart: at least as many
    capped_days: list[str]
    tools_chart: str
    downloads: int
    bytes_total: int
    bytes_30d: int
    refreshes: int
    missing: list[MissingRow]  # most requested filtered-out (or absent) package files
    channels: list[ChannelRow]
    installers: list[InstallerCounts]  # counted apart: the totals above are the channels'
    skipped: int


@dataclass(frozen=True)
class PackageStats:
    channel: str
    name: str
    downloads: int
    downloads_30d: int
    per_day: list[tuple[str, int]]  # the last 30 days, oldest first

    @property
    def trend_chart(self) -> str:
        """Made when a page shows it: a render whose package pages are up to date draws none
        of the thousands of trends."""
        return sparkline(
            [count for _, count in self.per_day],
            f"{self.name}: downloads per day, last {len(self.per_day)} days",
        )


def last_days(today: str, count: int = SERIES_DAYS) -> list[str]:
    end = date.fromisoformat(today)
    return [(end - timedelta(days=back)).isoformat() for back in range(count - 1, -1, -1)]


def _top(packages: list[PackageRow], field: str) -> list[PackageCount]:
    ranked = sorted(packages, key=lambda p: (-getattr(p, field), p.channel, p.name))
    return [
        PackageCount(p.channel, p.name, getattr(p, field))
        for p in ranked[:TOP]
        if getattr(p, field) > 0
    ]


def stats_page(doc: StatsDoc) -> StatsPage:
    days = last_days(doc.today)
    by_period = {row.period: row for row in doc.periods}
    per_day = [(day, by_period[day].downloads if day in by_period else 0) for day in days]
    tools: dict[str, int] = {}
    for row in doc.tools:
        tools[row.tool] = tools.get(row.tool, 0) + row.client_days_30d
    tool_counts = [
        ToolCount(tool, count)
        for tool, count in sorted(tools.items(), key=lambda item: (-item[1], item[0]))
        if count
    ]
    return StatsPage(
        today=doc.today,
        top_7d=_top(doc.packages, "downloads_7d"),
        top_30d=_top(doc.packages, "downloads_30d"),
        top_all=_top(doc.packages, "downloads"),
        per_day=per_day,
        per_day_chart=bar_chart(per_day, f"Downloads per day, last {len(days)} days"),
        tools=tool_counts,
        capped_days=[d for d in days if d in by_period and by_period[d].clients_capped],
        tools_chart=hbar_chart(
            [(t.tool, t.client_days) for t in tool_counts], "Clients by tool, last 30 days"
        ),
        downloads=doc.totals.downloads,
        bytes_total=doc.totals.bytes,
        bytes_30d=sum(by_period[d].bytes for d in days if d in by_period),
        refreshes=doc.totals.refreshes,
        missing=doc.missing[:TOP],
        channels=doc.channels,
        installers=[
            InstallerCounts(
                row.folder,
                row.downloads,
                row.downloads_30d,
                row.bytes,
                sorted(
                    (f for f in row.files if f.downloads),
                    key=lambda f: (-f.downloads, f.file),
                )[:TOP_FILES],
            )
            for row in doc.installers
        ],
        skipped=sum(doc.skipped.values()),
    )


def package_stats(doc: StatsDoc) -> dict[tuple[str, str], PackageStats]:
    """Per (channel, package name): totals and the trend of the last 30 days."""
    days = last_days(doc.today)
    out = {}
    for package in doc.packages:
        per_day = list(zip(days, package.daily, strict=True))
        out[(package.channel, package.name)] = PackageStats(
            channel=package.channel,
            name=package.name,
            downloads=package.downloads,
            downloads_30d=package.downloads_30d,
            per_day=per_day,
        )
    return out
