"""Write a subdir's metadata files once its package files are in place and verified.

``repodata.json.zst``, ``current_repodata.json``, the shard index
``repodata_shards.msgpack.zst`` (its shards written and flushed before it), with
``repodata: {bz2: true}`` ``repodata.json.bz2``, and CEP-12 ``run_exports.json`` (with its
``.zst``) where there is one to publish, are written before ``repodata.json`` itself. So
when ``repodata.json`` already holds the new bytes, every sibling was completed by an earlier run
and the expensive compression is skipped; unless that run was stopped between two renames, which
the publishing marker it left tells (``layout.publishing_marker_path``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import trio

from sitegen.conda.encode import PieceMap
from sitegen.conda.records import Record
from sitegen.conda.shards import SHARD_INDEX, ShardError, shard_filename
from sitegen.config.site_settings import DEFAULT_SHARD_GRACE_DAYS
from sitegen.gc_pause import gc_paused
from sitegen.layout import (
    REPODATA,
    REPODATA_BZ2,
    RUN_EXPORTS_FILES,
    metadata_files,
    publishing_marker_path,
    repodata_map_path,
    retired_shards_path,
)
from sitegen.store.interface import PendingWrite
from sitegen.store.site import Site
from sitegen.sync.metadata_compress import bz2_stream, zstd_stream
from sitegen.sync.prune import prune_subdir, unretire_shards
from sitegen.sync.publish_shards import (
    WrittenShards,
    index_bytes,
    prune_unnamed,
    write_changed_shards,
)
from sitegen.sync.publish_state import narrow_state, widen_state
from sitegen.sync.repodata_map import save_map
from sitegen.sync.report import WITHOUT_REPLACED
from sitegen.sync.subdir_metadata import SubdirMetadata, write_pieces

log = logging.getLogger("sitegen")


async def publish_subdir(
    site: Site,
    channel_path: str,
    meta: SubdirMetadata,
    shard_grace_days: float = DEFAULT_SHARD_GRACE_DAYS,
    repodata_bz2: bool = False,
    shards: Mapping[str, bytes] | None = None,
) -> list[str]:
    """Publish the metadata of one subdir; returns the names of the files that changed
    (written, or removed: a ``repodata.json.bz2`` while ``repodata_bz2`` is off).

    Shards the index no longer names are deleted once unnamed for ``shard_grace_days``.
    ``shards``: name -> sha256 of the shards of ``meta.records``, on disk already (see
    publish_target); None: they are written here."""
    directory = site.path(channel_path, meta.subdir)
    site.ensure_dir(directory)
    names = metadata_files(repodata_bz2)
    marker = publishing_marker_path(site.root, channel_path, meta.subdir)
    prune = functools.partial(prune_unnamed, site, channel_path, meta.subdir, shard_grace_days)
    # After a run stopped between the renames below, the siblings may describe other records
    # than repodata.json, even one this run leaves as it is: then all are written again.
    complete = not marker.exists() and all((directory / name).is_file() for name in names)
    # Where the parts of repodata.json lie, kept for the next run (see sync.repodata_map).
    where = PieceMap()
    map_path = repodata_map_path(site.root, channel_path, meta.subdir)
    exports = await trio.to_thread.run_sync(meta.run_exports_files)
    with contextlib.ExitStack() as files:  # each discarded unless published
        target = directory / REPODATA
        if complete:
            pieces = meta.pieces(where)
            body = await trio.to_thread.run_sync(site.pending_unless_same, target, pieces)
            if body is None:
                # Only the setting changed, if anything: a .bz2 of this JSON may simply go.
                withdrawn = _withdraw_bz2(site, directory, repodata_bz2)
                # The same records, but their run_exports may be new (or upstream's gone).
                withdrawn += await trio.to_thread.run_sync(
                    _put_run_exports, site, directory, exports
                )
                await trio.to_thread.run_sync(save_map, site, map_path, target, where)
                await trio.to_thread.run_sync(prune)
                return withdrawn
            files.enter_context(body)
        else:
            body = files.enter_context(site.pending(target))
            await trio.to_thread.run_sync(write_pieces, meta.pieces(where), body)
        results: dict[str, bytes | PendingWrite] = {"repodata.json": body}
        streamed = {"repodata.json.zst": zstd_stream}
        if repodata_bz2:
            streamed[REPODATA_BZ2] = bz2_stream

        async def stream(name: str, func, *args) -> None:
            out = files.enter_context(site.pending(directory / name))
            await trio.to_thread.run_sync(func, *args, out)
            results[name] = out

        named: set[str] = set()  # the shard files the new index names

        async def produce_shards() -> None:
            # Built while zstd's threads compress repodata.json: the shards' work in Python
            # (and the hashing of those kept) takes one core, the compression the other.
            # Flushed before the index is made.
            made = shards
            if made is None:
                made = (await trio.to_thread.run_sync(_write_shards, site, directory, meta)).shards
            named.update(shard_filename(digest) for digest in made.values())
            results[SHARD_INDEX] = await trio.to_thread.run_sync(
                index_bytes, directory, meta.subdir, made
            )

        # A disk error in one of them (a full disk while a shard or the .zst is written) is
        # this subdir's failure, raised as itself once the others are done: not wrapped in
        # the nursery's ExceptionGroup, which would stop the whole run.
        failures: list[OSError | ShardError] = []

        async def guarded(task, *args) -> None:
            try:
                await task(*args)
            except (OSError, ShardError) as exc:
                failures.append(exc)

        async with trio.open_nursery() as nursery:
            for name, func in streamed.items():
                nursery.start_soon(guarded, stream, name, func, body)
            current = meta.current_pieces()  # nothing done until a thread asks for a piece
            nursery.start_soon(guarded, stream, "current_repodata.json", write_pieces, current)
            nursery.start_soon(guarded, produce_shards)
        if failures:
            raise failures[0]
        # A .bz2 of an earlier repodata.json goes before the new one is renamed in, never to
        # be served beside it; a failure below then leaves the old JSON without its (unread)
        # .bz2.
        withdrawn = _withdraw_bz2(site, directory, repodata_bz2)
        if not exports:  # likewise a run_exports.json upstream no longer serves
            withdrawn += _put_run_exports(site, directory, exports)
        results.update(exports)
        # All files are complete (synced) before the first rename, in one thread call (which
        # a cancellation cannot cut short): a full disk or a stop signal cannot leave a new
        # .zst beside an old repodata.json. repodata.json is renamed last.
        order = [*exports, *names[1:], *names[:1]]
        # A shard named again is no longer retired, before the index naming it is published.
        retired = retired_shards_path(site.root, channel_path, meta.subdir)
        await trio.to_thread.run_sync(unretire_shards, site, retired, named)
        site.ensure_dir(marker.parent)
        site.write_bytes(marker, b"")
        await trio.lowlevel.checkpoint_if_cancelled()  # a stop before the renames: none
        # Once the renames start the subdir is published: what follows is finished even when a
        # stop arrives meanwhile, so that the caller learns of it and the run's record lists
        # what it published (the next run compares with it and would never report it).
        with trio.CancelScope(shield=True):
            written = await trio.to_thread.run_sync(
                site.write_many, [(directory / name, results[name]) for name in order]
            )
    with trio.CancelScope(shield=True):
        try:  # published all the same: the next run, finding it, writes every sibling again
            site.remove(marker)
        except OSError as exc:
            log.warning("%s/%s: could not remove %s: %s", channel_path, meta.subdir, marker, exc)
        site.remove_empty_dirs(marker.parent, site.state_dir)  # its folders, once they hold none
        await trio.to_thread.run_sync(save_map, site, map_path, target, where)
        await trio.to_thread.run_sync(prune)
    return withdrawn + [path.name for path in written]


def _write_shards(site: Site, directory: Path, meta: SubdirMetadata) -> WrittenShards:
    """The shards of ``meta`` (see write_changed_shards), from its records grouped by name
    (grouped here, in the worker thread, when not yet)."""
    return write_changed_shards(site, directory, meta.records, meta.changed_names, meta.names())


def _put_run_exports(site: Site, directory: Path, exports: dict[str, bytes]) -> list[str]:
    """Publish the run_exports.json files given, or remove those published when none is;
    the names of the files that changed."""
    if exports:
        return [
            path.name for path in site.write_many([(directory / n, b) for n, b in exports.items()])
        ]
    return [name for name in reversed(RUN_EXPORTS_FILES) if site.remove(directory / name)]


def _withdraw_bz2(site: Site, directory: Path, repodata_bz2: bool) -> list[str]:
    """With ``repodata_bz2`` off, remove the .bz2 an earlier run published; its name if so."""
    if repodata_bz2 or not site.remove(directory / REPODATA_BZ2):
        return []
    return [REPODATA_BZ2]


# (channel path, metadata, staged, package bases, kept, listed now, withdrawn): see
# publish_target.
PublishTarget = tuple[
    str, SubdirMetadata, list[str], dict[str, str], Mapping[str, Record], Collection[str], list[str]
]


@dataclass(frozen=True)
class PublishOutcome:
    """How publishing one channel subdir went."""

    status: str  # "published", "unchanged" or "failed"
    records: Mapping[str, Record] | None = None  # as published; None: the previous state
    deleted: int = 0  # package files pruned after publishing
    error: str = ""


async def publish_target(
    site: Site,
    channel_path: str,
    meta: SubdirMetadata,
    staged: list[str],
    package_bases: dict[str, str],
    shard_grace_days: float = DEFAULT_SHARD_GRACE_DAYS,
    repodata_bz2: bool = False,
    *,
    kept: Mapping[str, Record],
    listed: Collection[str],
    withdrawn: Collection[str] = (),
    first_step: Callable[[PublishOutcome], None] = lambda _outcome: None,
) -> PublishOutcome:
    """Publish one subdir whose files are on disk (``staged``: replacements waiting under
    their staging names; ``withdrawn``: files of a passive mirror that upstream replaced,
    stored or not, to go), then prune the files nothing names any more but the ``kept`` ones
    (see sitegen.sync.keep), whose records are saved first. Its origins map goes
    first too: which mirror serves each file (``Record.origin``) and from where
    (``package_bases``, mirror -> upstream ``info.base_url``), for the passive fetcher and
    `verify --repair`. Both also describe the state published now (whose metadata lists the
    files ``listed``) until the new one is in (see sitegen.sync.publish_state).
    ``first_step`` gets the outcome of a two-step publish once its first step is published:
    the subdir's outcome should a stop cut the second short (then nothing is returned)."""
    subdir = meta.subdir
    state = (site, channel_path, subdir, meta.records, package_bases, kept)
    widened = await trio.to_thread.run_sync(widen_state, *state, listed)
    directory = site.path(channel_path, subdir)
    shards = interim = None
    replaced = {*staged, *withdrawn}
    if replaced:
        # Two steps keep every published record true: first publish without the replaced
        # files, then move the new bytes into place (or take the old ones of a passive mirror
        # away, for the fetcher to get the new), then publish their new records. Their shards
        # are written and flushed first, against the index published now: a full disk or a
        # failing flush then fails the subdir before the first step changes anything.
        shards = (await trio.to_thread.run_sync(_write_shards, site, directory, meta)).shards
        interim = {fn: r for fn, r in meta.records.items() if fn not in replaced}
        await publish_subdir(
            site,
            channel_path,
            SubdirMetadata(
                subdir,
                interim,
                meta.info,
                meta.removed,
                meta.extra,
                run_exports=meta.run_exports,
                # The replaced files' names are among them: their shards differ in each step.
                changed_names=meta.changed_names,
            ),
            # No shard retires here: the shards of the replacements, written before this,
            # are not named until the second step.
            math.inf,
            repodata_bz2,
        )
        # From now on the run's record must list this step (the next run compares with it).
        without = f"{subdir}: the run stopped; {WITHOUT_REPLACED}"
        first_step(PublishOutcome("failed", records=interim, error=without))
    last = (site, channel_path, meta, shard_grace_days, repodata_bz2)
    try:
        for fn in staged:
            site.commit(site.staging_for(directory / fn), directory / fn)
        for fn in withdrawn:
            site.remove(directory / fn)
        written = await publish_subdir(*last, shards=shards)
    except (OSError, ShardError) as exc:
        if interim is None:
            raise  # else the first step is published: not the previous state
        outcome = failure(channel_path, subdir, exc, WITHOUT_REPLACED)
        return replace(outcome, records=interim)
    # Prune only after the new metadata is in place; shielded like the renames before it, so
    # that a stop now still reports this subdir as published.
    with trio.CancelScope(shield=True):
        if widened:
            try:
                await trio.to_thread.run_sync(narrow_state, *state)
            except OSError as exc:  # published all the same; the wider state still holds
                why = "could not narrow its origins map and kept records to what it publishes"
                log.warning("%s/%s: %s: %s", channel_path, subdir, why, exc)
        try:
            removed = await trio.to_thread.run_sync(
                prune_subdir, site, directory, meta.records.keys() | kept.keys()
            )
        except OSError as exc:  # published all the same; a later run deletes them
            log.warning("%s/%s: could not prune files: %s", channel_path, subdir, exc)
            removed = []
    status = "published" if written else "unchanged"
    return PublishOutcome(status, meta.records, deleted=len(removed))


# What a subdir that could not be published serves (see failure): what it served before.
KEPT_PREVIOUS = "kept the previous state"


def failure(channel: str, subdir: str, exc: OSError | ShardError, kept: str) -> PublishOutcome:
    """A subdir that could not be published, and what it publishes instead (``kept``)."""
    log.error("%s/%s: %s", channel, subdir, exc)
    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
    where = f" ({exc.filename})" if isinstance(exc, OSError) and exc.filename else ""
    return PublishOutcome("failed", error=f"{subdir}: could not publish: {why}{where}; {kept}")


async def publish_all(
    site: Site,
    targets: list[PublishTarget],
    outcomes: dict[tuple[str, str], PublishOutcome],
    shard_grace_days: float = DEFAULT_SHARD_GRACE_DAYS,
    repodata_bz2: bool = False,
) -> None:
    """Publish ``targets`` (see publish_target), two at a time, filling ``outcomes`` by
    (channel path, subdir) as each ends: a failed subdir keeps its previous state (or its
    first step, see publish_target). ``repodata_bz2``: also publish ``repodata.json.bz2``
    (else remove any left published)."""
    limiter = trio.CapacityLimiter(2)  # compression is CPU-bound; two cores at most

    async def publish(
        channel_path: str,
        meta: SubdirMetadata,
        staged: list[str],
        bases: dict[str, str],
        kept: Mapping[str, Record],
        listed: Collection[str],
        withdrawn: list[str],
    ) -> None:
        key = (channel_path, meta.subdir)
        # One pause of the cyclic GC over the whole of it: its parts run in threads at once,
        # each walking the subdir's records (shards, current_repodata, repodata.json).
        async with limiter:
            try:
                with gc_paused():
                    outcome = await publish_target(
                        site,
                        channel_path,
                        meta,
                        staged,
                        bases,
                        shard_grace_days,
                        repodata_bz2,
                        kept=kept,
                        listed=listed,
                        withdrawn=withdrawn,
                        first_step=functools.partial(outcomes.__setitem__, key),
                    )
            except (OSError, ShardError) as exc:
                # A full disk or an I/O error, or a record no shard can hold (see
                # encode_shard): this subdir keeps its previous state.
                outcome = failure(channel_path, meta.subdir, exc, KEPT_PREVIOUS)
            outcomes[key] = outcome

    async with trio.open_nursery() as nursery:
        for target in targets:
            nursery.start_soon(publish, *target)
