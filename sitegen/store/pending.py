"""Files that no reader can see until they are complete: :class:`PendingFile`.

Part of the filesystem implementation of the site (:class:`sitegen.store.site.Site` hands them
out); other modules use them through :class:`sitegen.store.interface.PendingWrite`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sitegen.store.interface import SiteStorage

# Buffers per pwritev call: Linux takes at most 1024 (UIO_MAXIOV).
IOV_MAX = 1024


@contextlib.contextmanager
def directory_fd(directory: Path) -> Iterator[int]:
    """A descriptor of ``directory``, for calls that work relative to it or flush it."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


def link_fd(fd: int, path: Path) -> None:
    """Name the nameless file open as ``fd``: linkat(AT_SYMLINK_FOLLOW) through /proc, which
    os.link calls only when given a directory fd."""
    with directory_fd(path.parent) as directory:
        os.link(f"/proc/self/fd/{fd}", path.name, dst_dir_fd=directory)


class PendingFile:
    """A file being written for ``target`` that no reader can see until :meth:`commit`.

    Where the filesystem allows (Linux O_TMPFILE: ext4, xfs, btrfs, tmpfs) the file has no name
    at all until commit links it in: a crash leaves nothing behind, and publishing costs one
    link instead of a create and a rename. Elsewhere it is a temporary name beside the target,
    renamed on commit. Parts of a file may be written in any order (:meth:`write_at`).
    """

    def __init__(self, site: SiteStorage, target: Path, fd: int, temp: Path | None) -> None:
        self.site = site
        self.target = target
        self.fd = fd
        self.temp = temp  # None: nameless
        self.done = False

    @classmethod
    def unnamed(cls, site: SiteStorage, target: Path) -> PendingFile:
        fd = os.open(target.parent, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o666)
        return cls(site, target, fd, None)

    @classmethod
    def named(cls, site: SiteStorage, target: Path) -> PendingFile:
        temp = site.temp_for(target)
        fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_CLOEXEC, 0o666)
        return cls(site, target, fd, temp)

    def __enter__(self) -> PendingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def write_at(self, buffers: Sequence[bytes], offset: int) -> None:
        """Write ``buffers`` one after the other from ``offset``, in as few calls as may be."""
        pending = list(buffers)
        while pending:
            written = os.pwritev(self.fd, pending[:IOV_MAX], offset)
            offset += written
            while pending and written >= len(pending[0]):
                written -= len(pending.pop(0))
            if written:
                pending[0] = memoryview(pending[0])[written:]

    def chunks(self, size: int = 1 << 20) -> Iterator[bytes]:
        """The bytes written so far, from the start."""
        offset = 0
        while chunk := os.pread(self.fd, size, offset):
            offset += len(chunk)
            yield chunk

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def sync(self) -> None:
        # fsync, as Site.write_many flushes the metadata files it writes itself (fdatasync
        # is what a package file's durable commit costs).
        os.fsync(self.fd)

    def flush(self) -> None:
        """Put the file's bytes on disk (what ``commit(durable=True)`` does first)."""
        os.fdatasync(self.fd)

    def commit(self, durable: bool = False) -> None:
        """Give the file its target name (replacing whatever had that name); ``durable``: put
        its bytes on disk first, for a file nothing else flushes before it is served."""
        if durable:
            self.flush()
        if self.temp is None:
            self._link_unnamed()  # through its descriptor: closed only after
            self.done = True
            os.close(self.fd)
            return
        # Closed before it is named: a network filesystem may report a failed write only here.
        fd, self.fd = self.fd, -1
        os.close(fd)
        self.site.commit(self.temp, self.target)
        self.done = True

    def _link_unnamed(self) -> None:
        try:
            link_fd(self.fd, self.target)
        except FileExistsError:
            # A replacement: link beside, then rename over the old file atomically.
            temp = self.site.temp_for(self.target)
            link_fd(self.fd, temp)
            try:
                self.site.commit(temp, self.target)
            except BaseException:
                self.site.discard(temp)
                raise

    def discard(self) -> None:
        """Drop the file unless committed; safe to call more than once."""
        if self.done:
            return
        self.done = True
        try:
            if self.fd >= 0:
                os.close(self.fd)
        finally:
            if self.temp is not None:
                self.site.discard(self.temp)
