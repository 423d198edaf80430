"""Between the downloads and the run's single flush: what each merged subdir will publish.

The records of a subdir are final once its downloads ended (a file that failed is left out,
but for a re-upload of a published file: the published bytes, still in place, stay listed
while the channel's filters would list them);
they then get their CEP-47 ``indexed_timestamp`` (see sitegen.conda.indexed), and the names
whose records changed are found: publishing builds only their shards, while zstd compresses
the subdir's repodata.json on the other core.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace

import msgspec
import trio

from sitegen.conda.indexed import decode_first_seen, encode_first_seen, stamp_records
from sitegen.conda.records import Record, Repodata
from sitegen.conda.version import RecordMatcher
from sitegen.config import ChannelConfig, SiteConfig
from sitegen.filters.apply import apply_filters
from sitegen.layout import indexed_timestamps_path, publishing_marker_path
from sitegen.store.origins import load_origins
from sitegen.store.site import Site
from sitegen.sync.download import DownloadOutcome, TargetKey, check_files
from sitegen.sync.merge import MergedSubdir
from sitegen.sync.publish import KEPT_PREVIOUS, PublishOutcome, failure
from sitegen.sync.publish_shards import changed_names
from sitegen.sync.subdir_metadata import SubdirMetadata

log = logging.getLogger("sitegen")

# Of the published records of a merged subdir whose replacements failed (fn -> record, with
# the mirror it came from), the names its filters would list in their place.
Listable = Callable[[MergedSubdir, Mapping[str, Record]], Collection[str]]


def filters_list(
    config: SiteConfig, channels: Collection[ChannelConfig], matcher: RecordMatcher
) -> Listable:
    """What the filters of ``channels`` would list of the published records standing in for
    replacements that failed. Each is judged by the filters of the mirror it came from (none,
    when that mirror no longer feeds its subdir): listed when they keep it, or when they leave
    it out only as they leave out its replacement, which the dependency closure pulled in (not
    in an allowlist). So a rule added since it was published (a licence, a date, a size), or
    an allowlist pinning the new bytes (a lockfile), drops it as it would drop any record."""
    by_path = {channel.path: channel for channel in channels}

    def listable(merged: MergedSubdir, old: Mapping[str, Record]) -> set[str]:
        new = merged.meta.records if merged.meta is not None else {}
        channel = by_path[merged.channel]
        names: set[str] = set()
        for mirror in channel.mirrors:
            mine = {fn: r for fn, r in old.items() if r.origin == mirror.name and fn in new}
            if not mine or merged.subdir not in mirror.subdirs:
                continue
            levels = config.filter_levels(channel, mirror)
            before = apply_filters(mine, merged.subdir, levels, matcher)
            after = apply_filters({fn: new[fn] for fn in mine}, merged.subdir, levels, matcher)
            names.update(before.kept)
            names.update(fn for fn in before.candidates if fn not in after.kept)
        return names

    return listable


async def prepare_all(
    site: Site,
    merged_all: list[MergedSubdir],
    downloads: Mapping[TargetKey, DownloadOutcome],
    outcomes: dict[TargetKey, PublishOutcome],
    listable: Listable,
) -> dict[TargetKey, SubdirMetadata]:
    """What each merged subdir publishes (without the files that failed), its records stamped
    and the names whose shards change found (see :func:`find_changed_names`). A subdir whose
    stamps cannot be saved fails (in ``outcomes``) and keeps its state.
    ``listable``: which published records the filters would list in place of their failed
    replacements (see :func:`filters_list`)."""
    to_publish: dict[TargetKey, SubdirMetadata] = {}
    for merged in merged_all:
        if merged.meta is None:
            continue
        downloaded = downloads.get(merged.key)
        failed = downloaded.failed if downloaded else set()
        unreplaced = await still_in_place(site, merged, failed, listable)
        meta = without_failed(merged.meta, failed, unreplaced)
        previous = merged.previous
        try:
            await trio.to_thread.run_sync(stamp_indexed, site, merged.channel, meta, previous)
            await trio.to_thread.run_sync(find_changed_names, site, merged.channel, meta, previous)
        except OSError as exc:
            outcomes[merged.key] = failure(merged.channel, merged.subdir, exc, KEPT_PREVIOUS)
            continue
        if previous is not None:
            # The published stamps served the stamping and the shard reuse, and nothing after
            # them: an 800,000-entry map at conda-forge scale, not kept through publishing.
            previous.stamps = {}
        to_publish[merged.key] = meta
    return to_publish


async def still_in_place(
    site: Site, merged: MergedSubdir, failed: set[str], listable: Listable
) -> dict[str, Record]:
    """Of the files whose download ``failed``, those that were to replace a published file
    under its name (a re-upload, staged) and whose published bytes are still there, hashed
    again against the record published for them, and that the filters would still list
    (``listable``): fn -> that record, with the mirror the origins map names for it. Dropped
    from the metadata, such a file would be deleted by the prune with nothing in its place (a
    whole subdir, when upstream re-uploaded everything and the downloads failed); listed as it
    was, it is replaced by a later run. One the filters refuse now goes, as it would had its
    replacement arrived."""
    previous, meta = merged.previous, merged.meta
    if not failed or previous is None or meta is None:
        return {}
    replaced: dict[str, Record] = {}
    for fn in sorted(failed):
        before, after = previous.records.get(fn), meta.records.get(fn)
        if before is not None and after is not None and not before.same_file(after):
            replaced[fn] = before
    if not replaced:
        return {}
    directory = site.path(merged.channel, merged.subdir)
    intact = await check_files(directory, replaced, replaced)
    # Read back from repodata.json, a record does not say which mirror supplied it.
    origins = await trio.to_thread.run_sync(load_origins, site, merged.channel, merged.subdir)
    intact_records = {
        fn: replace(record, origin=origins.mirror_of(fn) or meta.records[fn].origin)
        for fn, record in replaced.items()
        if intact[fn]
    }
    allowed = listable(merged, intact_records)
    kept = {}
    for fn, record in intact_records.items():
        if fn in allowed:
            kept[fn] = record
            log.warning(
                "%s/%s: %s: its new bytes could not be had; the published file stays listed",
                merged.channel,
                merged.subdir,
                fn,
            )
        else:
            log.warning(
                "%s/%s: %s: its new bytes could not be had, and the filters refuse the"
                " published file: it goes",
                merged.channel,
                merged.subdir,
                fn,
            )
    return kept


def without_failed(
    meta: SubdirMetadata, failed: set[str], still_published: Mapping[str, Record]
) -> SubdirMetadata:
    """The metadata to publish: never list a file that is not verified on disk. A file that
    ``failed`` is left out, unless it is one whose replacement failed and whose published bytes
    are still in place (``still_published``: fn -> the record of those bytes): it then stays
    listed as it was, rather than be deleted while nothing replaces it."""
    if not failed:
        return meta
    records = {}
    for fn, record in meta.records.items():
        if fn not in failed:
            records[fn] = record
        elif (published := still_published.get(fn)) is not None:
            records[fn] = published
    # The run_exports of a failed file are those of its new bytes: none is published for it.
    exports = meta.run_exports
    if exports is not None:
        exports = {fn: entry for fn, entry in exports.items() if fn not in failed}
    return SubdirMetadata(
        meta.subdir, records, meta.info, meta.removed, meta.extra, run_exports=exports
    )


def first_seen_now_ms() -> int:
    """The time records new to a subdir are stamped with: now, or ``SOURCE_DATE_EPOCH`` (the
    reproducible-builds convention, in seconds) where set, so two sites built from the same
    inputs publish the same bytes."""
    fixed = os.environ.get("SOURCE_DATE_EPOCH", "")
    # ASCII digits, as the convention says: str.isdigit takes others ("²") that int() refuses.
    valid = fixed.isascii() and fixed.isdigit()
    return int(fixed) * 1000 if valid else int(time.time() * 1000)


def stamp_indexed(
    site: Site, channel_path: str, meta: SubdirMetadata, previous: Repodata | None
) -> None:
    """Give the records about to be published their CEP-47 ``indexed_timestamp`` (see
    sitegen.conda.indexed), saving the first sightings of new records durably first: once a
    value is published it never changes. Raises OSError when the state cannot be saved."""
    path = indexed_timestamps_path(site.root, channel_path, meta.subdir)
    try:
        first_seen = decode_first_seen(path.read_bytes())
    except FileNotFoundError:
        first_seen = {}
    except msgspec.DecodeError as exc:
        # The published values are recovered from `previous`; only records new to both get
        # this run's time.
        log.warning("%s: unreadable (%s); starting it again", path, exc)
        first_seen = {}
    before, stamps = (previous.records, previous.stamps) if previous else (None, None)
    if stamp_records(meta.records.values(), first_seen, first_seen_now_ms(), before, stamps):
        site.ensure_dir(path.parent)
        site.write_bytes(path, encode_first_seen(first_seen))


def find_changed_names(
    site: Site, channel_path: str, meta: SubdirMetadata, previous: Repodata | None
) -> None:
    """The package names whose records are not those published, in ``meta.changed_names``:
    publishing builds and writes their shards (a run in which ten names changed, ten; none
    when only the rest of repodata.json changed), and keeps the published shards of the
    others that are on disk and whole. None when nothing was published, or when the last run
    stopped while publishing (its index may not be the one repodata.json was published with):
    then every shard is built."""
    if previous is None:
        return
    if not publishing_marker_path(site.root, channel_path, meta.subdir).exists():
        meta.changed_names = changed_names(meta.records, previous)
