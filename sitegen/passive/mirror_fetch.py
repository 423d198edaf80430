"""A file fetched from the mirror that supplied it: the
:data:`~sitegen.passive.resolver.FetchFile` of the :class:`~sitegen.passive.resolver.Resolver`.

The mirror is the one the channel's origins map names for the file (with that mirror's CEP-15
``base_url``); the download is :func:`sitegen.net.download.download`, exactly as ``sitegen
mirror`` does it, so unverified bytes never carry the published name. At most
``download.concurrency`` files are downloaded at once.

Its clients wait for an answer meanwhile: a download is given up when no byte has landed within
``answer_within`` seconds (see :class:`FirstBytes`), however many attempts and timeouts
``download`` allows, so that they are answered before they stop waiting themselves: 504 when
the mirror was asked and sent none (or an attempt failed and the retry was in its backoff),
503 when the download was still waiting for a slot
(``download.concurrency``, ``download.per_host``), busy with other downloads.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager

import trio

from sitegen.conda.records import Record
from sitegen.config import ChannelConfig, MirrorConfig, SiteConfig
from sitegen.layout import origins_path
from sitegen.net.download import download
from sitegen.net.download_job import DownloadJob, DownloadResult, Watch
from sitegen.net.upstream import Upstream, open_upstreams
from sitegen.passive.resolver import ANSWER_WITHIN, NO_ANSWER, NO_SLOT, FetchJob, StatCache
from sitegen.store.origins import Origins, read_origins
from sitegen.store.site import PendingFile, Site
from sitegen.store.writer import DiskWriter, open_disk_writer
from sitegen.sync.progress import human_bytes

log = logging.getLogger("sitegen.passive.fetcher")  # the fetcher service's one log

# What a download waits for (FirstBytes.waiting): one of the download.concurrency slots, a
# connection to its mirror's host (download.per_host), bytes from the mirror it asked, or the
# end of the backoff before a retry.
SLOT, CONNECTION, BYTES, BACKOFF = "slot", "connection", "bytes", "backoff"
# Why a file downloaded was not stored, as its clients are told (the log says what failed).
CANNOT_STORE = "cannot store it on this server"


def mirror_of(channel: ChannelConfig, origins: Origins, fn: str) -> MirrorConfig | None:
    """The mirror that supplied ``fn`` as the mirror run recorded it (a channel with one mirror
    needs no record)."""
    name = origins.mirror_of(fn)
    if name is None and len(channel.mirrors) == 1:
        name = channel.mirrors[0].name
    return next((m for m in channel.mirrors if m.name == name), None)


class FirstBytes:
    """A download's :class:`~sitegen.net.download.Watch` (passing on to ``watch`` what it is
    told) that cancels ``scope`` when no byte its clients can be sent lands for ``within``
    seconds from the start, waits for slots and retries included. Only bytes from the file's
    start count: clients are sent it in order, so bytes of a later range of a file fetched in
    parallel ranges, however many, give them nothing. The deadline is lifted by the first of
    them, and set again as an attempt that had some fails and a retry is to follow (its
    clients were cut off: the others wait for the retry's), so the retry's backoff and its
    wait for a connection count; ``begins`` must be the job's ``on_attempt``. Between bytes,
    the download's own timeouts apply: its clients have their answer by then. What the
    download waits for when the deadline passes says why it had no byte: :attr:`waiting`
    (SLOT, CONNECTION, BYTES or BACKOFF)."""

    def __init__(self, watch: Watch | None, scope: trio.CancelScope, within: float) -> None:
        self.watch = watch
        self.scope = scope
        self.within = within
        self.attempt = 0  # failed attempts so far: a late word of one of them is void
        self.lifted = False  # bytes of the current attempt's start are on disk
        self.waiting = SLOT  # until the first attempt begins
        self.asked = False  # an attempt asked the mirror
        scope.deadline = trio.current_time() + within

    def begins(self) -> None:
        """An attempt begins (a DownloadJob's ``on_attempt``): it waits for a connection."""
        self.waiting = CONNECTION

    def opened(self, pending: PendingFile) -> Callable[[int, int], object]:
        self.waiting, self.asked = BYTES, True
        told = None if self.watch is None else self.watch.opened(pending)
        attempt = self.attempt

        def landed(start: int, end: int) -> None:
            if attempt == self.attempt and start == 0 and end > 0 and not self.lifted:
                self.lifted = True
                self.scope.deadline = math.inf
            if told is not None:
                told(start, end)

        return landed

    def retrying(self) -> None:
        """An attempt failed and a retry follows after a backoff, which counts."""
        self.attempt += 1
        self.waiting = BACKOFF
        if self.lifted:
            self.lifted = False
            self.scope.deadline = trio.current_time() + self.within
        if self.watch is not None:
            self.watch.retrying()


class MirrorFetch:
    """Fetches a file from the mirror that supplied it, verified, into the site (a FetchFile)."""

    def __init__(
        self,
        site: Site,
        config: SiteConfig,
        upstreams: dict[str, Upstream],
        unavailable: dict[str, str],  # mirror name -> why it cannot be used
        writer: DiskWriter,
        answer_within: float = ANSWER_WITHIN,
    ) -> None:
        self.site = site
        self.answer_within = answer_within
        self.config = config
        self.upstreams = upstreams
        self.unavailable = unavailable
        self.writer = writer
        self._limiter = trio.CapacityLimiter(config.download.concurrency)
        self._origins = StatCache()

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        site: Site,
        config: SiteConfig,
        channels: Mapping[str, ChannelConfig],
        answer_within: float = ANSWER_WITHIN,
    ) -> AsyncIterator[MirrorFetch]:
        """Open the upstream clients of the channels' mirrors and a disk writer."""
        async with AsyncExitStack() as stack:
            mirrors = (m for channel in channels.values() for m in channel.mirrors)
            upstreams, unavailable = await open_upstreams(mirrors, config.download, stack)
            for name, why in unavailable.items():
                log.error("mirror %s: %s; its files cannot be fetched", name, why)
            writer = await stack.enter_async_context(open_disk_writer())
            yield cls(site, config, upstreams, unavailable, writer, answer_within)

    async def __call__(self, job: FetchJob) -> str | None:
        path = origins_path(self.site.root, job.channel.path, job.subdir)
        origins = await self._origins.get(path, read_origins) or Origins()
        mirror = mirror_of(job.channel, origins, job.fn)
        if mirror is None:
            log.error("%s: no mirror is recorded for it in the origins map", job.where)
            return "no mirror recorded for this file"
        if mirror.name in self.unavailable:
            why = self.unavailable[mirror.name]
            log.error("%s: mirror %s: %s", job.where, mirror.name, why)
            return f"mirror {mirror.name} is not configured on this server"
        if mirror.name not in self.upstreams:  # the request began before channels.yaml changed
            return f"mirror {mirror.name} changed meanwhile; try again"
        record = Record(
            fn=job.fn,
            subdir=job.subdir,
            raw={"size": job.entry.size, "sha256": job.entry.sha256, "md5": job.entry.md5},
            origin=mirror.name,
        )
        base_url = origins.base_url_of(mirror.name)
        upstream = self.upstreams[mirror.name]
        result: DownloadResult | None = None
        with trio.CancelScope() as answering:
            # A local copy waits on no upstream, and one given up would be given up again on
            # every request: it runs to its end.
            first = None
            if not upstream.is_file:
                first = FirstBytes(job.watch, answering, self.answer_within)
            download_job = DownloadJob(
                upstream,
                record,
                job.target,
                durable=True,
                base_url=base_url,
                watch=job.watch if first is None else first,
                veto=job.veto,
                on_attempt=None if first is None else first.begins,
            )
            async with self._limiter:
                result = await download(
                    download_job, self.site, self.writer, self.config.download.retries
                )
        if result is None:
            assert first is not None  # only its deadline cancels
            return self.unanswered(job, mirror.name, upstream, first)
        if not result.ok:
            log.warning(
                "%s: not stored, fetch from mirror %s failed: %s",
                job.where,
                mirror.name,
                result.error,
            )
            if result.local:
                # The log has the OS's reason; a client is not told of the site's disk.
                return CANNOT_STORE
            return result.error.removeprefix(f"{job.fn}: ")
        log.info(
            "%s: fetched from mirror %s, verified, stored (%s)",
            job.where,
            mirror.name,
            human_bytes(result.bytes),
        )
        return None

    def unanswered(self, job: FetchJob, mirror: str, upstream: Upstream, first: FirstBytes) -> str:
        """Why ``job`` had no byte within ``answer_within`` seconds, logged; for its clients:
        the mirror sent none or a retry was in its backoff (504), or the download still waited for a slot (503), and then
        the mirror may never have been asked."""
        within = self.answer_within
        if first.waiting == BYTES:
            log.warning(
                "%s: not stored, mirror %s sent no byte from its start within %g s",
                job.where,
                mirror,
                within,
            )
            return NO_ANSWER
        if first.waiting == BACKOFF:
            log.warning(
                "%s: not stored, no byte from its start within %g s: an attempt at mirror %s"
                " failed and its retry had not begun",
                job.where,
                within,
                mirror,
            )
            return NO_ANSWER
        if first.waiting == SLOT:
            slots = f"the {self._limiter.total_tokens} download slots (download.concurrency)"
        else:
            slots = (
                f"the {upstream.host_limiter.total_tokens} connections to mirror {mirror}'s"
                " host (download.per_host)"
            )
        asked = "an attempt before had failed" if first.asked else f"mirror {mirror} was not asked"
        log.warning(
            "%s: not stored, no byte from its start within %g s: still waiting for one of %s, all busy"
            " with other downloads; %s",
            job.where,
            within,
            slots,
            asked,
        )
        return NO_SLOT
