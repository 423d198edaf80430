"""Download statistics on the browse pages, from the site's ``stats.json`` (``sitegen stats``).

While the file exists the renderer makes a statistics page (:data:`~sitegen.layout.STATS_PAGE`),
links it from the landing page, and gives each package page its downloads with a trend of the
last 30 days. The models are :mod:`sitegen.stats.model`'s, pure functions of the document, so
the pages and the file agree; the charts are inline SVG built from escaped text
(:mod:`sitegen.stats.charts`).

The statistics page is site-wide and public, like the landing page: it shows the packages and
counts of public channels of the configuration only; a private channel is named there with its
label and nothing else (see :mod:`sitegen.access.pages`; the site-wide totals and charts add up
every channel). A private channel's package pages are behind its token check and show their own
downloads. Of a channel public now, ``stats.json`` holds only the counts of the days after it was
last private (:func:`sitegen.stats.report.build_doc`); one written while it was private holds
them all, and none of its counts is shown until the next count.

Each installer folder's page shows the downloads of the folder and of each of its files
(:func:`installer_downloads`), and the statistics page a row per folder configured; folders are
public, their counts too.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from sitegen import layout
from sitegen.config import SiteConfig
from sitegen.stats.model import PackageStats, StatsPage, package_stats, stats_page
from sitegen.stats.open_day import CLIENTS_KEPT
from sitegen.stats.report import InstallerRow, StatsDoc, decode_doc
from sitegen.store.site import Site, UnsafePathError

log = logging.getLogger("sitegen")


@dataclass(frozen=True)
class PackageDownloads:
    """The downloads of a package, as its page shows them. Part of the page's input key: it
    changes from one day to the next only while the package has downloads in the last 30 days
    (its trend moves with the days), so other pages are not rendered again every day."""

    downloads: int  # all time (within the counts kept)
    downloads_30d: int
    trend: PackageStats | None  # None: nothing in the last 30 days, no chart


NONE_COUNTED = PackageDownloads(0, 0, None)


@dataclass(frozen=True)
class SiteStats:
    """What the pages of one render show of ``stats.json``."""

    page: StatsPage  # the statistics page, of the public channels' packages
    public: frozenset[str]  # channels the statistics page may show in detail
    private: frozenset[str]  # channels it names with their label only
    packages: dict[str, dict[str, PackageDownloads]]  # channel -> name -> downloads
    installers: dict[str, InstallerRow]  # installer folder -> its downloads

    def downloads(self, channel: str) -> dict[str, PackageDownloads]:
        return self.packages.get(channel, {})


def load_stats(site: Site) -> StatsDoc | None:
    """The site's ``stats.json``; None when there is none, or one this version cannot read
    (logged: the pages go without statistics rather than fail)."""
    try:
        data = site.path(layout.STATS_JSON).read_bytes()
    except FileNotFoundError:
        return None
    except (OSError, UnsafePathError) as exc:
        log.warning("%s: cannot read it for the pages: %s", layout.STATS_JSON, exc)
        return None
    try:
        return decode_doc(data)
    except msgspec.DecodeError as exc:  # also msgspec.ValidationError
        log.warning("%s: not shown on the pages: %s", layout.STATS_JSON, exc)
        return None


def site_stats(doc: StatsDoc, config: SiteConfig) -> SiteStats:
    """The pages' view of ``doc`` under ``config``. Channels no longer configured are left out
    of the statistics page (nothing says whether they were private), and so are, on every
    page, the counts of a channel public now that ``doc`` counted in full as private (written
    before it turned public: the next ``sitegen stats`` leaves out its private days)."""
    private = frozenset(c.path for c in config.channels if c.private)
    configured = frozenset(c.path for c in config.channels)
    in_full = configured if doc.private is None else frozenset(doc.private)
    public = configured - private - in_full
    withheld = in_full - private
    counted = {row.folder: row for row in doc.installers}
    shown = msgspec.structs.replace(
        doc,
        packages=[p for p in doc.packages if p.channel in public],
        missing=[m for m in doc.missing if m.channel in public],
        channels=[c for c in doc.channels if c.channel in public | private],
        # Folders configured now, as channels; one added since the count has none yet.
        installers=[
            counted.get(folder) or InstallerRow(folder)
            for folder in sorted(i.path for i in config.installers)
        ],
    )
    packages: dict[str, dict[str, PackageDownloads]] = {}
    for (channel, name), stats in package_stats(doc).items():
        if channel in withheld:
            continue
        trend = stats if stats.downloads_30d else None
        packages.setdefault(channel, {})[name] = PackageDownloads(
            stats.downloads, stats.downloads_30d, trend
        )
    return SiteStats(stats_page(shown), public, private, packages, counted)


def installer_downloads(stats: SiteStats | None, folder: str) -> dict[str, Any] | None:
    """What an installer folder's page shows of its downloads (None: no statistics)."""
    if stats is None:
        return None
    row = stats.installers.get(folder) or InstallerRow(folder)
    return {
        "page": layout.STATS_PAGE,
        "downloads": row.downloads,
        "downloads_30d": row.downloads_30d,
        "files": {f.file: f.downloads for f in row.files},
    }


def landing_stats(stats: SiteStats | None) -> dict[str, Any] | None:
    """The landing page's pointer to the statistics page (None: no statistics)."""
    if stats is None:
        return None
    page = stats.page
    return {
        "page": layout.STATS_PAGE,
        "today": page.today,
        "downloads": page.downloads,
        "downloads_30d": sum(count for _, count in page.per_day),
    }


def _top_rows(
    counts: Collection[Any], pages: Mapping[str, Collection[str]]
) -> list[dict[str, Any]]:
    return [
        {
            "channel": c.channel,
            "name": c.name,
            "downloads": c.downloads,
            # A package that left the channel keeps its counts, not its page.
            "page": layout.package_page_path(c.channel, c.name)
            if c.name in pages.get(c.channel, ())
            else None,
        }
        for c in counts
    ]


def stats_page_model(
    stats: SiteStats, pages: Mapping[str, Collection[str]], folders: Collection[str]
) -> dict[str, Any]:
    """The statistics page; ``pages`` are the names with a package page, per channel, and
    ``folders`` the installer folders with a page (not one a link its runs leave alone)."""
    page = stats.page
    channels = []
    for row in page.channels:
        private = row.channel in stats.private
        channels.append(
            {
                "path": row.channel,
                "page": layout.channel_index_path(row.channel),
                "private": private,
                **(
                    {}
                    if private
                    else {
                        "downloads": row.downloads,
                        "bytes": row.bytes,
                        "refreshes": row.refreshes,
                        "missing": row.missing,
                        "passive": None
                        if row.passive is None
                        else msgspec.structs.asdict(row.passive),
                    }
                ),
            }
        )
    return {
        "today": page.today,
        "first_day": page.per_day[0][0] if page.per_day else page.today,
        "downloads": page.downloads,
        "downloads_30d": sum(count for _, count in page.per_day),
        "bytes_total": page.bytes_total,
        "bytes_30d": page.bytes_30d,
        "refreshes": page.refreshes,
        "skipped": page.skipped,
        "per_day": page.per_day,
        "per_day_chart": page.per_day_chart,
        "peak": max(page.per_day, key=lambda day: (day[1], day[0]), default=None),
        "tools": [[t.tool, t.client_days] for t in page.tools],
        "clients_capped": page.capped_days,
        "clients_kept": f"{CLIENTS_KEPT:,}",
        "tools_chart": page.tools_chart,
        "top": [
            {"id": "top-7d", "title": "Last 7 days", "rows": _top_rows(page.top_7d, pages)},
            {"id": "top-30d", "title": "Last 30 days", "rows": _top_rows(page.top_30d, pages)},
            {"id": "top-all", "title": "All time", "rows": _top_rows(page.top_all, pages)},
        ],
        "missing": [
            {
                "channel": m.channel,
                "subdir": m.subdir,
                "file": m.file,
                "name": m.name,
                "requests": m.requests,
            }
            for m in page.missing
        ],
        "channels": channels,
        "installers": [
            {
                "path": row.folder,
                "page": layout.installer_page_path(row.folder) if row.folder in folders else None,
                "downloads": row.downloads,
                "downloads_30d": row.downloads_30d,
                "bytes": row.bytes,
                "files": [{"file": f.file, "downloads": f.downloads} for f in row.top_files],
            }
            for row in page.installers
        ],
    }
