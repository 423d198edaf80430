"""Which file a request names, from which mirror it comes, and one verified download per file.

The resolver knows nothing of HTTP (see :mod:`sitegen.passive.fetcher` for the server): it maps
a decoded URL path to a :class:`Reply`, fetching a missing file through a :data:`FetchFile`.

1. The channel is found by path (only channels with a passive mirror), and the subdir's
   *published* ``repodata.json`` is read (parsed once per change of the file). A file no
   published repodata lists is a 404: the fetcher never becomes an open proxy to upstream.
2. A file already stored with the published size is served as it is.
3. A ``HEAD`` for a file not stored yet is answered from the published record (size, type)
   without downloading anything: probing is free, and cannot be used to fill the disk.
4. Otherwise it is fetched, at most once however many ask: concurrent requests wait on the one
   download, which runs in the resolver's own nursery, so a client that gives up does not abort
   it for the others. :class:`~sitegen.passive.mirror_fetch.MirrorFetch` downloads from the
   mirror the origins map names (with that mirror's CEP-15 ``base_url``), with
   :func:`sitegen.net.download.download`, exactly as ``sitegen mirror`` does: unverified bytes
   never carry the published name. A download that a run outran, publishing another record
   for the file before it ended (a re-upload), is not kept: the published record is read
   again right before the verified file would take its name (so the web server never serves
   it under the new record), and once more after (a run may publish in between); its clients
   get 502. A download with no byte within ``answer_within`` seconds (see
   :class:`~sitegen.passive.mirror_fetch.FirstBytes`) is given up: with 504 when the upstream
   was asked and sent none, with 503 when it was still waiting for a slot of its own. At most
   ``max_flights`` different files are being fetched at once (each download also waits for one
   of ``download.concurrency`` slots); past that a request for yet another file gets 503.
5. A request that asks to (``live``) does not wait for a slow download to end: when the file is
   not stored after ``FOLLOW_AFTER`` seconds and its first bytes are on disk, it gets a
   :class:`~sitegen.passive.live.Follower`, which reads them as they land and holds back the
   last byte until the file is verified (see :mod:`sitegen.passive.live`).
"""

from __future__ import annotations

import logging
import stat
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import trio

from sitegen.conda.schema import (
    CONDA_SUFFIX,
    FILES_DECODER,
    TAR_BZ2_SUFFIX,
    FileEntry,
    FilesDoc,
    format_of,
)
from sitegen.config import ChannelConfig, SiteConfig
from sitegen.layout import package_file_path
from sitegen.net.download_job import Watch
from sitegen.passive.live import FOLLOW_AFTER, Flight, Follower
from sitegen.store.interface import SiteStorage
from sitegen.store.site import UnsafePathError

log = logging.getLogger("sitegen.passive.fetcher")

CONTENT_TYPES = {CONDA_SUFFIX: "application/octet-stream", TAR_BZ2_SUFFIX: "application/x-bzip2"}
# A package file name always denotes the same bytes. A private channel's may be kept by the
# client that asked only: a shared cache may store a "public" answer to a request with
# Authorization and hand it to anyone (RFC 9111, 3.5).
LONG_CACHE = "public, max-age=31536000, immutable"
PRIVATE_LONG_CACHE = "private, max-age=31536000, immutable"
# A file not stored yet (sent as it lands, it may yet be cut off; a HEAD answer describes
# what is not there): a cache must check it again before each use.
STREAMED_CACHE = "no-cache"
PRIVATE_STREAMED_CACHE = "private, no-cache"
MAX_FLIGHTS = 64  # different files being fetched at once; more answer 503
OUTRUN = "its published record changed during the download; try again"
# The most a download may go without a byte its clients could be sent (from its start, retries
# included): a client waiting for an answer gets one (504) before it gives up itself, as
# conda's read timeout and mamba's low-speed limit do after 60 s. A download whose bytes keep
# landing is not cut: they reach its clients.
ANSWER_WITHIN = 45.0
NO_ANSWER = "the upstream sent nothing in time; try again"
# Given up the same, still waiting for a download or connection slot: sitegen is busy.
NO_SLOT = "no download slot came free in time; try again shortly"

T = TypeVar("T")


@dataclass
class Reply:
    """What to answer: a status with a short text body, a stored file to stream, or a file
    being downloaded to follow."""

    status: int
    body: bytes = b""
    file: Path | None = None
    follow: Follower | None = None  # its descriptor is the receiver's to close
    headers: list[tuple[str, str]] = field(default_factory=list)
    outcome: str = ""  # for the log: "stored", "fetched", reason of an error


def error_reply(status: int, message: str) -> Reply:
    return Reply(status, (message + "\n").encode(), headers=[("Cache-Control", "no-store")])


def busy_reply(message: str) -> Reply:
    """503: too much is being downloaded at once to take this on now."""
    reply = error_reply(503, message)
    reply.headers.append(("Retry-After", "5"))
    return reply


def file_reply(path: Path, outcome: str, private: bool) -> Reply:
    """The stored file ``path``; ``private``: it belongs to a private channel."""
    return Reply(
        200,
        file=path,
        headers=[
            ("Content-Type", CONTENT_TYPES[format_of(path.name)]),
            ("Cache-Control", PRIVATE_LONG_CACHE if private else LONG_CACHE),
            ("X-Sitegen-Fetcher", outcome),
        ],
        outcome=outcome,
    )


def follow_reply(follower: Follower, entry: FileEntry, fn: str, private: bool) -> Reply:
    """The file ``fn`` as its download lands, read by ``follower``, at its published size."""
    return Reply(
        200,
        follow=follower,
        headers=[
            ("Content-Type", CONTENT_TYPES[format_of(fn)]),
            ("Cache-Control", PRIVATE_STREAMED_CACHE if private else STREAMED_CACHE),
            ("X-Sitegen-Fetcher", "fetched"),
            ("Content-Length", str(entry.size)),
        ],
        outcome="fetched",
    )


@dataclass(frozen=True)
class FetchJob:
    """A published file to fetch into ``target``; ``entry`` says what it must be."""

    channel: ChannelConfig
    subdir: str
    fn: str
    entry: FileEntry
    target: Path
    watch: Watch | None = None  # told how the bytes land, for clients that follow them
    # Asked right before the verified file takes its name (see DownloadJob.veto).
    veto: Callable[[], Awaitable[str | None]] | None = None

    @property
    def where(self) -> str:
        """How logs name it: never an upstream URL, which may hold a token."""
        return package_file_path(self.channel.path, self.subdir, self.fn)


# Stores ``job.target``, verified; returns None when stored, else why not (for the client).
FetchFile = Callable[[FetchJob], Awaitable[str | None]]


def passive_channels(config: SiteConfig) -> dict[str, ChannelConfig]:
    """The channels the fetcher answers for, by path: those with a passive mirror."""
    return {c.path: c for c in config.channels if any(m.mode == "passive" for m in c.mirrors)}


class StatCache:
    """Parsed files, re-read only when the file changes (new inode, mtime or size)."""

    def __init__(self) -> None:
        self._entries: dict[Path, tuple[tuple[int, int, int], Any]] = {}
        self._locks: dict[Path, trio.Lock] = {}

    async def get(self, path: Path, parse: Callable[[Path], T]) -> T | None:
        lock = self._locks.setdefault(path, trio.Lock())
        async with lock:
            try:
                st = path.stat()
            except FileNotFoundError:
                self._entries.pop(path, None)
                return None
            key = (st.st_ino, st.st_mtime_ns, st.st_size)
            hit = self._entries.get(path)
            if hit is not None and hit[0] == key:
                return hit[1]
            value = await trio.to_thread.run_sync(parse, path)
            self._entries[path] = (key, value)
            return value


def _read_published(path: Path) -> FilesDoc:
    return FILES_DECODER.decode(path.read_bytes())


def stored(path: Path, size: int) -> bool:
    """Whether ``path`` is a regular file of the published size."""
    try:
        st = path.stat()
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size == size


class Resolver:
    """Resolves request paths to published package files and fetches missing ones, once."""

    def __init__(
        self,
        site: SiteStorage,
        channels: Mapping[str, ChannelConfig],
        fetch_file: FetchFile,
        max_flights: int = MAX_FLIGHTS,
        private_site: bool = False,
    ) -> None:
        self.site = site
        self.channels = channels
        self.private_site = private_site  # every answer private, as a private channel's
        self.fetch_file = fetch_file
        self.max_flights = max_flights
        self.flights: dict[Path, Flight] = {}
        self._cache = StatCache()
        self._nursery: trio.Nursery | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Resolver]:
        """The nursery downloads run in; they are cancelled when the block ends."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                yield self
            finally:
                self._nursery = None
                nursery.cancel_scope.cancel()

    def channel_of(self, path: str) -> ChannelConfig | None:
        """The passive channel a decoded URL path ``/<channel>/<subdir>/<file>`` is in."""
        segments = path[1:].split("/")
        if len(segments) < 3 or not segments[-1].endswith(tuple(CONTENT_TYPES)):
            return None
        channel = self.channels.get("/".join(segments[:-2]))
        if channel is None or segments[-2] not in channel.subdirs:
            return None
        return channel

    async def resolve(self, path: str, head: bool = False, live: bool = False) -> Reply:
        """The answer for the decoded URL path ``path`` (``/<channel>/<subdir>/<file>``);
        ``head``: a HEAD request, which never starts a download; ``live``: a file being
        downloaded may be answered with a follower once its first bytes are on disk."""
        channel = self.channel_of(path)
        if channel is None:
            return error_reply(404, "not a package file of a passive channel")
        segments = path[1:].split("/")
        channel_path, subdir, fn = channel.path, segments[-2], segments[-1]
        try:
            target = self.site.path(channel_path, subdir, fn)
            repodata = self.site.path(channel_path, subdir, "repodata.json")
        except UnsafePathError:
            return error_reply(404, "not found")
        try:
            published = await self._cache.get(repodata, _read_published)
        except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.error(
                "%s/%s: cannot read the published repodata.json: %s", channel_path, subdir, exc
            )
            return error_reply(503, "published metadata unreadable")
        entry = published.get(fn) if published is not None else None
        if entry is None:
            return error_reply(404, "not listed in the published repodata")
        private = channel.private or self.private_site
        if stored(target, entry.size):
            return file_reply(target, "stored", private)
        if head:
            return Reply(
                200,
                headers=[
                    ("Content-Type", CONTENT_TYPES[format_of(fn)]),
                    ("Content-Length", str(entry.size)),
                    ("Cache-Control", PRIVATE_STREAMED_CACHE if private else STREAMED_CACHE),
                    ("X-Sitegen-Fetcher", "not stored yet"),
                ],
                outcome="head, not fetched",
            )
        if target not in self.flights and len(self.flights) >= self.max_flights:
            return busy_reply("too many downloads at once; try again shortly")
        error = await self.fetch(FetchJob(channel, subdir, fn, entry, target), live)
        if isinstance(error, Follower):
            return follow_reply(error, entry, fn, private)
        if error == NO_ANSWER:
            return error_reply(504, f"cannot fetch {fn}: {error}")
        if error == NO_SLOT:
            return busy_reply(f"cannot fetch {fn}: {error}")
        if error is not None:
            return error_reply(502, f"cannot fetch {fn}: {error}")
        if not stored(target, entry.size):  # replaced or pruned meanwhile
            return error_reply(502, f"cannot fetch {fn}: gone after download")
        return file_reply(target, "fetched", private)

    async def fetch(self, job: FetchJob, live: bool = False) -> str | Follower | None:
        """Fetch ``job.target`` once however many ask at once; None when stored, else why not;
        ``live``: a follower as soon as bytes are on disk, when they are before the end."""
        flight = self.flights.get(job.target)
        if flight is None:
            if self._nursery is None:
                raise RuntimeError("Resolver.running() is not active")
            flight = self.flights[job.target] = Flight(job.entry.size)
            # With the upstreams of now: channels.yaml may change them meanwhile.
            flying = replace(job, watch=flight, veto=partial(self._outrun, job))
            self._nursery.start_soon(self._fly, flight, flying, self.fetch_file)
        flight.waiters += 1
        try:
            if live:
                # A download done by then is answered as a stored file (which the web server
                # sends itself); only a slower one is followed.
                with trio.move_on_after(FOLLOW_AFTER):
                    await flight.done.wait()
            while live and not flight.done.is_set():
                follower = flight.follow()
                if follower is not None:
                    return follower
                await flight.changed()
            await flight.done.wait()
        finally:
            flight.waiters -= 1
        return flight.error

    async def _still_listed(self, job: FetchJob) -> bool:
        """Whether the published repodata still lists ``job.fn`` as ``job.entry`` says."""
        repodata = self.site.path(job.channel.path, job.subdir, "repodata.json")
        try:
            published = await self._cache.get(repodata, _read_published)
        except (OSError, msgspec.DecodeError, msgspec.ValidationError):
            return True  # unreadable now: what it listed at the start stands
        return published is not None and published.get(job.fn) == job.entry

    async def _outrun(self, job: FetchJob) -> str | None:
        """Why the bytes of ``job``, verified against the record of its start, must not take
        the name: a run published another record for the file meanwhile (a re-upload)."""
        return None if await self._still_listed(job) else OUTRUN

    async def _fly(self, flight: Flight, job: FetchJob, fetch_file: FetchFile) -> None:
        error: str | None = "cancelled"
        try:
            error = await fetch_file(job)
            if error is None and not await self._still_listed(job):
                # Verified against the record of its start, which a run replaced between the
                # veto and the naming (a re-upload): a size check would take those bytes as
                # stored for good.
                await trio.to_thread.run_sync(self.site.remove, job.target)
                error = OUTRUN
        except Exception:  # never let one file take the service down
            # Its clients are told no more: an OSError's text names a path of the site.
            error = "internal error"
            log.exception("%s: unexpected error while fetching", job.where)
        finally:
            del self.flights[job.target]
            flight.finish(error)
