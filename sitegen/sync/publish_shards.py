"""Write a subdir's CEP-16 shards and build its shard index; check them for ``sitegen verify``.

Shards are content-addressed and immutable: a shard already on disk is never written again, so
a run in which ten names changed writes ten shards (the shards it names again are hashed first:
one damaged on disk is written again, not named once more). They are flushed to disk before the index
that names them is published (with the other metadata siblings, before ``repodata.json``), so
no published index ever names a shard a crash could lose. The index itself is rewritten only
when the names or hashes it lists change; otherwise it keeps its bytes (and ``created_at``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sitegen.conda.indexed import same_as_published
from sitegen.conda.records import Record, Repodata, names_of
from sitegen.conda.shards import (
    BASE_URL,
    SHARD_INDEX,
    SHARDS_BASE_URL,
    SHARDS_DIR,
    ShardError,
    ShardIndex,
    build_shard,
    created_at_now,
    decode_index,
    digest_of_filename,
    encode_index,
    iter_shards,
    shard_compressor,
    shard_filename,
)
from sitegen.gc_pause import gc_paused
from sitegen.layout import retired_shards_path, shard_path, shards_dir
from sitegen.store.compare import NotAFileError, read_regular
from sitegen.store.site import Site, UnsafePathError
from sitegen.sync.prune import prune_shards, unretire_shards

log = logging.getLogger("sitegen")


@dataclass(frozen=True, slots=True)
class WrittenShards:
    shards: dict[str, bytes]  # name -> sha256, what the index will list
    written: int  # shard files new on disk
    # Shards built (not known to be published already): those to flush before an index names
    # them, written or not (a file there may be left by a run whose flush failed).
    built: int


def write_shards(
    site: Site,
    directory: Path,
    records: Mapping[str, Record],
    *,
    current: Mapping[str, bytes] | None = None,
    names: Mapping[str, list[Record]] | None = None,
) -> WrittenShards:
    """Write every shard of ``records`` not yet in ``directory/shards/``; the new ones are on
    disk when this returns (in one flush of their filesystem).

    ``current``: name -> sha256 of shards known to hold exactly what ``records`` say for those
    names (see :func:`unchanged_shards`); they are neither built nor written again. A shard
    built whose file is there already is compared with it byte for byte: a file of the right
    size may hold other bytes, and one left by a run whose flush failed is flushed again.
    ``names``: ``records`` grouped by name (see names_of), when the caller has them.
    """
    folder = _checked_shards_dir(site, directory)
    site.ensure_dir(folder)
    known = current or {}
    index: dict[str, bytes] = {}
    written = built = 0
    compressor = shard_compressor()
    # A list per name and a dict per record packed, none in a cycle: without the pause they set
    # off collections over the 800,000 records again and again (~2 s at conda-forge scale).
    with gc_paused():
        for name, group in (names_of(records) if names is None else names).items():
            digest = known.get(name)
            if digest is not None:
                index[name] = digest
                continue
            shard = build_shard(name, group, compressor)
            built += 1
            index[name] = shard.digest
            # Not fsynced one by one: the flush below puts them all on disk.
            written += site.write_addressed(folder, shard.filename, shard.data)
    if built:
        # All on disk, in one flush of their filesystem, before the index naming them is
        # published (the caller writes it after this returns).
        site.sync([folder])
    return WrittenShards(shards=index, written=written, built=built)


def _checked_shards_dir(site: Site, directory: Path) -> Path:
    """The shards folder of the subdir ``directory`` (a folder of the site), refused with
    :class:`UnsafePathError` when it is a link leading out of the site: no shard is written or
    pruned through it."""
    return site.path(directory.relative_to(site.root).as_posix(), SHARDS_DIR)


def write_changed_shards(
    site: Site,
    directory: Path,
    records: Mapping[str, Record],
    changed: set[str] | None,
    names: Mapping[str, list[Record]] | None = None,
) -> WrittenShards:
    """:func:`write_shards` of ``records`` (``names``: grouped by name, if at hand), keeping
    the published shards of the names not ``changed`` that are whole on disk (see
    :func:`unchanged_shards`); None: none kept."""
    current = None if changed is None else unchanged_shards(directory, changed)
    return write_shards(site, directory, records, current=current, names=names)


def changed_names(records: Mapping[str, Record], previous: Repodata) -> set[str]:
    """The package names with a record added, changed (its stamp included) or removed since
    ``previous`` (what ``repodata.json`` publishes); none when the records are those published."""
    before, stamps = previous.records, previous.stamps
    changed = {
        r.raw["name"]
        for fn, r in records.items()
        if not same_as_published(r, before.get(fn), stamps)
    }
    changed.update(r.raw["name"] for fn, r in before.items() if fn not in records)
    return changed


def unchanged_shards(directory: Path, changed: set[str]) -> dict[str, bytes]:
    """The shards of the published index that stay as they are: name -> sha256 for every
    name not in ``changed`` (see :func:`changed_names`) whose shard is on disk and hashes to
    its name. One cut short, damaged or replaced is left out, so the caller builds it again
    and writes it over the file, instead of naming it in one more index.

    Only an index published together with ``repodata.json`` vouches for it: the caller asks
    none after a run stopped between the renames of the two (see publish_subdir).
    """
    index = read_index(directory)
    if index is None or index.shards_base_url != SHARDS_BASE_URL:
        return {}
    return {
        name: digest
        for name, digest in index.shards.items()
        if name not in changed and _hashes_to(directory / shard_path(digest), digest)
    }


def _hashes_to(path: Path, digest: bytes) -> bool | None:
    """Whether the bytes of the file at ``path`` hash to ``digest`` (False when it cannot be
    read); None when there is no such file. Hashed, not sized: the index records no sizes,
    and a file of the right size may hold other bytes. At conda-forge scale this reads
    ~100 MB in ~34,000 files per run that changed a name (under a second, against the 25-42 s
    of such a run), one file at a time."""
    try:
        # Not opened blocking: a named pipe in its place would hold the run forever.
        data = read_regular(path)
    except FileNotFoundError:
        return None
    except OSError:  # NotAFileError among them
        return False
    return hashlib.sha256(data).digest() == digest


def read_index(directory: Path) -> ShardIndex | None:
    """The published shard index of a subdir, or None when absent or unreadable."""
    try:
        return decode_index(read_regular(directory / SHARD_INDEX))
    except (FileNotFoundError, NotAFileError, ShardError):
        return None


def index_bytes(directory: Path, subdir: str, shards: Mapping[str, bytes]) -> bytes:
    """The shard index to publish: the current file when it lists exactly ``shards``."""
    current = directory / SHARD_INDEX
    try:
        data = read_regular(current)
        published = decode_index(data)
    except (FileNotFoundError, NotAFileError, ShardError):
        published = None
    if (
        published is not None
        and published.subdir == subdir
        and published.shards == dict(shards)
        and published.base_url == BASE_URL
        and published.shards_base_url == SHARDS_BASE_URL
    ):
        return data
    return encode_index(subdir, shards, created_at_now())


def named_files(index: ShardIndex | None) -> set[str]:
    """The shard file names an index names."""
    return {shard_filename(d) for d in index.shards.values()} if index else set()


def shard_problems(
    directory: Path, subdir: str, records: Mapping[str, Record]
) -> list[tuple[str, str]]:
    """What is wrong with a subdir's shards, each as (file relative to the subdir, detail).

    The index must describe ``subdir`` with the ``base_url`` and ``shards_base_url`` sitegen
    writes, list exactly the shards ``records`` (from ``repodata.json``) make, and every shard
    it names must exist and hash to its name.
    """
    try:
        index = decode_index(read_regular(directory / SHARD_INDEX))
    except FileNotFoundError:
        return [(SHARD_INDEX, "missing")]
    except (NotAFileError, ShardError) as exc:
        return [(SHARD_INDEX, str(exc))]
    problems: list[tuple[str, str]] = []
    if (
        index.subdir != subdir
        or index.shards_base_url != SHARDS_BASE_URL
        or index.base_url != BASE_URL
    ):
        # base_url is where clients fetch the packages from (joined to the index's URL).
        problems.append(
            (
                SHARD_INDEX,
                f"describes {index.subdir!r} at {index.shards_base_url!r}, its packages at"
                f" {index.base_url!r}",
            )
        )
    try:
        expected = {shard.name: shard.digest for shard in iter_shards(records)}
    except ShardError as exc:  # repodata.json holds a record no shard can (not as published)
        return [(SHARD_INDEX, f"repodata.json cannot be sharded: {exc}")]
    if index.shards != expected:
        differ = sorted(
            n
            for n in expected.keys() | index.shards.keys()
            if expected.get(n) != index.shards.get(n)
        )
        problems.append(
            (
                SHARD_INDEX,
                f"does not match repodata.json for {len(differ)} names, e.g. {differ[0]!r}",
            )
        )
    for name, digest in sorted(index.shards.items()):
        relative = shard_path(digest)
        try:
            # A named pipe in a shard's place would hold verify forever, unread; a directory
            # or a name that cannot be read is reported like any damaged shard.
            data = read_regular(directory / relative)
        except FileNotFoundError:
            problems.append((relative, f"missing (shard of {name!r})"))
            continue
        except OSError as exc:
            why = str(exc) if isinstance(exc, NotAFileError) else exc.strerror or str(exc)
            problems.append((relative, f"{why} (shard of {name!r})"))
            continue
        if hashlib.sha256(data).digest() != digest:
            problems.append((relative, f"does not hash to its name (shard of {name!r})"))
    return problems


def grace_shard_problems(directory: Path) -> list[tuple[str, str]]:
    """The shard files of a subdir the published index does not name (kept for clients that
    hold an earlier index, until their grace period ends; see :func:`prune_unnamed`) whose
    bytes do not hash to their name, each as (file relative to the subdir, detail): served all
    the same, to clients that fetch a shard by the hash its name gives. None judged while the
    index cannot be read (:func:`shard_problems` reports it; which shards are kept is unknown).
    """
    index = read_index(directory)
    folder = shards_dir(directory)
    if index is None or not folder.is_dir():
        return []
    named = named_files(index)
    problems = []
    with os.scandir(folder) as entries:
        kept = sorted(
            (entry.name, digest)
            for entry in entries
            if entry.name not in named
            and (digest := digest_of_filename(entry.name)) is not None
            and entry.is_file(follow_symlinks=False)
        )
    for name, digest in kept:
        path = folder / name
        # One gone is fine: a run beside `sitegen verify` prunes the shards whose grace
        # period ended, between the listing and the read as well, and then nothing is served.
        if _hashes_to(path, digest) is False:
            relative = path.relative_to(directory).as_posix()
            why = "does not hash to its name (a shard the index no longer names, kept a while)"
            problems.append((relative, why))
    return problems


def rebuild_shards(
    site: Site, directory: Path, subdir: str, records: Mapping[str, Record], retired: Path
) -> None:
    """Make a subdir's shards and index what ``records`` say again (``sitegen verify --repair``):
    shards re-written where missing or damaged, then the index. ``retired``: the subdir's
    retired-shards state (see sitegen.sync.prune.unretire_shards)."""
    written = write_shards(site, directory, records)
    unretire_shards(site, retired, {shard_filename(d) for d in written.shards.values()})
    site.write_bytes(directory / SHARD_INDEX, index_bytes(directory, subdir, written.shards))


def prune_unnamed(site: Site, channel_path: str, subdir: str, grace_days: float) -> None:
    """After the index is published: retire the shards it does not name, and delete those
    unnamed for ``grace_days`` (see sync.prune.prune_shards). A disk error is logged: the
    subdir is published, and a later run prunes them."""
    directory = site.path(channel_path, subdir)
    index = read_index(directory)
    if index is None:
        return  # which shards are in use is unknown: keep them all
    retired = retired_shards_path(site.root, channel_path, subdir)
    try:
        prune_shards(
            site,
            _checked_shards_dir(site, directory),
            named_files(index),
            retired,
            time.time(),
            grace_days * 86400,
        )
    except (OSError, UnsafePathError) as exc:
        log.warning("%s/%s: could not prune shards: %s", channel_path, subdir, exc)
