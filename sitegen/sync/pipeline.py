"""The stages of one mirror run, in the order data flows through them.

fetch → parse → select → closure → merge → plan → download → publish → prune. Each stage is a
function from the results of the earlier ones to its own result; the pipeline only hands them
on and keeps them in `RunResults`, from which the report is assembled at the end (also when a
stop cut the run short).
"""

from __future__ import annotations

import gc
import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass

import trio

from sitegen.conda.records import Repodata
from sitegen.conda.version import RecordMatcher
from sitegen.config.load import ChannelConfig, MirrorConfig, SiteConfig
from sitegen.net.download import DownloadJob
from sitegen.net.upstream import Upstream, open_upstreams
from sitegen.store.site import Site
from sitegen.store.upstream_cache import UpstreamCache
from sitegen.sync.download import (
    TargetKey,
    check_files,
    download_all,
    download_jobs,
    flush,
    remove_files,
    snapshot_subdir,
)
from sitegen.sync.fetch import ERROR, fetch_all, parse_all, store_body
from sitegen.sync.inputs import BuiltFrom, BuiltFromStore, InputsDigest, file_signature
from sitegen.sync.merge import (
    MERGED,
    DeletionGuard,
    Feed,
    MergedSubdir,
    load_previous,
    merge_subdir,
)
from sitegen.sync.options import MirrorOptions
from sitegen.sync.plan import DiskSnapshot, files_to_check, plan_subdir
from sitegen.sync.publish import publish_all, without_failed, write_channeldata
from sitegen.sync.report import MirrorReport, RunReport
from sitegen.sync.report_build import (
    RunResults,
    build_report,
    clean_rebuild,
    finish,
    inputs_record,
)
from sitegen.sync.selection import ClosureResult, close, select_all

log = logging.getLogger("sitegen")


@dataclass(frozen=True)
class RunScope:
    """What one run covers: channels with a selected mirror are rebuilt, and their other
    mirrors ride along from what their last run fetched."""

    config: SiteConfig
    options: MirrorOptions
    site: Site
    selected: frozenset[str]
    channels: tuple[ChannelConfig, ...]

    @classmethod
    def of(
        cls, config: SiteConfig, options: MirrorOptions, site: Site, selected: set[str]
    ) -> RunScope:
        channels = tuple(c for c in config.channels if any(m.name in selected for m in c.mirrors))
        return cls(config, options, site, frozenset(selected), channels)

    @property
    def mirrors(self) -> list[tuple[ChannelConfig, MirrorConfig]]:
        return [(c, m) for c in self.channels for m in c.mirrors]

    @property
    def passive(self) -> set[str]:
        return {m.name for _c, m in self.mirrors if m.mode == "passive"}

    def signature(self) -> dict[str, list[int]]:
        return file_signature(self.site, list(self.channels), self.passive)


async def run_pipeline(scope: RunScope, report: RunReport) -> None:
    """Run the stages and add what they did to ``report``."""
    results = RunResults(mirrors=scope.mirrors, dry_run=scope.options.dry_run)
    built_from = BuiltFromStore(scope.site, list(scope.channels))
    inputs: str | None = None
    try:
        async with AsyncExitStack() as stack:
            stack.callback(gc.unfreeze)
            upstreams, results.unusable = await open_upstreams(
                (m for _c, m in results.mirrors), scope.config.download, stack
            )
            for name, why in results.unusable.items():
                log.error("%s: %s", name, why)
            if not scope.options.dry_run:
                # Temporaries of killed runs, wherever they were writing (subdirs, channel
                # roots, history, state); those of live processes such as the fetcher stay.
                await trio.to_thread.run_sync(scope.site.clean_temp_tree)
            cache = UpstreamCache(scope.site)
            bodies: dict[tuple[str, str], bytes] = {}
            await fetch_all(
                upstreams,
                (m for _c, m in results.mirrors),
                scope.selected,
                cache,
                results.fetched,
                bodies,
            )
            inputs = _inputs_digest(scope, results, bodies)
            if inputs is not None:
                results.reused = await _built_from_same_inputs(
                    scope, built_from, inputs, results, bodies, cache
                )
            if results.reused is None:
                await _rebuild(scope, upstreams, cache, bodies, built_from, results)
    finally:
        mirror_reports = build_report(report, set(scope.selected), results)
    if inputs is not None and results.reused is None and clean_rebuild(report, results):
        _remember(scope, built_from, inputs, mirror_reports, report)
    finish(report)


def _inputs_digest(
    scope: RunScope, results: RunResults, bodies: dict[tuple[str, str], bytes]
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
            digest.add_repodata(mirror.name, subdir, bodies.get((mirror.name, subdir)))
    return digest.hexdigest()


async def _built_from_same_inputs(
    scope: RunScope,
    built_from: BuiltFromStore,
    inputs: str,
    results: RunResults,
    bodies: dict[tuple[str, str], bytes],
    cache: UpstreamCache,
) -> BuiltFrom | None:
    """The record of the run that built the site from these same inputs, when the site still
    holds what it published; the run then only reports what that run found."""
    built = built_from.load()
    if built is None or built.digest != inputs or built.files != scope.signature():
        return None
    log.info("nothing changed upstream or in the configuration since the last run")
    for key, body in bodies.items():
        await store_body(cache, key, results.fetched[key], body)
    return built


async def _rebuild(
    scope: RunScope,
    upstreams: dict[str, Upstream],
    cache: UpstreamCache,
    bodies: dict[tuple[str, str], bytes],
    built_from: BuiltFromStore,
    results: RunResults,
) -> None:
    """The full work: parse, select, close, merge, plan, then (unless a dry run) download,
    publish and prune."""
    options = scope.options
    await parse_all(
        upstreams, results.fetched, bodies, None if options.dry_run else cache, results.parsed
    )
    # Millions of long-lived record objects: keep the cyclic GC from rescanning them
    # (unfrozen when the run ends, for callers that run several mirrors in one process).
    gc.freeze()
    matcher = RecordMatcher()
    readable = _readable(upstreams, results)
    selections = await trio.to_thread.run_sync(
        select_all, scope.config, results.mirrors, readable, results.parsed, matcher
    )
    results.closure = await trio.to_thread.run_sync(close, selections, matcher)
    results.merged = await trio.to_thread.run_sync(_merge_all, scope, readable, results)
    await _plan_all(scope, results)
    if options.dry_run:
        return
    built_from.forget()
    jobs: dict[TargetKey, list[DownloadJob]] = {}
    for merged in results.merged:
        plan = results.plans.get(merged.key)
        if plan is None:
            continue
        directory = scope.site.path(merged.channel, merged.subdir)
        # Passive files that fail their check go now; the pull-through fetcher replaces them.
        remove_files(scope.site, directory, plan.to_remove)
        jobs[merged.key] = download_jobs(scope.site, directory, plan, upstreams)
    await download_all(scope.site, scope.config.download, jobs, results.downloads, options.progress)
    downloaded = [scope.site.path(*key) for key, d in results.downloads.items() if d.files]
    error = await flush(scope.site, downloaded)
    if error is not None:
        results.errors.append(error)
        return
    await _publish_all(scope, results)


def _readable(upstreams: dict[str, Upstream], results: RunResults) -> set[str]:
    """The mirrors whose every subdir was read: only they may change what is published."""
    return {
        m.name
        for _c, m in results.mirrors
        if m.name in upstreams and all(_subdir_ok(results, (m.name, s)) for s in m.subdirs)
    }


def _subdir_ok(results: RunResults, key: tuple[str, str]) -> bool:
    fetched = results.fetched.get(key)
    if fetched is None or fetched.status == ERROR:
        return False
    parsed = results.parsed.get(key)
    return parsed is None or parsed.repodata is not None


def _merge_all(scope: RunScope, readable: set[str], results: RunResults) -> list[MergedSubdir]:
    closure = results.closure
    assert closure is not None
    guard = DeletionGuard(scope.config.max_delete_fraction, scope.options.force_delete)
    merged_all = []
    for channel in scope.channels:
        for subdir in channel.subdirs:
            feeding = [m for m in channel.mirrors if subdir in m.subdirs]
            broken = [m.name for m in feeding if m.name not in readable]
            feeds = [] if broken else [_feed(results, closure, m.name, subdir) for m in feeding]
            previous = load_previous(scope.site.path(channel.path, subdir), subdir)
            merged = merge_subdir(channel.path, subdir, feeds, broken, previous, guard)
            if merged is not None:
                merged_all.append(merged)
    return merged_all


def _feed(results: RunResults, closure: ClosureResult, mirror: str, subdir: str) -> Feed:
    parsed = results.parsed.get((mirror, subdir))
    repodata: Repodata | None = parsed.repodata if parsed else None
    return Feed(mirror, repodata, closure.kept(mirror, subdir))


async def _plan_all(scope: RunScope, results: RunResults) -> None:
    passive = scope.passive
    verify = scope.options.verify
    for merged in results.merged:
        if merged.status != MERGED:
            continue
        assert merged.meta is not None
        records = merged.meta.records
        published = merged.previous.records if merged.previous else {}
        directory = scope.site.path(merged.channel, merged.subdir)
        present = await trio.to_thread.run_sync(snapshot_subdir, directory)
        unsure = files_to_check(records, published, present, verify)
        checked = await check_files(directory, records, unsure)
        snapshot = DiskSnapshot(present, checked)
        results.plans[merged.key] = plan_subdir(records, published, snapshot, passive, verify)


async def _publish_all(scope: RunScope, results: RunResults) -> None:
    targets = []
    for merged in results.merged:
        if merged.status != MERGED:
            continue
        assert merged.meta is not None
        downloaded = results.downloads.get(merged.key)
        failed = downloaded.failed if downloaded else set()
        meta = results.published[merged.key] = without_failed(merged.meta, failed)
        plan = results.plans[merged.key]
        staged = [r.fn for r in plan.to_stage if r.fn not in failed]
        targets.append((merged.channel, meta, staged))
    await publish_all(scope.site, targets, results.publish)
    for channel in scope.channels:
        subdirs = {}
        for merged in results.merged:
            if merged.channel != channel.path:
                continue
            if merged.key in results.published:
                subdirs[merged.subdir] = results.published[merged.key].records
            elif merged.previous is not None:
                subdirs[merged.subdir] = merged.previous.records
        error = write_channeldata(scope.site, channel.path, subdirs)
        if error is not None:
            results.errors.append(error)


def _remember(
    scope: RunScope,
    built_from: BuiltFromStore,
    inputs: str,
    mirror_reports: list[MirrorReport],
    report: RunReport,
) -> None:
    """Record the inputs of a clean run, so an identical next run can skip the work."""
    record = inputs_record(inputs, scope.signature(), mirror_reports, report)
    try:
        built_from.save(record)
    except OSError as exc:  # only costs the full work next time
        log.warning("could not record this run's inputs: %s", exc)
