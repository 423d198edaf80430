"""Files an operator hands sitegen beside channels.yaml (approvals, advisories, lockfiles):
read whole, but only up to a size no honest file of its kind reaches; and the files of a
directory tree given in their place (advisories), found within bounds."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

# Tens of thousands of approvals, advisories or pins are still far below this.
MAX_FILE_BYTES = 16 * 1024 * 1024
# Files taken from one directory tree: GitHub's reviewed advisories are some 25,000; a tree of
# many times that (a whole database, unreviewed advisories included) is not what a filter
# means to read at every start.
MAX_TREE_FILES = 100_000


class OperatorFileError(ValueError):
    """Why a file could not be read; the caller names the file and its kind."""


def open_regular(path: Path) -> BinaryIO:
    """``path`` open for reading, a regular file (or a link to one); FileNotFoundError passes
    through, for callers to whom an absent file is fine."""
    try:
        # Opened without blocking and checked before reading: a FIFO (or a device) named
        # like one of the files would otherwise hold the configuration's loading forever.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise OperatorFileError(f"cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OperatorFileError("not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_capped(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of ``path``, a regular file (or a link to one), as :func:`open_regular`
    opens it."""
    with open_regular(path) as stream:
        try:
            size = os.fstat(stream.fileno()).st_size
            # As much as the file holds: a read of the cap would set aside all of it (16 MiB
            # for each of a run's files, however small).
            data = stream.read(min(size, limit) + 1)
            if len(data) > size:  # it grew since: the rest, up to the cap
                data += stream.read(limit + 1 - len(data))
        except OSError as exc:
            raise OperatorFileError(f"cannot read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise OperatorFileError(f"larger than {limit // (1024 * 1024)} MiB")
    return data


def read_text_capped(path: Path, limit: int = MAX_FILE_BYTES) -> str:
    """:func:`read_capped` as UTF-8 text."""
    try:
        return read_capped(path, limit).decode("utf-8")
    except UnicodeDecodeError:
        raise OperatorFileError("not UTF-8 text") from None


def tree_files(directory: Path, suffix: str, limit: int = MAX_TREE_FILES) -> list[Path]:
    """The files named ``*<suffix>`` below ``directory`` at any depth, sorted: databases nest
    them (GitHub's advisories are ``github-reviewed/<year>/<month>/<id>/<id>.json``). Hidden
    files and directories (``.git``) are passed over and links to directories not followed,
    so a link loop cannot keep the walk going. A directory that cannot be listed is an
    OperatorFileError (a file not read is a rule not applied), as are more than ``limit``
    files."""

    def unlistable(exc: OSError) -> None:
        raise OperatorFileError(f"cannot list {exc.filename}: {exc.strerror or exc}")

    found: list[Path] = []
    for top, dirs, files in os.walk(directory, onerror=unlistable):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(Path(top, f) for f in files if f.endswith(suffix) and not f.startswith("."))
        if len(found) > limit:
            raise OperatorFileError(
                f"more than {limit} {suffix} files below it; name the directories that concern"
                " conda packages"
            )
    return sorted(found)
