"""The members of a package's tars, read as a stream with the headers' size bounded.

tarfile reads a member's extended headers whole before it yields the member: a pax header, a
GNU long name or link, a sparse map, and a chain of them one after another (each applies to the
next header). Their size is whatever the archive claims, so a few KiB of bzip2 or zstd can make
it hold gigabytes at once, before :func:`sitegen.conda.index._collect` sees any member to
check. Here every member's headers together may take at most :data:`MAX_HEADERS` decompressed
bytes (a long name is at most a path, a pax record a few attributes); skipping a member's data
is not counted, so large payloads are unaffected. Nor is a member kept once it is read (tarfile
keeps them all, to look them up by name): an archive of countless empty members costs no more
than one of a few.

The stream itself is conda-package-streaming's :func:`tar_generator`, over ``bz2`` for a
``.tar.bz2`` and ``zstandard`` (a dependency of sitegen's own) for the ``.conda``'s inner
archives. :func:`bz2_ends` tells a ``.tar.bz2`` cut short by its last bytes.
"""

from __future__ import annotations

import bz2
import functools
import io
import os
import tarfile
import zipfile
from collections.abc import Iterator
from typing import IO, Any

import zstandard
from conda_package_streaming.package_streaming import tar_generator

MAX_HEADERS = 1 << 20
# bzip2's end-of-stream marker (48 bits, not byte aligned), then a 32-bit CRC and padding.
_BZ2_EOS = 0x177245385090

Members = Iterator[tuple[tarfile.TarFile, tarfile.TarInfo]]


class HeadersTooLarge(Exception):
    """A member's headers take more than :data:`MAX_HEADERS` bytes."""


class _Metered(io.RawIOBase):
    """The decompressed tar as tarfile reads it (in small chunks); while ``budget`` is set, the
    bytes still allowed."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.budget: int | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        if self.budget is not None:
            self.budget -= size
            if self.budget < 0:
                raise HeadersTooLarge(f"a member's tar headers exceed {MAX_HEADERS} bytes")
        return size


class _InfoTarInfo(tarfile.TarInfo):
    @classmethod
    def fromtarfile(cls, tarfile: Any) -> Any:
        meter: _Metered = tarfile.sitegen_meter
        if meter.budget is not None:  # the header after an extended one: same budget
            return super().fromtarfile(tarfile)
        meter.budget = MAX_HEADERS
        try:
            return super().fromtarfile(tarfile)
        finally:
            meter.budget = None


class _InfoTarFile(tarfile.TarFile):
    tarinfo = _InfoTarInfo

    def __init__(self, *args: Any, sitegen_meter: _Metered, **kwargs: Any) -> None:
        # Set first: the constructor already reads the first member's headers.
        self.sitegen_meter = sitegen_meter
        super().__init__(*args, **kwargs)

    def next(self) -> tarfile.TarInfo | None:
        # Read as a stream, each member once and none looked up again by name. tarfile keeps
        # every member it reads for such lookups: half a KiB each, and a few KiB of bzip2 make
        # hundreds of thousands of empty ones (hundreds of MiB) within the scan limit.
        member = super().next()
        self.members.clear()
        return member


def _members(decompressed: IO[bytes]) -> Members:
    meter = _Metered(decompressed)
    opener = functools.partial(_InfoTarFile.open, sitegen_meter=meter)
    return tar_generator(meter, tarfile_open=opener)


def tar_bz2_members(stream: IO[bytes]) -> Members:
    """Every member of a ``.tar.bz2`` (its info/ part comes first)."""
    return _members(bz2.open(stream, mode="rb"))


def conda_members(archive: zipfile.ZipFile, name: str) -> Members:
    """The members of one of a ``.conda``'s inner archives, named ``name`` in ``archive``."""
    return _members(zstandard.ZstdDecompressor().stream_reader(archive.open(name)))


def bz2_ends(fd: int, size: int) -> bool:
    """Whether the .tar.bz2 open as ``fd``, of ``size`` bytes, ends in bzip2's end-of-stream
    marker, which one cut short lacks."""
    tail = os.pread(fd, 11, max(0, size - 11))
    value = int.from_bytes(tail, "big")
    return any((value >> padding >> 32) & ((1 << 48) - 1) == _BZ2_EOS for padding in range(8))
