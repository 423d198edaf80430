"""The journal of a ``sitegen remove`` under way (:mod:`sitegen.tools.remove`): its plan and
the counts of what it deletes, written before the first deletion and dropped once the removal
is recorded in the history (:func:`record_removal`, which records an installer folder's
removal too). Past the last ``repodata.json`` nothing on disk names the removed
subdirs any more; the journal is what lets the same command finish and record the removal
after a crash there.

A run that publishes a subdir of an unfinished removal again (its channel configured once more)
sets the journal aside (:func:`configured_since`); before it publishes, it records what the
removal had deleted (:func:`record_unfinished`), which nothing else would count.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Set
from dataclasses import dataclass
from pathlib import Path

import msgspec

from sitegen.layout import (
    REPODATA,
    removal_journal_path,
    removal_journals_dir,
    removal_of_journal,
    shards_dir,
)
from sitegen.store.links_out import LeadsOutError, state_link_out
from sitegen.store.site import Site
from sitegen.sync.history import History, new_run_id, noted_access
from sitegen.sync.report import (
    COMPLETED,
    INTERRUPTED,
    ChannelSubdirReport,
    InstallerReport,
    RunAccess,
    RunReport,
)
from sitegen.wording import counted, human_bytes

log = logging.getLogger("sitegen")

REMOVED = "removed"  # a subdir's status in the run record of a removal
# The error of the record of a removal that a run found unfinished (see record_unfinished).
UNFINISHED = "the removal was interrupted before it finished, and its channel configured again"


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


def journals_link_out(site: Site) -> str | None:
    """``<folder>: <why>`` when the journals' folder is reached through a link planted in the
    private state (see :func:`~sitegen.store.links_out.state_link_out`): nothing is read,
    written or deleted through it, as what it leads to is not the state's."""
    return state_link_out(site, removal_journals_dir(site.root))


def read_journal(site: Site, path: str, *, warn: bool = True) -> Journal | None:
    """The journal of an unfinished removal of ``path`` (None: none, unreadable, behind a link
    (:func:`journals_link_out`), or no longer describing the site: see
    :func:`configured_since`; said in the log when ``warn``)."""
    if journals_link_out(site) is not None:
        return None
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
    why = journals_link_out(site)
    if why is not None:
        raise LeadsOutError(why)
    removal = journal.removal
    target = removal_journal_path(site.root, removal.path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # A removal killed while writing its journal left a temporary: cleared by the removal
    # that finishes it, or it would keep the emptied folder (and fail verify) until a run.
    site.clean_temp_files(target.parent)
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


def subdir_files(directory: Path) -> list[tuple[Path, os.stat_result]]:
    """The files the removal deletes from a subdir's folder, with their stat: every file in it
    and in its shards folder, ``repodata.json`` too. A folder of anything else stays."""
    shards = shards_dir(directory)
    folders = [directory, shards] if shards.is_dir() and not shards.is_symlink() else [directory]
    found = []
    for folder in folders:
        try:
            with os.scandir(folder) as entries:
                found += [
                    (Path(e.path), e.stat(follow_symlinks=False))
                    for e in entries
                    if not e.is_dir(follow_symlinks=False)
                ]
        except FileNotFoundError:
            continue
    return found


def measure(directory: Path) -> tuple[int, int]:
    """(files, bytes) the removal deletes from a subdir's folder (:func:`subdir_files`);
    bytes as du counts them (hard links once), as ``sitegen status`` does."""
    files = used = 0
    seen: set[tuple[int, int]] = set()
    for _path, st in subdir_files(directory):
        files += 1
        if (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            used += st.st_blocks * 512
    return files, used


def still_there(directory: Path, started: float) -> int:
    """How many of the files a removal that began at ``started`` counted in a subdir's folder
    are still there: those not written since, and ``repodata.json``, which it rewrites (naming
    nothing) and deletes last. A page rendered into the folder meanwhile is none of them."""
    return sum(
        1
        for path, st in subdir_files(directory)
        if st.st_mtime < started or (path.name == REPODATA and path.parent == directory)
    )


def record_removal(
    site: Site,
    path: str,
    started: float,
    access: RunAccess,
    *,
    channels: list[ChannelSubdirReport] | None = None,
    installers: list[InstallerReport] | None = None,
    interrupted: bool = False,
) -> str:
    """Save the ledger record of a ``sitegen remove`` of ``path`` (what went, as ``channels``
    or ``installers`` parts); its id, "" when it could not be saved (logged: the removal
    itself stands). An ``interrupted`` one is recorded as a killed run is: its end unknown."""
    run = RunReport(
        id=new_run_id(started),
        started=started,
        ended=None if interrupted else time.time(),
        status=INTERRUPTED if interrupted else COMPLETED,
        pid=os.getpid(),
        options={"remove": path},
        channels=channels or [],
        errors=[UNFINISHED] if interrupted else [],
        installers=installers or [],
        access=access,
    )
    try:
        History(site).save(run)
    except OSError as exc:
        log.error("could not record the removal: %s", exc.strerror or exc)
        return ""
    return run.id


def record_unfinished(site: Site, configured: Set[str]) -> list[str]:
    """Record, as an interrupted removal, what each unfinished removal of a subdir in
    ``configured`` (``<channel>/<subdir>``) deleted before it stopped: the run about to
    publish the subdir anew sets its journal aside, after which nothing on disk tells what
    went. The journal then counts only what is left, from now on, so that the removal that
    finishes it (the subdir not built meanwhile) records each file once. Call under the site
    lock, before anything is published; returns the paths whose removals were recorded."""
    recorded: list[str] = []
    linked = journals_link_out(site)
    if linked is not None:
        log.warning("%s: the journals of removals under way are not read through it", linked)
        return recorded
    try:
        names = sorted(os.listdir(removal_journals_dir(site.root)))
    except OSError:
        return recorded  # no removal under way
    for name in names:
        path = removal_of_journal(name)
        journal = read_journal(site, path, warn=False) if path else None
        # Set aside already (None): built since, what it deleted is not known any more.
        if journal is None or configured.isdisjoint(journal.removal.subdir_paths()):
            continue
        removal = journal.removal
        folders = {s: site.path(removal.channel, s) for s in removal.subdirs}
        gone = {
            s: journal.files.get(s, 0) - still_there(d, journal.started) for s, d in folders.items()
        }
        parts = [
            ChannelSubdirReport(channel=removal.channel, subdir=s, status=REMOVED, deleted_files=n)
            for s, n in gone.items()
            if n > 0
        ]
        if not parts:
            continue  # stopped before its first deletion, or recorded so already
        # As the removal would have recorded it: the channel's access when it was last built.
        access = RunAccess(
            channels={removal.channel: noted_access(History(site).runs(), removal.channel)}
        )
        if not record_removal(
            site, path, journal.started, access, channels=parts, interrupted=True
        ):
            continue
        # A new start, so that the record of the removal that finishes it has an id of its own.
        journal.started = time.time()
        left = {s: measure(d) for s, d in folders.items()}
        journal.files = {s: files for s, (files, _used) in left.items()}
        journal.bytes = sum(used for _files, used in left.values())
        try:
            _write(site, journal)
        except OSError as exc:
            log.error("%s: could not update the journal of its removal: %s", path, exc)
        recorded.append(path)
    return recorded
