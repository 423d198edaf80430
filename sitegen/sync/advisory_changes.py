"""Which records advisories newly blocked, and which they no longer block, from run to run.

Each run records, per mirror, the files an advisory kept out (``MirrorReport
.advisories_blocked``). Comparing a run with what the mirror's earlier runs last decided tells
what the history pages show as newly blocked (a new advisory, a lowered threshold, a new
version that is affected) and newly cleared (a fixed range, an allowed id, a file gone
upstream). A subdir a run did not judge (its upstream could not be read, the run stopped before
its selection) says nothing: it blocks none of its files, yet its channel keeps publishing what
it did, so the files blocked before stand until a run judges the subdir again. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sitegen.sync.report import ERROR, BlockedFile, MirrorReport, RunReport

# Per subdir, the files advisories kept out as last judged.
Standing = Mapping[str, tuple[BlockedFile, ...]]


@dataclass(frozen=True)
class AdvisoryChanges:
    blocked: tuple[BlockedFile, ...]  # sorted by subdir and file
    cleared: tuple[BlockedFile, ...]


def judged(report: MirrorReport) -> frozenset[str]:
    """The subdirs whose upstream records the mirror's filters judged in this run: read
    upstream (served or not) and selected, every record kept or left out."""
    return frozenset(
        subdir
        for subdir, sub in report.subdirs.items()
        if sub.upstream not in ("", ERROR) and (sub.kept or sub.excluded or not sub.records)
    )


def standing_after(standing: Standing, report: MirrorReport) -> dict[str, tuple[BlockedFile, ...]]:
    """What stands once ``report`` is taken into account: its judgement of the subdirs it
    judged, the earlier one of the others."""
    after = dict(standing)
    seen = judged(report)
    for subdir in seen:
        after[subdir] = ()
    for blocked in report.advisories_blocked:
        if blocked.subdir in seen:
            after[blocked.subdir] += (blocked,)
    return after


def standing_before(runs: Iterable[RunReport], mirror: str, before: RunReport) -> Standing:
    """What the mirror's runs that started before ``before`` left standing."""
    standing: Standing = {}
    for run in sorted(runs, key=lambda r: (r.started, r.id)):
        if (run.started, run.id) >= (before.started, before.id):
            break
        for report in run.mirrors:
            if report.name == mirror:
                standing = standing_after(standing, report)
    return standing


def advisory_changes(current: MirrorReport, standing: Standing) -> AdvisoryChanges:
    """What ``current`` blocks that did not stand before, and the reverse, in the subdirs it
    judged (by subdir and file; a file blocked by another advisory than before is neither)."""
    seen = judged(current)
    now = {(b.subdir, b.file): b for b in current.advisories_blocked if b.subdir in seen}
    before = {(b.subdir, b.file): b for subdir in seen for b in standing.get(subdir, ())}
    return AdvisoryChanges(
        blocked=tuple(now[k] for k in sorted(now.keys() - before.keys())),
        cleared=tuple(before[k] for k in sorted(before.keys() - now.keys())),
    )
