"""One attempt at a package file over HTTP: streamed into a pending file as it comes, or, for a
large file, as byte ranges over parallel connections; verified, then named (see
:mod:`sitegen.net.download`, which retries the attempts). The exceptions say whether another
attempt is worth it: :class:`Retryable` or :class:`Fatal`."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from functools import partial

import trio

from sitegen.net.activity import Transfer
from sitegen.net.checksums import Hasher, VerifyError, hash_chunks
from sitegen.net.download_job import DownloadJob
from sitegen.net.failures import MIN_RATE, RETRY_STATUS, Pace, retry_after
from sitegen.net.transit import UNREGISTERED, registered_codings
from sitegen.net.upstream import Upstream
from sitegen.store.site import PendingFile, Site
from sitegen.store.writer import DiskWriter

# Files of at least two parts are fetched as byte ranges over parallel connections, so one large
# file is not held to a single connection's bandwidth (CDNs and proxies often cap those).
SPLIT_PART = 8 << 20
MAX_PARTS = 8


def split_spans(size: int) -> list[tuple[int, int]]:
    """[start, end) byte ranges for a file's parallel parts; one span when not worth splitting."""
    parts = min(MAX_PARTS, size // SPLIT_PART)
    if parts < 2:
        return [(0, size)]
    step = -(-size // parts)
    return [(start, min(start + step, size)) for start in range(0, size, step)]


class Retryable(Exception):
    """An attempt failed in a way another may not (a 5xx, a 404 while a CDN catches up)."""

    def __init__(self, message: str, asked: float | None = None) -> None:
        super().__init__(message)
        self.asked = asked  # what the server's Retry-After asked for


class RangesIgnored(Retryable):
    """A part of a file fetched in ranges came whole (200) after the first part's range was
    honoured (206): a server pool where some answer ranges and some not. Asked in ranges
    again, the file would fail alike; the next attempt asks for it whole."""


class Fatal(Exception):
    """An attempt failed in a way every other would too: no retry."""


def refusal(status: int, headers: Mapping[str, str]) -> Exception:
    """What an answer other than the file means for the download."""
    if status in RETRY_STATUS or status == 404:
        # A just-listed file can 404 while a CDN catches up: worth a retry.
        return Retryable(f"HTTP {status}", retry_after(headers, time.time()))
    return Fatal(f"HTTP {status}")


def check_encoding(headers: Mapping[str, str]) -> None:
    """Package files are asked for as stored (``Accept-Encoding: identity``): a server that
    compresses them anyway sends other bytes than the checksums name, on every attempt."""
    encoding = headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        named = registered_codings([c.strip() for c in encoding.split(",") if c.strip()])
        raise Fatal(
            f"the server compressed the file in transit (Content-Encoding:"
            f" {named or UNREGISTERED}) though it was asked for as stored"
        )


def deadline(upstream: Upstream, size: int) -> float:
    """The most a transfer of ``size`` bytes may take (its claimed size's time)."""
    return upstream.settings.timeout + size / MIN_RATE


async def fetch(
    job: DownloadJob,
    site: Site,
    writer: DiskWriter,
    on_bytes: Callable[[int], None],
    whole: bool = False,
) -> int:
    """One GET streamed into a pending file: the event loop receives, a DiskWriter worker
    writes, hashes, verifies and names the file. A large file comes in parallel ranges unless
    asked for ``whole``."""
    upstream = job.upstream
    spans = [(0, job.record.size)] if whole else split_spans(job.record.size)
    if len(spans) > 1:
        return await fetch_parts(job, site, writer, spans, on_bytes)
    record = job.record
    hasher = Hasher(record)
    async with AsyncExitStack() as slot:
        # The pending file is opened once a connection slot is taken: a download waiting for
        # one holds no file open.
        await slot.enter_async_context(upstream.host_limiter)
        with site.pending(job.target) as pending:
            landed = watched(job, pending)
            on_landed = None if landed is None else partial(landed, 0)
            async with writer.stream(pending, 0, hasher.digest_update, on_landed) as stream:
                with (
                    upstream.activity.transfer(upstream.safe_url(package_url(job))) as transfer,
                    trio.fail_after(deadline(upstream, record.size)) as scope,
                ):
                    pace = Pace(scope, upstream.settings.timeout, deadline(upstream, record.size))
                    async with upstream.client.stream(package_url(job)) as response:
                        if response.status_code != 200:
                            raise refusal(response.status_code, response.headers)
                        check_encoding(response.headers)
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
                await name_verified(job, pending)
    return hasher.size


async def name_verified(job: DownloadJob, pending: PendingFile) -> None:
    """Give the verified ``pending`` its name: flushed first when the job is durable, and
    only if the job's veto, asked right before, has nothing against it."""
    if job.durable:
        await trio.to_thread.run_sync(pending.flush)
    if job.veto is not None and (why := await job.veto()) is not None:
        raise Fatal(why)  # the pending file is discarded: nothing takes the name
    await trio.to_thread.run_sync(pending.commit)


def watched(job: DownloadJob, pending: PendingFile) -> Callable[[int, int], object] | None:
    """What the job's watch is told as bytes of ``pending`` land (None: nobody watches)."""
    return None if job.watch is None else job.watch.opened(pending)


def package_url(job: DownloadJob) -> str:
    return job.upstream.package_url(job.record.subdir, job.record.fn, job.base_url)


async def fetch_parts(
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
        # As in fetch: the first part's slot is taken before the pending file is opened.
        await first_slot.enter_async_context(upstream.host_limiter)
        with site.pending(job.target) as pending:
            landed = watched(job, pending)
            parts = [Part(job, writer, pending, span, on_bytes, landed) for span in spans]

            async with trio.open_nursery() as nursery:

                async def fetch_part(part: Part, slot: AbstractAsyncContextManager[object]) -> None:
                    # The first request brings the whole file from a server without range
                    # support: it has the whole file's time (no more than an unsplit download).
                    size = job.record.size if part is parts[0] else part.end - part.start
                    try:
                        async with slot:
                            cap = deadline(upstream, size)
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
            await name_verified(job, pending)
            return size


class Part:
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
        what = f"{upstream.safe_url(package_url(self.job))} (bytes {self.start}-{self.end - 1})"
        with upstream.activity.transfer(what) as transfer:
            await self._fetch(headers, transfer, pace)

    async def _fetch(self, headers: dict[str, str], transfer: Transfer, pace: Pace) -> None:
        record = self.job.record
        async with (
            self.job.upstream.client.stream(package_url(self.job), headers) as response,
            self.writer.stream(self.pending, self.start, on_landed=self.landed) as stream,
        ):
            start, end = self.start, self.end
            if response.status_code in (200, 206):
                check_encoding(response.headers)
            if response.status_code == 206:
                # The range asked for, of a file of the record's size or of one the server
                # does not state ("*", RFC 9110).
                got = response.headers.get("content-range", "").strip()
                if got not in {f"bytes {start}-{end - 1}/{n}" for n in (record.size, "*")}:
                    raise Retryable("unexpected Content-Range")
                self.ranged = True
                if self.on_ranged is not None:
                    self.on_ranged()
            elif response.status_code == 200 and start == 0:
                end = record.size  # no range support: the whole file comes here
            elif response.status_code == 200:
                raise RangesIgnored("server ignored the Range header")
            else:
                raise refusal(response.status_code, response.headers)
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
