"""Bytes checked against their repodata record: sha256 when the record has one, md5
otherwise, and the size; for downloads, repairs and files moved in from local folders."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import partial
from pathlib import Path

from sitegen.conda.records import Record


class VerifyError(Exception):
    """Downloaded bytes do not match the record."""


class Hasher:
    """Checks bytes against a record: sha256 when present, md5 otherwise, and size."""

    def __init__(self, record: Record) -> None:
        self.record = record
        self.sha256 = record.sha256.lower() if record.sha256 else None
        self.md5 = None if self.sha256 else (record.md5 or "").lower()
        self._hash = hashlib.sha256() if self.sha256 else hashlib.md5()
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self.count(len(chunk))
        self._hash.update(chunk)

    def count(self, size: int) -> None:
        """Add ``size`` bytes to the total; too many is an error before any hashing."""
        self.size += size
        if self.size > self.record.size:
            raise VerifyError(f"more than the expected {self.record.size} bytes")

    def digest_update(self, chunk: bytes) -> None:
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
