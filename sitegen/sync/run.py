"""One mirror run: fetch repodata, filter, close dependencies, merge, download, publish, prune.

Data flows one way through the stages; each channel subdir is published only when every mirror
feeding it was read successfully and all of its new files are verified, so a failure anywhere
leaves the previously published state of that subdir untouched.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import threading
import time
from collections import Counter
from contextlib import AsyncExitStack, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import trio

from sitegen.conda.channeldata import build_channeldata
from sitegen.conda.records import Record, Repodata, RepodataError, load_published, parse_repodata
from sitegen.conda.version import RecordMatcher
from sitegen.config.load import ChannelConfig, ConfigError, MirrorConfig, SiteConfig
from sitegen.config.schedule import is_due
from sitegen.filters.apply import apply_filters, effective_newest, include_dependencies
from sitegen.net import upstream as upstream_mod
from sitegen.net.download import DownloadJob, DownloadResult, download, file_matches
from sitegen.net.upstream import SubdirMissing, Upstream, UpstreamError, open_upstreams
from sitegen.store.lock import SiteLock
from sitegen.store.origins import Origins, write_origins
from sitegen.store.site import Site
from sitegen.store.upstream_cache import UpstreamCache
from sitegen.store.writer import DiskWriter, open_disk_writer
from sitegen.sync.closure import MirrorSelection, close_dependencies
from sitegen.sync.history import History, new_run_id
from sitegen.sync.inputs import BuiltFrom, BuiltFromStore, InputsDigest, file_signature
from sitegen.sync.progress import Progress, human_bytes
from sitegen.sync.prune import deletion_guard, package_files, prune_subdir
from sitegen.sync.publish import SubdirMetadata, publish_subdir, write_json
from sitegen.sync.report import (
    COMPLETED,
    FAILED,
    RUNNING,
    STOPPED,
    ChannelSubdirReport,
    MirrorReport,
    MirrorSubdirReport,
    RunReport,
)
from sitegen.sync.space import room_for_downloads

log = logging.getLogger("sitegen")


@dataclass
class MirrorOptions:
    verify: bool = False
    force_delete: bool = False
    dry_run: bool = False
    only: tuple[str, ...] = ()  # run just these mirrors now
    due: bool = False  # run just the mirrors whose schedule came due
    progress: bool | None = None  # None: live display only on a terminal


@dataclass
class _Fetched:
    status: str  # "fetched", "unchanged", "missing", "error"
    body: bytes | None = None  # as served, until parsed
    validators: upstream_mod.CacheValidators | None = None
    repodata: Repodata | None = None
    error: str = ""
    base_url: str | None = None  # CEP-15: where upstream's packages live, as written


@dataclass
class _ChannelSubdir:
    channel: ChannelConfig
    subdir: str
    report: ChannelSubdirReport
    meta: SubdirMetadata | None = None  # None when held back
    previous: Repodata | None = None
    jobs: list[DownloadJob] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)
    staged: dict[str, Path] = field(default_factory=dict)  # fn -> replacement awaiting publish


def _decode_and_parse(variant: str, body: bytes, subdir: str, origin: str) -> Repodata:
    return parse_repodata(upstream_mod.decode_body(variant, body), subdir, origin)


def select_mirrors(
    config: SiteConfig, runs: list[RunReport], options: MirrorOptions, now: float
) -> set[str]:
    """Names of the mirrors this run syncs (``--only`` and ``--due``)."""
    names = [m.name for _c, m in config.mirrors]
    if options.only:
        unknown = sorted(set(options.only) - set(names))
        if unknown:
            raise ConfigError(
                f"--only: no mirror named {', '.join(unknown)}; mirrors are: {', '.join(names)}"
            )
        names = [n for n in names if n in options.only]
    if options.due:
        last: dict[str, float] = {}
        for run in runs:  # newest first
            for mr in run.mirrors:
                if mr.status == COMPLETED:
                    last.setdefault(mr.name, run.started)
        schedules = {m.name: m.schedule for _c, m in config.mirrors}
        names = [n for n in names if is_due(schedules[n], last.get(n), now)]
    return set(names)


async def run_mirror(config: SiteConfig, options: MirrorOptions | None = None) -> RunReport:
    """Run the selected mirrors once; raises SiteLocked when another run holds the site.

    SIGINT and SIGTERM stop the run within seconds: in-flight downloads are cancelled and their
    temporary files removed, nothing half-written is published, and the run is recorded as
    stopped; the next run reuses every file that was already verified.
    """
    options = options or MirrorOptions()
    site = Site(config.output)
    if not options.dry_run:  # a dry run creates nothing, not even the site
        site.ensure_dir(site.root)
    with SiteLock(site.state_dir, create=not options.dry_run):
        history = History(site)
        for run_id in history.close_interrupted():
            log.warning("run %s did not finish; recorded as interrupted", run_id)
        selected = select_mirrors(config, history.runs(), options, time.time())
        report = RunReport(
            id=new_run_id(),
            started=time.time(),
            pid=os.getpid(),
            options={
                "verify": options.verify,
                "force_delete": options.force_delete,
                "dry_run": options.dry_run,
                "only": sorted(options.only),
                "due": options.due,
            },
        )
        if not selected:
            log.info("no mirror is due")
            report.status, report.ended = COMPLETED, time.time()
            return report
        record = not options.dry_run
        if record:
            _save(history, report)
        stopped = False
        try:
            with _signals() as signals:
                async with trio.open_nursery() as nursery:

                    async def stop_on_signal() -> None:
                        nonlocal stopped
                        async for signum in signals:
                            log.warning("received %s: stopping", signal.Signals(signum).name)
                            stopped = True
                            nursery.cancel_scope.cancel()
                            return

                    nursery.start_soon(stop_on_signal)
                    await _Run(config, options, site, report, selected).run()
                    nursery.cancel_scope.cancel()
            if stopped:
                report.status = STOPPED
                report.errors.append("stopped by a signal before it finished")
            else:
                report.status = FAILED if report.failed else COMPLETED
        except BaseException as exc:
            report.status = STOPPED
            if not isinstance(exc, trio.Cancelled | KeyboardInterrupt):
                report.status = FAILED
                report.errors.append(f"unexpected error: {type(exc).__name__}: {exc}")
            raise
        finally:
            report.ended = time.time()
            for mr in report.mirrors:
                if mr.status == RUNNING:
                    mr.status = report.status if report.status != COMPLETED else mr.status
            if record:
                _save(history, report)
        return report


def _save(history: History, report: RunReport) -> None:
    try:
        history.save(report)
    except OSError as exc:
        # The ledger is not worth failing a run over; a record stuck at "running" is shown as
        # interrupted by the next run.
        report.errors.append(f"could not record the run: {exc.strerror or exc}")
        log.error("could not record run %s: %s", report.id, exc)


def _signals():
    """SIGINT/SIGTERM as a stream of events, when the run owns the main thread."""
    if threading.current_thread() is threading.main_thread():
        return trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM)
    return nullcontext(_NoSignals())


class _NoSignals:
    def __aiter__(self) -> _NoSignals:
        return self

    async def __anext__(self) -> int:
        await trio.sleep_forever()
        raise StopAsyncIteration


class _Run:
    def __init__(
        self,
        config: SiteConfig,
        options: MirrorOptions,
        site: Site,
        report: RunReport,
        selected: set[str],
    ) -> None:
        self.config = config
        self.options = options
        self.site = site
        self.report = report
        self.cache = UpstreamCache(site)
        self.matcher = RecordMatcher()
        self.upstreams: dict[str, Upstream] = {}
        self.fetched: dict[tuple[str, str], _Fetched] = {}
        self.mirror_reports: dict[str, MirrorReport] = {}
        self.selected = selected
        # Channels with a selected mirror are rebuilt; their other mirrors ride along from cache.
        self.channels = [c for c in config.channels if any(m.name in selected for m in c.mirrors)]
        self.mirrors = [(c, m) for c in self.channels for m in c.mirrors]
        self.built_from = BuiltFromStore(site, self.channels)
        self.inputs: str | None = None  # digest of this run's inputs, once they are all read
        for channel, mirror in self.mirrors:
            mr = MirrorReport(
                name=mirror.name,
                channel=channel.path,
                source=mirror.display_url(),
                mode=mirror.mode,
            )
            self.mirror_reports[mirror.name] = mr
            if mirror.name in selected:
                report.mirrors.append(mr)

    async def run(self) -> None:
        async with AsyncExitStack() as stack:
            stack.callback(gc.unfreeze)
            self.upstreams, unusable = await open_upstreams(
                (m for _c, m in self.mirrors), self.config.download, stack
            )
            for name, why in unusable.items():
                self.mirror_reports[name].errors.append(why)
                log.error("%s: %s", name, why)
            if not self.options.dry_run:
                # Temporaries of killed runs, wherever they were writing (subdirs, channel
                # roots, history, state); those of live processes such as the fetcher stay.
                await trio.to_thread.run_sync(self.site.clean_temp_tree)
            await self._fetch_all()
            if not await self._built_from_same_inputs():
                await self._rebuild()
        self._log_summary()

    async def _rebuild(self) -> None:
        await self._parse_all()
        # Millions of long-lived record objects: keep the cyclic GC from rescanning them
        # (unfrozen when the run ends, for callers that run several mirrors in one process).
        gc.freeze()
        selections = await trio.to_thread.run_sync(self._filter_all)
        await trio.to_thread.run_sync(self._close, selections)
        targets = await trio.to_thread.run_sync(self._merge_all, selections)
        await self._plan_all(targets)
        if self.options.dry_run:
            self._report_dry_run(targets)
            return
        self.built_from.forget()
        if not room_for_downloads(targets, self.config.min_free_space, self.report):  # space.py
            return
        await self._download_all(targets)
        if not await self._downloads_on_disk(targets):
            return
        await self._publish_all(targets)
        self._remember_inputs(targets)

    # ------------------------------------------------------------------ fetch

    async def _fetch_all(self) -> None:
        async with trio.open_nursery() as nursery:
            for _channel, mirror in self.mirrors:
                if mirror.name not in self.upstreams:
                    continue
                for subdir in mirror.subdirs:
                    nursery.start_soon(self._fetch_one, mirror, subdir)

    async def _fetch_one(self, mirror: MirrorConfig, subdir: str) -> None:
        upstream = self.upstreams[mirror.name]
        sub_report = self.mirror_reports[mirror.name].subdirs.setdefault(
            subdir, MirrorSubdirReport()
        )
        key = (mirror.name, subdir)
        try:
            result = await self._fetch_repodata(upstream, mirror, subdir)
        except SubdirMissing:
            sub_report.upstream = "missing"
            log.info("%s: %s is not served upstream", mirror.name, subdir)
            self.fetched[key] = _Fetched("missing")
            return
        except (UpstreamError, RepodataError) as exc:
            sub_report.upstream = "error"
            self._mirror_error(mirror, f"{subdir}: {exc}")
            self.fetched[key] = _Fetched("error", error=str(exc))
            return
        self.fetched[key] = result
        sub_report.upstream = result.status

    async def _fetch_repodata(
        self, upstream: Upstream, mirror: MirrorConfig, subdir: str
    ) -> _Fetched:
        previous = self.cache.validators(mirror.name, subdir)
        cached_body = self.cache.body(mirror.name, subdir) if previous else None
        if previous is not None and cached_body is None:
            previous = None  # validators without the body they describe are useless
        if mirror.name not in self.selected:
            # Not run now, but its channel is rebuilt: use what its last run fetched.
            if previous is None:
                raise UpstreamError(f"{subdir}: never fetched; run mirror {mirror.name} first")
            response = upstream_mod.RepodataResponse(False, None, previous)
        else:
            response = await upstream.fetch_repodata(subdir, previous)
        body = response.body if response.changed else cached_body
        assert body is not None
        status = "fetched" if response.changed else "unchanged"
        return _Fetched(status, body=body, validators=response.validators)

    async def _cache(self, mirror: MirrorConfig, subdir: str, fetched: _Fetched) -> None:
        """Keep a newly fetched body for conditional requests, once it is known to be usable."""
        if fetched.status != "fetched" or self.options.dry_run:
            return
        assert fetched.body is not None and fetched.validators is not None
        try:
            await trio.to_thread.run_sync(
                self.cache.store, mirror.name, subdir, fetched.validators, fetched.body
            )
        except OSError as exc:  # only costs a full fetch next time
            log.warning("%s/%s: could not cache upstream repodata: %s", mirror.name, subdir, exc)

    # ------------------------------------------------------------------ unchanged inputs

    def _inputs_digest(self) -> str:
        digest = InputsDigest(self.config, self.channels)
        for _channel, mirror in self.mirrors:
            for subdir in mirror.subdirs:
                fetched = self.fetched.get((mirror.name, subdir), _Fetched("error"))
                digest.add_repodata(mirror.name, subdir, fetched.body)
        return digest.hexdigest()

    def _signature(self) -> dict[str, list[int]]:
        passive = {m.name for _c, m in self.mirrors if m.mode == "passive"}
        return file_signature(self.site, self.channels, passive)

    async def _built_from_same_inputs(self) -> bool:
        """True when the site already holds what these inputs produce; the run then only
        reports what the run that built it found."""
        if self.options.verify or self.options.force_delete or self.options.dry_run:
            return False
        if any(f.status == "error" for f in self.fetched.values()) or len(self.upstreams) < len(
            self.mirrors
        ):
            return False
        self.inputs = self._inputs_digest()
        built = self.built_from.load()
        if built is None or built.digest != self.inputs or built.files != self._signature():
            return False
        log.info("nothing changed upstream or in the configuration since the last run")
        for _channel, mirror in self.mirrors:
            for subdir in mirror.subdirs:
                await self._cache(mirror, subdir, self.fetched[(mirror.name, subdir)])
        for data in built.mirrors:
            mr = self.mirror_reports.get(data["name"])
            if mr is None:
                continue
            restored = MirrorReport.from_json(data)
            for subdir, sub in restored.subdirs.items():
                sub.upstream = self.fetched[(mr.name, subdir)].status
            mr.subdirs = restored.subdirs
            mr.unsatisfied = restored.unsatisfied
            mr.dependencies_added = restored.dependencies_added
            mr.conflicts = restored.conflicts
        for data in built.channels:
            self.report.channels.append(
                ChannelSubdirReport(
                    channel=data["channel"], subdir=data["subdir"], packages=data["packages"]
                )
            )
        return True

    def _remember_inputs(self, targets: list[_ChannelSubdir]) -> None:
        """Record the inputs of a clean run, so an identical next run can skip the work."""
        clean = not self.report.failed and all(
            t.meta is not None and not t.failed and t.report.status in ("published", "unchanged")
            for t in targets
        )
        if not clean or self.inputs is None:
            return
        mirrors = [asdict(mr) for mr in self.mirror_reports.values()]
        for mr in mirrors:
            mr.pop("errors")
            mr.pop("status")
        built = BuiltFrom(
            digest=self.inputs,
            files=self._signature(),
            mirrors=mirrors,
            channels=[
                {"channel": t.channel.path, "subdir": t.subdir, "packages": t.report.packages}
                for t in targets
            ],
        )
        try:
            self.built_from.save(built)
        except OSError as exc:  # only costs the full work next time
            log.warning("could not record this run's inputs: %s", exc)

    # ------------------------------------------------------------------ parse

    async def _parse_all(self) -> None:
        async with trio.open_nursery() as nursery:
            for (mirror_name, subdir), fetched in self.fetched.items():
                if fetched.body is not None:
                    nursery.start_soon(self._parse_one, self.upstreams[mirror_name], subdir)

    async def _parse_one(self, upstream: Upstream, subdir: str) -> None:
        mirror = upstream.mirror
        fetched = self.fetched[(mirror.name, subdir)]
        assert fetched.body is not None and fetched.validators is not None
        sub_report = self.mirror_reports[mirror.name].subdirs[subdir]
        try:
            repodata = await trio.to_thread.run_sync(
                _decode_and_parse, fetched.validators.variant, fetched.body, subdir, mirror.name
            )
        except (UpstreamError, RepodataError) as exc:
            sub_report.upstream = fetched.status = "error"
            fetched.error = str(exc)
            self._mirror_error(mirror, f"{subdir}: {exc}")
            return
        await self._cache(mirror, subdir, fetched)
        fetched.body = None
        fetched.base_url = repodata.info.pop("base_url", None)
        if fetched.base_url:
            # CEP-15: packages live elsewhere; fetch them there, serve them here.
            repodata.extra["repodata_version"] = 1
        fetched.repodata = repodata
        sub_report.records = len(repodata.records)
        sub_report.rejected = dict(Counter(repodata.rejected.values()))
        sub_report.rejected_examples = dict(list(repodata.rejected.items())[:50])
        for fn, reason in list(repodata.rejected.items())[:20]:
            log.warning("%s/%s: skipped %s: %s", mirror.name, subdir, fn, reason)

    # ------------------------------------------------------------------ filter

    def _mirror_ok(self, mirror: MirrorConfig) -> bool:
        return mirror.name in self.upstreams and all(
            self.fetched.get((mirror.name, s), _Fetched("error")).status != "error"
            for s in mirror.subdirs
        )

    def _filter_all(self) -> list[MirrorSelection]:
        selections = []
        for channel, mirror in self.mirrors:
            if not self._mirror_ok(mirror):
                continue
            levels = self.config.filter_levels(channel, mirror)
            results = {}
            for subdir in mirror.subdirs:
                fetched = self.fetched[(mirror.name, subdir)]
                records = fetched.repodata.records if fetched.repodata else {}
                results[subdir] = apply_filters(records, subdir, levels, self.matcher)
            selections.append(
                MirrorSelection(
                    mirror=mirror.name,
                    include_dependencies=include_dependencies(levels),
                    newest_versions=effective_newest(levels),
                    results=results,
                )
            )
        return selections

    def _close(self, selections: list[MirrorSelection]) -> None:
        dependencies = close_dependencies(selections, self.matcher)
        for selection in selections:
            mr = self.mirror_reports[selection.mirror]
            for subdir, result in selection.results.items():
                sub = mr.subdirs.setdefault(subdir, MirrorSubdirReport())
                sub.kept = len(result.kept)
                sub.excluded = dict(Counter(result.excluded.values()))
            for subdir, fn, why in dependencies.added.get(selection.mirror, []):
                mr.subdirs[subdir].added_as_dependency += 1
                mr.dependencies_added.append({"subdir": subdir, "file": fn, "why": why})
            for subdir, spec, needed_by in dependencies.unsatisfied.get(selection.mirror, []):
                mr.unsatisfied.append({"subdir": subdir, "spec": spec, "needed_by": needed_by})
        self.selections = {s.mirror: s for s in selections}

    # ------------------------------------------------------------------ merge and plan

    def _merge_all(self, selections: list[MirrorSelection]) -> list[_ChannelSubdir]:
        targets = []
        for channel in self.channels:
            for subdir in channel.subdirs:
                target = self._merge(channel, subdir)
                if target is not None:
                    targets.append(target)
                    self.report.channels.append(target.report)
        return targets

    def _merge(self, channel: ChannelConfig, subdir: str) -> _ChannelSubdir | None:
        report = ChannelSubdirReport(channel=channel.path, subdir=subdir)
        target = _ChannelSubdir(channel=channel, subdir=subdir, report=report)
        target.previous = self._load_published(channel, subdir)
        feeding = [m for m in channel.mirrors if subdir in m.subdirs]
        broken = [m.name for m in feeding if not self._mirror_ok(m)]
        if broken:
            report.status = "failed"
            report.errors.append(
                f"not updated: mirror {', '.join(broken)} could not be read; kept the previous state"
            )
            return target
        records: dict[str, Record] = {}
        info: dict = {}
        removed: list[str] = []
        extra: dict = {}
        present_upstream = False
        for mirror in feeding:
            fetched = self.fetched[(mirror.name, subdir)]
            if fetched.repodata is None:
                continue
            present_upstream = True
            if not info:
                info, extra = dict(fetched.repodata.info), dict(fetched.repodata.extra)
            removed.extend(fetched.repodata.removed)
            for fn, record in self.selections[mirror.name].results[subdir].kept.items():
                first = records.get(fn)
                if first is None:
                    records[fn] = record
                elif not first.same_file(record):
                    self.mirror_reports[mirror.name].conflicts.append(
                        f"{subdir}/{fn}: differs from the copy offered by {first.origin};"
                        f" kept {first.origin}'s"
                    )
        if not present_upstream and subdir != "noarch" and target.previous is None:
            return None  # nothing upstream, nothing published before: no directory to create
        extra.setdefault("repodata_version", 1)
        target.meta = SubdirMetadata(
            subdir=subdir, records=records, info=info, removed=removed, extra=extra
        )
        if target.previous is not None and not self.options.force_delete:
            why = deletion_guard(target.previous.records, records, self.config.max_delete_fraction)
            if why:
                target.meta = None
                report.status = "held"
                report.errors.append(why)
        return target

    def _load_published(self, channel: ChannelConfig, subdir: str) -> Repodata | None:
        path = self.site.path(channel.path, subdir, "repodata.json")
        try:
            return load_published(path.read_bytes(), subdir)
        except (OSError, RepodataError):
            return None

    async def _plan_all(self, targets: list[_ChannelSubdir]) -> None:
        for target in targets:
            if target.meta is None:
                continue
            directory = self.site.path(target.channel.path, target.subdir)
            present = package_files(directory)
            published = target.previous.records if target.previous else {}
            for fn, record in target.meta.records.items():
                path = directory / fn
                passive = self.upstreams[record.origin].mirror.mode == "passive"
                if fn in present and path.stat().st_size == record.size:
                    # The size alone vouches for a file only when the published record already
                    # named these bytes; a checksum that changed upstream means a re-hash.
                    before = published.get(fn)
                    trusted = before is not None and before.same_file(record)
                    if trusted and not self.options.verify:
                        continue
                    if await trio.to_thread.run_sync(file_matches, path, record):
                        continue
                    log.warning("%s: %s fails its checksum", directory, fn)
                if passive:
                    # Fetched on first request by the pull-through fetcher, which verifies it;
                    # a wrong file under a published name must not stay until then.
                    if fn in present and not self.options.dry_run:
                        self.site.remove(path)
                    continue
                upstream = self.upstreams[record.origin]
                base_url = self.fetched[(record.origin, target.subdir)].base_url
                before = published.get(fn)
                if before is not None and not before.same_file(record):
                    # Re-uploaded upstream under the same name: the published record still
                    # describes the old bytes, so the new ones wait under a temporary name.
                    staged = self.site.staging_for(path)
                    target.staged[fn] = staged
                    target.jobs.append(DownloadJob(upstream, record, staged, base_url=base_url))
                else:
                    target.jobs.append(DownloadJob(upstream, record, path, base_url=base_url))

    def _report_dry_run(self, targets: list[_ChannelSubdir]) -> None:
        for target in targets:
            if target.meta is None:
                continue
            directory = self.site.path(target.channel.path, target.subdir)
            referenced = set(target.meta.records)
            target.report.status = "dry-run"
            target.report.downloaded_files = len(target.jobs)
            target.report.downloaded_bytes = sum(j.record.size for j in target.jobs)
            target.report.deleted_files = len(package_files(directory) - referenced)
            self._diff(target)

    # ------------------------------------------------------------------ download

    async def _download_all(self, targets: list[_ChannelSubdir]) -> None:
        # Largest first: the biggest file bounds the run's length on a bandwidth-capped link,
        # so it must not start last.
        jobs = sorted((job for t in targets for job in t.jobs), key=lambda j: -j.record.size)
        if not jobs:
            return
        by_target = {id(job): t for t in targets for job in t.jobs}
        progress = Progress(len(jobs), sum(j.record.size for j in jobs), self.options.progress)
        log.info("downloading %d files, %s", len(jobs), human_bytes(progress.total_bytes))
        send, receive = trio.open_memory_channel[DownloadJob](len(jobs))
        for job in jobs:
            send.send_nowait(job)
        send.close()

        async def worker(writer: DiskWriter) -> None:
            async for job in receive:
                result = await download(
                    job, self.site, writer, self.config.download.retries, progress.add_bytes
                )
                progress.file_done(result.ok)
                self._record_download(by_target[id(job)], result)

        try:
            async with open_disk_writer() as writer, trio.open_nursery() as nursery:
                for _ in range(min(self.config.download.concurrency, len(jobs))):
                    nursery.start_soon(worker, writer)
        finally:
            progress.close()

    async def _downloads_on_disk(self, targets: list[_ChannelSubdir]) -> bool:
        """Flush the new package files to disk before any repodata names them (see
        Site.sync); False, and nothing is published, when the disk refuses them."""
        fetched = [t for t in targets if t.report.downloaded_files]
        if not fetched:
            return True
        directories = [self.site.path(t.channel.path, t.subdir) for t in fetched]
        try:
            await trio.to_thread.run_sync(self.site.sync, directories)
        except OSError as exc:
            message = f"{exc.strerror or exc}: {exc.filename}; nothing was published"
            self.report.errors.append(message)
            log.error("%s", message)
            return False
        return True

    def _record_download(self, target: _ChannelSubdir, result: DownloadResult) -> None:
        if result.ok:
            target.report.downloaded_files += 1
            target.report.downloaded_bytes += result.bytes
            return
        target.failed.add(result.job.record.fn)
        message = f"{target.subdir}/{result.error}"
        target.report.errors.append(message)
        log.error("%s: %s", target.channel.path, message)

    # ------------------------------------------------------------------ publish and prune

    async def _publish_all(self, targets: list[_ChannelSubdir]) -> None:
        limiter = trio.CapacityLimiter(2)  # compression is CPU-bound; two cores at most

        async def publish(target: _ChannelSubdir) -> None:
            async with limiter:
                try:
                    await self._publish(target)
                except OSError as exc:
                    # A full disk or an I/O error: this subdir keeps its previous state.
                    target.report.status = "failed"
                    target.report.errors.append(
                        f"{target.subdir}: could not publish: {exc.strerror or exc}"
                        f"{f' ({exc.filename})' if exc.filename else ''}; kept the previous state"
                    )
                    log.error("%s/%s: %s", target.channel.path, target.subdir, exc)

        async with trio.open_nursery() as nursery:
            for target in targets:
                if target.meta is not None:
                    nursery.start_soon(publish, target)
        for channel in self.channels:
            self._write_channeldata(channel, [t for t in targets if t.channel is channel])

    async def _publish(self, target: _ChannelSubdir) -> None:
        meta = target.meta
        assert meta is not None
        for fn in target.failed:
            meta.records.pop(fn, None)  # never list a file that is not verified on disk
        # Which mirror serves each file, and from where: for the passive fetcher and
        # `sitegen verify --repair`.
        bases = {
            m.name: base
            for m in target.channel.mirrors
            if (base := self.fetched.get((m.name, target.subdir), _Fetched("")).base_url)
        }
        origins = Origins(
            files={fn: record.origin for fn, record in meta.records.items()}, package_bases=bases
        )
        await trio.to_thread.run_sync(
            write_origins, self.site, target.channel.path, target.subdir, origins
        )
        directory = self.site.path(target.channel.path, target.subdir)
        staged = {fn: p for fn, p in target.staged.items() if fn not in target.failed}
        if staged:
            # Two steps keep every published record true: first publish without the replaced
            # files, then move the new bytes into place, then publish their new records.
            interim = {fn: r for fn, r in meta.records.items() if fn not in staged}
            await publish_subdir(
                self.site,
                target.channel.path,
                SubdirMetadata(meta.subdir, interim, meta.info, meta.removed, meta.extra),
            )
            for fn, path in staged.items():
                self.site.commit(path, directory / fn)
        written = await publish_subdir(self.site, target.channel.path, meta)
        target.report.status = "published" if written else "unchanged"
        target.report.packages = len(meta.records)
        # Prune only after the new metadata is in place.
        removed = await trio.to_thread.run_sync(
            prune_subdir, self.site, directory, set(meta.records)
        )
        target.report.deleted_files = len(removed)
        self._diff(target)

    def _diff(self, target: _ChannelSubdir) -> None:
        assert target.meta is not None
        new = target.meta.records
        old = target.previous.records if target.previous else {}
        target.report.added = sorted(set(new) - set(old))
        target.report.removed = sorted(set(old) - set(new))
        target.report.updated = sorted(
            fn for fn in set(new) & set(old) if new[fn].raw != old[fn].raw
        )
        target.report.packages = len(new)

    def _write_channeldata(self, channel: ChannelConfig, targets: list[_ChannelSubdir]) -> None:
        published: dict[str, dict[str, Record]] = {}
        for target in targets:
            if target.meta is not None:
                published[target.subdir] = target.meta.records
            elif target.previous is not None:
                published[target.subdir] = target.previous.records
        if published:
            try:
                write_json(
                    self.site, f"{channel.path}/channeldata.json", build_channeldata(published)
                )
            except OSError as exc:
                self.report.errors.append(
                    f"{channel.path}: could not write channeldata.json: {exc.strerror or exc}"
                )
                log.error("%s: could not write channeldata.json: %s", channel.path, exc)

    # ------------------------------------------------------------------ reporting

    def _mirror_error(self, mirror: MirrorConfig, message: str) -> None:
        self.mirror_reports[mirror.name].errors.append(message)
        log.error("%s: %s", mirror.name, message)

    def _log_summary(self) -> None:
        for mr in self.report.mirrors:
            mr.status = FAILED if mr.errors else COMPLETED
            excluded = ", ".join(f"{n} {r}" for r, n in mr.excluded_totals().items())
            kept = sum(s.kept for s in mr.subdirs.values())
            log.info(
                "%s: kept %d records%s",
                mr.name,
                kept,
                f"; excluded: {excluded}" if excluded else "",
            )
            if mr.unsatisfied:
                log.warning(
                    "%s: %d dependencies could not be satisfied", mr.name, len(mr.unsatisfied)
                )
        for cr in self.report.channels:
            log.info(
                "%s/%s: %s, %d packages (+%d ~%d -%d), downloaded %d files (%s)",
                cr.channel,
                cr.subdir,
                cr.status,
                cr.packages,
                len(cr.added),
                len(cr.updated),
                len(cr.removed),
                cr.downloaded_files,
                human_bytes(cr.downloaded_bytes),
            )
