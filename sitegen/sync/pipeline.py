"""The stages of one mirror run, in the order data flows through them.

advisory feeds → fetch → parse → select → closure → merge → plan → download → publish → prune.
Each stage is a function from the results of the earlier ones to its own result; the pipeline
only hands them on and keeps them in `RunResults`, from which the report is assembled at the
end (also when a stop cut the run short).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Collection, Mapping
from contextlib import AsyncExitStack

import trio

from sitegen.conda.records import Record
from sitegen.conda.version import RecordMatcher, clear_caches
from sitegen.config import ChannelConfig, MirrorConfig
from sitegen.gc_pause import gc_paused
from sitegen.layout import REPODATA
from sitegen.net.download_job import DownloadJob
from sitegen.net.upstream import Upstream, open_upstreams
from sitegen.net.upstream_cache import UpstreamCache
from sitegen.sync.advisory_feeds import refresh_feeds
from sitegen.sync.download import (
    DownloadOutcome,
    TargetKey,
    check_files,
    download_all,
    download_jobs,
    flush,
    remove_files,
)
from sitegen.sync.fetch import (
    ERROR,
    FetchResult,
    ParseResult,
    SubdirKey,
    fetch_all,
    missing_folders,
    package_bases,
    parse_all,
    store_body,
)
from sitegen.sync.filtered import save_filtered
from sitegen.sync.inputs import BuiltFrom, BuiltFromStore, InputsDigest
from sitegen.sync.local import (
    LocalSources,
    adopt_old_caches,
    copied_in,
    index_all,
    is_local,
    link_all,
)
from sitegen.sync.local_move import move_published
from sitegen.sync.local_recover import recover_all
from sitegen.sync.local_return import return_orphans
from sitegen.sync.merge import MergedSubdir
from sitegen.sync.merging import merge_all, still_supplied
from sitegen.sync.plan import DiskSnapshot, Plan, files_to_check, plan_subdir
from sitegen.sync.prepare import filters_list, prepare_all
from sitegen.sync.prune import package_files
from sitegen.sync.publish import PublishOutcome, PublishTarget, publish_all
from sitegen.sync.publish_channel import write_channel_files
from sitegen.sync.repodata_map import published_records
from sitegen.sync.report import RunReport
from sitegen.sync.report_build import (
    RunResults,
    build_report,
    clean_rebuild,
    inputs_record,
)
from sitegen.sync.report_log import finish
from sitegen.sync.run_exports_fetch import read_all as read_run_exports
from sitegen.sync.run_exports_fetch import with_run_exports
from sitegen.sync.scope import RunScope
from sitegen.sync.selection import (
    close,
    entries_matching_nothing,
    held_sources,
    lockfile_pins_missing,
    select_all,
)
from sitegen.sync.space import arrivals, oversized, space_problems
from sitegen.sync.subdir_metadata import SubdirMetadata
from sitegen.sync.unreached import unreached_rows

log = logging.getLogger("sitegen")


async def run_pipeline(scope: RunScope, report: RunReport) -> None:
    """Run the stages and add what they did to ``report``."""
    results = RunResults(mirrors=scope.mirrors, dry_run=scope.options.dry_run)
    built_from = BuiltFromStore(scope.site, list(scope.channels))
    inputs: str | None = None
    try:
        async with AsyncExitStack() as stack:
            stack.callback(gc.unfreeze)
            stack.callback(clear_caches)  # so the records' memory goes back with them
            # The filters get their feeds' advisories; a mirror lacking one is not run.
            scope = await refresh_feeds(scope, results)
            results.unusable.update(await missing_folders(results.mirrors, scope.selected))
            upstreams, unusable = await open_upstreams(
                (m for _c, m in results.mirrors if not (is_local(m) or m.name in results.unusable)),
                scope.config.download,
                stack,
                scope.activity,
            )
            for name, why in unusable.items():
                log.error("%s: %s", name, why)
            results.unusable.update(unusable)
            if not scope.options.dry_run:
                # Temporaries of killed runs, wherever they were writing (subdirs, channel
                # roots, history, state); those of live processes such as the fetcher stay.
                await trio.to_thread.run_sync(scope.site.clean_temp_tree)
            cache = UpstreamCache(scope.site)
            bodies: dict[SubdirKey, bytes] = {}
            mirrors = [m for _c, m in results.mirrors]
            fetching = (upstreams, mirrors, scope.selected, cache, results.fetched, bodies)
            await fetch_all(*fetching, store=not scope.options.dry_run)
            exports = results.run_exports
            await read_run_exports(upstreams, scope, results.fetched, exports, results.warnings)
            if not scope.options.dry_run:
                await trio.to_thread.run_sync(
                    adopt_old_caches, scope.site, [m for _c, m in results.mirrors]
                )
                await recover_all(scope.site, results.mirrors)
                # A renamed channel's (or mirror's) store goes back to the folder, for this
                # run to publish and move again.
                returned = await return_orphans(scope.site, scope.config, results.mirrors)
                for name, notes in returned.notes.items():
                    results.warnings.setdefault(name, []).extend(notes)
                results.errors.extend(returned.errors)
            # Local sources: their folders indexed in place of a fetch and a parse.
            local = await index_all(
                scope.site,
                (m for _c, m in results.mirrors if m.name not in results.unusable),
                results.fetched,
                save=not scope.options.dry_run,
            )
            inputs = _inputs_digest(scope, results, {**bodies, **local.fingerprints()})
            if inputs is not None:
                results.reused = await _built_from_same_inputs(
                    scope, built_from, inputs, results, bodies, cache
                )
            if results.reused is None:
                await _rebuild(scope, upstreams, local, cache, bodies, built_from, results)
    finally:
        if results.reused is None and not results.merged:  # every merge gives noarch a row
            # Ended before its merge (a stop, a failure of the run as a whole): every subdir
            # serves what it did, and the record says so.
            report.channels.extend(await unreached_rows(scope.site, scope.channels, built_from))
        mirror_reports = build_report(report, set(scope.selected), results)
    if not scope.options.dry_run and results.reused is None:
        await save_filtered(scope.site, report.id, results, mirror_reports)
    if inputs is not None and results.reused is None and clean_rebuild(report, results):
        built_from.save(inputs_record(inputs, scope.signature(), mirror_reports, report))
    finish(report)


def _inputs_digest(
    scope: RunScope, results: RunResults, bodies: dict[SubdirKey, bytes]
) -> str | None:
    """The digest of this run's inputs, when the shortcut may apply (None otherwise)."""
    options = scope.options
    if options.verify or options.force_delete or options.dry_run or results.unusable:
        return None
    if any(f.status == ERROR for f in results.fetched.values()):
        return None
    digest = InputsDigest(scope.config, list(scope.channels))
    for _channel, mirror in results.mirrors:
        for subdir in mirror.subdirs:
            key = (mirror.name, subdir)
            # The sha256 the fetch took of an upstream body (checking the copy kept of it).
            known = results.fetched[key].sha256 if key in results.fetched else ""
            digest.add_repodata(mirror.name, subdir, bodies.get(key), known)
            exports = results.run_exports.get((mirror.name, subdir))
            digest.add_run_exports(mirror.name, subdir, exports.state if exports else None)
    # Every mirror of the run was read: the channels held are the frozen ones and, when a
    # mirror of the site pulls in dependencies, those the run does not rebuild.
    in_run = {m.name for _c, m in results.mirrors}
    for channel, subdir in held_sources(scope.config, results.mirrors, in_run):
        digest.add_published(channel, subdir, scope.site.path(channel, subdir) / REPODATA)
    return digest.hexdigest()


async def _built_from_same_inputs(
    scope: RunScope,
    built_from: BuiltFromStore,
    inputs: str,
    results: RunResults,
    bodies: dict[SubdirKey, bytes],
    cache: UpstreamCache,
) -> BuiltFrom | None:
    """The record of the run that built the site from these same inputs, when the site still
    holds what it published; the run then only reports what that run found."""
    built = built_from.matching(inputs, scope.signature())
    if built is None:
        return None
    log.info("nothing changed upstream or in the configuration since the last run")
    for key, body in bodies.items():
        await store_body(cache, key, results.fetched[key], body)
    return built


async def _rebuild(
    scope: RunScope,
    upstreams: dict[str, Upstream],
    local: LocalSources,
    cache: UpstreamCache,
    bodies: dict[SubdirKey, bytes],
    built_from: BuiltFromStore,
    results: RunResults,
) -> None:
    """The full work: parse, select, close, merge, plan, then (unless a dry run) download,
    publish and prune."""
    options = scope.options
    # Millions of long-lived records, made with the cyclic GC paused throughout (one parse's
    # pause ends while others run on) and frozen before it resumes (unfrozen at the run's end).
    with gc_paused():
        await parse_all(
            upstreams, results.fetched, bodies, None if options.dry_run else cache, results.parsed
        )
        results.parsed.update(local.parsed)
        with_run_exports(results.parsed, results.run_exports)
        gc.freeze()
    matcher = RecordMatcher()
    sources = upstreams.keys() | local.names
    readable = _readable(results.mirrors, sources, results.fetched, results.parsed)
    held = {
        (channel, subdir): await trio.to_thread.run_sync(
            published_records, scope.site.root, channel, subdir
        )
        for channel, subdir in held_sources(scope.config, results.mirrors, readable)
    }
    selections = await trio.to_thread.run_sync(
        select_all, scope.config, results.mirrors, readable, results.parsed, matcher, held
    )
    results.closure = await trio.to_thread.run_sync(close, selections, matcher)
    results.pins_missing = lockfile_pins_missing(
        scope.config, results.mirrors, readable, results.parsed
    )
    results.unmatched = await trio.to_thread.run_sync(
        entries_matching_nothing, scope.config, results.mirrors, readable, results.parsed, matcher
    )
    results.merged = await trio.to_thread.run_sync(
        merge_all, scope, readable, results.parsed, results.closure, matcher, results.kept
    )
    results.still_supplied = await trio.to_thread.run_sync(
        still_supplied, scope, results.mirrors, readable, results.merged
    )
    results.plans = await _plan_all(scope, results.merged)
    if options.dry_run:
        return
    built_from.forget()
    jobs: dict[TargetKey, list[DownloadJob]] = {}
    for key, plan in results.plans.items():
        bases = package_bases(results.parsed, key[1])
        jobs[key] = download_jobs(scope.site, scope.site.path(*key), plan, upstreams, bases)
    too_large = await trio.to_thread.run_sync(
        oversized, [job for subdir_jobs in jobs.values() for job in subdir_jobs]
    )
    dropped = {key: [j for j in js if j.target in too_large] for key, js in jobs.items()}
    jobs = {key: [j for j in js if j.target not in too_large] for key, js in jobs.items()}
    all_jobs = [job for subdir_jobs in jobs.values() for job in subdir_jobs]
    # What arrives: the downloads, and the local sources' files copied in.
    files = arrivals(all_jobs) + await trio.to_thread.run_sync(
        copied_in, scope.site, local, results.plans
    )
    shortage = await trio.to_thread.run_sync(space_problems, files, scope.config.min_free_space)
    if shortage:
        results.errors.extend(shortage)
        return
    for key, plan in results.plans.items():
        # Wrong files under the names a passive mirror serves go now, before anything is
        # published; the pull-through fetcher replaces them on first request.
        remove_files(scope.site, scope.site.path(*key), plan.to_remove)
    await download_all(scope.site, scope.config.download, jobs, results.downloads, options.progress)
    for key, subdir_jobs in dropped.items():  # failed as downloads that could not be stored
        for job in subdir_jobs:
            results.downloads[key].failed.add(job.record.fn)
            results.downloads[key].errors.append(too_large[job.target])
    await link_all(scope.site, local, results.plans, results.downloads)
    to_publish = await prepare_all(
        scope.site,
        results.merged,
        results.downloads,
        results.publish,
        filters_list(scope.config, scope.channels, matcher),
    )
    downloaded = {
        scope.site.path(*key) for key, d in results.downloads.items() if d.files or d.local_files
    }
    # One flush for the new package files, before any repodata names them.
    error = await flush(scope.site, sorted(downloaded))
    if error is not None:
        results.errors.append(error)
        return
    results.errors.extend(
        await _publish_all(
            scope,
            results.merged,
            results.plans,
            results.downloads,
            results.parsed,
            results.publish,
            to_publish,
            results.kept,
        )
    )
    # Only now that the records are published may a `move: true` folder give its files up.
    results.errors.extend(await move_published(scope.site, local, results.mirrors))


def _readable(
    mirrors: list[tuple[ChannelConfig, MirrorConfig]],
    sources: Collection[str],
    fetched: Mapping[SubdirKey, FetchResult],
    parsed: Mapping[SubdirKey, ParseResult],
) -> set[str]:
    """The mirrors whose every subdir was read: only they may change what is published."""

    def read(key: SubdirKey) -> bool:
        result = fetched.get(key)
        if result is None or result.status == ERROR:
            return False
        outcome = parsed.get(key)
        return outcome is None or outcome.repodata is not None

    return {
        m.name
        for _c, m in mirrors
        if m.name in sources and all(read((m.name, s)) for s in m.subdirs)
    }


async def _plan_all(scope: RunScope, merged_all: list[MergedSubdir]) -> dict[TargetKey, Plan]:
    """A plan for every merged subdir: read its directory and re-hash what needs it, then
    decide (purely) from what was read."""
    passive = scope.passive
    verify = scope.options.verify
    plans: dict[TargetKey, Plan] = {}
    for merged in merged_all:
        if merged.meta is None:
            continue
        records = merged.meta.records
        published = merged.previous.records if merged.previous else {}
        directory = scope.site.path(merged.channel, merged.subdir)
        present = await trio.to_thread.run_sync(package_files, directory)
        unsure = files_to_check(records, published, present, passive, verify)
        replaced = {
            fn for fn in unsure if fn in published and not published[fn].same_file(records[fn])
        }
        checked = await check_files(directory, records, unsure, replaced)
        snapshot = DiskSnapshot(present, checked)
        plans[merged.key] = plan_subdir(records, published, snapshot, passive, verify)
    return plans


async def _publish_all(
    scope: RunScope,
    merged_all: list[MergedSubdir],
    plans: Mapping[TargetKey, Plan],
    downloads: Mapping[TargetKey, DownloadOutcome],
    parsed: Mapping[SubdirKey, ParseResult],
    outcomes: dict[TargetKey, PublishOutcome],
    to_publish: Mapping[TargetKey, SubdirMetadata],
    kept: Mapping[TargetKey, dict[str, Record]],
) -> list[str]:
    """Publish the prepared subdirs (filling ``outcomes``), then each channel's channeldata and
    notices; returns the errors of those files."""
    targets: list[PublishTarget] = []
    for merged in merged_all:
        meta = to_publish.get(merged.key)
        if meta is None:
            continue
        downloaded = downloads.get(merged.key)
        failed = downloaded.failed if downloaded else set()
        plan = plans[merged.key]
        staged = [r.fn for r in plan.to_stage if r.fn not in failed]
        bases = package_bases(parsed, merged.key[1])
        listed = merged.previous.records.keys() if merged.previous is not None else ()
        keeps = kept.get(merged.key, {})
        targets.append((merged.channel, meta, staged, bases, keeps, listed, plan.to_withdraw))
    await publish_all(
        scope.site, targets, outcomes, scope.config.shard_grace_days, scope.config.repodata_bz2
    )
    return await trio.to_thread.run_sync(
        write_channel_files, scope.site, scope.channels, merged_all, to_publish
    )
