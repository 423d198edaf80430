"""Download package files: stream into a nameless file while hashing, verify, then name it.

A file is published under its real name only after its size and sha256 (md5 when upstream
lists no sha256) match the repodata record that will reference it. A mismatch is retried and
then reported; nothing unverified ever sits under a package's name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import TypeVar

import httpx
import trio

from sitegen.config import DownloadSettings
from sitegen.net.checksums import VerifyError
from sitegen.net.client import InvalidHostName, UnsupportedScheme
from sitegen.net.download_http import (
    Fatal,
    RangesIgnored,
    Retryable,
    fetch,
    name_verified,
    package_url,
)
from sitegen.net.download_job import DownloadJob, DownloadResult
from sitegen.net.failures import describe_error, log_retry, retry_delay
from sitegen.net.local_copy import NotInSource, copy_local
from sitegen.net.upstream import UpstreamError
from sitegen.store.site import Site
from sitegen.store.writer import DiskWriter, open_disk_writer

K = TypeVar("K")  # what a caller of download_each keeps beside each job


async def download(
    job: DownloadJob,
    site: Site,
    writer: DiskWriter,
    retries: int,
    on_bytes: Callable[[int], None] = lambda n: None,
) -> DownloadResult:
    """Fetch one file with retries, each failed attempt logged as it happens; never leaves a
    partial or unverified file behind."""
    upstream = job.upstream
    try:
        what = upstream.safe_url(package_url(job))
    except UpstreamError as exc:
        return DownloadResult(job, ok=False, error=f"{job.record.fn}: {exc}")
    attempts = retries + 1
    last_error = ""
    local = False
    whole = False  # the next attempt asks for the file in one request, not in ranges
    for attempt in range(1, attempts + 1):
        if job.on_attempt is not None:
            job.on_attempt()
        received = 0
        asked = None

        def counted(size: int) -> None:
            nonlocal received
            received += size
            on_bytes(size)

        try:
            if upstream.is_file:
                source = upstream.local_path(job.record.subdir, job.record.fn)
                with site.pending(job.target) as pending:
                    copy = partial(copy_local, source, job.record, pending)
                    size = await trio.to_thread.run_sync(copy)
                    await name_verified(job, pending)
                on_bytes(size)
            else:
                size = await fetch(job, site, writer, counted, whole)
            return DownloadResult(job, ok=True, bytes=size)
        except VerifyError as exc:
            last_error = f"checksum mismatch: {exc}"
        except RangesIgnored as exc:
            last_error, whole = str(exc), True
        except Retryable as exc:
            last_error, asked = str(exc), exc.asked
        except (InvalidHostName, UnsupportedScheme) as exc:  # another try ends the same
            last_error = describe_error(exc, received)
            break
        except (httpx.TransportError, trio.TooSlowError) as exc:
            last_error = describe_error(exc, received)
        except httpx.TooManyRedirects:
            last_error = "too many redirects"
            break
        except (Fatal, NotInSource) as exc:
            last_error = str(exc)
            break
        except OSError as exc:
            # Our side failed (a full disk, an I/O error): another attempt would only download
            # the same bytes again to fail the same way.
            last_error = f"cannot store it: {exc.strerror or exc}"
            local = True
            break
        if attempt < attempts:
            if job.watch is not None:
                job.watch.retrying()
            delay = retry_delay(attempt - 1, asked)
            log_retry(what, attempt, attempts, last_error, delay)
            await trio.sleep(delay)
    return DownloadResult(job, ok=False, error=f"{job.record.fn}: {last_error}", local=local)


async def download_each(
    jobs: Sequence[tuple[K, DownloadJob]],
    site: Site,
    settings: DownloadSettings,
    landed: Callable[[K, DownloadResult], object],
    on_bytes: Callable[[int], None] = lambda n: None,
) -> None:
    """Download every job, in the order given, ``download.concurrency`` at a time: each holds
    a file and a connection open while it runs, so thousands of files to fetch must not all
    start at once. ``landed`` is told each result, with the key its job came with."""
    send, receive = trio.open_memory_channel[tuple[K, DownloadJob]](len(jobs))
    for item in jobs:
        send.send_nowait(item)
    send.close()

    async def worker(writer: DiskWriter) -> None:
        async for key, job in receive:
            landed(key, await download(job, site, writer, settings.retries, on_bytes))

    async with open_disk_writer() as writer, trio.open_nursery() as nursery:
        for _ in range(min(settings.concurrency, len(jobs))):
            nursery.start_soon(worker, writer)
