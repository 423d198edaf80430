"""The I/O around a plan: read the disk for it, then carry it out (remove, download, flush).

`check_files` re-hashes what `sitegen.sync.plan` asks to be checked; `remove_files`,
`download_all` and `flush` execute the plans. Nothing here decides what a subdir should hold.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import trio

from sitegen.conda.records import Record
from sitegen.config import DownloadSettings
from sitegen.layout import progress_path
from sitegen.net.checksums import file_matches
from sitegen.net.download import download_each
from sitegen.net.download_job import DownloadJob, DownloadResult
from sitegen.net.upstream import Upstream
from sitegen.store.site import Site
from sitegen.sync.plan import Plan
from sitegen.sync.progress import Progress, human_bytes
from sitegen.wording import counted

log = logging.getLogger("sitegen")

# (channel path, subdir)
TargetKey = tuple[str, str]


async def check_files(
    directory: Path,
    records: Mapping[str, Record],
    names: Iterable[str],
    replaced: Collection[str] = (),
) -> dict[str, bool]:
    """Re-hash the named files against their records: fn -> the bytes match. A file of
    ``replaced`` (its record now describes other bytes than the one published) is expected
    to differ: only a file that should match and does not is a warning."""
    checked: dict[str, bool] = {}
    for fn in names:
        # One thread call per file: a stop waits for one file's hash at most.
        ok = checked[fn] = await trio.to_thread.run_sync(file_matches, directory / fn, records[fn])
        if ok:
            continue
        if fn in replaced:
            log.info("%s: %s was replaced upstream: its new bytes are fetched", directory, fn)
        else:
            log.warning("%s: %s fails its checksum", directory, fn)
    return checked


def remove_files(site: Site, directory: Path, names: Iterable[str]) -> None:
    for fn in names:
        site.remove(directory / fn)


@dataclass
class DownloadOutcome:
    """One subdir's downloads; counted as each file lands, so a stopped run reports them."""

    files: int = 0
    bytes: int = 0
    failed: set[str] = field(default_factory=set)  # fn
    errors: list[str] = field(default_factory=list)
    # Files of local sources linked or copied in (sitegen.sync.local.link_all): not downloads.
    local_files: int = 0
    local_bytes: int = 0


def download_jobs(
    site: Site,
    directory: Path,
    plan: Plan,
    upstreams: Mapping[str, Upstream],
    base_urls: Mapping[str, str],
) -> list[DownloadJob]:
    """The plan's downloads; ``base_urls``: mirror name -> the subdir's CEP-15 base_url."""

    def job(record: Record, target: Path) -> DownloadJob:
        upstream = upstreams[record.origin]
        return DownloadJob(upstream, record, target, base_url=base_urls.get(record.origin))

    # Files of local sources are linked in, not downloaded (sitegen.sync.local.link_all).
    fetched = [r for r in plan.to_download if r.origin in upstreams]
    jobs = [job(r, directory / r.fn) for r in fetched]
    staged = (r for r in plan.to_stage if r.origin in upstreams)
    jobs.extend(job(r, site.staging_for(directory / r.fn)) for r in staged)
    return jobs


async def download_all(
    site: Site,
    settings: DownloadSettings,
    jobs: Mapping[TargetKey, list[DownloadJob]],
    outcomes: dict[TargetKey, DownloadOutcome],
    show_progress: bool | None,
) -> None:
    """Run every job, filling ``outcomes`` (one per key of ``jobs``) as files land."""
    # Largest first: the biggest file bounds the run's length on a bandwidth-capped link, so it
    # must not start last.
    ordered = sorted(
        ((key, job) for key, subdir_jobs in jobs.items() for job in subdir_jobs),
        key=lambda kj: -kj[1].record.size,
    )
    for key in jobs:
        outcomes[key] = DownloadOutcome()
    if not ordered:
        return
    total = sum(j.record.size for _k, j in ordered)
    log.info("downloading %s, %s", counted(len(ordered), "file"), human_bytes(total))

    def landed(key: TargetKey, result: DownloadResult) -> None:
        progress.file_done(result.ok)
        outcome = outcomes[key]
        if result.ok:
            outcome.files += 1
            outcome.bytes += result.bytes
            return
        outcome.failed.add(result.job.record.fn)
        message = f"{key[1]}/{result.error}"
        outcome.errors.append(message)
        log.error("%s: %s", key[0], message)

    with download_progress(site, [job for _key, job in ordered], show_progress) as progress:
        await download_each(ordered, site, settings, landed, progress.add_bytes)


@contextlib.contextmanager
def download_progress(
    site: Site, jobs: Sequence[DownloadJob], show_progress: bool | None
) -> Iterator[Progress]:
    """The progress of downloading ``jobs`` (files landed are told to it, bytes as they
    come), shown live or logged, and kept in the progress file `sitegen status` reads while
    they last."""
    progress_file = progress_path(site.root)

    def report(counts: dict[str, int]) -> None:
        # What `sitegen status` shows of a run in progress; never worth failing a run over.
        with contextlib.suppress(OSError):
            document = {"pid": os.getpid(), "updated": time.time(), **counts}
            site.write_bytes(progress_file, json.dumps(document).encode(), durable=False)

    total = sum(job.record.size for job in jobs)
    progress = Progress(len(jobs), total, show_progress, report)
    try:
        yield progress
    finally:
        progress.close()
        with contextlib.suppress(OSError):
            site.remove(progress_file)


async def flush(site: Site, directories: list[Path]) -> str | None:
    """Flush the new package files to disk before any repodata names them (see Site.sync);
    the error, and nothing may be published, when the disk refuses them."""
    if not directories:
        return None
    try:
        # After many GB of downloads the flush may take minutes: a stop does not wait for it.
        # Nothing is published after a stop, and the flush writes nothing of its own.
        await trio.to_thread.run_sync(site.sync, directories, abandon_on_cancel=True)
    except OSError as exc:
        message = f"{exc.strerror or exc}: {exc.filename}; nothing was published"
        log.error("%s", message)
        return message
    return None
