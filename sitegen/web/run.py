"""The page of a run (and its summary on the history pages and in history.json).

Run reports hold text from upstream and errors that may name URLs: every such string goes
through ``scrub`` (which hides tokens) before it reaches a page.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from typing import Any

import msgspec

from sitegen.layout import (
    filtered_records_path,
    package_page_path,
    run_page_path,
    run_record_path,
)
from sitegen.sync.report import (
    COMPLETED,
    FAILED,
    INTERRUPTED,
    NOT_REACHED,
    RUNNING,
    STOPPED,
    UNMATCHED_SHOWN,
    WITHOUT_REPLACED,
    ChannelSubdirReport,
    MirrorReport,
    RunReport,
    UnmatchedEntry,
)
from sitegen.web.format import format_duration, format_time, iso_time, split_filename
from sitegen.web.installers import installer_changes, installer_row

LIST_MAX = 2000  # file names listed per change list on a run page; the JSON has them all
DEPENDENCIES_MAX = 500  # rows of a dependency report shown on a run page
# Run ids become page names beside history/index.html: they start with a digit (a date). "\Z",
# not "$", which would let a final line end by.
RUN_ID_RE = re.compile(r"^[0-9][A-Za-z0-9_.-]{0,99}\Z")
STATUS_WORDS = {
    RUNNING: "running",
    COMPLETED: "completed",
    FAILED: "failed",
    STOPPED: "stopped",
    INTERRUPTED: "interrupted",
}
SUBDIR_STATUS_WORDS = {
    "published": "published",
    "unchanged": "unchanged",
    "held": "held back",
    "failed": "not updated",
    "dry-run": "dry run",
    "removed": "removed by sitegen remove",
    NOT_REACHED: "not reached",
}

Scrub = Callable[[str], str]


def _subdir_status_words(c: ChannelSubdirReport) -> str:
    """A channel subdir's result in words; a failed one may have published its first step."""
    if c.status == FAILED and c.first_step_only:
        return WITHOUT_REPLACED
    return SUBDIR_STATUS_WORDS.get(c.status, c.status)


def same(text: str) -> str:
    """The scrub of a site with no secret."""
    return text


def run_duration(report: RunReport) -> float | None:
    if report.ended is None:
        return None
    return max(0.0, report.ended - report.started)


def mirror_row(mirror: MirrorReport, scrub: Scrub) -> dict[str, Any]:
    subdirs = mirror.subdirs.values()
    excluded = mirror.excluded_totals()
    return {
        "name": mirror.name,
        "channel": mirror.channel,
        "source": scrub(mirror.source),
        "local": mirror.local,  # fed by a folder: its records are not upstream's
        "status": mirror.status,
        "records": sum(s.records for s in subdirs),
        "kept": sum(s.kept for s in subdirs),
        "added_as_dependency": sum(s.added_as_dependency for s in subdirs),
        "kept_by_exception": sum(mirror.excepted_totals().values()),
        "excluded": excluded,
        "excluded_total": sum(excluded.values()),
        "upstream": {name: s.upstream for name, s in sorted(mirror.subdirs.items())},
        "unsatisfied": len(mirror.unsatisfied),
        "dependencies_added": len(mirror.dependencies_added),
        "conflicts": len(mirror.conflicts),
        "errors": [scrub(e) for e in mirror.errors],
        "warnings": [scrub(w) for w in mirror.warnings],
    }


def run_summary(
    report: RunReport, scrub: Scrub = same, folder_pages: Collection[str] | None = None
) -> dict[str, Any]:
    """One run as the history page and history.json show it (counts, not file lists);
    ``folder_pages``: the installer folders whose page there is to link (None: all)."""
    channels = [
        {
            "channel": c.channel,
            "subdir": c.subdir,
            "status": c.status,
            "status_words": _subdir_status_words(c),
            "packages": c.packages,
            "added": len(c.added),
            "updated": len(c.updated),
            "removed": len(c.removed),
            "downloaded_files": c.downloaded_files,
            "downloaded_bytes": c.downloaded_bytes,
            "local_files": c.local_files,
            "local_bytes": c.local_bytes,
            "deleted_files": c.deleted_files,
            "errors": [scrub(e) for e in c.errors],
        }
        for c in report.channels
    ]
    mirrors = [mirror_row(m, scrub) for m in report.mirrors]
    installers = [installer_row(i, scrub, folder_pages) for i in report.installers]
    errors = [scrub(e) for e in report.errors]
    all_errors = (
        errors
        + [f"{m['name']}: {e}" for m in mirrors for e in m["errors"]]
        + [f"{c['channel']}/{c['subdir']}: {e}" for c in channels for e in c["errors"]]
        + [f"{i['path']}/: {e}" for i in installers for e in i["errors"]]
    )
    return {
        "id": report.id,
        "status": report.status,
        "status_words": STATUS_WORDS.get(report.status, report.status),
        "started": report.started,
        "ended": report.ended,
        "started_text": format_time(report.started),
        "ended_text": format_time(report.ended),
        "started_iso": iso_time(report.started),
        "duration": run_duration(report),
        "duration_text": format_duration(run_duration(report)),
        "options": dict(report.options),
        "channels": channels,
        "mirrors": mirrors,
        "installers": installers,
        "errors": errors,
        "all_errors": all_errors,
        # The installer folders' files count with the channels' (none comes from a folder).
        "totals": {
            key: sum(c[key] for c in channels) + sum(i.get(key, 0) for i in installers)
            for key in (
                "added",
                "updated",
                "removed",
                "downloaded_files",
                "downloaded_bytes",
                "local_files",
                "local_bytes",
            )
        },
        "page": run_page_path(report.id),
        "record": run_record_path(report.id),
    }


def _capped(items: list[Any], limit: int, convert: Callable[[Any], Any]) -> dict[str, Any]:
    """The first ``limit`` items, converted, and how many more there are."""
    return {"items": [convert(i) for i in items[:limit]], "more": max(0, len(items) - limit)}


def _by_count(*counts: Mapping[str, int]) -> dict[str, int]:
    """Reason -> count (several mappings added up), most frequent first."""
    total: Counter[str] = Counter()
    for mapping in counts:
        total.update(mapping)
    return dict(sorted(total.items(), key=lambda kv: (-kv[1], kv[0])))


def run_detail(
    report: RunReport,
    scrub: Scrub = same,
    package_pages: Mapping[str, set[str]] | None = None,
    folder_pages: Collection[str] | None = None,
) -> dict[str, Any]:
    """A run's own page: the summary plus what changed, the filters and the dependency report.

    ``package_pages`` (channel -> names with a page now) links changed files to their packages,
    ``folder_pages`` (the installer folders with a page now; None: all) their folders.
    """
    summary = run_summary(report, scrub, folder_pages)
    package_pages = package_pages or {}
    changes = []
    for c in report.channels:
        if not (c.added or c.updated or c.removed or c.errors):
            continue
        names = package_pages.get(c.channel, set())

        def linked(fn: str, channel: str = c.channel, names: set[str] = names) -> dict[str, Any]:
            name = split_filename(fn)[0]
            return {"fn": fn, "page": package_page_path(channel, name) if name in names else None}

        changes.append(
            {
                "channel": c.channel,
                "subdir": c.subdir,
                "added": _capped(c.added, LIST_MAX, linked),
                "updated": _capped(c.updated, LIST_MAX, linked),
                "removed": _capped(c.removed, LIST_MAX, lambda fn: {"fn": fn, "page": None}),
                "errors": [scrub(e) for e in c.errors],
            }
        )

    def scrubbed(row: msgspec.Struct) -> dict[str, str | None]:
        return {k: None if v is None else scrub(v) for k, v in msgspec.structs.asdict(row).items()}

    def unmatched(u: UnmatchedEntry) -> dict[str, str]:
        return {"key": u.key, "entry": scrub(u.entry), "whose": scrub(u.whose)}

    mirrors = []
    for m, row in zip(report.mirrors, summary["mirrors"], strict=True):
        mirrors.append(
            {
                **row,
                "subdirs": [
                    {
                        "subdir": name,
                        "upstream": s.upstream,
                        "records": s.records,
                        "kept": s.kept,
                        "added_as_dependency": s.added_as_dependency,
                        "excepted": _by_count(s.excepted),
                        "excluded": _by_count(s.excluded, s.rejected),
                    }
                    for name, s in sorted(m.subdirs.items())
                ],
                "unsatisfied_rows": _capped(m.unsatisfied, DEPENDENCIES_MAX, scrubbed),
                "dependencies_added_rows": _capped(
                    m.dependencies_added, DEPENDENCIES_MAX, scrubbed
                ),
                "conflict_rows": _capped(m.conflicts, DEPENDENCIES_MAX, scrub),
                "unmatched": _capped(m.unmatched, UNMATCHED_SHOWN, unmatched),
                "filtered_list": (
                    filtered_records_path(m.filtered_run) if m.filtered_run else None
                ),
                "rejected_examples": [
                    {"fn": scrub(fn), "reason": reason}
                    for _subdir, sub in sorted(m.subdirs.items())
                    for fn, reason in list(sub.rejected_examples.items())[:20]
                ],
            }
        )
    installer_details = [installer_changes(i, scrub, folder_pages) for i in report.installers]
    return {
        **summary,
        "changes": changes,
        "mirror_details": mirrors,
        "installer_details": installer_details,
    }
