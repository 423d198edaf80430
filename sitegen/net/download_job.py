"""What a package download is asked to do (:class:`DownloadJob`) and what it gave
(:class:`DownloadResult`): the terms :mod:`sitegen.net.download` (attempts and retries) and
:mod:`sitegen.net.download_http` (one attempt over HTTP) share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sitegen.conda.records import Record
from sitegen.net.upstream import Upstream
from sitegen.store.site import PendingFile


class Watch(Protocol):
    """Someone reading a file while it downloads (the passive fetcher's waiting clients)."""

    def opened(self, pending: PendingFile) -> Callable[[int, int], object]:
        """An attempt begins writing ``pending`` (empty); the answer is told ``(start, end)``
        in the event loop whenever bytes of the part written from ``start`` are on disk up to
        ``end``."""
        ...

    def retrying(self) -> None:
        """The attempt under way failed and another follows, after a delay: the bytes of the
        file it opened, if any, are void from now on."""
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
    # Told as each attempt begins, before it waits for a connection slot: what the download
    # waits for then (the pull-through fetcher tells its clients why they got no byte).
    on_attempt: Callable[[], object] | None = None


@dataclass
class DownloadResult:
    job: DownloadJob
    ok: bool
    bytes: int = 0
    error: str = ""
    # It failed on this side (the disk: full, read-only, an I/O error), not upstream's: its
    # error names the site's troubles, which a client of the pull-through fetcher is not told.
    local: bool = False
