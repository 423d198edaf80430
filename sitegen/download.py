"""Download package files: stream to a temporary name while hashing, verify, then rename.

A file is published under its real name only after its size and sha256 (md5 when upstream
lists no sha256) match the repodata record that will reference it. A mismatch is retried and
then reported; nothing unverified ever sits under a package's name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx
import trio

from sitegen.records import Record
from sitegen.storage import PendingFile, Site
from sitegen.transport import ABORT, AbortHandle
from sitegen.upstream import RETRY_STATUS, Upstream, backoff_delay, describe_error

# Below this average rate a transfer is treated as stalled (slow-drip upstreams).
MIN_RATE = 16 * 1024
# Files of at least two parts are fetched as byte ranges over parallel connections, so one large
# file is not held to a single connection's bandwidth (CDNs and proxies often cap those).
SPLIT_PART = 8 << 20
MAX_PARTS = 8


class VerifyError(Exception):
    """Downloaded bytes do not match the record."""


@dataclass
class DownloadJob:
    upstream: Upstream
    record: Record
    target: Path  # final published path inside the site


@dataclass
class DownloadResult:
    job: DownloadJob
    ok: bool
    bytes: int = 0
    error: str = ""


class Hasher:
    """Checks bytes against a record: sha256 when present, md5 otherwise, and size."""

    def __init__(self, record: Record) -> None:
        self.record = record
        self.sha256 = record.sha256.lower() if record.sha256 else None
        self.md5 = None if self.sha256 else (record.md5 or "").lower()
        self._hash = hashlib.sha256() if self.sha256 else hashlib.md5()
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.record.size:
            raise VerifyError(f"more than the expected {self.record.size} bytes")
        self._hash.update(chunk)

    def verify(self) -> None:
        if self.size != self.record.size:
            raise VerifyError(f"size {self.size} != expected {self.record.size}")
        digest = self._hash.hexdigest()
        expected = self.sha256 or self.md5
        if digest != expected:
            kind = "sha256" if self.sha256 else "md5"
            raise VerifyError(f"{kind} {digest} != expected {expected}")


def hash_chunks(chunks: Iterable[bytes], record: Record) -> int:
    """Hash bytes against a record; their size, or VerifyError."""
    hasher = Hasher(record)
    for chunk in chunks:
        hasher.update(chunk)
    hasher.verify()
    return hasher.size


def hash_file(path: Path, record: Record) -> int:
    """Re-hash a file on disk against its record; its size, or VerifyError."""
    with open(path, "rb") as handle:
        return hash_chunks(iter(partial(handle.read, 1 << 20), b""), record)


def file_matches(path: Path, record: Record) -> bool:
    """Re-hash a file on disk against its record (for --verify)."""
    try:
        hash_file(path, record)
    except (OSError, VerifyError):
        return False
    return True


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
    retries: int,
    on_bytes: Callable[[int], None] = lambda n: None,
) -> DownloadResult:
    """Fetch one file with retries; never leaves a temporary or unverified file behind."""
    last_error = ""
    for attempt in range(retries + 1):
        if attempt:
            await trio.sleep(backoff_delay(attempt - 1))
        try:
            if job.upstream.is_file:
                size = await trio.to_thread.run_sync(_stored, job, site, partial(_copy_local, job))
                on_bytes(size)
            else:
                size = await _fetch(job, site, on_bytes)
            return DownloadResult(job, ok=True, bytes=size)
        except VerifyError as exc:
            last_error = f"checksum mismatch: {exc}"
        except _Retryable as exc:
            last_error = str(exc)
        except (httpx.TransportError, trio.TooSlowError) as exc:
            last_error = describe_error(exc)
        except httpx.TooManyRedirects:
            last_error = "too many redirects"
            break
        except _Fatal as exc:
            last_error = str(exc)
            break
        except OSError as exc:
            # Our side failed (a full disk, an I/O error): another attempt would only download
            # the same bytes again to fail the same way.
            last_error = f"cannot store it: {exc.strerror or exc}"
            break
    return DownloadResult(job, ok=False, error=f"{job.record.fn}: {last_error}")


def _stored(job: DownloadJob, site: Site, write: Callable[[PendingFile], int]) -> int:
    """``write`` fills a pending file (verifying as it goes); only then does it get the job's
    target name. Whatever fails, nothing is left behind."""
    with site.pending(job.target) as pending:
        size = write(pending)
        pending.commit()
    return size


class _Retryable(Exception):
    pass


class _Fatal(Exception):
    pass


def _refusal(status: int) -> Exception:
    """What an answer other than the file means for the download."""
    if status in RETRY_STATUS or status == 404:
        # A just-listed file can 404 while a CDN catches up: worth a retry.
        return _Retryable(f"HTTP {status}")
    return _Fatal(f"HTTP {status}")


def _deadline(upstream: Upstream, size: int) -> float:
    return upstream.settings.timeout + size / MIN_RATE


async def _fetch(job: DownloadJob, site: Site, on_bytes: Callable[[int], None]) -> int:
    upstream = job.upstream
    assert upstream.downloads is not None
    spans = split_spans(job.record.size)
    if len(spans) > 1:
        return await _fetch_split(job, site, spans, on_bytes)
    transfer = _Transfer(job, site, upstream.downloads, on_bytes)
    async with upstream.host_limiter:
        with trio.fail_after(_deadline(upstream, job.record.size)):
            return await _in_thread(transfer, upstream.transfer_threads)


async def _fetch_split(
    job: DownloadJob, site: Site, spans: list[tuple[int, int]], on_bytes: Callable[[int], None]
) -> int:
    """Fetch a large file as byte ranges in parallel, each part holding a per-host connection
    slot; verify the assembled file, then rename it. The first part finds out whether the
    server honours ranges: only after its 206 do the others start, and a 200 instead brings
    the whole file through that one request."""
    upstream = job.upstream
    pending = await trio.to_thread.run_sync(site.pending, job.target)
    try:
        errors: list[Exception] = []
        first_answered = trio.Event()
        parts = [_Part(job, upstream.downloads, pending, span, on_bytes) for span in spans]
        parts[0].on_ranged = partial(trio.from_thread.run_sync, first_answered.set)

        async with trio.open_nursery() as nursery:

            async def fetch_part(part: _Part) -> None:
                try:
                    async with upstream.host_limiter:
                        with trio.fail_after(_deadline(upstream, part.end - part.start)):
                            await _in_thread(part, upstream.transfer_threads)
                except Exception as exc:
                    errors.append(exc)
                    nursery.cancel_scope.cancel()  # the other parts are of no use now
                finally:
                    first_answered.set()

            nursery.start_soon(fetch_part, parts[0])
            await first_answered.wait()
            if parts[0].ranged:
                for part in parts[1:]:
                    nursery.start_soon(fetch_part, part)
        if errors:
            raise errors[0]
        return await trio.to_thread.run_sync(_verified_commit, pending, job.record)
    finally:
        pending.discard()


def _verified_commit(pending: PendingFile, record: Record) -> int:
    size = hash_chunks(pending.chunks(), record)
    pending.commit()
    return size


class _InThread:
    """Work for a worker thread that another thread can abort (see :func:`_in_thread`)."""

    abort: AbortHandle

    def run(self) -> int:
        raise NotImplementedError

    def run_captured(self) -> tuple[int, BaseException | None]:
        try:
            return self.run(), None
        except Exception as exc:
            return 0, exc


class _Transfer(_InThread):
    """One GET streamed to a temporary file while hashing, in a worker thread: the blocking
    client there moves bytes at a fraction of the CPU an event-loop client needs per file."""

    def __init__(
        self,
        job: DownloadJob,
        site: Site,
        client: httpx.Client,
        on_bytes: Callable[[int], None],
    ) -> None:
        self.job = job
        self.site = site
        self.client = client
        self.on_bytes = on_bytes
        self.abort = AbortHandle()

    def run(self) -> int:
        return _stored(self.job, self.site, self._stream_to)

    def _stream_to(self, pending: PendingFile) -> int:
        record = self.job.record
        url = self.job.upstream.package_url(record.subdir, record.fn)
        hasher = Hasher(record)
        with self.client.stream("GET", url, extensions={ABORT: self.abort}) as response:
            if response.status_code != 200:
                raise _refusal(response.status_code)
            for chunk in response.iter_bytes():
                if self.abort.aborted:  # transports that cannot shut the socket
                    raise _Retryable("stopped")
                hasher.update(chunk)
                pending.write(chunk)
                self.on_bytes(len(chunk))
        hasher.verify()
        return hasher.size


class _Part(_InThread):
    """One byte range of a file, written in place into the shared temporary file."""

    def __init__(
        self,
        job: DownloadJob,
        client: httpx.Client,
        pending: PendingFile,
        span: tuple[int, int],
        on_bytes: Callable[[int], None],
    ) -> None:
        self.job = job
        self.client = client
        self.pending = pending
        self.start, self.end = span
        self.on_bytes = on_bytes
        self.abort = AbortHandle()
        self.ranged = False
        self.on_ranged: Callable[[], object] | None = None  # told when a 206 arrives

    def run(self) -> int:
        record = self.job.record
        url = self.job.upstream.package_url(record.subdir, record.fn)
        headers = {"Range": f"bytes={self.start}-{self.end - 1}"}
        extensions = {ABORT: self.abort}
        with self.client.stream("GET", url, headers=headers, extensions=extensions) as response:
            start, end = self.start, self.end
            if response.status_code == 206:
                expected = f"bytes {start}-{end - 1}/{record.size}"
                if response.headers.get("content-range", "").strip() != expected:
                    raise _Retryable("unexpected Content-Range")
                self.ranged = True
                if self.on_ranged is not None:
                    self.on_ranged()
            elif response.status_code == 200 and start == 0:
                start, end = 0, record.size  # no range support: the whole file comes here
            elif response.status_code == 200:
                raise _Retryable("server ignored the Range header")
            else:
                raise _refusal(response.status_code)
            written = 0
            for chunk in response.iter_bytes():
                if self.abort.aborted:
                    raise _Retryable("stopped")
                if written + len(chunk) > end - start:
                    raise VerifyError(f"more than the expected {record.size} bytes")
                self.pending.write_at(chunk, start + written)
                written += len(chunk)
                self.on_bytes(len(chunk))
        if written != end - start:
            raise VerifyError(f"part {start}-{end - 1}: {written} of {end - start} bytes")
        return written


async def _in_thread(transfer: _InThread, threads: trio.CapacityLimiter) -> int:
    """Run a transfer in a worker thread; cancelling the caller aborts it within a read."""

    async def abort_when_cancelled() -> None:
        try:
            await trio.sleep_forever()
        finally:
            transfer.abort.abort()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(abort_when_cancelled)
        size, error = await trio.to_thread.run_sync(transfer.run_captured, limiter=threads)
        nursery.cancel_scope.cancel()
    if error is not None:
        raise error
    return size


def _copy_local(job: DownloadJob, pending: PendingFile) -> int:
    source = job.upstream.local_path(job.record.subdir, job.record.fn)
    if not source.is_file():
        raise _Fatal("not found in the file:// source")
    hasher = Hasher(job.record)
    with open(source, "rb") as src:
        while chunk := src.read(1 << 20):
            hasher.update(chunk)
            pending.write(chunk)
    hasher.verify()
    return hasher.size
