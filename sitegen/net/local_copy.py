"""A package file of a file:// upstream, copied into the site: what a download is for a
mirror whose URL names a local folder."""

from __future__ import annotations

from pathlib import Path

from sitegen.conda.records import Record
from sitegen.net.checksums import Hasher
from sitegen.store.site import PendingFile, Site


class NotInSource(Exception):
    """The file:// source does not hold the file: another attempt would end the same."""


def copy_local(site: Site, source: Path, record: Record, target: Path, *, durable: bool) -> int:
    """The file ``source`` (a file:// upstream's copy of ``record``), verified against the
    record as it is copied into a pending file, which only then gets the name ``target``
    (``durable``: flushed first). Whatever fails, nothing is left behind."""
    with site.pending(target) as pending:
        size = _copy(source, record, pending)
        pending.commit(durable)
    return size


def _copy(source: Path, record: Record, pending: PendingFile) -> int:
    if not source.is_file():
        raise NotInSource("not found in the file:// source")
    hasher = Hasher(record)
    with open(source, "rb") as src:
        while chunk := src.read(1 << 20):
            hasher.update(chunk)
            pending.write(chunk)
    hasher.verify()
    return hasher.size
