"""The passive channels and their mirrors as channels.yaml says now.

The fetcher runs on from one ``sitegen mirror`` run to the next, and a run publishes what
channels.yaml says at its start: a passive channel added there, or a mirror whose URL changed,
is published by the next run, and the fetcher has to answer for it as published. So it follows
the file (read again whenever it changes, through :meth:`sitegen.access.check.TokenCheck.current`,
which keeps the settings read before when the file does not load): the resolver's channels
follow every change, and a change of the passive mirrors (or of the download settings) opens
their upstreams anew. The upstreams they replace stay open until the downloads started with them
have ended. The site (``output``), the token store (``access.dir``) and the environment the mirrors' tokens come from are read at
start only.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Hashable, Mapping
from contextlib import asynccontextmanager

import trio

from sitegen.access.check import TokenCheck
from sitegen.config import ChannelConfig, SiteConfig
from sitegen.passive.mirror_fetch import MirrorFetch
from sitegen.passive.resolver import ANSWER_WITHIN, FetchJob, Resolver, passive_channels
from sitegen.store.site import Site

log = logging.getLogger("sitegen.passive.fetcher")


def mirrors_key(config: SiteConfig, channels: Mapping[str, ChannelConfig]) -> Hashable:
    """What the upstreams are opened from: a change of it opens them anew."""
    return config.download, tuple(sorted((path, c.mirrors) for path, c in channels.items()))


class MirrorSet:
    """One set of upstreams (a FetchFile), open until replaced and its last download ended."""

    def __init__(self, fetch: MirrorFetch) -> None:
        self.fetch = fetch
        self.active = 0
        self.replaced = False
        self.done = trio.Event()

    async def __call__(self, job: FetchJob) -> str | None:
        self.active += 1
        try:
            return await self.fetch(job)
        finally:
            self.active -= 1
            self._settle()

    def replace(self) -> None:
        self.replaced = True
        self._settle()

    def _settle(self) -> None:
        if self.replaced and not self.active:
            self.done.set()


async def _serve_mirrors(
    site: Site,
    config: SiteConfig,
    channels: Mapping[str, ChannelConfig],
    answer_within: float,
    task_status: trio.TaskStatus[MirrorSet] = trio.TASK_STATUS_IGNORED,
) -> None:
    # A task of its own: the upstreams and the disk writer are opened and closed in one task,
    # as trio wants, whichever request replaced them.
    async with MirrorFetch.open(site, config, channels, answer_within) as fetch:
        mirrors = MirrorSet(fetch)
        task_status.started(mirrors)
        await mirrors.done.wait()


class Following:
    """A :class:`Resolver` whose channels and mirrors follow channels.yaml."""

    def __init__(
        self,
        site: Site,
        check: TokenCheck,
        resolver: Resolver,
        mirrors: MirrorSet,
        config: SiteConfig,
        nursery: trio.Nursery,
        answer_within: float,
    ) -> None:
        self.site = site
        self.answer_within = answer_within
        self.check = check
        self.resolver = resolver
        self._mirrors = mirrors
        self._config = config
        self._key = mirrors_key(config, resolver.channels)
        self._nursery = nursery
        self._lock = trio.Lock()

    @classmethod
    @asynccontextmanager
    async def running(
        cls,
        config: SiteConfig,
        check: TokenCheck,
        max_downloads: int,
        answer_within: float = ANSWER_WITHIN,
    ) -> AsyncIterator[Following]:
        site = Site(config.output)
        channels = passive_channels(config)
        async with trio.open_nursery() as nursery:
            mirrors = await nursery.start(_serve_mirrors, site, config, channels, answer_within)
            following = None
            try:
                resolver = Resolver(
                    site, channels, mirrors, max_downloads, config.access.site_private
                )
                async with resolver.running():
                    following = cls(site, check, resolver, mirrors, config, nursery, answer_within)
                    yield following
            finally:
                # The resolver's downloads have ended: every set of upstreams may close.
                (following._mirrors if following else mirrors).replace()

    async def refresh(self) -> None:
        """Take up channels.yaml as it is now, when it changed (a blocking read: in a thread)."""
        config = await trio.to_thread.run_sync(self.check.current)
        if config is self._config:
            return
        async with self._lock:
            if config is self._config:
                return
            channels = passive_channels(config)
            key = mirrors_key(config, channels)
            if key != self._key:
                mirrors = await self._nursery.start(
                    _serve_mirrors, self.site, config, channels, self.answer_within
                )
                self._mirrors.replace()
                self._mirrors, self._key = mirrors, key
                self.resolver.fetch_file = mirrors
                log.info("passive channels and their mirrors as channels.yaml says now")
            self.resolver.channels = channels
            self.resolver.private_site = config.access.site_private
            self._config = config
