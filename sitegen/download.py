"""Download package files: stream to a temporary name while hashing, verify, then rename.

A file is published under its real name only after its size and sha256 (md5 when upstream
lists no sha256) match the repodata record that will reference it. A mismatch is retried and
then reported; nothing unverified ever sits under a package's name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import trio

from sitegen.records import Record
from sitegen.storage import Site
from sitegen.upstream import RETRY_STATUS, Upstream, backoff_delay

CHUNK = 1 << 16
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
        temp: Path | None = None
        try:
            temp = site.temp_for(job.target)
            if job.upstream.is_file:
                size = await trio.to_thread.run_sync(_copy_local, job, temp)
                on_bytes(size)
            else:
                size = await _fetch(job, temp, on_bytes)
            site.commit(temp, job.target)
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
        finally:
            if temp is not None:
                site.discard(temp)
    return DownloadResult(job, ok=False, error=f"{job.record.fn}: {last_error}")


class _Retryable(Exception):
    pass


class _Fatal(Exception):
    pass


async def _fetch(job: DownloadJob, temp: Path, on_bytes: Callable[[int], None]) -> int:
    upstream = job.upstream
    url = upstream.package_url(job.record.subdir, job.record.fn)
    hasher = Hasher(job.record)
    deadline = upstream.settings.timeout + job.record.size / MIN_RATE
    async with upstream.host_limiter:
        with trio.fail_after(deadline):
            async with upstream.client.stream("GET", url) as response:
                if response.status_code in RETRY_STATUS or response.status_code == 404:
                    # A just-listed file can 404 while a CDN catches up: worth a retry.
                    raise _Retryable(f"HTTP {response.status_code}")
                if response.status_code != 200:
                    raise _Fatal(f"HTTP {response.status_code}")
                with open(temp, "xb") as handle:
                    async for chunk in response.aiter_bytes(CHUNK):
                        hasher.update(chunk)
                        handle.write(chunk)
                        on_bytes(len(chunk))
    hasher.verify()
    return hasher.size


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
