"""The journal of a ``sitegen remove`` under way (:mod:`sitegen.tools.remove`): its plan and
the counts of what it deletes, written before the first deletion and dropped once the removal
is recorded in the history. Past the last ``repodata.json`` nothing on disk names the removed
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

from sitegen.layout import REPODATA, removal_journal_path
from sitegen.store.site import Site

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


@dataclass
class Journal:
    """A removal under way, with what its stages delete counted before the first deletion
    (a re-run counts what it finds left only for subdirs the journal does not hold)."""

    removal: Removal
    started: float
    files: dict[str, int]  # subdir -> files
    bytes: int


def read_journal(site: Site, path: str) -> Journal | None:
    """The journal of an unfinished removal of ``path`` (None: none, or unreadable)."""
    try:
        data = msgspec.json.decode(removal_journal_path(site.root, path).read_bytes())
        removal = Removal(
            path, str(data["channel"]), tuple(data["subdirs"]), bool(data["whole_channel"])
        )
        return Journal(removal, float(data["started"]), dict(data["files"]), int(data["bytes"]))
    except FileNotFoundError:
        return None
    except (OSError, msgspec.DecodeError, KeyError, TypeError, ValueError) as exc:
        log.warning("%s: the journal of an earlier removal is unreadable: %s", path, exc)
        return None


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


def begin(site: Site, removal: Removal) -> Journal:
    """The journal of this removal, written before anything goes: an earlier one's counts
    and start, plus what is found in the subdirs it did not hold."""
    journal = read_journal(site, removal.path) or Journal(removal, time.time(), {}, 0)
    journal.removal = removal
    for subdir in removal.subdirs:
        if subdir not in journal.files:
            files, used = _measure(site.path(removal.channel, subdir))
            journal.files[subdir] = files
            journal.bytes += used
    _write(site, journal)
    return journal


def _measure(directory: Path) -> tuple[int, int]:
    """(files, bytes) that :func:`sitegen.tools.remove.remove_files` deletes from a subdir's own folder."""
    files = used = 0
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.name != REPODATA and not entry.is_dir(follow_symlinks=False):
                    files += 1
                    used += entry.stat(follow_symlinks=False).st_size
    except FileNotFoundError:
        pass
    return files, used
