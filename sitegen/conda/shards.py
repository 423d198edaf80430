"""Sharded repodata (CEP-16): one zstd-compressed msgpack shard per package name, and the shard
index that maps each name to the sha256 of its shard.

Pure: bytes in, bytes out, no file system. Every reader in use (rattler, conda, mamba) checks
what older writers got wrong, so this module keeps to what they accept:

- checksums (``md5``, ``sha256`` in records, shard hashes in the index) are msgpack ``bin``,
  never arrays of integers;
- every zstd frame carries its content size: a reader that sizes its output from the frame
  header (python-zstandard's ``decompress`` without ``max_output_size``) reads no frame
  without it;
- ``shards_base_url`` is relative to the index and ends in ``/``;
- a shard always has a ``packages`` map, even an empty one (rattler requires the key);
- no ``removed`` list: CEP-16 names it for files a shard's records lost, which a shard built
  from the current records never has (rattler reads it as empty when absent).

Output is deterministic: the same records give the same bytes (maps sorted by key), so a shard
whose records did not change keeps its name and is never written again. Shards are built one
package name at a time, so at most one name's records are ever copied.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import zstandard

from sitegen.conda.records import Record, names_of
from sitegen.conda.schema import CONDA_SUFFIX, PACKAGES, PACKAGES_CONDA

SHARD_INDEX = "repodata_shards.msgpack.zst"
SHARDS_DIR = "shards"
SHARD_SUFFIX = ".msgpack.zst"
# Relative to the index, so the mirror can be served under any URL; the trailing slash makes
# "<base><hex>.msgpack.zst" resolve inside the directory (a reader joins, not concatenates).
SHARDS_BASE_URL = f"./{SHARDS_DIR}/"
# Packages sit beside the index: "" joined to the index's URL is its directory.
BASE_URL = ""
INDEX_VERSION = 1
# zstd's default level: on conda-forge-like shards level 9 is ~2% smaller for ~2.3x the time,
# paid for every name on each run that changes a subdir. A level change renames every shard
# once (their bytes change), so it stays fixed.
SHARD_ZSTD_LEVEL = 3
CHECKSUM_FIELDS = ("md5", "sha256")
_ENCODER = msgspec.msgpack.Encoder(order="sorted")
_CHECKER = msgspec.msgpack.Encoder()  # for unshardable: order makes no difference to what fits
_CHECK_BATCH = 4096  # records encoded at a time by unshardable (a few MB of output at most)
REASON_UNSHARDABLE = "holds an integer beyond 64 bits, which no shard (msgpack) can carry"
_HEX_DIGITS = frozenset("0123456789abcdef")


class ShardError(ValueError):
    """Bytes that are not a shard or shard index sitegen can read."""


@dataclass(frozen=True, slots=True)
class Shard:
    """One package name's shard: its compressed bytes, named by their sha256."""

    name: str
    digest: bytes  # sha256 of ``data``: 32 raw bytes
    data: bytes

    @property
    def hex(self) -> str:
        return self.digest.hex()

    @property
    def filename(self) -> str:
        return shard_filename(self.digest)


@dataclass(frozen=True, slots=True)
class ShardIndex:
    """A decoded shard index: the subdir it describes and name -> shard sha256."""

    subdir: str
    shards: dict[str, bytes]
    created_at: str = ""
    base_url: str = BASE_URL
    shards_base_url: str = SHARDS_BASE_URL


def shard_filename(digest: bytes) -> str:
    return f"{digest.hex()}{SHARD_SUFFIX}"


def digest_of_filename(filename: str) -> bytes | None:
    """The sha256 a shard file name stands for, or None for any other name."""
    stem = filename.removesuffix(SHARD_SUFFIX)
    if stem == filename or len(stem) != 64 or not set(stem) <= _HEX_DIGITS:
        return None
    return bytes.fromhex(stem)


def shard_compressor() -> zstandard.ZstdCompressor:
    """Writes one zstd frame per call with its content size in the header. Not thread-safe:
    one per thread; reused within it (making one costs about as much as a small shard)."""
    return zstandard.ZstdCompressor(level=SHARD_ZSTD_LEVEL, write_content_size=True)


def compress(data: bytes) -> bytes:
    """One zstd frame with its content size written in the header."""
    return shard_compressor().compress(data)


def decompress(data: bytes) -> bytes:
    """Decompress one frame, requiring the content size a reader sizing its output from the
    frame header needs."""
    try:
        if zstandard.frame_content_size(data) < 0:
            raise ShardError("zstd frame without its content size")
        return zstandard.ZstdDecompressor().decompress(data)
    except zstandard.ZstdError as exc:
        raise ShardError(f"not zstd data: {exc}") from None


def pack_record(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A record as a shard holds it: ``md5`` and ``sha256`` as raw bytes, the rest as is."""
    packed = dict(raw)
    for key in CHECKSUM_FIELDS:
        value = packed.get(key)
        if isinstance(value, str):
            packed[key] = bytes.fromhex(value)
    return packed


def unpack_record(packed: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`pack_record`: checksums back to lower-case hex."""
    raw = dict(packed)
    for key in CHECKSUM_FIELDS:
        value = raw.get(key)
        if isinstance(value, bytes):
            raw[key] = value.hex()
    return raw


def encode_shard(records: Iterable[Record]) -> bytes:
    """The uncompressed msgpack shard of one name's records. Raises :class:`ShardError` for a
    record msgpack cannot hold (an integer beyond 64 bits, which JSON can carry)."""
    packages: dict[str, Any] = {}
    packages_conda: dict[str, Any] = {}
    for record in records:
        section = packages_conda if record.fn.endswith(CONDA_SUFFIX) else packages
        section[record.fn] = pack_record(record.raw)
    try:
        return _ENCODER.encode({PACKAGES: packages, PACKAGES_CONDA: packages_conda})
    except OverflowError:
        sections = (*packages.items(), *packages_conda.items())
        unfit = next(fn for fn, packed in sections if not _packable(packed))
        raise ShardError(f"{unfit}: holds an integer a shard (msgpack) cannot carry") from None


def _packable(packed: Mapping[str, Any]) -> bool:
    try:
        _ENCODER.encode(packed)
    except OverflowError:
        return False
    return True


def unshardable(records: Sequence[Record]) -> list[Record]:
    """The records no shard can hold (an integer beyond 64 bits, which JSON carries). One
    encoding per batch of records; a batch's records are encoded one by one only when it
    fails, which is rare: 800,000 sound records cost a fraction of a second."""
    found: list[Record] = []
    for start in range(0, len(records), _CHECK_BATCH):
        batch = records[start : start + _CHECK_BATCH]
        try:
            _CHECKER.encode([record.raw for record in batch])
        except OverflowError:
            found.extend(record for record in batch if not _packable(record.raw))
    return found


def build_shard(
    name: str, records: Iterable[Record], compressor: zstandard.ZstdCompressor | None = None
) -> Shard:
    data = (compressor or shard_compressor()).compress(encode_shard(records))
    return Shard(name=name, digest=hashlib.sha256(data).digest(), data=data)


def iter_shards(records: Mapping[str, Record]) -> Iterator[Shard]:
    """Every name's shard, one at a time, in name order."""
    compressor = shard_compressor()
    for name, group in names_of(records).items():
        yield build_shard(name, group, compressor)


def created_at_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def encode_index(subdir: str, shards: Mapping[str, bytes], created_at: str) -> bytes:
    """The compressed shard index of a subdir; ``shards`` maps name -> 32-byte sha256."""
    document = {
        "version": INDEX_VERSION,
        "info": {
            "base_url": BASE_URL,
            "shards_base_url": SHARDS_BASE_URL,
            "subdir": subdir,
            "created_at": created_at,
        },
        "shards": dict(shards),
    }
    return compress(_ENCODER.encode(document))


class _IndexInfo(msgspec.Struct):
    subdir: str
    base_url: str = ""
    shards_base_url: str = SHARDS_BASE_URL
    created_at: str = ""


class _IndexDoc(msgspec.Struct):
    info: _IndexInfo
    shards: dict[str, bytes]
    version: int = INDEX_VERSION


_INDEX_DECODER = msgspec.msgpack.Decoder(_IndexDoc)


def decode_index(data: bytes) -> ShardIndex:
    try:
        doc = _INDEX_DECODER.decode(decompress(data))
    except msgspec.DecodeError as exc:
        raise ShardError(f"not a shard index: {exc}") from None
    if doc.version != INDEX_VERSION:
        raise ShardError(f"shard index version {doc.version}, expected {INDEX_VERSION}")
    bad = next((name for name, digest in doc.shards.items() if len(digest) != 32), None)
    if bad is not None:
        raise ShardError(f"shard index: the hash of {bad!r} is not 32 bytes")
    info = doc.info
    return ShardIndex(
        subdir=info.subdir,
        shards=doc.shards,
        created_at=info.created_at,
        base_url=info.base_url,
        shards_base_url=info.shards_base_url,
    )


def decode_shard(data: bytes) -> dict[str, dict[str, dict[str, Any]]]:
    """A shard's sections, records unpacked to what ``repodata.json`` holds."""
    try:
        doc = msgspec.msgpack.decode(decompress(data))
    except msgspec.DecodeError as exc:
        raise ShardError(f"not a shard: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get(PACKAGES), dict):
        raise ShardError("not a shard: no 'packages' map")
    return {
        key: {fn: unpack_record(packed) for fn, packed in (doc.get(key) or {}).items()}
        for key in (PACKAGES, PACKAGES_CONDA)
    }
