"""Write a subdir's metadata files once its package files are in place and verified.

``repodata.json.zst``, ``repodata.json.bz2``, ``current_repodata.json`` and the shard index
``repodata_shards.msgpack.zst`` (its shards written and flushed before it) are written before
``repodata.json`` itself. So when ``repodata.json`` already holds the new bytes, every sibling
was completed by an earlier run and the expensive compression is skipped, even after a crash
between two renames.
"""

from __future__ import annotations

import bz2
import time
from dataclasses import dataclass, field
from typing import Any

import msgspec
import trio
import zstandard

from sitegen.conda.current_repodata import current_records
from sitegen.conda.records import Record, encode_repodata
from sitegen.conda.shards import SHARD_INDEX, SHARDS_DIR
from sitegen.conda.version import RecordMatcher
from sitegen.layout import METADATA_FILES, retired_shards_path
from sitegen.store.site import Site, same_content
from sitegen.sync.prune import DEFAULT_SHARD_GRACE_DAYS, prune_shards
from sitegen.sync.publish_shards import index_bytes, named_files, read_index, write_shards

# Level 9 keeps conda-forge-sized repodata to seconds; conda-index's 16 costs ~50x the time for
# ~15% smaller files (see the performance notes in the README).
ZSTD_LEVEL = 9


@dataclass
class SubdirMetadata:
    """Everything that goes into one published subdir's metadata."""

    subdir: str
    records: dict[str, Record]
    info: dict[str, Any] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> bytes:
        return encode_repodata(self.subdir, self.info, self.records, self.removed, self.extra)

    def encode_current(self) -> bytes:
        current = current_records(self.records, RecordMatcher())
        return encode_repodata(self.subdir, self.info, current, self.removed, self.extra)


def _zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=-1).compress(data)


def _bz2(data: bytes) -> bytes:
    # One stream, though compressing parts in parallel would halve the time at conda-forge
    # scale: rattler reads only the first stream of a multi-stream .bz2 and fails.
    return bz2.compress(data, 9)


async def publish_subdir(
    site: Site,
    channel_path: str,
    meta: SubdirMetadata,
    shard_grace_days: float = DEFAULT_SHARD_GRACE_DAYS,
) -> list[str]:
    """Publish the metadata of one subdir; returns the names of the files that changed.

    Shards the index no longer names are deleted once unnamed for ``shard_grace_days``.
    """
    directory = site.path(channel_path, meta.subdir)
    site.ensure_dir(directory)
    body = await trio.to_thread.run_sync(meta.encode)
    if same_content(directory / "repodata.json", body) and all(
        (directory / name).is_file() for name in METADATA_FILES
    ):
        await _prune_shards(site, channel_path, meta.subdir, shard_grace_days)
        return []
    results: dict[str, bytes] = {}

    async def produce(name: str, func, *args) -> None:
        results[name] = await trio.to_thread.run_sync(func, *args)

    async def produce_shards() -> None:
        shards = await trio.to_thread.run_sync(write_shards, site, directory, meta.records)
        results[SHARD_INDEX] = await trio.to_thread.run_sync(
            index_bytes, directory, meta.subdir, shards.shards
        )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(produce, "repodata.json.zst", _zstd, body)
        nursery.start_soon(produce, "repodata.json.bz2", _bz2, body)
        nursery.start_soon(produce, "current_repodata.json", meta.encode_current)
        nursery.start_soon(produce_shards)
    results["repodata.json"] = body
    # All five are written to temporaries before the first rename, in one thread call (which
    # a cancellation cannot cut short): a full disk or a stop signal cannot leave a new .zst
    # beside an old repodata.json. repodata.json is renamed last.
    order = METADATA_FILES[1:] + METADATA_FILES[:1]
    written = await trio.to_thread.run_sync(
        site.write_many, [(directory / name, results[name]) for name in order]
    )
    await _prune_shards(site, channel_path, meta.subdir, shard_grace_days)
    return [path.name for path in written]


async def _prune_shards(site: Site, channel_path: str, subdir: str, grace_days: float) -> None:
    """After the index is published: retire the shards it does not name (see prune_shards)."""
    directory = site.path(channel_path, subdir)
    index = await trio.to_thread.run_sync(read_index, directory)
    if index is None:
        return  # which shards are in use is unknown: keep them all
    await trio.to_thread.run_sync(
        prune_shards,
        site,
        directory / SHARDS_DIR,
        named_files(index),
        retired_shards_path(site.root, channel_path, subdir),
        time.time(),
        grace_days * 86400,
    )


def empty_metadata(subdir: str) -> SubdirMetadata:
    return SubdirMetadata(subdir=subdir, records={}, extra={"repodata_version": 1})


def write_json(site: Site, relative: str, document: Any) -> bool:
    """Write a small JSON document (e.g. channeldata.json) if its content changed."""
    parts = relative.split("/")
    return site.write_bytes(site.path(*parts), msgspec.json.encode(document))
