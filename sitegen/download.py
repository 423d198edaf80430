"""Download package files: stream to a temporary name while hashing, verify, then rename.

A file is published under its real name only after its size and sha256 (md5 when upstream
lists no sha256) match the repodata record that will reference it. A mismatch is retried and
then reported; nothing unverified ever sits under a package's name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx
import trio

from sitegen.records import Record
from sitegen.storage import Site
from sitegen.transport import ABORT, AbortHandle
from sitegen.upstream import RETRY_STATUS, Upstream, backoff_delay

# Below this average rate a transfer is treated as stalled (slow-drip upstreams).
MIN_RATE = 16 * 1024


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


def file_matches(path: Path, record: Record) -> bool:
    """Re-hash a file on disk against its record (for --verify)."""
    hasher = Hasher(record)
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                hasher.update(chunk)
        hasher.verify()
    except (OSError, VerifyError):
        return False
    return True


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
            last_error = f"{type(exc).__name__}"
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


def _stored(job: DownloadJob, site: Site, write: Callable[[Path], int]) -> int:
    """``write`` fills a fresh temporary (verifying as it goes); only then is it renamed to
    the job's target. Whatever fails, the temporary is gone."""
    temp = site.temp_for(job.target)
    try:
        size = write(temp)
        site.commit(temp, job.target)
    except BaseException:
        site.discard(temp)
        raise
    return size


class _Retryable(Exception):
    pass


class _Fatal(Exception):
    pass


async def _fetch(job: DownloadJob, site: Site, on_bytes: Callable[[int], None]) -> int:
    upstream = job.upstream
    assert upstream.downloads is not None
    transfer = _Transfer(job, site, upstream.downloads, on_bytes)
    deadline = upstream.settings.timeout + job.record.size / MIN_RATE
    async with upstream.host_limiter:
        with trio.fail_after(deadline):
            return await _in_thread(transfer, upstream.transfer_threads)


class _Transfer:
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

    def _stream_to(self, temp: Path) -> int:
        record = self.job.record
        url = self.job.upstream.package_url(record.subdir, record.fn)
        hasher = Hasher(record)
        with self.client.stream("GET", url, extensions={ABORT: self.abort}) as response:
            if response.status_code in RETRY_STATUS or response.status_code == 404:
                # A just-listed file can 404 while a CDN catches up: worth a retry.
                raise _Retryable(f"HTTP {response.status_code}")
            if response.status_code != 200:
                raise _Fatal(f"HTTP {response.status_code}")
            with open(temp, "xb") as handle:
                for chunk in response.iter_bytes():
                    if self.abort.aborted:  # transports that cannot shut the socket
                        raise _Retryable("stopped")
                    hasher.update(chunk)
                    handle.write(chunk)
                    self.on_bytes(len(chunk))
        hasher.verify()
        return hasher.size

    def run_captured(self) -> tuple[int, BaseException | None]:
        try:
            return self.run(), None
        except Exception as exc:
            return 0, exc


async def _in_thread(transfer: _Transfer, threads: trio.CapacityLimiter) -> int:
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


def _copy_local(job: DownloadJob, temp: Path) -> int:
    source = job.upstream.local_path(job.record.subdir, job.record.fn)
    if not source.is_file():
        raise _Fatal("not found in the file:// source")
    hasher = Hasher(job.record)
    with open(source, "rb") as src, open(temp, "xb") as dst:
        while chunk := src.read(1 << 20):
            hasher.update(chunk)
            dst.write(chunk)
    hasher.verify()
    return hasher.size
