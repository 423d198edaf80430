"""``sitegen status`` of the installer folders (``installers:``): per folder its upstream, the
files it holds and the disk they take, its last run and when it is due next; and the folders a
run mirrored that channels.yaml no longer names, which the web server still serves.

:func:`installer_statuses` is pure (the ledger and the disk measured go in);
:func:`folder_disk` measures a folder as runs see it. Read as ``sitegen.tools.status`` reads
the channels: nothing here takes the site lock or writes anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sitegen.config import SiteConfig, schedule
from sitegen.sync.history import installers_completed
from sitegen.sync.installer_state import stored_names
from sitegen.sync.report import InstallerReport, RunReport


@dataclass(frozen=True)
class InstallerLastRun:
    """One folder's part in the newest run that mirrored it."""

    id: str
    started: float
    ended: float | None
    status: str  # the folder's own result in that run
    run_status: str
    listed: int  # files the upstream index listed (its good rows)
    files: int  # files the folder held once the run was over
    added: int
    updated: int
    removed: int
    downloaded_files: int
    downloaded_bytes: int
    skipped: int  # rows of the index that were no file to mirror
    errors: tuple[str, ...]


@dataclass(frozen=True)
class InstallerStatus:
    path: str
    source: str  # the upstream folder as shown anywhere: never a token
    schedule: str
    files: int  # the files it holds on disk now
    bytes: int  # the disk they take, as du counts it
    last_run: InstallerLastRun | None
    last_completed: float | None  # start of its newest completed run
    next_due: float  # when `mirror --due` runs it next; a folder never completed is due now
    due: bool


@dataclass(frozen=True)
class UnconfiguredFolder:
    """An installer folder a run mirrored (its state is there) that channels.yaml no longer
    names: runs leave it as it is, and the web server serves its files."""

    path: str
    bytes: int
    files: int


def last_run_of(run: RunReport, found: InstallerReport) -> InstallerLastRun:
    return InstallerLastRun(
        id=run.id,
        started=run.started,
        ended=run.ended,
        status=found.status,
        run_status=run.status,
        listed=found.listed,
        files=found.files,
        added=len(found.added),
        updated=len(found.updated),
        removed=len(found.removed),
        downloaded_files=found.downloaded_files,
        downloaded_bytes=found.downloaded_bytes,
        skipped=found.skipped_total,
        errors=tuple(found.errors),
    )


def installer_statuses(
    config: SiteConfig,
    ordered: list[RunReport],
    disk: dict[str, tuple[int, int]],
    now: float,
) -> tuple[InstallerStatus, ...]:
    """The status of every configured folder from the ledger (``ordered`` newest first, as
    :func:`sitegen.sync.history.newest_first` has it) and path -> (bytes, files) on disk."""
    completed_at = installers_completed(ordered, now)
    out = []
    for installer in config.installers:
        last = _last_run(ordered, installer.path)
        completed = completed_at.get(installer.path)
        expression = installer.schedule or schedule.DEFAULT_SCHEDULE
        next_due = now if completed is None else schedule.next_due(expression, completed)
        used, files = disk.get(installer.path, (0, 0))
        out.append(
            InstallerStatus(
                path=installer.path,
                source=installer.display_url(),
                schedule=expression,
                files=files,
                bytes=used,
                last_run=last_run_of(*last) if last else None,
                last_completed=completed,
                next_due=next_due,
                due=next_due <= now,
            )
        )
    return tuple(out)


def _last_run(ordered: list[RunReport], path: str) -> tuple[RunReport, InstallerReport] | None:
    """The newest run of the folder at ``path``; None when none ran it since it was last
    removed (``sitegen remove``: the runs before were of the folder removed)."""
    for run in ordered:
        found = next((i for i in run.installers if i.path == path), None)
        if found is not None:
            return None if run.removal else (run, found)
    return None


def folder_disk(directory: Path) -> tuple[int, int]:
    """(bytes allocated, files) of the files an installer folder holds, as a run counts them
    (:func:`~sitegen.sync.installer_state.stored_names`: not its page nor temporaries), the
    bytes as du counts them (hard links once)."""
    used = 0
    seen: set[tuple[int, int]] = set()
    names = stored_names(directory)
    for name in names:
        try:
            st = os.stat(directory / name, follow_symlinks=False)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            used += st.st_blocks * 512
    return used, len(names)
