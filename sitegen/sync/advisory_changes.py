"""Which records advisories newly blocked, and which they no longer block, from run to run.

Each run records, per mirror, the files an advisory kept out (``MirrorReport
.advisories_blocked``). Comparing a run with the previous run of the same mirror tells what the
history pages show as newly blocked (a new advisory, a lowered threshold, a new version that is
affected) and newly cleared (a fixed range, an allowed id, a file gone upstream). Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sitegen.sync.report import BlockedFile, MirrorReport, RunReport


@dataclass(frozen=True)
class AdvisoryChanges:
    blocked: tuple[BlockedFile, ...]  # sorted by subdir and file
    cleared: tuple[BlockedFile, ...]


def previous_report(
    runs: Iterable[RunReport], mirror: str, before: RunReport
) -> MirrorReport | None:
    """The mirror's report in the latest run that started before ``before`` and ran it."""
    latest: tuple[float, str, MirrorReport] | None = None
    for run in runs:
        if (run.started, run.id) >= (before.started, before.id):
            continue
        for report in run.mirrors:
            if report.name == mirror and (latest is None or (run.started, run.id) > latest[:2]):
                latest = (run.started, run.id, report)
    return latest[2] if latest else None


def advisory_changes(current: MirrorReport, previous: MirrorReport | None) -> AdvisoryChanges:
    """What ``current`` blocks that ``previous`` did not, and the reverse (by subdir and file;
    a file blocked by another advisory than before is neither)."""
    now = {(b.subdir, b.file): b for b in current.advisories_blocked}
    before = {(b.subdir, b.file): b for b in previous.advisories_blocked} if previous else {}
    return AdvisoryChanges(
        blocked=tuple(now[k] for k in sorted(now.keys() - before.keys())),
        cleared=tuple(before[k] for k in sorted(before.keys() - now.keys())),
    )
