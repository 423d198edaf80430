"""``sitegen verify --sample FRACTION``: hash a share of the package files, not all of them.

Re-hashing every package file of a large site reads terabytes; a daily check of a few percent
catches a failing disk or a tampered file within days, while the metadata checks stay complete
and every file's presence and size are still checked (a stat each). Which files are hashed is
decided by a hash of the day (UTC) and the file's path in the site: the same files all day, so
a check repeated the same day hashes the same ones, and other files each day, so that
successive days cover the site.

:class:`Checked` checks one package file, hashed or by size as the sample decides, and counts
it for the summary.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from sitegen.conda.records import Record
from sitegen.net.checksums import file_matches


@dataclass(frozen=True)
class Sample:
    fraction: float  # 0: no file hashed, 1: every one
    day: date

    @classmethod
    def today(cls, fraction: float) -> Sample:
        return cls(fraction, datetime.now(UTC).date())

    def includes(self, relative: str) -> bool:
        """Whether the package file at ``relative`` (``channel/subdir/file``) is hashed."""
        if self.fraction >= 1:
            return True
        if self.fraction <= 0:
            return False
        digest = hashlib.sha256(f"{self.day.isoformat()}\0{relative}".encode()).digest()
        return int.from_bytes(digest[:8], "big") < self.fraction * 2**64


def size_matches(path: Path, record: Record) -> bool:
    """Whether the file on disk has its record's size (for a file outside the sample)."""
    try:
        return os.stat(path).st_size == record.size
    except OSError:
        return False


@dataclass
class Checked:
    """The package files a check found on disk, listed, kept unlisted (keep_removed) or
    awaiting publication, and of those the ones it hashed (the others' sizes were checked)."""

    sample: Sample | None = None  # None: every file hashed
    files: int = 0
    bytes: int = 0
    hashed: int = 0  # of ``files``
    hashed_bytes: int = 0
    kept: int = 0  # of ``files``, those a keep_removed channel keeps unlisted
    # Of ``files``, those a run downloaded and has not published yet (see verify_awaiting).
    awaiting: int = 0

    def matches(self, path: Path, relative: str, record: Record, kept: bool) -> bool:
        """Whether the file at ``path`` (``relative``: ``channel/subdir/file``) matches
        ``record``: its hash when no ``sample`` leaves it out, its size otherwise."""
        self.files += 1
        self.bytes += record.size
        self.kept += kept
        if self.sample is not None and not self.sample.includes(relative):
            return size_matches(path, record)
        self.hashed += 1
        self.hashed_bytes += record.size
        return file_matches(path, record)


def parse_fraction(text: str) -> float:
    """``0.05`` or ``5%``, from 0 to 1; ValueError otherwise (argparse names the option)."""
    text = text.strip()
    value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    if not 0 <= value <= 1:
        raise ValueError(f"{text!r} is not between 0 and 1 (or 0% and 100%)")
    return value
