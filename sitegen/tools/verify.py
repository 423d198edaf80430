"""``sitegen verify [--repair] [--sample FRACTION]``: check the published site against its own
metadata.

For every published subdir: each record of ``repodata.json`` refers to a file with that size and
sha256 (md5 when no sha256; with ``--sample`` only a share of the files is hashed, see
:mod:`sitegen.tools.verify_sample`); ``.zst`` (and ``.bz2`` with ``repodata: {bz2: true}``) decompress
to exactly ``repodata.json``, and with the setting off no ``.bz2`` is left published;
``current_repodata.json`` holds what ``repodata.json`` makes of it
(:mod:`sitegen.tools.verify_metadata`); the shard index names
exactly the shards ``repodata.json`` makes and each exists and hashes to its name, as does
each shard it no longer names that is kept for a while (for clients holding an earlier index); the
files a ``keep_removed`` channel keeps unlisted match their kept records
(:mod:`sitegen.tools.verify_kept`); no other package file (nor a link named like one) is in
a subdir, which the web server would serve though no record vouches for it, but those a run
downloaded or linked in and has not published yet, which upstream's records or a local
source's index vouch for; no subdir that was published lost its ``repodata.json`` (:mod:`sitegen.tools.verify_channel`: reported, never
repaired), nor its origins map the mirror of a listed file (:mod:`sitegen.tools.verify_origins`:
written again only for a channel fed by one mirror), a channel's ``notices.json`` is what its ``notices:`` make now and its
``channeldata.json`` agrees with its subdirs' ``repodata.json``; the installer folders hold just the files their state
describes (:mod:`sitegen.tools.verify_installers`); no temporary files linger. A channel whose
folder, or a subdir's, is a link out of the site (or a loop of links) is named and left alone
(:func:`sitegen.tools.verify_channel.links_out`).
With ``--repair`` missing or corrupt files of active mirrors are downloaded again (verified as
always, ``download.concurrency`` at a time), those of local sources are linked or copied again from their folder (verified against
the published record), and corrupt files of passive mirrors are removed, so the fetcher fetches
them anew; ``.zst``, ``.bz2`` (when on), ``current_repodata.json`` and the shards are rebuilt
from ``repodata.json`` (the file published last, so the truth), a damaged shard no longer
named is removed (the index served does not name it), ``notices.json`` is written
as a run writes it (and ``channeldata.json`` of a channel without a local source), and left-over temporaries and a
``.bz2`` published while the setting is off are removed, and so are package files no record
vouches for (as a run prunes them); the files a run stopped before publishing downloaded or
linked in, which match the records they were verified by, are left for the next run to reuse
(:mod:`sitegen.tools.verify_awaiting`). Repairs happen only while
holding the site lock, so a live ``sitegen mirror`` run is never disturbed. A site where
nothing configured is published has nothing to verify, which the report says apart (and the
command fails on): a check that vouched for nothing must not pass; left-over temporaries there
are reported all the same (not removed: nothing is repaired on such a site).
"""

from __future__ import annotations

import logging
import os
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import trio

from sitegen.conda.records import Record, Repodata, RepodataError, parse_repodata
from sitegen.conda.shards import ShardError
from sitegen.config import ChannelConfig, SiteConfig
from sitegen.layout import (
    LOCK_NAME,
    REPODATA,
    REPODATA_BZ2,
    package_file_path,
    retired_shards_path,
)
from sitegen.net.download import download_each
from sitegen.net.download_job import DownloadJob, DownloadResult
from sitegen.net.upstream import open_upstreams
from sitegen.store.interface import SiteStorage
from sitegen.store.lock import SiteLock, SiteLocked, lock_holder
from sitegen.store.origins import Origins
from sitegen.store.site import TEMP_PREFIX, Site, UnsafePathError, temp_writer_alive
from sitegen.sync.gates import with_gate_sources
from sitegen.sync.local import is_local, restore
from sitegen.sync.publish_shards import grace_shard_problems, rebuild_shards, shard_problems
from sitegen.tools.verify_awaiting import extra_files
from sitegen.tools.verify_channel import (
    channel_problems,
    frozen_by_command,
    links_out,
    lost_repodata,
    published_subdirs,
    repodata_link_out,
)
from sitegen.tools.verify_installers import installer_problems, installers_published
from sitegen.tools.verify_kept import kept_problems
from sitegen.tools.verify_metadata import metadata_problems, repair_metadata
from sitegen.tools.verify_origins import origins_problems
from sitegen.tools.verify_sample import Checked, Sample

log = logging.getLogger("sitegen")


@dataclass
class Problem:
    path: str  # relative to the site root
    kind: str  # "missing", "corrupt", "extra", "metadata", "temporary", "locked"
    detail: str = ""
    repaired: bool = False


@dataclass(frozen=True)
class Repair:
    """A package file to publish again, from the mirror that supplied it."""

    channel: ChannelConfig
    record: Record
    path: Path
    kind: str  # "missing" or "corrupt"
    mirror: str
    origins: Origins  # of the record's channel subdir: where that mirror's packages live

    @property
    def relative(self) -> str:
        return package_file_path(self.channel.path, self.record.subdir, self.record.fn)


@dataclass
class VerifyReport(Checked):
    """The package files checked, listed and kept unlisted alike, and the problems found."""

    problems: list[Problem] = field(default_factory=list)
    # No configured channel has a published subdir: nothing checked, nothing vouched for.
    nothing_published: bool = False

    @property
    def ok(self) -> bool:
        return not self.nothing_published and all(p.repaired for p in self.problems)


def _temporaries(root: Path) -> list[Problem]:
    """Temporaries of dead writers anywhere in the site, where any write of a killed process
    may leave one: subdirs, channel roots (channeldata.json), pages, the run ledger, state. A
    temporary whose writer still runs (a mirror run, the pull-through fetcher) is work in
    progress, not debris."""
    problems = []
    for directory, _dirs, files in os.walk(root):
        for name in sorted(files):
            if name.startswith(TEMP_PREFIX) and not temp_writer_alive(name):
                relative = (Path(directory) / name).relative_to(root).as_posix()
                problems.append(Problem(relative, "temporary", "left-over temporary"))
    return problems


async def verify_site(
    config: SiteConfig, repair: bool = False, sample: Sample | None = None
) -> VerifyReport:
    site = Site(config.output)
    report = VerifyReport(sample=sample)
    # A link out of the site where a channel is is something to report (and leave alone).
    published = any(
        links_out(site, c) or published_subdirs(site, c) or lost_repodata(site, c)
        for c in config.channels
    ) or installers_published(config)
    if not published and lock_holder(site.state_dir) is None:
        # (A first run under way is reported as locked, below.) Nothing is taken or made,
        # not even the lock of --repair: there may be no site at all. A first run killed
        # before it published anything may still have left temporaries: named, not removed
        # (the next run sweeps them).
        report.nothing_published = True
        report.problems.extend(await trio.to_thread.run_sync(_temporaries, site.root))
        return report
    if not repair:
        # A check of a site at rest: a run changes files under it (a file it is replacing
        # reads as missing or corrupt). Not under the lock, which a long check would hold
        # against the scheduled runs: a run found at the start or since then is reported.
        before = _lock_state(site)
        holder = lock_holder(site.state_dir)
        if holder is not None:
            why = f"a run (pid {holder}) is working on the site; nothing was checked"
            report.problems.append(Problem(".sitegen/lock", "locked", why))
            return report
        await _verify(config, site, report, repair=False)
        if lock_holder(site.state_dir) is not None or _lock_state(site) != before:
            why = "a run worked on the site during the check: what it found may be that run's work"
            report.problems.append(Problem(".sitegen/lock", "locked", why + "; check again"))
        return report
    lock = SiteLock(site.state_dir)
    try:
        lock.acquire()
    except SiteLocked as exc:
        report.problems.append(
            Problem(".sitegen/lock", "locked", f"{exc}; nothing was checked or repaired")
        )
        return report
    try:
        await _verify(config, site, report, repair=True)
    finally:
        lock.release()
    return report


def _lock_state(site: Site) -> tuple[int, int] | None:
    """The lock file's change time and inode: a run taking the lock rewrites it (its pid)."""
    try:
        st = (site.state_dir / LOCK_NAME).stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_ino)


async def _verify(config: SiteConfig, site: Site, report: VerifyReport, repair: bool) -> None:
    to_repair: list[Repair] = []
    by_command, found = frozen_by_command(site, config)
    report.problems += [Problem(*problem) for problem in found]
    for channel in config.channels:
        linked = links_out(site, channel)
        if linked:
            report.problems += [Problem(*problem) for problem in linked]
            continue
        frozen = channel.frozen or channel.path in by_command
        # Each published subdir's records, for channeldata.json; None when one is unreadable.
        records: dict[str, dict[str, Record]] | None = {}
        for subdir in published_subdirs(site, channel):
            directory = site.path(channel.path, subdir)
            relative = f"{channel.path}/{subdir}"
            linked_out = repodata_link_out(site, channel, subdir, frozen)
            if linked_out is not None:
                report.problems.append(Problem(*linked_out))
                records = None
                continue
            try:
                repodata = parse_repodata((directory / REPODATA).read_bytes(), subdir)
            except RepodataError as exc:
                report.problems.append(Problem(f"{relative}/repodata.json", "metadata", str(exc)))
                records = None
                continue
            if records is not None:
                records[subdir] = repodata.records
            # A frozen channel keeps the .bz2 (or its absence) of the setting it was published
            # with, as its runs do: a present one must hold repodata.json, none is missed.
            bz2 = (directory / REPODATA_BZ2).exists() if frozen else config.repodata_bz2
            found = await trio.to_thread.run_sync(
                metadata_problems, directory, relative, repodata, bz2
            )
            problems = [Problem(*problem) for problem in found]
            report.problems.extend(problems)
            if repair and problems:
                names = [problem.path[len(relative) + 1 :] for problem in problems]
                outcome = await trio.to_thread.run_sync(
                    repair_metadata, site, directory, repodata, names, bz2
                )
                for problem, name in zip(problems, names, strict=True):
                    failed = outcome.get(name)
                    problem.repaired = failed == ""
                    problem.detail += f"; repair failed: {failed}" if failed else ""
            # CEP-16: every named shard exists and hashes to its name; the index matches
            # repodata.json. Repaired by rebuilding them from repodata.json.
            shards = await trio.to_thread.run_sync(
                shard_problems, directory, subdir, repodata.records
            )
            shard_found = [Problem(f"{relative}/{path}", "metadata", why) for path, why in shards]
            report.problems.extend(shard_found)
            if repair and shard_found:
                # Left as found, not repaired: shards that cannot be built, a shards folder
                # that is a link out of the site (never written through), or a directory in
                # the index's place (what it holds is not the site's).
                try:
                    retired = retired_shards_path(site.root, channel.path, subdir)
                    await trio.to_thread.run_sync(
                        rebuild_shards, site, directory, subdir, repodata.records, retired
                    )
                except (ShardError, UnsafePathError):
                    pass
                except OSError as exc:
                    for problem in shard_found:
                        problem.detail += f"; repair failed: {exc.strerror or exc}"
                else:
                    for problem in shard_found:
                        problem.repaired = True
            # Shards kept unnamed for clients holding an earlier index: the current index
            # needs none, so --repair removes a damaged one (gone, as after its grace period).
            grace = await trio.to_thread.run_sync(grace_shard_problems, directory)
            grace_found = [Problem(f"{relative}/{path}", "metadata", why) for path, why in grace]
            report.problems.extend(grace_found)
            for problem in grace_found if repair else []:
                site.remove(site.root / problem.path)
                problem.repaired = True
            origins, found = await trio.to_thread.run_sync(
                origins_problems, site, channel, subdir, repodata.records.keys(), frozen, repair
            )
            report.problems += [Problem(*problem) for problem in found]
            to_repair += await _check_packages(site, channel, repodata, origins, report, repair)
            found = await trio.to_thread.run_sync(
                kept_problems, site, channel, subdir, report, repair
            )
            report.problems += [Problem(*problem) for problem in found]
            found = await trio.to_thread.run_sync(
                extra_files, site, channel, subdir, repodata.records.keys(), report
            )
            extras = [Problem(*problem) for problem in found]
            report.problems += extras
            for problem in extras if repair else []:
                site.remove(site.root / problem.path)
                problem.repaired = True
        found = await trio.to_thread.run_sync(
            channel_problems, site, channel, records, frozen, repair
        )
        report.problems += [Problem(*problem) for problem in found]
    found = await installer_problems(config, site, report, repair)
    report.problems += [Problem(*problem) for problem in found]
    temporaries = await trio.to_thread.run_sync(_temporaries, site.root)
    report.problems.extend(temporaries)
    for problem in temporaries if repair else []:
        site.discard(site.root / problem.path)
        problem.repaired = True
    for repair_ in to_repair:
        detail = "size or checksum mismatch" if repair_.kind == "corrupt" else "file is missing"
        report.problems.append(Problem(repair_.relative, repair_.kind, detail))
    if repair and to_repair:
        await _repair(config, site, to_repair, report)


async def _check_packages(
    site: SiteStorage,
    channel: ChannelConfig,
    repodata: Repodata,
    origins: Origins,
    report: VerifyReport,
    repair: bool,
) -> list[Repair]:
    """Check every package file of a subdir; returns those to fetch again, each from the
    mirror ``origins`` (the subdir's map) names. A file of a passive mirror is never fetched
    here: a missing one arrives on first request, a corrupt one is removed (with ``repair``)
    so that it does."""
    subdir = repodata.subdir
    directory = site.path(channel.path, subdir)
    passive = {m.name for m in channel.mirrors if m.mode == "passive"}
    to_repair: list[Repair] = []
    for fn, record in repodata.records.items():
        path = directory / fn
        origin = origins.mirror_of(fn) or channel.mirrors[0].name
        if not path.is_file():
            if origin not in passive:
                to_repair.append(Repair(channel, record, path, "missing", origin, origins))
            continue
        relative = package_file_path(channel.path, subdir, fn)
        if await trio.to_thread.run_sync(report.matches, path, relative, record, False):
            continue
        if origin not in passive:
            to_repair.append(Repair(channel, record, path, "corrupt", origin, origins))
            continue
        problem = Problem(relative, "corrupt", "size or checksum mismatch")
        report.problems.append(problem)
        if repair:
            site.remove(path)
            problem.repaired = True
    return to_repair


async def _repair(
    config: SiteConfig,
    site: Site,
    to_repair: list[Repair],
    report: VerifyReport,
) -> None:
    """Publish every file of ``to_repair`` again from the mirror that supplied it: downloaded,
    or taken from a local source's folder."""
    mirrors = {m.name: m for _c, m in with_gate_sources(config).mirrors}
    problems = {p.path: p for p in report.problems}
    remote = []
    for repair_ in to_repair:
        mirror = mirrors.get(repair_.mirror)
        if mirror is None or not is_local(mirror):
            remote.append(repair_)
            continue
        # A local source's file comes from its folder again, never over the network.
        problem = problems[repair_.relative]
        why = await trio.to_thread.run_sync(restore, site, mirror, repair_.record, repair_.path)
        problem.repaired = why is None
        if why is not None:
            problem.detail += f"; repair failed: {why}"
            log.error("repair failed: %s: %s", repair_.relative, why)
    if not remote:
        return
    remote_mirrors = [m for m in mirrors.values() if not is_local(m)]
    async with AsyncExitStack() as stack:
        upstreams, unusable = await open_upstreams(remote_mirrors, config.download, stack)
        jobs: list[tuple[Problem, DownloadJob]] = []
        for repair_ in remote:
            problem = problems[repair_.relative]
            upstream = upstreams.get(repair_.mirror)
            if upstream is None:
                why = unusable.get(repair_.mirror, "unknown mirror")
                problem.detail += f"; cannot repair: {why}"
                continue
            job = DownloadJob(
                upstream,
                repair_.record,
                repair_.path,
                durable=True,
                base_url=repair_.origins.base_url_of(repair_.mirror),
            )
            jobs.append((problem, job))

        def landed(problem: Problem, result: DownloadResult) -> None:
            problem.repaired = result.ok
            if not result.ok:
                problem.detail += f"; repair failed: {result.error}"
                log.error("repair failed: %s", result.error)

        # As a run downloads: download.concurrency at a time, each holding a file open.
        await download_each(jobs, site, config.download, landed)
