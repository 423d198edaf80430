"""The JSON of a fetched metadata body: a ``.zst`` variant decompressed within a size cap,
whole frames only (one cut short is refused, never handed on as JSON that merely ends early),
and a bomb stopped at the cap rather than after it."""

from __future__ import annotations

import zstandard

from sitegen.net.failures import UpstreamError

MAX_REPODATA_BYTES = 4 << 30  # a decompressed repodata.json larger than this is hostile
DECODE_PIECE = 64 << 20  # a .zst is decoded at most this much at a time
ZSTD_MAX_EXPANSION = 1 << 15  # zstd's densest block: 4 bytes for 128 KiB


def decode_body(variant: str, body: bytes, limit: int = 0) -> bytes:
    """The JSON bytes of a body, decompressing the .zst variant with a size cap (``limit``;
    by default a repodata.json's)."""
    if not variant.endswith(".zst"):
        return body
    limit = limit or MAX_REPODATA_BYTES
    whole = _decode_single_frame(body, limit)
    if whole is not None:
        return whole
    # zstd data is one or more frames (pzstd writes several), each decoded by its own object
    # whose end of frame is seen: data that stops inside a frame is a cut download, which a
    # reader would hand on as JSON that merely ends early. Input goes in pieces small enough
    # that even the densest data (a 4-byte block of 128 KiB) decodes to at most DECODE_PIECE
    # a piece, so a bomb is stopped at the cap, not after it.
    feed = max(1, DECODE_PIECE // ZSTD_MAX_EXPANSION)
    decompressor = zstandard.ZstdDecompressor()
    view = memoryview(body)
    pieces: list[bytes] = []
    size = position = 0
    frame = None
    try:
        while position < len(view) and size <= limit:
            frame = frame or decompressor.decompressobj()
            chunk = view[position : position + feed]
            piece = frame.decompress(chunk)
            pieces.append(piece)
            size += len(piece)
            position += len(chunk)
            if frame.eof:
                position -= len(frame.unused_data)
                frame = None
    except zstandard.ZstdError as exc:
        raise UpstreamError(f"{variant} is not valid zstd data: {exc}") from None
    if size > limit:
        raise UpstreamError(f"{variant} decompresses to more than {limit} bytes")
    if not body:
        raise UpstreamError(f"{variant} is empty (the file was cut short, upstream or on the way)")
    if frame is not None:
        raise UpstreamError(
            f"{variant} is truncated: its zstd data stops inside a frame after {len(body)} bytes "
            "(the file was cut short, upstream or on the way)"
        )
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def _decode_single_frame(body: bytes, limit: int) -> bytes | None:
    """The JSON of a body that is one zstd frame stating its size (what zstd writes by
    default), decoded in one call into a buffer of exactly that size; None for anything else
    (several frames, no size stated, a size beyond the cap, damage), which the piecewise
    decoding handles and judges. At conda-forge scale, pieces joined held ~230 MB more at the
    run's peak (the records are built next, while the JSON is held)."""
    try:
        size = zstandard.frame_content_size(body)
    except zstandard.ZstdError:
        return None
    if not 0 < size <= limit:
        return None
    try:
        # A frame that decodes to more than it states stops at its stated size, with an error.
        return zstandard.ZstdDecompressor().decompress(body, allow_extra_data=False)
    except zstandard.ZstdError:
        return None
