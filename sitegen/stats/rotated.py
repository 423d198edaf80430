"""A log's files: the live log and its rotated siblings, as found in its directory.

Reading them takes a while, and logrotate may rename them meanwhile: what tells each file
apart (device and inode) is listed too, for a count to see whether its files stayed as it
found them (:func:`moved_since`).
"""

from __future__ import annotations

import os
from pathlib import Path

# A log's file as listed: modification time, 1 for the live log (else 0), device, inode.
Listed = tuple[int, int, int, int]


def rotated_siblings(log: Path) -> list[Path]:
    """``log`` and its rotated files (``log.1``, ``log.2.gz``, ``log-20261205.gz``), oldest
    first (by modification time, the live log last on a tie).

    A directory that is gone holds none; one that cannot be listed (permissions) raises
    OSError: its files may still be there. A file that cannot be looked at (a link into a
    directory without permission) is listed first, for its reading to fail."""
    return oldest_first(list_siblings(log))


def oldest_first(listed: dict[Path, Listed]) -> list[Path]:
    """The files of a listing by modification time, the live log last on a tie."""
    return sorted(listed, key=lambda p: (*listed[p][:2], p.name))


def list_siblings(log: Path) -> dict[Path, Listed]:
    """``log`` and its rotated files as :func:`rotated_siblings` finds them, each with what
    tells it apart (:data:`Listed`; -1s for a file that cannot be looked at)."""
    found: dict[Path, Listed] = {}
    try:
        entries = list(os.scandir(log.parent))
    except (FileNotFoundError, NotADirectoryError):
        return {}
    for entry in entries:
        name = entry.name
        if name != log.name and not name.startswith((log.name + ".", log.name + "-")):
            continue
        try:
            if not entry.is_file():
                continue
            st = entry.stat()
            mtime, device, inode = st.st_mtime_ns, st.st_dev, st.st_ino
        except FileNotFoundError:  # gone since the listing (a link's target too)
            continue
        except OSError:
            mtime = device = inode = -1
        found[log.parent / name] = (mtime, 1 if name == log.name else 0, device, inode)
    return found


def _identities(listed: dict[Path, Listed]) -> set[tuple[Path, int, int]]:
    """Which file each name of a listing was (the times left out: a live log grows)."""
    return {(path, device, inode) for path, (_m, _l, device, inode) in listed.items()}


def moved_since(log: Path, listed: dict[Path, Listed]) -> bool:
    """Whether the files of ``log`` are no longer those ``listed`` (rotated meanwhile)."""
    try:
        return _identities(list_siblings(log)) != _identities(listed)
    except OSError:
        return True
