"""``sitegen status``: per mirror its filters, its last run, when it is due next, whether a
run holds the site now, the channels frozen, the disk each channel uses, and the subdirs still
published that channels.yaml no longer names.

:func:`build_status` is pure (the run ledger, the lock holder and the disk usage go in, a
model comes out); :func:`collect_status` reads them from the site, and :func:`format_status`
and :func:`status_json` present the model to a person or a program. Nothing here takes the
site lock or writes anything, so it is safe to call while a run works.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sitegen.config import SiteConfig, schedule
from sitegen.layout import progress_path
from sitegen.store.frozen import FreezeEntry, FrozenChannels, FrozenStateError
from sitegen.store.lock import lock_holder
from sitegen.store.site import Site
from sitegen.sync.history import History, last_completed, newest_first
from sitegen.sync.progress import human_bytes
from sitegen.sync.report import RUNNING, RunReport, iso_utc, new_files_text
from sitegen.tools.site_disk import (
    UnconfiguredSubdir,
    configured_subdirs,
    disk_usage,
    unconfigured_subdirs,
)
from sitegen.tools.status_filters import filters_in_force, filters_text


@dataclass(frozen=True)
class LastRun:
    """One mirror's part in the newest run that synced it."""

    id: str
    started: float
    ended: float | None
    status: str  # the mirror's own result in that run
    run_status: str
    records_kept: int
    packages: int  # published in the mirror's channel after that run
    added: int
    updated: int
    removed: int
    downloaded_files: int
    downloaded_bytes: int
    local_files: int  # added from local sources' folders, not downloaded
    local_bytes: int
    errors: tuple[str, ...]


@dataclass(frozen=True)
class MirrorStatus:
    name: str
    channel: str
    schedule: str
    last_run: LastRun | None
    last_completed: float | None  # start of its newest completed run
    next_due: float  # when `mirror --due` runs it next; a mirror never completed is due now
    due: bool
    source: str = ""  # the URL or folder it reads, never a token
    mode: str = "active"
    subdirs: tuple[str, ...] = ()
    # Per level (site, channel, mirror) the filters it sets, as channels.yaml writes them.
    filters: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class ActiveRun:
    """The run that holds the site lock now, with what its ledger record tells of it."""

    pid: int
    id: str | None = None
    started: float | None = None
    options: dict[str, Any] = field(default_factory=dict)
    # Its downloads so far (files, total_files, failed, bytes, total_bytes, updated), while it
    # downloads; None before and after.
    progress: dict[str, Any] | None = None


@dataclass(frozen=True)
class UnfinishedRun:
    """A run still marked running in the ledger that no live run holds the lock for: it was
    killed (the next run marks it interrupted). Its record names no mirror yet, so without
    this line nothing in the status would tell of it."""

    id: str
    started: float
    pid: int


@dataclass(frozen=True)
class ChannelDisk:
    channel: str
    bytes: int
    files: int


@dataclass(frozen=True)
class FrozenChannel:
    """A channel whose published state runs keep: by ``frozen: true`` in channels.yaml
    (``by`` etc. None) or by ``sitegen freeze``."""

    channel: str
    in_config: bool
    by: str | None = None
    reason: str | None = None
    when: float | None = None


@dataclass(frozen=True)
class SiteStatus:
    site: str
    now: float
    active: ActiveRun | None
    mirrors: tuple[MirrorStatus, ...]
    channels: tuple[ChannelDisk, ...]
    unfinished: tuple[UnfinishedRun, ...] = ()
    frozen: tuple[FrozenChannel, ...] = ()
    # Why every channel counts as frozen (the freeze file cannot be read), or None.
    frozen_error: str | None = None
    # Subdirs on disk, still served, that no configured channel names (see tools.site_disk).
    unconfigured: tuple[UnconfiguredSubdir, ...] = ()


# ------------------------------------------------------------------ the model


def last_run_of(name: str, channel: str, run: RunReport) -> LastRun:
    mirror = next(m for m in run.mirrors if m.name == name)
    subdirs = [c for c in run.channels if c.channel == channel]
    return LastRun(
        id=run.id,
        started=run.started,
        ended=run.ended,
        status=mirror.status,
        run_status=run.status,
        records_kept=sum(s.kept for s in mirror.subdirs.values()),
        packages=sum(c.packages for c in subdirs),
        added=sum(len(c.added) for c in subdirs),
        updated=sum(len(c.updated) for c in subdirs),
        removed=sum(len(c.removed) for c in subdirs),
        downloaded_files=sum(c.downloaded_files for c in subdirs),
        downloaded_bytes=sum(c.downloaded_bytes for c in subdirs),
        local_files=sum(c.local_files for c in subdirs),
        local_bytes=sum(c.local_bytes for c in subdirs),
        errors=tuple(mirror.errors) + tuple(e for c in subdirs for e in c.errors),
    )


def build_status(
    config: SiteConfig,
    runs: list[RunReport],
    holder: int | None,
    disk: dict[str, tuple[int, int]],
    now: float,
    progress: dict[str, Any] | None = None,
    freezes: dict[str, FreezeEntry] | None = None,
    freezes_error: str | None = None,
    unconfigured: tuple[UnconfiguredSubdir, ...] = (),
) -> SiteStatus:
    """The status of every configured mirror from the ledger (any order), the pid holding the
    lock (None: no run) and channel -> (bytes, files) on disk."""
    # Runs recorded while the clock ran ahead go last, and do not count as completed: as
    # for `mirror --due` (see sitegen.sync.history.last_completed).
    ordered = newest_first(runs, now)
    completed_at = last_completed(runs, now)
    mirrors = []
    for channel, mirror in config.mirrors:
        mine = [r for r in ordered if any(m.name == mirror.name for m in r.mirrors)]
        completed = completed_at.get(mirror.name)
        expression = mirror.schedule or schedule.DEFAULT_SCHEDULE
        next_due = now if completed is None else schedule.next_due(expression, completed)
        mirrors.append(
            MirrorStatus(
                name=mirror.name,
                channel=channel.path,
                schedule=expression,
                last_run=last_run_of(mirror.name, channel.path, mine[0]) if mine else None,
                last_completed=completed,
                next_due=next_due,
                due=next_due <= now,
                source=mirror.display_url(),
                mode=mirror.mode,
                subdirs=mirror.subdirs,
                filters=filters_in_force(config.filter_levels(channel, mirror)),
            )
        )
    active = None
    if holder is not None:
        # The ledger names the run by its pid; a record still "running" from a killed run
        # has another pid (or the same one reused, hence the newest).
        record = next((r for r in ordered if r.status == RUNNING and r.pid == holder), None)
        active = ActiveRun(
            pid=holder,
            id=record.id if record else None,
            started=record.started if record else None,
            options=dict(record.options) if record else {},
            # A file left by a killed run names another pid: not this run's progress.
            progress=progress if progress and progress.get("pid") == holder else None,
        )
    channels = tuple(ChannelDisk(c.path, *disk.get(c.path, (0, 0))) for c in config.channels)
    # A run rewrites its record before it releases the lock, so one still "running" whose pid
    # does not hold the lock died before it finished.
    unfinished = tuple(
        UnfinishedRun(r.id, r.started, r.pid)
        for r in ordered
        if r.status == RUNNING and (active is None or r.id != active.id)
    )
    freezes = freezes or {}
    frozen = tuple(
        FrozenChannel(c.path, True)
        if c.frozen
        else FrozenChannel(c.path, False, entry.by, entry.reason, entry.when)
        for c in config.channels
        if c.frozen or (entry := freezes.get(c.path)) is not None
    )
    return SiteStatus(
        site=str(config.output),
        now=now,
        active=active,
        mirrors=tuple(mirrors),
        channels=channels,
        unfinished=unfinished,
        frozen=frozen,
        frozen_error=freezes_error,
        unconfigured=unconfigured,
    )


# ------------------------------------------------------------------ reading the site


def collect_status(config: SiteConfig, now: float | None = None) -> SiteStatus:
    site = Site(config.output)
    roots = {c.path: site.root / c.path for c in config.channels}
    disk = {
        path: disk_usage(root, set(roots.values()) - {root})
        for path, root in roots.items()
        if root.is_dir()
    }
    try:
        freezes, freezes_error = FrozenChannels(site).load(), None
    except FrozenStateError as exc:
        freezes, freezes_error = {}, str(exc)
    return build_status(
        config,
        History(site).runs(),
        lock_holder(site.state_dir),
        disk,
        time.time() if now is None else now,
        _read_progress(progress_path(site.root)),
        freezes,
        freezes_error,
        tuple(unconfigured_subdirs(site.root, configured_subdirs(config))),
    )


def _read_progress(path: Path) -> dict[str, Any] | None:
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


# ------------------------------------------------------------------ presenting it


def span(seconds: float) -> str:
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def status_json(status: SiteStatus) -> dict[str, Any]:
    """The model for programs: times as ISO 8601 UTC strings."""

    def last(run: LastRun | None) -> dict[str, Any] | None:
        if run is None:
            return None
        return {**asdict(run), "started": iso_utc(run.started), "ended": iso_utc(run.ended)}

    active = None
    if status.active is not None:
        active = {**asdict(status.active), "started": iso_utc(status.active.started)}
    return {
        "site": status.site,
        "now": iso_utc(status.now),
        "running": active,
        "mirrors": [
            {
                "name": m.name,
                "channel": m.channel,
                "schedule": m.schedule,
                "source": m.source,
                "mode": m.mode,
                "subdirs": list(m.subdirs),
                "filters": m.filters,
                "last_run": last(m.last_run),
                "last_completed": iso_utc(m.last_completed),
                "next_due": iso_utc(m.next_due),
                "due": m.due,
            }
            for m in status.mirrors
        ],
        "channels": [asdict(c) for c in status.channels],
        "unfinished": [{**asdict(u), "started": iso_utc(u.started)} for u in status.unfinished],
        "frozen": [{**asdict(f), "when": iso_utc(f.when)} for f in status.frozen],
        "frozen_error": status.frozen_error,
        "unconfigured": [asdict(u) for u in status.unconfigured],
    }


def format_status(status: SiteStatus) -> str:
    """The model for a person at a terminal or in a cron log."""
    lines = [f"site: {status.site}"]
    if status.active is None:
        lines.append("running: no run holds the site now")
    else:
        run = status.active
        since = (
            f", run {run.id} started {iso_utc(run.started)} ({span(status.now - run.started)} ago)"
            if run.id and run.started is not None
            else ""
        )
        lines.append(f"running: pid {run.pid} holds the site lock{since}")
        if run.progress:
            done = run.progress
            lines.append(
                f"  downloading: {done.get('files', 0)}/{done.get('total_files', 0)} files"
                f" ({done.get('failed', 0)} failed),"
                f" {human_bytes(done.get('bytes', 0))} of {human_bytes(done.get('total_bytes', 0))}"
            )
    lines.extend(
        f"unfinished: run {u.id} (pid {u.pid}) started {iso_utc(u.started)} and did not finish;"
        " the next run records it as interrupted"
        for u in status.unfinished
    )
    for m in status.mirrors:
        lines.append(f"mirror {m.name} (channel {m.channel}, schedule {m.schedule})")
        lines.append(f"  source: {m.source}, {m.mode}, subdirs {', '.join(m.subdirs)}")
        lines.append(f"  filters: {filters_text(m.filters)}")
        run = m.last_run
        if run is None:
            lines.append("  last run: never")
        else:
            took = f", took {span(run.ended - run.started)}" if run.ended else ""
            lines.append(
                f"  last run: {run.id}, {run.status}, started {iso_utc(run.started)}{took}"
            )
            lines.append(
                f"    {run.records_kept} records kept; channel: {run.packages} files published"
                f" (+{run.added} ~{run.updated} -{run.removed}), "
                + new_files_text(
                    (run.downloaded_files, run.downloaded_bytes),
                    (run.local_files, run.local_bytes),
                )
            )
            lines.extend(f"    error: {e}" for e in run.errors[:5])
            if len(run.errors) > 5:
                lines.append(f"    ... {len(run.errors) - 5} more errors")
        if m.last_completed is None:
            lines.append("  next due: now (never completed)")
        elif m.due:
            lines.append(f"  next due: now (since {iso_utc(m.next_due)})")
        else:
            lines.append(
                f"  next due: {iso_utc(m.next_due)} (in {span(m.next_due - status.now)});"
                f" last completed {iso_utc(m.last_completed)}"
            )
    if status.frozen_error:
        lines.append(
            f"frozen: every channel (runs keep them all as published): {status.frozen_error}"
        )
    for f in status.frozen:
        if f.in_config:
            why = "frozen: true in channels.yaml"
        else:
            reason = f": {f.reason}" if f.reason else ""
            why = (
                f"by {f.by or 'sitegen freeze'} at {iso_utc(f.when)}{reason};"
                f" lift with `sitegen unfreeze {f.channel}`"
            )
        lines.append(f"frozen: {f.channel} (runs keep its published state; {why})")
    lines.append("disk used:")
    width = max((len(c.channel) for c in status.channels), default=0)
    for c in status.channels:
        lines.append(f"  {c.channel:<{width}}  {human_bytes(c.bytes)} in {c.files} files")
    lines.extend(
        f"not configured, still served: {u.path} ({human_bytes(u.bytes)} in {u.files} files):"
        " no channel in the configuration publishes it, so runs leave it as it is and clients"
        f" still read it; `sitegen remove {u.path}` stops serving it"
        for u in status.unconfigured
    )
    return "\n".join(lines) + "\n"
