"""``move: true`` local sources: files leave the folder once the site publishes them.

A file is moved only after the run has published the record that names it: the subdir's
``repodata.json`` on disk lists it, from this mirror (the origins map), with the sha256 the
folder's file has. It goes to the mirror's store under ``.sitegen/local/<mirror>/<subdir>/``
(renamed on the same filesystem; else a hard link of the published file, or a copy, verified
and synced before the folder's file is removed), which the next index reads beside the folder: the package stays published, and its
published file is a hard link to the stored one (so ``sitegen verify --repair`` can restore it).
Anything that fails leaves the file in the folder, for the next run to move.

The store is kept by mirror name, and records the folder its files came from before the first
one moves: the way back to it once the mirror is gone (see :mod:`sitegen.sync.local_return`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import msgspec
import trio

from sitegen.conda.records import Record, RepodataError, parse_repodata
from sitegen.config import ChannelConfig, MirrorConfig
from sitegen.layout import (
    local_index_path,
    local_store_folder_path,
    local_store_index_path,
    local_store_path,
)
from sitegen.net.checksums import VerifyError, hash_file
from sitegen.store.origins import load_origins
from sitegen.store.site import Site
from sitegen.sync.local import LocalSources, folder_of, has_store, read_or_none, write_state
from sitegen.sync.local_index import decode_cache, encode_cache, keep_link_stamps

log = logging.getLogger("sitegen")


@dataclass(frozen=True)
class Move:
    source: Path  # in the folder
    relpath: str  # inside the folder, POSIX (its key in the index cache)
    target: Path  # in the store
    record: Record
    published: Path  # the site's file, which holds the same bytes


def published_here(site: Site, channel: str, mirror: str, subdir: str) -> dict[str, str]:
    """fn -> sha256 of the files the published ``repodata.json`` of ``channel/subdir`` lists
    from ``mirror``."""
    try:
        body = site.path(channel, subdir, "repodata.json").read_bytes()
        records = parse_repodata(body, subdir).records
    except (OSError, RepodataError):
        return {}
    origins = load_origins(site, channel, subdir)
    return {
        fn: str(r.raw.get("sha256", ""))
        for fn, r in records.items()
        if origins.mirror_of(fn) == mirror
    }


def moves_of(site: Site, channel: str, mirror: MirrorConfig, sources: LocalSources) -> list[Move]:
    """The folder's files of ``mirror`` whose records are published as the folder has them."""
    index = sources.indexes.get(mirror.name)
    if index is None:
        return []
    folder = folder_of(mirror)
    store = local_store_path(site.root, mirror.name)
    published: dict[str, dict[str, str]] = {}
    moves = []
    for (subdir, fn), source in sorted(index.files.items()):
        if not source.is_relative_to(folder) or source.is_relative_to(store):
            continue
        if subdir not in published:
            published[subdir] = published_here(site, channel, mirror.name, subdir)
        record = index.repodata[subdir].records[fn]
        sha256 = record.raw.get("sha256")
        if sha256 and published[subdir].get(fn) == sha256:
            relpath = source.relative_to(folder).as_posix()
            published_file = site.path(channel, subdir, fn)
            moves.append(Move(source, relpath, store / subdir / fn, record, published_file))
    return moves


def move_files(site: Site, mirror: MirrorConfig, moves: list[Move]) -> list[str]:
    """Move each file to the store; the errors. The folder's cache entries go along, with the
    ctime the move gave the file (see :func:`keep_link_stamps`: the move hashed it against its
    record), so the store's index need not read the files again."""
    errors = []
    inbox = decode_cache(read_or_none(local_index_path(site.root, mirror.name)))
    store_cache_path = local_store_index_path(site.root, mirror.name)
    stored = decode_cache(read_or_none(store_cache_path))
    moved = False
    for move in moves:
        entry = inbox.get(move.relpath)
        if entry is None:  # the cache could not be kept: which version was read is unknown
            errors.append(f"{move.relpath}: not moved from the folder: not in the index cache")
            continue
        try:
            site.take(
                move.source,
                move.target,
                lambda p, r=move.record: hash_file(p, r),
                (entry.size, entry.mtime_ns, entry.inode),
                same_bytes=move.published,
            )
        except (OSError, VerifyError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            errors.append(
                f"{move.record.subdir}/{move.record.fn}: not moved from the folder: {reason}"
            )
            continue
        carried = {f"{move.record.subdir}/{move.record.fn}": entry}
        try:
            stamp = os.stat(move.target, follow_symlinks=False)
        except OSError:
            continue  # moved all the same; the store's index reads it once
        if keep_link_stamps(carried, move.target.parent.parent, [(move.target, stamp)]):
            stored.update(carried)
            moved = True
    if moved:
        try:
            write_state(site, store_cache_path, encode_cache(stored))
        except OSError as exc:  # only costs reading the moved files once more
            log.warning("%s: could not keep the store's index cache: %s", mirror.name, exc)
    return errors


def keep_folder(site: Site, mirror: MirrorConfig) -> None:
    """Record in the mirror's store the folder its files come from (written only when it
    changes: the first time, or when the mirror names another folder)."""
    path = local_store_folder_path(site.root, mirror.name)
    site.ensure_dir(path.parent)
    site.write_bytes(path, msgspec.json.encode({"folder": str(folder_of(mirror))}))


def recorded_folder(site: Site, mirror: str) -> Path | None:
    """The folder the store of ``mirror`` records (None: none recorded, or unreadable)."""
    try:
        data = msgspec.json.decode(local_store_folder_path(site.root, mirror).read_bytes())
        folder = data["folder"]
    except (OSError, msgspec.DecodeError, KeyError, TypeError):
        return None
    return Path(folder) if isinstance(folder, str) and os.path.isabs(folder) else None


async def move_published(
    site: Site, sources: LocalSources, mirrors: Iterable[tuple[ChannelConfig, MirrorConfig]]
) -> list[str]:
    """After a run published: move the published files of every ``move: true`` source out of
    its folder; the errors (each file not moved stays where it was). The store of a source that
    no longer moves files records its folder too: a changed ``path:`` is where they go back."""
    errors = []
    for channel, mirror in mirrors:
        if mirror.name not in sources.indexes or not has_store(site, mirror):
            continue
        moves: list[Move] = []
        if mirror.move:
            moves = await trio.to_thread.run_sync(moves_of, site, channel.path, mirror, sources)
        if not moves and not local_store_path(site.root, mirror.name).is_dir():
            continue
        try:
            await trio.to_thread.run_sync(keep_folder, site, mirror)
        except OSError as exc:  # a store must never hold files it cannot give back
            reason = exc.strerror or exc
            errors.append(f"{mirror.name}: could not record the folder of its store: {reason}")
            continue
        if not moves:
            continue
        failed = await trio.to_thread.run_sync(move_files, site, mirror, moves)
        log.info(
            "%s: moved %d published files out of the folder", mirror.name, len(moves) - len(failed)
        )
        errors += [f"{mirror.name}: {line}" for line in failed]
    return errors
