"""The journal of a ``sitegen remove`` under way (:mod:`sitegen.tools.remove`): its plan and
the counts of what it deletes, written before the first deletion and dropped once the removal
is recorded in the history (:func:`record_removal`, which records an installer folder's
removal too). Past the last ``repodata.json`` nothing on disk names the removed
subdirs any more; the journal is what lets the same command finish and record the removal
after a crash there.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec

from sitegen.layout import removal_journal_path, shards_dir
from sitegen.store.site import Site
from sitegen.sync.history import History, new_run_id
from sitegen.sync.report import (
    COMPLETED,
    ChannelSubdirReport,
    InstallerReport,
    RunAccess,
    RunReport,
)
from sitegen.wording import counted, human_bytes

log = logging.getLogger("sitegen")


@dataclass(frozen=True)
class Removal:
    """What one ``sitegen remove`` deletes: ``subdirs`` of ``channel``, and the channel's own
    files, pages and state too when ``whole_channel`` (no published subdir of it remains)."""

    path: str  # as asked, site-relative
    channel: str
    subdirs: tuple[str, ...]
    whole_channel: bool

    def subdir_paths(self) -> list[str]:
        return [f"{self.channel}/{s}" for s in self.subdirs]

    def summary(self, files: int, used: int, state: int) -> str:
        """What goes, counted: the words after ``removed`` in the removal's log line and
        after ``would remove`` on the last line of its dry run."""
        if not self.whole_channel:
            what = f"the subdir {self.path}"
        elif self.path == self.channel:
            what = f"the channel {self.path}"
        else:  # a subdir path, the channel's last published subdir: the channel goes too
            what = f"the channel {self.channel} with its last subdir {self.path}"
        return (
            f"{what} ({', '.join(self.subdir_paths())}:"
            f" {counted(files, 'file')}, {human_bytes(used)}, {counted(state, 'file')} of its state)"
        )


@dataclass
class Journal:
    """A removal under way, with what its stages delete counted before the first deletion
    (a re-run counts what it finds left only for subdirs the journal does not hold)."""

    removal: Removal
    started: float
    files: dict[str, int]  # subdir -> files
    bytes: int


def read_journal(site: Site, path: str, *, warn: bool = True) -> Journal | None:
    """The journal of an unfinished removal of ``path`` (None: none, unreadable, or no
    longer describing the site: see :func:`configured_since`; said in the log when ``warn``)."""
    try:
        data = msgspec.json.decode(removal_journal_path(site.root, path).read_bytes())
        removal = Removal(
            path, str(data["channel"]), tuple(data["subdirs"]), bool(data["whole_channel"])
        )
        journal = Journal(removal, float(data["started"]), dict(data["files"]), int(data["bytes"]))
    except FileNotFoundError:
        return None
    except (OSError, msgspec.DecodeError, KeyError, TypeError, ValueError) as exc:
        log.warning("%s: the journal of an earlier removal is unreadable: %s", path, exc)
        return None
    run = configured_since(site, journal)
    if not run:
        return journal
    if warn:
        # Left on disk: the removal planned now writes its own journal over it.
        log.warning(
            "%s: the journal of an unfinished removal is set aside: run %s built %s again since",
            path,
            run,
            removal.channel,
        )
    return None


def configured_since(site: Site, journal: Journal) -> str:
    """The id of a mirror run that built a subdir of the journal's removal after the removal
    began (the channel configured again, then taken out once more), or "". Such a run
    published the subdir anew: the journal's start and counts describe what the abandoned
    removal found, not what a removal deletes now, and its history record would say so."""
    removal = journal.removal
    subdirs = set(removal.subdirs)
    for run in History(site).runs():
        if run.removal or run.started <= journal.started:
            continue
        if any(c.channel == removal.channel and c.subdir in subdirs for c in run.channels):
            return run.id
    return ""


def _write(site: Site, journal: Journal) -> None:
    removal = journal.removal
    target = removal_journal_path(site.root, removal.path)
    target.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "channel": removal.channel,
        "subdirs": list(removal.subdirs),
        "whole_channel": removal.whole_channel,
        "started": journal.started,
        "files": journal.files,
        "bytes": journal.bytes,
    }
    site.write_bytes(target, msgspec.json.encode(data))


def planned(site: Site, removal: Removal) -> Journal:
    """The journal :func:`begin` writes, unwritten (what ``--dry-run`` counts): an earlier
    one's counts and start, plus what is found in the subdirs it did not hold."""
    # The removal was planned from the journal already, which said why it was set aside.
    journal = read_journal(site, removal.path, warn=False) or Journal(removal, time.time(), {}, 0)
    journal.removal = removal
    for subdir in removal.subdirs:
        if subdir not in journal.files:
            files, used = measure(site.path(removal.channel, subdir))
            journal.files[subdir] = files
            journal.bytes += used
    return journal


def begin(site: Site, removal: Removal) -> Journal:
    """The journal of this removal (:func:`planned`), written before anything goes."""
    journal = planned(site, removal)
    _write(site, journal)
    return journal


def measure(directory: Path) -> tuple[int, int]:
    """(files, bytes) the removal deletes from a subdir's folder: every file in it and in its
    shards folder, ``repodata.json`` too; bytes as du counts them (hard links once), as
    ``sitegen status`` does. A folder of anything else stays, and is not counted."""
    files = used = 0
    seen: set[tuple[int, int]] = set()
    shards = shards_dir(directory)
    folders = [directory, shards] if shards.is_dir() and not shards.is_symlink() else [directory]
    for folder in folders:
        try:
            with os.scandir(folder) as entries:
                found = [
                    e.stat(follow_symlinks=False)
                    for e in entries
                    if not e.is_dir(follow_symlinks=False)
                ]
        except FileNotFoundError:
            continue
        for st in found:
            files += 1
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                used += st.st_blocks * 512
    return files, used


def record_removal(
    site: Site,
    path: str,
    started: float,
    access: RunAccess,
    *,
    channels: list[ChannelSubdirReport] | None = None,
    installers: list[InstallerReport] | None = None,
) -> str:
    """Save the ledger record of a ``sitegen remove`` of ``path`` (what went, as ``channels``
    or ``installers`` parts); its id, "" when it could not be saved (logged: the removal
    itself stands)."""
    run = RunReport(
        id=new_run_id(started),
        started=started,
        ended=time.time(),
        status=COMPLETED,
        pid=os.getpid(),
        options={"remove": path},
        channels=channels or [],
        installers=installers or [],
        access=access,
    )
    try:
        History(site).save(run)
    except OSError as exc:
        log.error("could not record the removal: %s", exc.strerror or exc)
        return ""
    return run.id
