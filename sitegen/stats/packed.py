"""Compressed rotated logs: gzip, bzip2, xz and zstd, the ones logrotate's ``compress`` and
``compresscmd`` make, known by their names' suffixes (``access.log.2.gz``, ``.bz2``, ``.xz``,
``.zst``).

Their data is decompressed at most about :data:`CHUNK` at a time, however densely packed (a
bomb of gigabytes costs no more memory than a chunk), stream after stream when there are
several (``pbzip2``, ``pixz`` and ``pzstd`` write them one after another; zeros between them
are padding). Data cut short (a file still being written) simply ends early, which
:attr:`Ending.complete` tells; data that is not of its format raises one of
:data:`DECODE_ERRORS`, or OSError (bzip2's).
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import zstandard

CHUNK = 1 << 20
DECODE_ERRORS = (zlib.error, lzma.LZMAError, zstandard.ZstdError)
# zstd's decompressor takes no bound on its output: it is fed so little at a time that even
# its densest blocks (4 bytes for 128 KiB) decode to about a chunk. (A count of statistics
# needs nothing of the upstream client's own zstd reader, nor the HTTP library it loads.)
ZSTD_PIECE = CHUNK // (1 << 15)


class Stream(Protocol):
    """The decompressor of one stream (a gzip member, a zstd frame)."""

    ended: bool  # its end was seen
    rest: bytes  # the data fed after its end

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The bytes ``data`` decompresses to, at most about CHUNK at a time, up to the
        stream's end."""
        ...


class _Gzip:
    def __init__(self) -> None:
        self._d = zlib.decompressobj(wbits=31)
        self.ended, self.rest = False, b""

    def feed(self, data: bytes) -> Iterator[bytes]:
        while True:
            out = self._d.decompress(data, CHUNK)
            if out:
                yield out
            if self._d.eof:
                self.ended, self.rest = True, self._d.unused_data
                return
            data = self._d.unconsumed_tail
            if not data and not out:
                return


class _Bounded:
    """bzip2's and xz's decompressors: they keep what they were fed until asked for more."""

    def __init__(self, decompressor: bz2.BZ2Decompressor | lzma.LZMADecompressor) -> None:
        self._d = decompressor
        self.ended, self.rest = False, b""

    def feed(self, data: bytes) -> Iterator[bytes]:
        while True:
            out = self._d.decompress(data, CHUNK)
            if out:
                yield out
            if self._d.eof:
                self.ended, self.rest = True, self._d.unused_data
                return
            if self._d.needs_input:
                return
            data = b""


class _Zstd:
    def __init__(self) -> None:
        self._d = zstandard.ZstdDecompressor().decompressobj()
        self.ended, self.rest = False, b""

    def feed(self, data: bytes) -> Iterator[bytes]:
        view = memoryview(data)
        for start in range(0, len(view), ZSTD_PIECE):
            out = self._d.decompress(view[start : start + ZSTD_PIECE])
            if out:
                yield out
            if self._d.eof:
                self.ended = True
                self.rest = self._d.unused_data + view[start + ZSTD_PIECE :].tobytes()
                return


STREAMS: dict[str, Callable[[], Stream]] = {
    ".gz": _Gzip,
    ".bz2": lambda: _Bounded(bz2.BZ2Decompressor()),
    ".xz": lambda: _Bounded(lzma.LZMADecompressor(lzma.FORMAT_XZ)),
    ".zst": _Zstd,
}


def compression(path: Path) -> str:
    """The compression of a log by its name's suffix (``.gz``, ``.bz2``, ``.xz``, ``.zst``),
    or "" for plain text."""
    return path.suffix if path.suffix in STREAMS else ""


@dataclass
class Ending:
    """How the data decompressed last ended."""

    complete: bool = False  # at the end of a stream: none was cut short


def decompressed(raw: BinaryIO, packed: str, ending: Ending) -> Iterator[bytes]:
    """The decompressed bytes of ``raw`` (of compression ``packed``), all its streams', at
    most about CHUNK at a time; ``ending`` tells, once they are all read, whether the data
    was complete."""
    ending.complete = False
    stream, fed = STREAMS[packed](), False
    while data := raw.read(CHUNK):
        while data:
            fed = True
            yield from stream.feed(data)
            if not stream.ended:
                break
            data = stream.rest.lstrip(b"\0")  # another stream, or padding
            stream, fed = STREAMS[packed](), False
    ending.complete = not fed
