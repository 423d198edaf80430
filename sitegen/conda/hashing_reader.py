"""The bytes of a package file as its readers read them, hashed (md5, sha256) in the same pass.

:func:`sitegen.conda.index.index_package` reads a package once: the archive readers read
through this view, which feeds the digests, so the record's checksums cost no second read.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from typing import Any

CHUNK = 1 << 20

# os.pread's shape: (fd, length, offset) -> bytes.
Pread = Callable[[int, int, int], bytes]


class HashingReader(io.RawIOBase):
    """A seekable view of the file that hashes every byte once, in order, as it is read.

    The tar.bz2 stream reads front to back, so its one pass feeds the digests; the zip reader
    of a ``.conda`` first seeks to the central directory at the end, and bytes read out of
    order are hashed when :meth:`finish` reads on from where the in-order bytes stopped.
    """

    def __init__(self, fd: int, pread: Pread = os.pread) -> None:
        self.fd = fd
        self.pread = pread
        self.pos = 0
        self.hashed = 0
        self.md5 = hashlib.md5()
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self.pos = os.lseek(self.fd, offset, whence)
        return self.pos

    def readinto(self, buffer: Any) -> int:
        data = self.pread(self.fd, len(buffer), self.pos)
        size = len(data)
        buffer[:size] = data
        self._feed(self.pos, data)
        self.pos += size
        return size

    def _feed(self, start: int, data: bytes) -> None:
        if start <= self.hashed < start + len(data):
            fresh = memoryview(data)[self.hashed - start :]
            self.md5.update(fresh)
            self.sha256.update(fresh)
            self.hashed += len(fresh)

    def finish(self) -> int:
        """Hash the rest of the file; its size as read."""
        while chunk := self.pread(self.fd, CHUNK, self.hashed):
            self._feed(self.hashed, chunk)
        return self.hashed
