"""A local source's folder as repodata: find its package files, index what is new, group by subdir.

The folder holds ``.conda`` and ``.tar.bz2`` files at its top level (each goes to the subdir its
``info/index.json`` names) and in ``<subdir>/`` folders (whose files must name that subdir).
Anything else is ignored: other names (``*.partial`` while a copy is under way), dot-files,
other directories. A file listed twice (top level and a subdir folder) counts once: the
top-level one.

Indexing a file costs a full read; the cache (``.sitegen/local-index/<mirror>.json``) keeps
each file's record under its size, mtime, inode and ctime (:class:`FileStat`), so a re-index
reads only new or changed files, and those indexed by other rules (:data:`INDEX_VERSION`).
Files that cannot be published are cached with their reason too, and reported on every run.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from sitegen.conda.hashing_reader import Pread
from sitegen.conda.index import (
    INDEX_VERSION,
    REASON_CHANGED,
    REASON_NOT_FILE,
    BadPackage,
    FileStat,
    index_package,
)
from sitegen.conda.record_check import REASON_BAD_FILENAME, REASON_SUBDIR_MISMATCH
from sitegen.conda.records import Record, Repodata
from sitegen.conda.schema import PACKAGE_SUFFIXES
from sitegen.config.subdirs import KNOWN_SUBDIRS

REASON_NOT_MIRRORED = "subdir not listed for this mirror"
REASON_DUPLICATE = "file name listed twice in the folder"
READ_ATTEMPTS = 3
# Where a file whose subdir is unknown (unreadable, or not listed) is reported.
FALLBACK_SUBDIR = "noarch"


class CacheEntry(msgspec.Struct, omit_defaults=True):
    """One file as last indexed: its identity on disk, then its record or why it has none."""

    size: int
    mtime_ns: int
    inode: int
    # 0 in a cache written before the ctime was kept: never a file's, so the file is read once.
    ctime_ns: int = 0
    record: dict[str, Any] | None = None
    about: dict[str, Any] = msgspec.field(default_factory=dict)
    reason: str = ""
    # CEP-12: the package's run_exports as published, "" when unknown (see IndexedPackage).
    run_exports: str = ""
    # The INDEX_VERSION the verdict was reached by; 0 in a cache written before it was kept.
    version: int = 0

    @property
    def stat(self) -> FileStat:
        return FileStat(self.size, self.mtime_ns, self.inode, self.ctime_ns)


CACHE_TYPE = dict[str, CacheEntry]


def decode_cache(data: bytes | None) -> dict[str, CacheEntry]:
    """The cache as stored; empty when absent or unreadable (it only saves reads)."""
    if not data:
        return {}
    try:
        return msgspec.json.decode(data, type=CACHE_TYPE)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return {}


def encode_cache(cache: dict[str, CacheEntry]) -> bytes:
    return msgspec.json.encode(dict(sorted(cache.items())))


@dataclass(frozen=True)
class FoundFile:
    relpath: str  # inside the folder, POSIX
    folder_subdir: str | None  # the <subdir>/ folder it sits in; None at the top level
    stat: FileStat | None  # None: not a regular file


def scan_folder(folder: Path) -> list[FoundFile]:
    """The package files of the folder, top level first, each level in name order."""
    found: list[FoundFile] = []
    subdirs: list[str] = []
    with os.scandir(folder) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                if entry.name in KNOWN_SUBDIRS:
                    subdirs.append(entry.name)
                continue
            if entry.name.endswith(PACKAGE_SUFFIXES):
                found.append(_found(entry, entry.name, None))
    for subdir in subdirs:
        try:
            with os.scandir(folder / subdir) as entries:
                for entry in sorted(entries, key=lambda e: e.name):
                    if not entry.name.startswith(".") and entry.name.endswith(PACKAGE_SUFFIXES):
                        found.append(_found(entry, f"{subdir}/{entry.name}", subdir))
        except FileNotFoundError:  # removed since it was listed
            continue
    return found


def _found(entry: os.DirEntry[str], relpath: str, folder_subdir: str | None) -> FoundFile:
    try:
        result = entry.stat(follow_symlinks=False)
    except FileNotFoundError:
        return FoundFile(relpath, folder_subdir, None)
    regular = stat.S_ISREG(result.st_mode)
    return FoundFile(relpath, folder_subdir, FileStat.of(result) if regular else None)


def plain_name(found: FoundFile) -> bool:
    """Whether the file's path can be logged on one line and written as UTF-8 (the index
    cache, the run report). One that cannot (bytes that are not UTF-8, a newline, terminal
    escapes) is never published, so it is not even read: it is rejected as named."""
    return found.relpath.isprintable()


def needs_reading(found: FoundFile, cache: dict[str, CacheEntry]) -> bool:
    entry = cache.get(found.relpath)
    fresh = entry is None or entry.stat != found.stat or entry.version != INDEX_VERSION
    return found.stat is not None and fresh and plain_name(found)


def read_one(folder: Path, found: FoundFile, pread: Pread = os.pread) -> CacheEntry:
    """Index one file (a full read, each piece through ``pread``); what the cache keeps of it.
    A file replaced while it was read is read again (a few times): it is the replacement that
    must be published."""
    assert found.stat is not None
    for _attempt in range(READ_ATTEMPTS):
        try:
            package = index_package(folder / found.relpath, pread=pread)
            break
        except BadPackage as exc:
            if exc.reason != REASON_CHANGED or not (folder / found.relpath).exists():
                return _rejected(found.stat, exc.reason)
    else:
        return _rejected(found.stat, REASON_CHANGED)
    identity = package.stat or found.stat
    exports = package.run_exports.decode() if package.run_exports is not None else ""
    return CacheEntry(
        *_stat_fields(identity),
        record=package.record,
        about=package.about,
        run_exports=exports,
        version=INDEX_VERSION,
    )


def _rejected(identity: FileStat, reason: str) -> CacheEntry:
    return CacheEntry(*_stat_fields(identity), reason=reason, version=INDEX_VERSION)


def _stat_fields(value: FileStat) -> tuple[int, int, int, int]:
    return value.size, value.mtime_ns, value.inode, value.ctime_ns


@dataclass
class FolderIndex:
    """One local mirror's folder, as repodata per subdir, plus where each record's file is."""

    repodata: dict[str, Repodata]
    files: dict[tuple[str, str], Path] = field(default_factory=dict)  # (subdir, fn) -> file
    details: list[str] = field(default_factory=list)  # one line per rejected file, for logs
    # Each directory indexed and its cache file (none in a dry run): see keep_link_stamps.
    caches: list[tuple[Path, Path]] = field(default_factory=list)
    # CEP-12: subdir -> fn -> run_exports as published, of the records whose are known.
    run_exports: dict[str, dict[str, bytes]] = field(default_factory=dict)

    def fingerprint(self, subdir: str) -> bytes:
        """What the published output of ``subdir`` depends on, for the run's inputs digest."""
        repodata = self.repodata[subdir]
        exports = self.run_exports.get(subdir, {})
        records = {
            fn: [r.raw, r.about, exports.get(fn)] for fn, r in sorted(repodata.records.items())
        }
        return msgspec.json.encode([records, sorted(repodata.rejected.items())])


def build_index(
    folder: Path,
    mirror: str,
    subdirs: tuple[str, ...],
    found: list[FoundFile],
    cache: dict[str, CacheEntry],
) -> FolderIndex:
    """Group the indexed files into repodata, rejecting what cannot be published (pure: the
    files were read into ``cache`` before)."""
    index = FolderIndex({s: Repodata(subdir=s, info={"subdir": s}) for s in subdirs})

    def reject(found: FoundFile, subdir: str | None, reason: str) -> None:
        where = subdir if subdir in index.repodata else FALLBACK_SUBDIR
        name = found.relpath.rsplit("/", 1)[-1]
        shown = (name, found.relpath) if plain_name(found) else (repr(name), repr(found.relpath))
        index.repodata[where].rejected[shown[0]] = reason
        index.details.append(f"{shown[1]}: {reason}")

    for item in found:
        if not plain_name(item):
            reject(item, item.folder_subdir, REASON_BAD_FILENAME)
            continue
        entry = cache.get(item.relpath)
        if item.stat is None or entry is None:
            reject(item, item.folder_subdir, REASON_NOT_FILE)
            continue
        if entry.record is None:
            reject(item, item.folder_subdir, entry.reason)
            continue
        raw = entry.record
        subdir = raw["subdir"]
        fn = item.relpath.rsplit("/", 1)[-1]
        if item.folder_subdir is not None and item.folder_subdir != subdir:
            reject(item, item.folder_subdir, REASON_SUBDIR_MISMATCH)
            continue
        if subdir not in index.repodata:
            reject(item, item.folder_subdir, REASON_NOT_MIRRORED)
            continue
        records = index.repodata[subdir].records
        if fn in records:
            reject(item, subdir, REASON_DUPLICATE)
            continue
        # A copy: the pipeline may adjust records (CEP-15, patches) and the cache must not see it.
        about = dict(entry.about) if entry.about else None
        raw = dict(raw)
        records[fn] = Record(fn=fn, subdir=subdir, raw=raw, origin=mirror, about=about)
        index.files[(subdir, fn)] = folder / item.relpath
        if entry.run_exports:
            index.run_exports.setdefault(subdir, {})[fn] = entry.run_exports.encode()
    return index


def overlay(primary: FolderIndex, moved: FolderIndex) -> FolderIndex:
    """``primary`` plus the records of ``moved`` it does not list (the files a ``move: true``
    source moved out of its folder): what the folder holds replaces what was moved before, and
    a bad file dropped under a moved one's name leaves that one published."""
    for subdir, repodata in moved.repodata.items():
        records = primary.repodata[subdir].records
        for fn, record in repodata.records.items():
            if fn not in records:
                records[fn] = record
                primary.files[(subdir, fn)] = moved.files[(subdir, fn)]
                exports = moved.run_exports.get(subdir, {}).get(fn)
                if exports is not None:
                    primary.run_exports.setdefault(subdir, {})[fn] = exports
        for fn, reason in repodata.rejected.items():
            primary.repodata[subdir].rejected.setdefault(fn, reason)
    primary.caches += moved.caches
    primary.details += moved.details
    return primary


def keep_link_stamps(
    cache: dict[str, CacheEntry], directory: Path, linked: list[tuple[Path, os.stat_result]]
) -> bool:
    """Give the cache entries of files just published from ``directory`` by hard link the
    ctime the link gave them; True if any changed. ``linked``: each file and its stat, taken
    right after it was hashed and published.

    A new hard link moves a file's ctime, which is part of what the cache knows a file by, so
    without this every file would be read again at the run after the one that published it.
    The link was hashed against the file's record as it was published, so the bytes behind
    the ctime seen then are the bytes indexed; the entry is kept only while size, mtime and
    inode are still the ones indexed. A stat taken later could see the ctime of a rewrite in
    place since (``cp -p``, ``rsync --times``), whose bytes no one hashed."""
    changed = False
    for source, now in linked:
        if not source.is_relative_to(directory):
            continue
        entry = cache.get(source.relative_to(directory).as_posix())
        if entry is None:
            continue
        if (now.st_size, now.st_mtime_ns, now.st_ino) != (entry.size, entry.mtime_ns, entry.inode):
            continue
        if entry.ctime_ns != now.st_ctime_ns:
            entry.ctime_ns = now.st_ctime_ns
            changed = True
    return changed
