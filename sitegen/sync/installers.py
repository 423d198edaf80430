"""The installer folders of a run (``installers:``): each upstream folder's index read, its files
chosen, what the site lacks downloaded and verified against the listed sha256, then what
upstream no longer lists (or the folder no longer selects) removed.

Installer folders run after the channels and apart from them: one whose upstream fails, or
whose index holds no listing, keeps what it published and fails only its own part of the run.
A file is only ever written as a name of the folder's listing under the folder itself, through
the site's writer, and named once its size and sha256 are verified (see
:mod:`sitegen.net.download`); a file already there with the listed bytes is kept as it is. The
deletion guard of the channels holds a folder back too: an index that suddenly lists much less
(truncated, replaced by an error page with a table) changes nothing without --force-delete.
"""

from __future__ import annotations

import hashlib
import logging
import os
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import trio

from sitegen.conda.records import Record
from sitegen.config import InstallerConfig
from sitegen.layout import installer_file_path
from sitegen.net.download import download_each
from sitegen.net.download_job import DownloadJob, DownloadResult
from sitegen.net.failures import UpstreamError
from sitegen.net.installer_index import fetch_index, file_size
from sitegen.net.upstream import Upstream, open_upstreams
from sitegen.store.site import UnsafePathError
from sitegen.sync.download import download_progress
from sitegen.sync.installer_listing import (
    ListedFile,
    Listing,
    parse_listing,
    select,
)
from sitegen.sync.installer_state import (
    InstallerState,
    StoredFile,
    linked_elsewhere,
    read_state,
    save_state,
    stored_names,
)
from sitegen.sync.report import (
    COMPLETED,
    DRY_RUN,
    FAILED,
    SKIPPED_EXAMPLES,
    InstallerReport,
    RunReport,
    recorded_list,
)
from sitegen.sync.scope import RunScope
from sitegen.sync.space import arrivals, oversized, space_problems
from sitegen.wording import counted, human_bytes

log = logging.getLogger("sitegen")


@dataclass
class _Folder:
    """One installer folder's work in a run, as its index and its directory make it."""

    installer: InstallerConfig
    upstream: Upstream
    directory: Path
    report: InstallerReport
    listing: Listing
    selected: dict[str, ListedFile]
    state: InstallerState  # as the last run left it
    present: set[str] = field(default_factory=set)  # its files on disk before the run
    kept: dict[str, StoredFile] = field(default_factory=dict)  # present with the listed bytes
    fetch: list[ListedFile] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    landed: dict[str, int] = field(default_factory=dict)  # downloaded: name -> bytes


async def sync_installers(scope: RunScope, report: RunReport) -> None:
    """Mirror the run's installer folders, adding a report of each to ``report``."""
    reports = {i.path: InstallerReport(i.path, i.display_url()) for i in scope.installers}
    report.installers.extend(reports.values())
    async with AsyncExitStack() as stack:
        upstreams, unusable = await open_upstreams(
            [i.source() for i in scope.installers], scope.config.download, stack, scope.activity
        )
        folders: list[_Folder] = []
        async with trio.open_nursery() as nursery:
            for installer in scope.installers:
                ir = reports[installer.path]
                if installer.path in unusable:
                    _fail(ir, unusable[installer.path])
                    continue
                upstream = upstreams[installer.path]
                nursery.start_soon(_read_folder, scope, installer, upstream, ir, folders)
        if scope.options.dry_run:
            for folder in folders:
                _report_dry_run(folder)
        else:
            await _download(scope, folders, report)
            for folder in folders:
                try:
                    await trio.to_thread.run_sync(_finish, scope, folder)
                except OSError as exc:
                    _fail(folder.report, f"could not finish the folder: {exc.strerror or exc}")
    for ir in reports.values():
        ir.status = DRY_RUN if scope.options.dry_run else FAILED if ir.errors else COMPLETED
        if ir.status == DRY_RUN and ir.errors:
            ir.status = FAILED
        # An index of many rows whose files fail makes an error each: the run's record keeps
        # the first and counts the rest, as a mirror's (history.json holds every run kept).
        ir.errors = recorded_list(ir.errors, "error")


def _fail(ir: InstallerReport, error: str) -> None:
    log.error("%s: %s", ir.path, error)
    ir.errors.append(error)


def _skip(ir: InstallerReport, what: str, why: str) -> None:
    # The first rows are logged as examples, the rest counted (_skipped_more): an index of a
    # million bad rows must not write a million log lines.
    ir.skipped_total += 1
    if ir.skipped_total <= SKIPPED_EXAMPLES:
        log.warning("%s: skipped %s: %s", ir.path, what, why)
    if len(ir.skipped) < SKIPPED_EXAMPLES:
        ir.skipped[what] = why


def _skipped_more(ir: InstallerReport) -> None:
    if ir.skipped_total > SKIPPED_EXAMPLES:
        more = ir.skipped_total - SKIPPED_EXAMPLES
        log.warning("%s: skipped %d more rows of its index", ir.path, more)


async def _read_folder(
    scope: RunScope,
    installer: InstallerConfig,
    upstream: Upstream,
    ir: InstallerReport,
    folders: list[_Folder],
) -> None:
    """Read the folder's index and directory and decide what to fetch and remove; a folder
    that cannot be read (or that the deletion guard holds back) is reported, not added."""
    paths = [channel.path for channel in scope.config.channels]
    others = [other.path for other in scope.config.installers]
    taken = await trio.to_thread.run_sync(
        linked_elsewhere, scope.site.root, paths, installer.path, others
    )
    if taken is not None:
        _fail(ir, f"{installer.path} is a link to {taken}: left alone")
        return
    try:
        directory = scope.site.path(installer.path)
    except UnsafePathError as exc:
        _fail(ir, str(exc))
        return
    present = await trio.to_thread.run_sync(stored_names, directory)
    ir.files = len(present)  # what it still holds should the index fail
    try:
        page = await fetch_index(upstream)
    except UpstreamError as exc:
        _fail(ir, f"the index could not be read: {exc}")
        return
    listing = await trio.to_thread.run_sync(
        parse_listing, page.decode("utf-8", "replace"), upstream.secrets.in_records
    )
    if not listing.found:
        _fail(
            ir,
            f"{installer.display_url()}/ holds no table of Filename, Size, Last Modified and"
            " SHA256: nothing changed",
        )
        return
    for what, why in listing.skipped:
        _skip(ir, what, why)
    ir.skipped_total += listing.skipped_total - len(listing.skipped)  # past its examples
    _skipped_more(ir)
    ir.listed = len(listing.files)
    selected = select(listing.files, installer)
    # A file whose row is unreadable now stays: its row is odd, not gone.
    remove = sorted(present - selected.keys() - listing.unreadable)
    after = (present - set(remove)) | selected.keys()
    if not scope.options.force_delete:
        why = _shrinks(len(present), len(after), scope.config.max_delete_fraction)
        if why is not None:
            _fail(ir, f"held back: {why}")
            return
    if not scope.options.dry_run:
        # What a killed run was writing there (a live process's temporaries stay).
        await trio.to_thread.run_sync(scope.site.clean_temp_files, directory)
    state = await trio.to_thread.run_sync(read_state, scope.site.root, installer.path)
    folder = _Folder(installer, upstream, directory, ir, listing, selected, state, present)
    folder.remove = remove
    for name, listed in selected.items():
        if name in present:
            kept = await _kept(folder, name, listed, scope.options.verify)
            if kept is not None:
                folder.kept[name] = kept
                continue
        folder.fetch.append(listed)
    folders.append(folder)


async def _kept(folder: _Folder, name: str, listed: ListedFile, verify: bool) -> StoredFile | None:
    """The file's entry when the one on disk holds the listed bytes (its state's word for it
    while its size and mtime stay, a hash otherwise or with ``verify``); None when it must be
    fetched."""
    path = folder.directory / name
    stored = folder.state.files.get(name)
    if (
        not verify
        and stored is not None
        and stored.sha256 == listed.sha256
        and listed.fits(stored.size)
        and stored.current(path)
    ):
        return StoredFile(stored.size, stored.sha256, listed.modified, stored.mtime_ns)
    checked = await trio.to_thread.run_sync(_hashed, path, listed)
    if checked is None:
        log.info("%s: %s differs from the listed one: fetched again", folder.installer.path, name)
    return checked


def _hashed(path: Path, listed: ListedFile) -> StoredFile | None:
    try:
        with open(path, "rb") as handle:
            st = os.fstat(handle.fileno())
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return None
    if digest != listed.sha256 or not listed.fits(st.st_size):
        return None
    return StoredFile(st.st_size, digest, listed.modified, st.st_mtime_ns)


def _shrinks(before: int, after: int, max_fraction: float) -> str | None:
    """Why a folder of ``before`` files is held as it is rather than left with ``after``: it
    would lose more than ``max_fraction`` of them. The channels' deletion guard, counted by
    what the folder holds: a file taking the place of another (the next release, which
    ``newest`` chooses instead) is no loss, an index that suddenly lists much less (truncated,
    an error page with a table) is."""
    share = (before - after) / before if before else 0.0
    if share <= max_fraction:
        return None
    return (
        f"would leave {after} of its {before} files ({share:.0%} fewer), more than the allowed"
        f" {max_fraction:.0%}; kept as it is. If this is intended (for example after narrowing"
        " its globs), run again with --force-delete"
    )


def _report_dry_run(folder: _Folder) -> None:
    ir = folder.report
    for listed in folder.fetch:
        (ir.updated if listed.name in folder.present else ir.added).append(listed.name)
    ir.removed = list(folder.remove)
    ir.downloaded_files = len(folder.fetch)
    ir.downloaded_bytes = sum(listed.low for listed in folder.fetch)  # at least
    ir.files = len(folder.present) - len(folder.remove) + len(ir.added)
    _log_summary(ir, dry_run=True)


async def _download(scope: RunScope, folders: list[_Folder], report: RunReport) -> None:
    """Download every file the folders fetch, once upstream has stated its exact size."""
    jobs: list[tuple[tuple[_Folder, ListedFile], DownloadJob]] = []
    limiter = trio.CapacityLimiter(scope.config.download.concurrency)
    async with trio.open_nursery() as nursery:
        for folder in folders:
            for listed in folder.fetch:
                nursery.start_soon(_job, scope, folder, listed, limiter, jobs)
    too_large = await trio.to_thread.run_sync(oversized, [job for _key, job in jobs])
    for (folder, _listed), job in jobs:
        if job.target in too_large:
            _fail(folder.report, too_large[job.target])
    jobs = [(key, job) for key, job in jobs if job.target not in too_large]
    shortage = await trio.to_thread.run_sync(
        space_problems, arrivals(job for _key, job in jobs), scope.config.min_free_space
    )
    if shortage:
        report.errors.extend(shortage)
        return
    if not jobs:
        return
    jobs.sort(key=lambda kj: -kj[1].record.size)  # the largest first: it bounds the time
    total = sum(job.record.size for _key, job in jobs)
    log.info("installers: downloading %s, %s", counted(len(jobs), "file"), human_bytes(total))

    def landed(key: tuple[_Folder, ListedFile], result: DownloadResult) -> None:
        progress.file_done(result.ok)
        folder, listed = key
        if result.ok:
            folder.landed[listed.name] = result.bytes
        else:
            _fail(folder.report, result.error)

    shown = scope.options.progress
    with download_progress(scope.site, [job for _key, job in jobs], shown) as progress:
        await download_each(jobs, scope.site, scope.config.download, landed, progress.add_bytes)


async def _job(
    scope: RunScope,
    folder: _Folder,
    listed: ListedFile,
    limiter: trio.CapacityLimiter,
    jobs: list[tuple[tuple[_Folder, ListedFile], DownloadJob]],
) -> None:
    """The download of one file, its size asked upstream when the index rounds it."""
    size = listed.low
    if not listed.exact:
        async with limiter:
            try:
                size = await file_size(folder.upstream, listed.name)
            except UpstreamError as exc:
                _fail(folder.report, f"{listed.name}: {exc}")
                return
        if not listed.fits(size):
            why = f"upstream sends {size} bytes, not the {listed.low}-{listed.high} listed"
            _skip(folder.report, repr(listed.name), why)
            return
    record = Record(
        fn=listed.name, subdir="", raw={"size": size, "sha256": listed.sha256}, origin=""
    )
    # Not resolved (the folder itself was checked): a link someone left under the name is
    # replaced, never followed.
    target = scope.site.root / installer_file_path(folder.installer.path, listed.name)
    # Fetched from the folder's URL, which the file name is joined to as it is to a CEP-15
    # base_url; served under its name as soon as it is named: on disk first (durable).
    job = DownloadJob(folder.upstream, record, target, durable=True, base_url=folder.upstream.base)
    jobs.append(((folder, listed), job))


def _finish(scope: RunScope, folder: _Folder) -> None:
    """Remove what the folder no longer holds, then note what it holds now (in its state)."""
    ir = folder.report
    site = scope.site
    files = dict(folder.kept)
    for name, size in folder.landed.items():
        st = os.stat(folder.directory / name, follow_symlinks=False)
        files[name] = StoredFile(
            size, folder.selected[name].sha256, folder.selected[name].modified, st.st_mtime_ns
        )
        (ir.updated if name in folder.present else ir.added).append(name)
        ir.downloaded_files += 1
        ir.downloaded_bytes += size
    # Judged again by what landed: a file whose successor could not be fetched is a loss.
    after = (folder.present - set(folder.remove)) | folder.landed.keys()
    why = _shrinks(len(folder.present), len(after), scope.config.max_delete_fraction)
    if why is not None and not scope.options.force_delete:
        _fail(ir, f"held back: {why}")
    else:
        for name in folder.remove:
            if site.remove(folder.directory / name):
                ir.removed.append(name)
    on_disk = stored_names(folder.directory)
    for name, stored in folder.state.files.items():
        # What stays as it was (a fetch that failed, an unreadable row): its entry stands.
        if name in on_disk and name not in files and stored.current(folder.directory / name):
            files[name] = stored
    state = InstallerState(url=folder.installer.display_url(), files=dict(sorted(files.items())))
    save_state(site, folder.installer.path, state)
    ir.added.sort()
    ir.updated.sort()
    ir.files = len(on_disk)
    _log_summary(ir)


def _log_summary(ir: InstallerReport, dry_run: bool = False) -> None:
    new = ("would download" if dry_run else "downloaded") if ir.downloaded_files else ""
    log.info(
        "%s: %s (+%d ~%d -%d), %s",
        ir.path,
        counted(ir.files, "file"),
        len(ir.added),
        len(ir.updated),
        len(ir.removed),
        f"{new} {counted(ir.downloaded_files, 'file')} ({human_bytes(ir.downloaded_bytes)})"
        if new
        else "no new files",
    )
