"""A package file of a file:// upstream, copied into the site: what a download is for a
mirror whose URL names a local folder."""

from __future__ import annotations

from pathlib import Path

from sitegen.conda.records import Record
from sitegen.net.checksums import Hasher
from sitegen.store.site import PendingFile


class NotInSource(Exception):
    """The file:// source does not hold the file: another attempt would end the same."""


def copy_local(source: Path, record: Record, pending: PendingFile) -> int:
    """The file ``source`` (a file:// upstream's copy of ``record``) written into ``pending``,
    verified against the record as it is copied; its size. Naming it is the caller's."""
    if not source.is_file():
        raise NotInSource("not found in the file:// source")
    hasher = Hasher(record)
    with open(source, "rb") as src:
        while chunk := src.read(1 << 20):
            hasher.update(chunk)
            pending.write(chunk)
    hasher.verify()
    return hasher.size
