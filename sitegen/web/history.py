"""The history pages, history.json and the Atom feed of newly mirrored packages."""

from __future__ import annotations

import heapq
from collections.abc import Collection, Mapping
from typing import Any

from sitegen.layout import history_page_path, package_page_path, run_page_path
from sitegen.sync.report import RUNNING, RunReport
from sitegen.web.format import iso_time, split_filename, xml_text
from sitegen.web.run import Scrub, run_summary, same

FEED_ENTRIES = 100
# Files named per feed entry: one upstream may serve any number of builds of a version, which
# a first run adds all at once.
FEED_FILES = 20
HISTORY_PAGE_SIZE = 50


def history_json(
    reports: list[RunReport], scrub: Scrub = same, folder_pages: Collection[str] | None = None
) -> dict[str, Any]:
    """The machine-readable history: every run, newest first, with counts per subdir/mirror
    (and installer folder, its page where ``folder_pages`` has one: see run_summary)."""
    runs = []
    for report in reports:
        summary = run_summary(report, scrub, folder_pages)
        for key in ("status_words", "started_text", "ended_text", "duration_text", "all_errors"):
            summary.pop(key)
        for part in (*summary["channels"], *summary["installers"]):
            part.pop("status_words")
        runs.append(summary)
    return {"version": 1, "runs": runs}


def history_pages(summaries: list[dict[str, Any]], size: int = HISTORY_PAGE_SIZE) -> list[dict]:
    """Split run summaries (newest first) into pages: [{number, path, runs, pages}]."""
    chunks = [summaries[i : i + size] for i in range(0, len(summaries), size)] or [[]]
    paths = [history_page_path(n) for n in range(1, len(chunks) + 1)]
    return [
        {"number": n, "path": paths[n - 1], "runs": chunk, "pages": paths}
        for n, chunk in enumerate(chunks, start=1)
    ]


def feed_groups(report: RunReport, limit: int = FEED_ENTRIES) -> list[list[Any]]:
    """The files a run added, grouped by channel, name and version: the first ``limit`` groups
    in that order, as [channel, name, version, files, more]: the first FEED_FILES files and how
    many more there are. (A first run adds every file of the channel; the feed shows a few
    groups.)"""
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for c in report.channels:
        prefix = f"{c.subdir}/"
        for fn in c.added:
            name, version, _build = split_filename(fn)
            key = (c.channel, name, version)
            files = grouped.get(key)
            if files is None:
                grouped[key] = [prefix + fn]
            else:
                files.append(prefix + fn)
    keys = heapq.nsmallest(limit, grouped) if limit < len(grouped) else sorted(grouped)
    return [
        [*key, grouped[key][:FEED_FILES], max(0, len(grouped[key]) - FEED_FILES)] for key in keys
    ]


def feed_entries(
    reports: list[RunReport],
    package_pages: Mapping[str, set[str]],
    limit: int = FEED_ENTRIES,
    groups: Mapping[str, list[list[Any]]] | None = None,
) -> list[dict[str, Any]]:
    """Newly mirrored packages, newest run first: one entry per run, channel, name and version.

    ``groups`` may hold the :func:`feed_groups` of runs by id, computed before with at least
    this ``limit``.
    """
    entries: list[dict[str, Any]] = []
    for report in reports:
        if report.status == RUNNING:
            continue
        wanted = max(limit - len(entries), 1)
        found = groups.get(report.id) if groups is not None else None
        if found is None:
            found = feed_groups(report, wanted)
        updated = iso_time(report.ended or report.started)
        for channel, name, version, files, more in found[:wanted]:
            page = (
                package_page_path(channel, name)
                if name in package_pages.get(channel, set())
                else run_page_path(report.id)
            )
            # The feed is XML: what a record names is shown as XML can hold it.
            entries.append(
                {
                    "id": xml_text(f"urn:sitegen:{report.id}:{channel}:{name}:{version}"),
                    "title": xml_text(f"{name} {version} in {channel}"),
                    "channel": xml_text(channel),
                    "name": xml_text(name),
                    "version": xml_text(version),
                    "updated": updated,
                    "page": page,
                    "files": [xml_text(file) for file in files],
                    "more": more,
                }
            )
        if len(entries) >= limit:
            return entries
    return entries
