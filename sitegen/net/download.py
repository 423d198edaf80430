"""Download package files: stream into a nameless file while hashing, verify, then name it.

A file is published under its real name only after its size and sha256 (md5 when upstream
lists no sha256) match the repodata record that will reference it. A mismatch is retried and
then reported; nothing unverified ever sits under a package's name.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol, TypeVar

import httpx
import trio

from sitegen.conda.records import Record
from sitegen.config import DownloadSettings
from sitegen.net.activity import Transfer
from sitegen.net.checksums import Hasher, VerifyError, hash_chunks
from sitegen.net.client import InvalidHostName
from sitegen.net.failures import (
    MIN_RATE,
    RETRY_STATUS,
    Pace,
    describe_error,
    log_retry,
    retry_after,
    retry_delay,
)
from sitegen.net.local_copy import NotInSource, copy_local
from sitegen.net.transit import UNREGISTERED, registered_codings
from sitegen.net.upstream import Upstream, UpstreamError
from sitegen.store.site import PendingFile, Site
from sitegen.store.writer import DiskWriter, open_disk_writer

# Files of at least two parts are fetched as byte ranges over parallel connections, so one large
# file is not held to a single connection's bandwidth (CDNs and proxies often cap those).
SPLIT_PART = 8 << 20
MAX_PARTS = 8

K = TypeVar("K")  # what a caller of download_each keeps beside each job


class Watch(Protocol):
    """Someone reading a file while it downloads (the passive fetcher's waiting clients)."""

    def opened(self, pending: PendingFile) -> Callable[[int, int], object]:
        """An attempt begins writing ``pending`` (empty); the answer is told ``(start, end)``
        in the event loop whenever bytes of the part written from ``start`` are on disk up to
        ``end``."""
        ...


@dataclass
class DownloadJob:
    upstream: Upstream
    record: Record
    target: Path  # final published path inside the site
    # On disk before it is named: for files served as they are named, with no flush
    # of the whole run after them (the pull-through fetcher, repairs).
    durable: bool = False
    base_url: str | None = None  # the upstream subdir's CEP-15 info.base_url, as written
    watch: Watch | None = None
    # Asked once the file is verified (and flushed, when durable), right before it is named:
    # a reason not to name it after all, or None. For a caller whose record may change while
    # the bytes come (the pull-through fetcher: a run publishing another record meanwhile).
    veto: Callable[[], Awaitable[str | None]] | None = None


@dataclass
class DownloadResult:
    job: DownloadJob
    ok: bool
    bytes: int = 0
    error: str = ""


def split_spans(size: int) -> list[tuple[int, int]]:
    """[start, end) byte ranges for a file's parallel parts; one span when not worth splitting."""
    parts = min(MAX_PARTS, size // SPLIT_PART)
    if parts < 2:
        return [(0, size)]
    step = -(-size // parts)
    return [(start, min(start + step, size)) for start in range(0, size, step)]


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
        what = upstream.safe_url(_url(job))
    except UpstreamError as exc:
        return DownloadResult(job, ok=False, error=f"{job.record.fn}: {exc}")
    attempts = retries + 1
    last_error = ""
    for attempt in range(1, attempts + 1):
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
                    await _name(job, pending)
                on_bytes(size)
            else:
                size = await _fetch(job, site, writer, counted)
            return DownloadResult(job, ok=True, bytes=size)
        except VerifyError as exc:
            last_error = f"checksum mismatch: {exc}"
        except _Retryable as exc:
            last_error, asked = str(exc), exc.asked
        except InvalidHostName as exc:  # no request left: another try ends the same
            last_error = describe_error(exc, received)
            break
        except (httpx.TransportError, trio.TooSlowError) as exc:
            last_error = describe_error(exc, received)
        except httpx.TooManyRedirects:
            last_error = "too many redirects"
            break
        except (_Fatal, NotInSource) as exc:
            last_error = str(exc)
            break
        except OSError as exc:
            # Our side failed (a full disk, an I/O error): another attempt would only download
            # the same bytes again to fail the same way.
            last_error = f"cannot store it: {exc.strerror or exc}"
            break
        if attempt < attempts:
            delay = retry_delay(attempt - 1, asked)
            log_retry(what, attempt, attempts, last_error, delay)
            await trio.sleep(delay)
    return DownloadResult(job, ok=False, error=f"{job.record.fn}: {last_error}")


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


class _Retryable(Exception):
    def __init__(self, message: str, asked: float | None = None) -> None:
        super().__init__(message)
        self.asked = asked  # what the server's Retry-After asked for


class _Fatal(Exception):
    pass


def _refusal(status: int, headers: Mapping[str, str]) -> Exception:
    """What an answer other than the file means for the download."""
    if status in RETRY_STATUS or status == 404:
        # A just-listed file can 404 while a CDN catches up: worth a retry.
        return _Retryable(f"HTTP {status}", retry_after(headers, time.time()))
    return _Fatal(f"HTTP {status}")


def _check_encoding(headers: Mapping[str, str]) -> None:
    """Package files are asked for as stored (``Accept-Encoding: identity``): a server that
    compresses them anyway sends other bytes than the checksums name, on every attempt."""
    encoding = headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        named = registered_codings([c.strip() for c in encoding.split(",") if c.strip()])
        raise _Fatal(
            f"the server compressed the file in transit (Content-Encoding:"
            f" {named or UNREGISTERED}) though it was asked for as stored"
        )


def _deadline(upstream: Upstream, size: int) -> float:
    """The most a transfer of ``size`` bytes may take (its claimed size's time)."""
    return upstream.settings.timeout + size / MIN_RATE


async def _fetch(
    job: DownloadJob, site: Site, writer: DiskWriter, on_bytes: Callable[[int], None]
) -> int:
    """One GET streamed into a pending file: the event loop receives, a DiskWriter worker
    writes, hashes, verifies and names the file."""
    upstream = job.upstream
    spans = split_spans(job.record.size)
    if len(spans) > 1:
        return await _fetch_split(job, site, writer, spans, on_bytes)
    record = job.record
    hasher = Hasher(record)
    async with AsyncExitStack() as slot:
        # The pending file is opened once a connection slot is taken: a download waiting for
        # one holds no file open.
        await slot.enter_async_context(upstream.host_limiter)
        with site.pending(job.target) as pending:
            landed = _watched(job, pending)
            on_landed = None if landed is None else partial(landed, 0)
            async with writer.stream(pending, 0, hasher.digest_update, on_landed) as stream:
                with (
                    upstream.activity.transfer(upstream.safe_url(_url(job))) as transfer,
                    trio.fail_after(_deadline(upstream, record.size)) as scope,
                ):
                    pace = Pace(scope, upstream.settings.timeout, _deadline(upstream, record.size))
                    async with upstream.client.stream(_url(job)) as response:
                        if response.status_code != 200:
                            raise _refusal(response.status_code, response.headers)
                        _check_encoding(response.headers)
                        async for chunk in response.aiter_raw():
                            pace.add(len(chunk))
                            hasher.count(len(chunk))
                            await stream.write(chunk)
                            upstream.activity.add(transfer, len(chunk))
                            on_bytes(len(chunk))
                # The deadline and the connection slot are for the transfer: once the last
                # byte is in, a slow disk must not turn a verified file into a failed attempt,
                # nor hold up another transfer.
                await slot.aclose()

                # A flush may take long, and a veto waits: not on a disk worker that other
                # files' bytes wait for.
                named_here = not job.durable and job.veto is None

                def seal() -> None:
                    hasher.verify()
                    if named_here:
                        pending.commit()

                await stream.finish(seal)
            if not named_here:
                await _name(job, pending)
    return hasher.size


async def _name(job: DownloadJob, pending: PendingFile) -> None:
    """Give the verified ``pending`` its name: flushed first when the job is durable, and
    only if the job's veto, asked right before, has nothing against it."""
    if job.durable:
        await trio.to_thread.run_sync(pending.flush)
    if job.veto is not None and (why := await job.veto()) is not None:
        raise _Fatal(why)  # the pending file is discarded: nothing takes the name
    await trio.to_thread.run_sync(pending.commit)


def _watched(job: DownloadJob, pending: PendingFile) -> Callable[[int, int], object] | None:
    """What the job's watch is told as bytes of ``pending`` land (None: nobody watches)."""
    return None if job.watch is None else job.watch.opened(pending)


def _url(job: DownloadJob) -> str:
    return job.upstream.package_url(job.record.subdir, job.record.fn, job.base_url)


async def _fetch_split(
    job: DownloadJob,
    site: Site,
    writer: DiskWriter,
    spans: list[tuple[int, int]],
    on_bytes: Callable[[int], None],
) -> int:
    """Fetch a large file as byte ranges in parallel, each part holding a per-host connection
    slot; verify the assembled file, then name it. The first part finds out whether the
    server honours ranges: only after its 206 do the others start, and a 200 instead brings
    the whole file through that one request."""
    upstream = job.upstream
    errors: list[Exception] = []
    async with AsyncExitStack() as first_slot:
        # As in _fetch: the first part's slot is taken before the pending file is opened.
        await first_slot.enter_async_context(upstream.host_limiter)
        with site.pending(job.target) as pending:
            landed = _watched(job, pending)
            parts = [_Part(job, writer, pending, span, on_bytes, landed) for span in spans]

            async with trio.open_nursery() as nursery:

                async def fetch_part(
                    part: _Part, slot: AbstractAsyncContextManager[object]
                ) -> None:
                    # The first request brings the whole file from a server without range
                    # support: it has the whole file's time (no more than an unsplit download).
                    size = job.record.size if part is parts[0] else part.end - part.start
                    try:
                        async with slot:
                            cap = _deadline(upstream, size)
                            with trio.fail_after(cap) as scope:
                                await part.fetch(Pace(scope, upstream.settings.timeout, cap))
                    except Exception as exc:
                        errors.append(exc)
                        nursery.cancel_scope.cancel()  # the other parts are of no use now

                def fetch_the_others() -> None:
                    for part in parts[1:]:
                        nursery.start_soon(fetch_part, part, upstream.host_limiter)

                parts[0].on_ranged = fetch_the_others
                await fetch_part(parts[0], first_slot)
            if errors:
                raise errors[0]

            # Hashing tens of MB would hold up every other transfer: a worker thread does it.
            size = await trio.to_thread.run_sync(hash_chunks, pending.chunks(), job.record)
            await _name(job, pending)
            return size


class _Part:
    """One byte range of a file, written in place into the shared pending file."""

    def __init__(
        self,
        job: DownloadJob,
        writer: DiskWriter,
        pending: PendingFile,
        span: tuple[int, int],
        on_bytes: Callable[[int], None],
        landed: Callable[[int, int], object] | None = None,
    ) -> None:
        self.job = job
        self.writer = writer
        self.pending = pending
        self.start, self.end = span
        self.landed = None if landed is None else partial(landed, self.start)
        self.on_bytes = on_bytes
        self.ranged = False
        self.on_ranged: Callable[[], object] | None = None  # told when a 206 arrives

    async def fetch(self, pace: Pace) -> None:
        upstream = self.job.upstream
        headers = {"Range": f"bytes={self.start}-{self.end - 1}"}
        what = f"{upstream.safe_url(_url(self.job))} (bytes {self.start}-{self.end - 1})"
        with upstream.activity.transfer(what) as transfer:
            await self._fetch(headers, transfer, pace)

    async def _fetch(self, headers: dict[str, str], transfer: Transfer, pace: Pace) -> None:
        record = self.job.record
        async with (
            self.job.upstream.client.stream(_url(self.job), headers) as response,
            self.writer.stream(self.pending, self.start, on_landed=self.landed) as stream,
        ):
            start, end = self.start, self.end
            if response.status_code in (200, 206):
                _check_encoding(response.headers)
            if response.status_code == 206:
                # The range asked for, of a file of the record's size or of one the server
                # does not state ("*", RFC 9110).
                got = response.headers.get("content-range", "").strip()
                if got not in {f"bytes {start}-{end - 1}/{n}" for n in (record.size, "*")}:
                    raise _Retryable("unexpected Content-Range")
                self.ranged = True
                if self.on_ranged is not None:
                    self.on_ranged()
            elif response.status_code == 200 and start == 0:
                end = record.size  # no range support: the whole file comes here
            elif response.status_code == 200:
                raise _Retryable("server ignored the Range header")
            else:
                raise _refusal(response.status_code, response.headers)
            written = 0
            async for chunk in response.aiter_raw():
                pace.add(len(chunk))
                if written + len(chunk) > end - start:
                    raise VerifyError(f"more than the expected {record.size} bytes")
                await stream.write(chunk)
                written += len(chunk)
                self.job.upstream.activity.add(transfer, len(chunk))
                self.on_bytes(len(chunk))
            await stream.finish()
        if written != end - start:
            raise VerifyError(f"part {start}-{end - 1}: {written} of {end - start} bytes")
