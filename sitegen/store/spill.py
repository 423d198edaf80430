"""A large body moved out of the process's heap into an unnamed file of the site's private
state, and read back through a read-only map.

An upstream's decompressed repodata (385 MB at conda-forge scale) is read once from start to
end while its records are built (~1 GB of objects). Held as bytes, the whole of it stays
resident beside them until the last record is built: the run's peak. Mapped from a file, the
pages read so far can be dropped from the process (:meth:`Spilled.release`): they are clean
file pages, which the kernel reads again from its cache (or the disk) should they be touched
again, and which it may reclaim under pressure, unlike the heap's.

The file has no name (``O_TMPFILE``; elsewhere it loses its name at once): nothing is left
behind by a run that is killed, and no other process can open it. It lives in the site's
private state, beside what it came from.
"""

from __future__ import annotations

import mmap
import os
import secrets
from pathlib import Path

from sitegen.store.temp_names import NO_TMPFILE, TEMP_PREFIX


class Spilled:
    """The bytes of a body, read through :attr:`data` (a read-only map, which msgspec and
    ``re`` read as they read bytes) until :meth:`close`."""

    def __init__(self, directory: Path, data: bytes) -> None:
        fd = _unnamed_file(directory)
        try:
            with open(fd, "wb", closefd=False) as file:
                file.write(data)
            # The map holds the file open on its own: the descriptor may go.
            self.data = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
        finally:
            os.close(fd)

    def release(self) -> None:
        """Drop every page of the map from the process's memory; reading one again reads it
        back from the file."""
        self.data.madvise(mmap.MADV_DONTNEED)

    def close(self) -> None:
        """Unmap the body (its file is then gone). A view of it still held (a ``msgspec.Raw``
        of a record, in the traceback of a parse that failed) holds the map until it goes;
        its pages are dropped meanwhile. Never raises: the parse's own error is what the
        caller is to hear of."""
        try:
            self.data.close()
        except BufferError:
            self.release()


def spill(directory: Path, data: bytes) -> Spilled | None:
    """``data`` in an unnamed file of ``directory``, mapped; None when it is empty or cannot
    be written there (a full disk): it is then read from the heap, as it is."""
    if not data:
        return None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        return Spilled(directory, data)
    except (OSError, ValueError):
        return None


def _unnamed_file(directory: Path) -> int:
    """A new file of ``directory`` without a name, open for writing. Where the filesystem
    has no such files, one named as the site's temporaries are (which a later run removes,
    should a kill come between the two calls) and unnamed at once."""
    if hasattr(os, "O_TMPFILE"):
        try:
            return os.open(directory, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            if exc.errno not in NO_TMPFILE:
                raise
    path = directory / f"{TEMP_PREFIX}{os.getpid()}-spill.{secrets.token_hex(4)}"
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_CLOEXEC, 0o600)
    os.unlink(path)
    return fd
