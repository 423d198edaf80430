"""What a file of the site holds, compared with bytes about to be written: a file whose
content would not change is left alone (its mtime, hence its ETag, kept)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from sitegen.store.interface import PendingWrite

_CHUNK = 1 << 22


class NotAFileError(OSError):
    """A name of the site where a file is published that holds something else: a directory,
    a named pipe, a device."""


def read_regular(path: Path) -> bytes:
    """The bytes of the file ``path`` (a link to one followed); FileNotFoundError when nothing
    is there, :class:`NotAFileError` saying what is there instead (see :func:`open_regular`)."""
    with open_regular(path) as stream:
        return stream.read()


def open_regular(path: Path) -> BinaryIO:
    """The file ``path`` open for reading (a link to one followed); FileNotFoundError when
    nothing is there, :class:`NotAFileError` saying what is there instead. Opened without
    blocking and checked before reading: a named pipe under a published file's name would
    otherwise hold the command reading it forever."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        what = "a directory" if stat.S_ISDIR(mode) else "a named pipe or a device"
        raise NotAFileError(f"{what} in its place, not a file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def same_content(path: Path, data: bytes) -> bool:
    """Whether ``path`` holds exactly ``data``; read a piece at a time, so that comparing a
    large file (a 50 MB state map) does not hold a second copy of it."""
    try:
        status = path.stat()
        # Something else under the name (a named pipe would block the open) is replaced.
        if not stat.S_ISREG(status.st_mode) or status.st_size != len(data):
            return False
        view = memoryview(data)
        with open(path, "rb") as handle:
            pieces = (view[start : start + _CHUNK] for start in range(0, len(data), _CHUNK))
            return matching_prefix(handle, pieces)[1] is None
    except FileNotFoundError:
        return False


def same_files(one: Path, other: Path) -> bool:
    """Whether two files hold the same bytes, read in full (not filecmp: it trusts a cache
    keyed by size and mtime, which a file rewritten in place can keep); False when either
    cannot be read."""
    try:
        with open(one, "rb") as left, open(other, "rb") as right:
            if os.fstat(left.fileno()).st_size != os.fstat(right.fileno()).st_size:
                return False
            while chunk := left.read(1 << 20):
                if right.read(len(chunk)) != chunk:
                    return False
            return not right.read(1)
    except OSError:
        return False


def same_file_content(path: Path, pending: PendingWrite) -> bool:
    """True when ``path`` holds exactly the bytes written to ``pending`` so far."""
    try:
        if path.stat().st_size != pending.size():
            return False
        with open(path, "rb") as handle:
            return matching_prefix(handle, pending.chunks())[1] is None
    except FileNotFoundError:
        return False


def matching_prefix(
    handle: BinaryIO, pieces: Iterator[bytes | memoryview]
) -> tuple[int, bytes | memoryview | None]:
    """Read ``handle`` along ``pieces`` while they match: how many bytes matched, and the first
    piece that did not (b"" when the file goes on past the last piece); None in its place when
    the file holds exactly the pieces. The pieces after a difference are left in ``pieces``."""
    matched = 0
    for piece in pieces:
        if handle.read(len(piece)) != piece:
            return matched, piece
        matched += len(piece)
    return matched, None if handle.read(1) == b"" else b""


def copy_prefix(handle: BinaryIO, size: int, out: PendingWrite) -> None:
    """The first ``size`` bytes of ``handle`` into ``out``."""
    handle.seek(0)
    while size:
        chunk = handle.read(min(size, _CHUNK))
        if not chunk:  # cut short in place: nothing sitegen does
            raise OSError(f"{handle.name} shrank while it was read")
        out.write(chunk)
        size -= len(chunk)
