"""The free-space guard: a run whose new files would not fit, or would leave less than
``min_free_space`` free, stops before its first download and publishes nothing. A single file
larger than all the free space of its filesystem (an upstream record claiming a tebibyte) can
never be stored: it alone fails, and the guard weighs the rest.

Checked per filesystem, since a channel directory may be a mount or a symlink of its own. Only
the new package files count (the downloads, and the files of local sources copied in rather
than hard-linked): the metadata a run writes is small beside them, and the files it prunes go
only after the new metadata is published, so they free nothing while the new ones arrive.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sitegen.net.download_job import DownloadJob
from sitegen.sync.progress import human_bytes

log = logging.getLogger("sitegen")


@dataclass(frozen=True)
class Filesystem:
    """What the downloads of one filesystem need, and what it has."""

    where: Path  # where it is mounted, to name it in the message
    needed: int
    free: int


# A file to arrive: where it will be stored, and its size.
Arrival = tuple[Path, int]


def space_problem(fs: Filesystem, minimum: int) -> str | None:
    """Why the new files cannot be stored on this filesystem, or None when they fit."""
    left = fs.free - fs.needed
    if fs.needed > fs.free:
        why = "they would not fit"
    elif left < minimum:
        why = f"that would leave {human_bytes(max(left, 0))}, less than min_free_space"
        why += f" {human_bytes(minimum)}"
    else:
        return None
    return (
        f"not enough free space on the filesystem mounted at {fs.where}: the run's new files"
        f" need {human_bytes(fs.needed)}"
        f" ({fs.needed} bytes), {human_bytes(fs.free)} ({fs.free} bytes) are free and {why};"
        " nothing was downloaded or published"
    )


def existing_directory(directory: Path) -> Path:
    """``directory`` or, when it is not made yet (a new subdir), the nearest one above it."""
    for candidate in (directory, *directory.parents):
        if candidate.is_dir():
            return candidate
    return Path(directory.anchor or ".")


def mount_point(directory: Path) -> Path:
    """The top directory of the filesystem ``directory`` is on: what ``df`` names, and never a
    channel's directory (which a private channel's would leave out of the public run pages)
    unless it is a mount of its own."""
    device = directory.stat().st_dev
    while directory.parent != directory and directory.parent.stat().st_dev == device:
        directory = directory.parent
    return directory


def free_bytes(directory: Path) -> int:
    """Bytes an unprivileged writer may still use on the filesystem of ``directory``."""
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


def arrivals(jobs: Iterable[DownloadJob]) -> list[Arrival]:
    """The files downloads will store."""
    return [(job.target, job.record.size) for job in jobs]


def filesystems(files: Iterable[Arrival]) -> list[Filesystem]:
    """The total size of ``files`` per filesystem of their destinations."""
    by_directory: dict[Path, int] = {}
    for target, size in files:
        parent = target.parent
        by_directory[parent] = by_directory.get(parent, 0) + size
    needed: dict[int, int] = {}
    where: dict[int, Path] = {}
    for parent, size in by_directory.items():  # a few per channel subdir, not one per file
        directory = existing_directory(parent)
        device = directory.stat().st_dev
        needed[device] = needed.get(device, 0) + size
        if device not in where:
            where[device] = mount_point(directory)
    return [Filesystem(where[d], needed[d], free_bytes(where[d])) for d in sorted(needed)]


def space_problems(files: Iterable[Arrival], minimum: int) -> list[str]:
    """Why ``files`` cannot be stored, per filesystem short of room (none when they fit)."""
    problems = [p for fs in filesystems(files) if (p := space_problem(fs, minimum))]
    for problem in problems:
        log.error("%s", problem)
    return problems


def oversized(jobs: Iterable[DownloadJob]) -> dict[Path, str]:
    """The targets of the files that alone are larger than the free space of their filesystem,
    each with why it is not downloaded."""
    free: dict[Path, int] = {}
    out: dict[Path, str] = {}
    for job in jobs:
        parent = job.target.parent
        if parent not in free:  # a few per channel subdir, not one per file
            free[parent] = free_bytes(existing_directory(parent))
        if job.record.size > free[parent]:
            out[job.target] = (
                f"{job.record.fn}: not downloaded: it is {human_bytes(job.record.size)}, more"
                f" than the {human_bytes(free[parent])} free where it would be stored"
            )
    return out
