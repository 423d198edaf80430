"""``sitegen status``: per mirror its filters, its last run, when it is due next, whether a
run holds the site now, the channels frozen, the disk each channel uses, and the subdirs (and
their channels) still published that channels.yaml no longer names; the installer folders likewise
(:mod:`sitegen.tools.status_installers`).

:func:`build_status` is pure (the run ledger, the lock holder and the disk usage go in, a
model comes out) and :func:`collect_status` reads them from the site; ``status_format``
presents the model to a person or a program. Nothing here takes the site lock or writes
anything, so it is safe to call while a run works.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sitegen.config import SiteConfig, make_scrub, schedule
from sitegen.layout import progress_path
from sitegen.store.frozen import FreezeEntry, FrozenChannels, FrozenStateError
from sitegen.store.lock import lock_holder, may_have_written, process_started
from sitegen.store.site import Site
from sitegen.sync.history import History, last_completed, newest_first
from sitegen.sync.report import RUNNING, RunReport, UnmatchedEntry
from sitegen.tools.site_disk import (
    UnconfiguredChannel,
    UnconfiguredSubdir,
    disk_usage,
    installer_folders,
    unconfigured_channels,
    unconfigured_installers,
    unconfigured_subdirs,
)
from sitegen.tools.status_filters import filters_in_force
from sitegen.tools.status_installers import (
    InstallerStatus,
    UnconfiguredFolder,
    folder_disk,
    installer_statuses,
)


@dataclass(frozen=True)
class LastRun:
    """One mirror's part in the newest run that synced it."""

    id: str
    started: float
    ended: float | None
    status: str  # the mirror's own result in that run
    run_status: str
    records_kept: int
    # Of those, the ones an exception (`except`) took back, by the reason they were taken back
    # from.
    excepted: dict[str, int]
    packages: int  # published in the mirror's channel after that run
    added: int
    updated: int
    removed: int
    downloaded_files: int
    downloaded_bytes: int
    local_files: int  # added from local sources' folders, not downloaded
    local_bytes: int
    errors: tuple[str, ...]
    # The entries of its filters' lists that matched no record (see UnmatchedEntry).
    unmatched: tuple[UnmatchedEntry, ...]


@dataclass(frozen=True)
class MirrorStatus:
    name: str
    channel: str
    schedule: str
    last_run: LastRun | None
    last_completed: float | None  # start of its newest completed run (see last_completed)
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
    kept: int = 0  # of ``files``, those kept unlisted (keep_removed, see sitegen.sync.keep)


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
    # The own files (channeldata.json, pages) of the channels of those subdirs that are no
    # configured channel.
    unconfigured_channels: tuple[UnconfiguredChannel, ...] = ()
    installers: tuple[InstallerStatus, ...] = ()
    # Installer folders on disk, still served, that channels.yaml no longer names.
    unconfigured_installers: tuple[UnconfiguredFolder, ...] = ()


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
        excepted=mirror.excepted_totals(),
        packages=sum(c.packages for c in subdirs),
        added=sum(len(c.added) for c in subdirs),
        updated=sum(len(c.updated) for c in subdirs),
        removed=sum(len(c.removed) for c in subdirs),
        downloaded_files=sum(c.downloaded_files for c in subdirs),
        downloaded_bytes=sum(c.downloaded_bytes for c in subdirs),
        local_files=sum(c.local_files for c in subdirs),
        local_bytes=sum(c.local_bytes for c in subdirs),
        errors=tuple(mirror.errors) + tuple(e for c in subdirs for e in c.errors),
        unmatched=tuple(mirror.unmatched),
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
    kept: dict[str, int] | None = None,
    installer_disk: dict[str, tuple[int, int]] | None = None,
    unconfigured_folders: tuple[UnconfiguredFolder, ...] = (),
    unconfigured_roots: tuple[UnconfiguredChannel, ...] = (),
    holder_started: float | None = None,
) -> SiteStatus:
    """The status of every configured mirror from the ledger (any order), the pid holding the
    lock (None: no run) and when that process started (None: not known), channel -> (bytes,
    files) on disk and -> files kept unlisted, and of every installer folder from the ledger
    and its path -> (bytes, files) on disk."""
    # Runs recorded while the clock ran ahead go last, and do not count as completed: as
    # for `mirror --due` (see sitegen.sync.history.last_completed).
    ordered = newest_first(runs, now)
    completed_at = last_completed(runs, now, config)
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
        # has another pid, or the same one reused by a process started since (a dry run or
        # a verify --repair after a reboot): not the holder's record, nor its progress file.
        record = next(
            (
                r
                for r in ordered
                if r.status == RUNNING
                and r.pid == holder
                and may_have_written(holder_started, r.started)
            ),
            None,
        )
        ours = (
            progress is not None
            and progress.get("pid") == holder
            and isinstance(updated := progress.get("updated"), (int, float))
            and may_have_written(holder_started, updated)
        )
        active = ActiveRun(
            pid=holder,
            id=record.id if record else None,
            started=record.started if record else None,
            options=dict(record.options) if record else {},
            progress=progress if ours else None,
        )
    kept = kept or {}
    channels = tuple(
        ChannelDisk(c.path, *disk.get(c.path, (0, 0)), kept.get(c.path, 0)) for c in config.channels
    )
    # A run rewrites its record before it releases the lock, so one still "running" whose pid
    # does not hold the lock died before it finished.
    unfinished = tuple(
        UnfinishedRun(r.id, r.started, r.pid)
        for r in ordered
        if r.status == RUNNING and (active is None or r.id != active.id)
    )
    freezes = freezes or {}
    # A freeze file an earlier sitegen wrote holds the operator's text as typed.
    scrub = make_scrub(config)
    frozen = tuple(
        FrozenChannel(c.path, True)
        if c.frozen
        else FrozenChannel(c.path, False, scrub(entry.by), scrub(entry.reason), entry.when)
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
        unconfigured_channels=unconfigured_roots,
        installers=installer_statuses(config, ordered, installer_disk or {}, now),
        unconfigured_installers=unconfigured_folders,
    )


# ------------------------------------------------------------------ reading the site


def collect_status(config: SiteConfig, now: float | None = None) -> SiteStatus:
    site = Site(config.output)
    folders = installer_folders(config)
    unconfigured = tuple(unconfigured_subdirs(site.root, config.subdir_paths(), True, folders))
    roots = {c.path: site.root / c.path for c in config.channels}
    gone = {path: site.root / path for path in unconfigured_channels(unconfigured, roots)}
    # Nested channels count as themselves, and subdirs no longer configured on their own line;
    # so does a channel no longer configured (its channeldata.json, pages), even one nested
    # in a configured channel.
    own = {*roots.values(), *gone.values()} | {site.root / u.path for u in unconfigured}
    disk = {path: disk_usage(root, own - {root}) for path, root in roots.items() if root.is_dir()}
    unconfigured_roots = tuple(
        UnconfiguredChannel(path, *disk_usage(root, own - {root})) for path, root in gone.items()
    )
    try:
        freezes, freezes_error = FrozenChannels(site).load(), None
    except FrozenStateError as exc:
        freezes, freezes_error = {}, str(exc)
    holder = lock_holder(site.state_dir)
    return build_status(
        config,
        History(site).runs(),
        holder,
        disk,
        time.time() if now is None else now,
        _read_progress(progress_path(site.root)),
        freezes,
        freezes_error,
        unconfigured,
        _kept_counts(site, config),
        {i.path: folder_disk(site.root / i.path) for i in config.installers},
        tuple(
            UnconfiguredFolder(path, *folder_disk(site.root / path))
            for path in unconfigured_installers(config)
        ),
        unconfigured_roots,
        None if holder is None else process_started(holder),
    )


def _kept_counts(site: Site, config: SiteConfig) -> dict[str, int]:
    """The files each channel that keeps removed ones keeps unlisted now."""
    keeping = [c for c in config.channels if c.keep_removed]
    if not keeping:
        return {}
    # Imported here: the run's keep logic brings the filters with it, which status needs for
    # no channel but one that keeps removed files.
    from sitegen.sync.keep import still_kept

    return {c.path: sum(len(still_kept(site, c, s)) for s in c.subdirs) for c in keeping}


def _read_progress(path: Path) -> dict[str, Any] | None:
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None
