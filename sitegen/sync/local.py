"""The fetch and download stages of local sources: index each folder, then link its files in.

A local mirror's folder stands where an upstream channel's repodata would: indexing yields a
`FetchResult` and a `ParseResult` per subdir, exactly what fetching and parsing yield for an
upstream mirror, so selection, merging, planning and publishing treat both alike. Its package
files are then published by hard link (a copy across filesystems, or of a file others may not
read, see :func:`readable_as_published`) from the folder, each
verified against the record it will be listed under; the folder is never modified, unless the
mirror says ``move: true`` (see :mod:`sitegen.sync.local_move`).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import trio

from sitegen.conda.records import Record
from sitegen.config import MirrorConfig
from sitegen.config.local_source import KIND
from sitegen.layout import (
    local_index_path,
    local_store_index_path,
    local_store_path,
    old_local_cache_paths,
)
from sitegen.net.checksums import VerifyError, hash_file
from sitegen.store.site import Site
from sitegen.sync.download import DownloadOutcome, TargetKey
from sitegen.sync.fetch import ERROR, FETCHED, FetchResult, ParseResult, SubdirKey
from sitegen.sync.local_index import (
    CacheEntry,
    FolderIndex,
    FoundFile,
    build_index,
    decode_cache,
    encode_cache,
    keep_link_stamps,
    needs_reading,
    overlay,
    read_one,
    scan_folder,
)
from sitegen.sync.plan import Plan
from sitegen.sync.space import existing_directory

log = logging.getLogger("sitegen")


def is_local(mirror: MirrorConfig) -> bool:
    return mirror.kind == KIND


def folder_of(mirror: MirrorConfig) -> Path:
    return Path(mirror.source_url())


def has_store(site: Site, mirror: MirrorConfig) -> bool:
    """Whether a local mirror's store is read beside its folder: with ``move: true``, and once
    it has moved files whatever it says now. The store holds the only copies of those files:
    turning ``move`` off stops further moves, it must not drop what moved."""
    return mirror.move or local_store_path(site.root, mirror.name).is_dir()


@dataclass
class LocalSources:
    """What indexing the local mirrors of a run found."""

    indexes: dict[str, FolderIndex] = field(default_factory=dict)  # by mirror name
    parsed: dict[SubdirKey, ParseResult] = field(default_factory=dict)

    @property
    def names(self) -> set[str]:
        return set(self.indexes)

    def fingerprints(self) -> dict[SubdirKey, bytes]:
        return {
            (name, subdir): index.fingerprint(subdir)
            for name, index in self.indexes.items()
            for subdir in index.repodata
        }


async def index_all(
    site: Site,
    mirrors: Iterable[MirrorConfig],
    fetched: dict[SubdirKey, FetchResult],
    save: bool = True,
) -> LocalSources:
    """Index every local mirror's folder, filling ``fetched`` as upstream fetches do; ``save``:
    keep what was read in the cache (not in a dry run)."""
    sources = LocalSources()
    for mirror in mirrors:
        if not is_local(mirror):
            continue
        index = await index_folder(site, mirror, save)
        if isinstance(index, str):
            log.error("%s: %s", mirror.name, index)
            for subdir in mirror.subdirs:
                fetched[(mirror.name, subdir)] = FetchResult(ERROR, error=index)
            continue
        sources.indexes[mirror.name] = index
        for subdir, repodata in index.repodata.items():
            fetched[(mirror.name, subdir)] = FetchResult(FETCHED)
            # A run_exports.json for every subdir: the packages' own (CEP-12).
            exports = index.run_exports.get(subdir, {})
            sources.parsed[(mirror.name, subdir)] = ParseResult(repodata, run_exports=exports)
        for line in index.details[:20]:
            log.warning("%s: skipped %s", mirror.name, line)
    return sources


async def index_folder(site: Site, mirror: MirrorConfig, save: bool = True) -> FolderIndex | str:
    """One local mirror's folder, indexed; the error when the folder cannot be listed. The
    files moved out of the folder before are indexed too, from the store (see
    :func:`has_store`); a file of the folder wins over a moved one of the same name (with
    ``move``, it replaces it once published)."""
    folder = folder_of(mirror)
    index = await index_directory(
        site, mirror, folder, local_index_path(site.root, mirror.name), save
    )
    store = local_store_path(site.root, mirror.name)
    if isinstance(index, str) or not has_store(site, mirror) or not store.is_dir():
        return index
    moved = await index_directory(
        site, mirror, store, local_store_index_path(site.root, mirror.name), save
    )
    if isinstance(moved, str):
        return f"{store}: {moved}"
    return overlay(index, moved)


def stoppable_pread(fd: int, size: int, offset: int) -> bytes:
    """``os.pread``, in a thread of a trio task: raises trio.Cancelled once the task is
    cancelled (a stop), before the read."""
    trio.from_thread.check_cancelled()
    return os.pread(fd, size, offset)


async def index_directory(
    site: Site, mirror: MirrorConfig, folder: Path, cache_path: Path, save: bool
) -> FolderIndex | str:
    """The package files of one directory, indexed with the cache at ``cache_path``."""
    try:
        found = await trio.to_thread.run_sync(scan_folder, folder)
    except OSError as exc:
        # Absent or unreadable: its subdirs stay as they are, rather than lose every package.
        return f"{folder}: cannot list the folder: {exc.strerror or exc}"
    old = decode_cache(await trio.to_thread.run_sync(read_or_none, cache_path))
    cache = {f.relpath: old[f.relpath] for f in found if f.relpath in old}
    to_read = [f for f in found if needs_reading(f, old)]
    if to_read:
        log.info("%s: indexing %d new or changed files", mirror.name, len(to_read))
    limiter = trio.CapacityLimiter(max(1, min(4, os.cpu_count() or 1)))

    async def read(item: FoundFile) -> None:
        async with limiter:
            # One file per thread call, which a stop ends at its next read of the file (a
            # .tar.bz2 is decompressed to its end: minutes for a large one).
            entry: CacheEntry = await trio.to_thread.run_sync(
                read_one, folder, item, stoppable_pread
            )
        cache[item.relpath] = entry

    async with trio.open_nursery() as nursery:
        for item in to_read:
            nursery.start_soon(read, item)
    if save and cache != old:
        data = encode_cache(cache)
        try:
            await trio.to_thread.run_sync(write_state, site, cache_path, data)
        except OSError as exc:  # only costs reading the files again next time
            log.warning("%s: could not keep the index cache: %s", mirror.name, exc)
    index = build_index(folder, mirror.name, mirror.subdirs, found, cache)
    if save:
        index.caches.append((folder, cache_path))
    return index


def adopt_old_caches(site: Site, mirrors: Iterable[MirrorConfig]) -> None:
    """Move the index caches of the local mirrors from where earlier versions kept them (see
    :func:`sitegen.layout.old_local_cache_paths`); one already in its place wins. A cache two
    mirrors shared there goes to the first: its entries only count for files whose size, mtime
    and inode they match, so the other reads its files once more."""
    for mirror in mirrors:
        if not is_local(mirror):
            continue
        for old, new in old_local_cache_paths(site.root, mirror.name):
            data = read_or_none(old) if old.is_file() else None
            if data is None:
                continue
            if not new.exists():
                write_state(site, new, data)
            site.remove(old)


def read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def write_state(site: Site, path: Path, data: bytes) -> None:
    """Keep a state file that only saves work (not synced to disk)."""
    site.ensure_dir(path.parent)
    site.write_bytes(path, data, durable=False)


async def link_all(
    site: Site,
    sources: LocalSources,
    plans: Mapping[TargetKey, Plan],
    outcomes: dict[TargetKey, DownloadOutcome],
) -> None:
    """Publish the planned files of local mirrors into their subdirs (after the downloads,
    whose outcomes these add to)."""
    # By mirror: the files published by hard link, each as it was once hashed and published.
    linked: dict[str, list[tuple[Path, os.stat_result]]] = {}
    wanted = published_read_bits()  # read once, not per file
    for key, record, source, target in _arrivals(site, sources, plans):
        outcome = outcomes.setdefault(key, DownloadOutcome())
        link = readable_as_published(source, wanted)
        try:
            stamp = await trio.to_thread.run_sync(adopt_source, site, source, target, record, link)
        except (OSError, VerifyError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            message = f"{key[1]}/{record.fn}: cannot publish it from {source}: {reason}"
            log.error("%s: %s", key[0], message)
            outcome.failed.add(record.fn)
            outcome.errors.append(message)
            continue
        outcome.local_files += 1
        outcome.local_bytes += record.size
        if link and stamp is not None:
            linked.setdefault(record.origin, []).append((source, stamp))
    for name, paths in linked.items():
        await trio.to_thread.run_sync(keep_stamps, site, name, sources.indexes[name], paths)


def _arrivals(
    site: Site, sources: LocalSources, plans: Mapping[TargetKey, Plan]
) -> Iterator[tuple[TargetKey, Record, Path, Path]]:
    """The planned files of local mirrors: (subdir, record, its file in the folder, where
    it is published)."""
    for key, plan in plans.items():
        directory = site.path(*key)
        targets = [(r, directory / r.fn) for r in plan.to_download]
        targets += [(r, site.staging_for(directory / r.fn)) for r in plan.to_stage]
        for record, target in targets:
            index = sources.indexes.get(record.origin)
            if index is not None:
                yield key, record, index.files[(record.subdir, record.fn)], target


def copied_in(
    site: Site, sources: LocalSources, plans: Mapping[TargetKey, Plan]
) -> list[tuple[Path, int]]:
    """The planned files of local mirrors that :func:`link_all` will copy rather than
    hard-link (from another filesystem, or not readable as published), each with where it
    goes and its size: the room they take, which the free-space guard weighs."""
    devices: dict[Path, int] = {}  # a target's directory -> its filesystem
    wanted = published_read_bits()
    out = []
    for _key, record, source, target in _arrivals(site, sources, plans):
        try:
            device = os.stat(source, follow_symlinks=False).st_dev
        except OSError:  # link_all reports it
            continue
        parent = target.parent
        if parent not in devices:
            devices[parent] = existing_directory(parent).stat().st_dev
        if device != devices[parent] or not readable_as_published(source, wanted):
            out.append((target, record.size))
    return out


def adopt_source(
    site: Site, source: Path, target: Path, record: Record, link: bool
) -> os.stat_result | None:
    """Publish a folder's file, hashed against its record; its stat right after (see
    :func:`keep_link_stamps`), None when it is gone already (published all the same)."""
    site.adopt(source, target, lambda path: hash_file(path, record), link)
    try:
        return os.stat(source, follow_symlinks=False)
    except OSError:
        return None


def keep_stamps(
    site: Site, mirror: str, index: FolderIndex, linked: list[tuple[Path, os.stat_result]]
) -> None:
    """:func:`keep_link_stamps` in each index cache of a mirror."""
    for directory, cache_path in index.caches:
        cache = decode_cache(read_or_none(cache_path))
        if keep_link_stamps(cache, directory, linked):
            try:
                write_state(site, cache_path, encode_cache(cache))
            except OSError as exc:  # only costs reading the files again next time
                log.warning("%s: could not keep the index cache: %s", mirror, exc)


def process_umask() -> int:
    """The process's umask, read without setting it (``os.umask`` would, for every thread)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def published_read_bits() -> int:
    """Who may read a file sitegen writes: the read bits its umask lets through."""
    return 0o444 & ~process_umask()


def readable_as_published(source: Path, wanted: int | None = None) -> bool:
    """Whether a folder's file may be published by hard link: only when it is readable by all
    a file sitegen writes is readable by (``wanted``, :func:`published_read_bits`; read here
    unless given). A link shares the file's mode, so a package dropped as 0600 would be
    published unreadable to the web server; it is copied, with the mode of sitegen's own
    files, instead."""
    if wanted is None:
        wanted = published_read_bits()
    try:
        return os.stat(source, follow_symlinks=False).st_mode & wanted == wanted
    except OSError:
        return True  # the link attempt reports the error


def source_candidates(site: Site, mirror: MirrorConfig, subdir: str, fn: str) -> list[Path]:
    """Where a local mirror's file named ``fn`` may be: the folder's top level and its
    ``<subdir>/`` folder (the order the index prefers), then the mirror's store (see
    :func:`has_store`)."""
    folder = folder_of(mirror)
    paths = [folder / fn, folder / subdir / fn]
    if has_store(site, mirror):
        paths.append(local_store_path(site.root, mirror.name) / subdir / fn)
    return paths


def restore(site: Site, mirror: MirrorConfig, record: Record, target: Path) -> str | None:
    """Publish ``target`` again from the local mirror's own file, verified against ``record``
    (the published one); why it could not be, or None."""
    tried = []
    for source in source_candidates(site, mirror, record.subdir, record.fn):
        if not source.is_file():
            continue
        try:
            site.adopt(
                source, target, lambda path: hash_file(path, record), readable_as_published(source)
            )
            return None
        except VerifyError as exc:
            tried.append(f"{source}: {exc}")
        except OSError as exc:
            tried.append(f"{source}: {exc.strerror or exc}")
    if not tried:
        return f"no file of that name in {folder_of(mirror)}"
    return "; ".join(tried)
