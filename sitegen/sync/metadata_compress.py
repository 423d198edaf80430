"""Compressing a subdir's metadata: ``repodata.json.zst`` (and the opt-in ``.bz2``), whole or
streamed from the pending file just written."""

from __future__ import annotations

import bz2

import zstandard

from sitegen.store.interface import PendingWrite

# Level 9 keeps conda-forge-sized repodata to seconds; conda-index's 16 costs ~50x the time for
# ~15% smaller files (see the performance notes in the README).
ZSTD_LEVEL = 9


# Jobs of 4 MB for the compressing threads: zstd's default job at level 9 (several times its
# window) held ~100-120 MB of buffers for a 400 MB repodata.json, these ~15-45 MB, in the same
# time and to within 1 % of the size.
_ZSTD_JOB = 4 << 20


def _zstd_compressor() -> zstandard.ZstdCompressor:
    params = zstandard.ZstdCompressionParameters.from_level(
        ZSTD_LEVEL, threads=-1, job_size=_ZSTD_JOB, write_content_size=True
    )
    return zstandard.ZstdCompressor(compression_params=params)


def zstd_compress(data: bytes) -> bytes:
    return _zstd_compressor().compress(data)


BZ2_LEVEL = 9


def bz2_compress(data: bytes) -> bytes:
    # One stream, though compressing parts in parallel would halve the time at conda-forge
    # scale: rattler reads only the first stream of a multi-stream .bz2 and fails.
    return bz2.compress(data, BZ2_LEVEL)


# Read from the file being compressed at a time, when compressing one as a stream.
_CHUNK = 4 << 20


def zstd_stream(source: PendingWrite, out: PendingWrite) -> None:
    """zstd_compress of what was written to ``source`` (the same bytes), into ``out``."""
    stream = _zstd_compressor().compressobj(size=source.size())  # the frame says its content size
    for chunk in source.chunks(_CHUNK):
        out.write(stream.compress(chunk))
    out.write(stream.flush())


def bz2_stream(source: PendingWrite, out: PendingWrite) -> None:
    """bz2_compress of what was written to ``source``, into ``out``."""
    compressor = bz2.BZ2Compressor(BZ2_LEVEL)
    for chunk in source.chunks(_CHUNK):
        out.write(compressor.compress(chunk))
    out.write(compressor.flush())
