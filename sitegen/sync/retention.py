"""History retention: the run ledger keeps the newest ``keep_runs`` records, none older than
``keep_days``, so a mirror run every 10 minutes for years keeps a bounded history.

Two kinds of record stay whatever their age, because other commands read them: the newest
record of each mirror (``sitegen status`` shows it) and the newest one in which each mirror
completed (``sitegen mirror --due`` decides from it whether the mirror is due; without it a
monthly mirror beside a busy one would run again once its record aged out); and the same two of
each installer folder (its page shows them too); and the newest ``sitegen remove`` of each
channel subdir (--due counts no run into it from before: a monthly mirror of a channel removed
and configured again would wait out its schedule once the removal aged out). A record still
``running`` is never removed: its run may be alive, and the next run marks it interrupted.
A run dated in the future (recorded while the clock ran ahead) protects nothing once its
mirrors have runs dated since, and is the first to go past ``keep_runs``. A record under a
name not its own (a copy) is no part of the ledger and goes at once.
"""

from __future__ import annotations

import logging
import time

from sitegen.config import HistoryRetention
from sitegen.store.site import Site
from sitegen.sync.history import History, newest_first
from sitegen.sync.report import COMPLETED, RUNNING, RunReport

log = logging.getLogger("sitegen")

DAY = 86400.0


def protected_runs(runs: list[RunReport], now: float) -> set[str]:
    """Ids of the newest run of each mirror (and installer folder) and of its newest completed
    run, and of the newest removal of each channel subdir, as ``sitegen status`` and ``--due``
    see them (see newest_first): a run dated after ``now`` (recorded while the clock ran
    ahead) is a mirror's newest only when the mirror has no other, and never its newest
    completed one, which --due does not count either."""
    newest: dict[str, str] = {}
    completed: dict[str, str] = {}
    # The same of each installer folder, its completed runs counted as --due counts them (see
    # installers_completed): none from before a `sitegen remove` of the folder.
    folders: dict[str, str] = {}
    folders_completed: dict[str, str] = {}
    removed: set[str] = set()
    # The newest removal of each channel subdir: --due counts no completed run from before it
    # (see last_completed), however long that run is kept.
    removals: dict[tuple[str, str], str] = {}
    for run in newest_first(runs, now):
        if run.removal and run.started <= now:
            for part in run.channels:
                removals.setdefault((part.channel, part.subdir), run.id)
        for mirror in run.mirrors:
            newest.setdefault(mirror.name, run.id)
            if mirror.status == COMPLETED and run.started <= now:
                completed.setdefault(mirror.name, run.id)
        for installer in run.installers:
            folders.setdefault(installer.path, run.id)
            if run.removal:
                removed.add(installer.path)
                continue
            if (
                installer.status == COMPLETED
                and run.started <= now
                and installer.path not in removed
            ):
                folders_completed.setdefault(installer.path, run.id)
    return {
        *newest.values(),
        *completed.values(),
        *folders.values(),
        *folders_completed.values(),
        *removals.values(),
    }


def expired_runs(runs: list[RunReport], policy: HistoryRetention, now: float) -> list[str]:
    """Ids of the records to remove: past the newest ``keep_runs`` or older than
    ``keep_days``, except the protected ones and those still running. Runs dated after ``now``
    count as the oldest (see newest_first): the first to go past ``keep_runs``."""
    keep = protected_runs(runs, now)
    cutoff = now - policy.keep_days * DAY
    ordered = newest_first(runs, now)
    return [
        run.id
        for index, run in enumerate(ordered)
        if (index >= policy.keep_runs or run.started < cutoff)
        and run.id not in keep
        and run.status != RUNNING
    ]


def prune_history(site: Site, policy: HistoryRetention, now: float | None = None) -> list[str]:
    """Remove the expired run records, and the strays (see History.read); returns the ids of
    the expired. Their pages go at the next render."""
    history = History(site)
    runs, strays = history.read()
    for stray in strays:
        if site.remove(stray):
            log.info("history: removed %s, a copy of a run record under another name", stray.name)
    expired = set(expired_runs(runs, policy, time.time() if now is None else now))
    # A run that reused an unchanged earlier run's results points at that run's filtered-out
    # list: the list stays while a run that stays points at it, and goes with the last one.
    pointed_at = {m.filtered_run for run in runs if run.id not in expired for m in run.mirrors}
    removed = []
    for run in runs:
        if run.id in expired and history.remove(run.id, keep_filtered=run.id in pointed_at):
            removed.append(run.id)
            for listed in {m.filtered_run for m in run.mirrors} - pointed_at - {run.id, ""}:
                history.remove_filtered(listed)
    if removed:
        log.info("history: removed %d run records past the retention", len(removed))
    return removed
