"""A package file of a file:// upstream, copied into the site: what a download is for a
mirror whose URL names a local folder."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sitegen.net.checksums import Hasher
from sitegen.store.site import PendingFile, Site

if TYPE_CHECKING:
    from sitegen.net.download import DownloadJob  # which calls into this module


class NotInSource(Exception):
    """The file:// source does not hold the file: another attempt would end the same."""


def stored(job: DownloadJob, site: Site, write: Callable[[PendingFile], int]) -> int:
    """``write`` fills a pending file (verifying as it goes); only then does it get the job's
    target name. Whatever fails, nothing is left behind."""
    with site.pending(job.target) as pending:
        size = write(pending)
        pending.commit(job.durable)
    return size


def copy_local(job: DownloadJob, pending: PendingFile) -> int:
    source = job.upstream.local_path(job.record.subdir, job.record.fn)
    if not source.is_file():
        raise NotInSource("not found in the file:// source")
    hasher = Hasher(job.record)
    with open(source, "rb") as src:
        while chunk := src.read(1 << 20):
            hasher.update(chunk)
            pending.write(chunk)
    hasher.verify()
    return hasher.size
