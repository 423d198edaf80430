"""The first stage of a run: refresh the advisory feeds its filters name, then give the
filters their advisories.

Each feed is asked for conditionally (a 304 keeps the copy, see :mod:`sitegen.net.feed`); a new
archive is read whole (:func:`sitegen.filters.feeds.read_served`) before what was read of it
replaces the copy kept in the site's state, so the copy is always one that was usable. A feed that
cannot be fetched, or that serves an archive that cannot be used, leaves its last good copy in
force: the run goes on with it and warns, naming the feed. A feed never had whole fails
closed: every mirror whose filters name it is unusable for this run (its channel subdirs keep
what they publish, as when its upstream is down), never published without the advisories it
should apply; the other mirrors run as ever.

The advisories then join the policies of a configuration of the run's own
(:func:`sitegen.filters.feeds.with_feeds`): selection filters with them, and the inputs digest
holds them, so a changed feed makes the run select again as an edited advisory file does.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Set
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import trio

from sitegen.config.model import ChannelConfig, MirrorConfig, SiteConfig
from sitegen.config.urls import ENV_REF_RE, fill_url, redact_url, scrub_names
from sitegen.filters.advisories import policy_of
from sitegen.filters.feeds import (
    encode_copy,
    feed_urls,
    kept_advisories,
    read_copy,
    read_served,
    remember,
    site_feeds,
    with_feeds,
)
from sitegen.filters.osv import Advisory
from sitegen.filters.osv_archive import ArchiveError
from sitegen.net.failures import UpstreamError
from sitegen.net.feed import FeedClient, FeedCopies, FeedValidators, open_feed_client
from sitegen.net.upstream import hide_in_request_lines
from sitegen.store.links_out import own_state_folder
from sitegen.sync.report_build import RunResults
from sitegen.sync.scope import RunScope

log = logging.getLogger("sitegen")


@dataclass(frozen=True)
class _Feed:
    advisories: tuple[Advisory, ...] | None  # None: no good copy at all
    message: str = ""  # why it is stale or missing; "" when refreshed


async def refresh_feeds(scope: RunScope, results: RunResults) -> RunScope:
    """Refresh the feeds the filters of the run's mirrors name (at any level); returns the
    scope to run with, whose filters hold the advisories, and notes in ``results`` its mirrors
    (with those filters), the mirrors that cannot run for a feed missing and the warnings of
    those that run on a stale one."""
    used = {m.name: feed_urls(scope.config.filter_levels(c, m)) for c, m in scope.mirrors}
    urls = list(dict.fromkeys(url for names in used.values() for url in names))
    copies = FeedCopies(scope.site)
    if not scope.options.dry_run:
        await trio.to_thread.run_sync(_tidy_copies, copies, site_feeds(scope.config))
    if not urls:
        return scope
    feeds: dict[str, _Feed] = {}
    async with AsyncExitStack() as stack:
        client = await open_feed_client(scope.config.download, stack, scope.activity)
        async with trio.open_nursery() as nursery:
            for url in urls:
                nursery.start_soon(_refresh, client, copies, url, scope.options.dry_run, feeds)
    found = {url: feed.advisories for url, feed in feeds.items() if feed.advisories is not None}
    config = with_feeds(scope.config, found)
    paths = {c.path for c in scope.channels}
    scope = replace(
        scope, config=config, channels=tuple(c for c in config.channels if c.path in paths)
    )
    results.mirrors = scope.mirrors
    _warn_unmatched_allow(config, scope.mirrors, found.keys())
    for mirror, names in used.items():
        missing = [feeds[url].message for url in names if feeds[url].advisories is None]
        stale = [feeds[url].message for url in names if feeds[url].message]
        if missing:
            results.unusable[mirror] = "; ".join(missing)
        elif stale:
            results.warnings[mirror] = stale
    return scope


def _warn_unmatched_allow(
    config: SiteConfig, mirrors: Iterable[tuple[ChannelConfig, MirrorConfig]], found: Set[str]
) -> None:
    """Warn of each ``allow`` id of a level with feeds that no advisory of its files and feeds
    bears (a level without feeds is checked when the configuration is loaded); a level with a
    feed missing is not judged, as that feed's advisories are unknown."""
    seen: set[int] = set()
    for channel, mirror in mirrors:
        names = ("filters", f"channels.{channel.path}.filters", f"mirror {mirror.name}'s filters")
        for where, level in zip(names, config.filter_levels(channel, mirror), strict=True):
            policy = policy_of(level)
            if policy is None or not policy.feeds or id(policy) in seen:
                continue
            seen.add(id(policy))
            if not all(url in found for url in policy.feeds):
                continue
            for allow_id in policy.unmatched_allow:
                log.warning(
                    "%s.advisories.allow: %r is neither the id nor an alias of any advisory of"
                    " its files and feeds: it allows nothing",
                    where,
                    allow_id,
                )


async def _refresh(
    client: FeedClient, copies: FeedCopies, url: str, dry_run: bool, feeds: dict[str, _Feed]
) -> None:
    """One feed into ``feeds``: refreshed, or its last good copy, or nothing."""
    display = redact_url(url)
    names = list(dict.fromkeys(ENV_REF_RE.findall(url)))
    missing = [name for name in names if name not in os.environ]
    linked = copies.link_out(url)
    if linked is not None:
        # A feed without a copy, as a dry run keeps none: fetched whole, used, not kept.
        log.warning("advisory feed %s: %s: its copy is neither read nor kept", display, linked)
    if missing:
        why = f"environment variable {', '.join(missing)} is not set"
    else:
        hide_in_request_lines(names)
        keeps = not dry_run and linked is None
        try:
            feeds[url] = _Feed(await _fetch(client, copies, url, display, keeps))
            return
        except (UpstreamError, ArchiveError) as exc:
            # An archive's error quotes what the feed served (a member's name), which may
            # echo the secrets of its URL.
            why = scrub_names(names)(str(exc).removeprefix(f"{display}: "))
        except OSError as exc:  # the state directory: the copy cannot be written or read
            why = f"its copy cannot be kept: {exc.strerror or exc}"
    reachable = functools.partial(own_state_folder, copies.site)
    kept = await trio.to_thread.run_sync(kept_advisories, copies.site.root, url, reachable)
    if kept is None:
        message = (
            f"advisory feed {display}: {why}; there is no good copy of it yet, so the mirrors"
            " it filters are not run (their channel subdirs keep what they publish)"
        )
        log.error("%s", message)
        feeds[url] = _Feed(None, message)
        return
    validators = copies.validators(url)
    when = _day(validators.checked) if validators and validators.checked else "an earlier run"
    message = (
        f"advisory feed {display} could not be refreshed: {why}; its last good copy, current"
        f" at {when}, is used"
    )
    log.warning("%s", message)
    feeds[url] = _Feed(kept, message)


async def _fetch(
    client: FeedClient, copies: FeedCopies, url: str, display: str, keeps: bool
) -> tuple[Advisory, ...]:
    """The feed's advisories as it serves them now: unchanged (304) from the kept copy, or a
    new archive, kept once read whole when ``keeps`` (not in a dry run)."""
    advisories = await _attempt(client, copies, url, display, keeps, copies.validators(url))
    if advisories is None:  # answered 304, but the kept copy cannot be read: fetched whole
        log.warning("advisory feed %s: its kept copy cannot be read; fetching it again", display)
        advisories = await _attempt(client, copies, url, display, keeps, None)
    assert advisories is not None  # an unconditional GET is never answered 304
    return advisories


async def _attempt(
    client: FeedClient,
    copies: FeedCopies,
    url: str,
    display: str,
    keeps: bool,
    previous: FeedValidators | None,
) -> tuple[Advisory, ...] | None:
    scratch = _scratch(copies, url, keeps)
    try:
        answer = await client.fetch(fill_url(url, os.environ), display, previous, scratch)
        if not answer.changed:
            kept = await trio.to_thread.run_sync(read_copy, copies.copy(url))
            if kept is not None:
                if keeps:
                    await trio.to_thread.run_sync(copies.confirm, url, answer.validators)
                log.info("advisory feed %s: unchanged, %s", display, _count(kept))
            return kept
        try:
            advisories = await trio.to_thread.run_sync(read_served, url, scratch)
        except ArchiveError as exc:
            raise ArchiveError(f"the archive it served cannot be used: {exc}") from None
        if keeps:
            await trio.to_thread.run_sync(_keep, copies, url, advisories, answer.validators)
        skipped = sum(len(a.skipped) for a in advisories)
        unscored = sum(bool(a.unscored) for a in advisories)
        log.info(
            "advisory feed %s: fetched, %s%s%s",
            display,
            _count(advisories),
            f" ({skipped} affected entries of other ecosystems skipped as unusable)"
            * bool(skipped),
            f" ({unscored} with a severity that cannot be scored: unscored, they block at any"
            " min_score)" * bool(unscored),
        )
        return advisories
    finally:
        with contextlib.suppress(FileNotFoundError):  # read, or never written (a 304)
            scratch.unlink()


def _keep(
    copies: FeedCopies, url: str, advisories: tuple[Advisory, ...], validators: FeedValidators
) -> None:
    """Keep what was read of a new archive as the feed's copy; the renders after the run in
    this process take the advisories as they are, without decoding the copy."""
    copies.keep(url, encode_copy(advisories), validators)
    remember(copies.copy(url), advisories)


def _tidy_copies(copies: FeedCopies, named: list[str]) -> None:
    """Delete the copies of feeds the configuration names nowhere any more (by any mirror,
    also those this run does not cover): a feed named again later starts as a new one; and
    what earlier versions kept of the others, which may hold the secrets of their URLs, once
    the archive they kept is read into the copy of a feed that has none (see :func:`_adopt`)."""
    linked = copies.folders_link_out()
    if linked is not None:
        log.warning("advisory feeds: %s: nothing in it is read, written or deleted", linked)
        return
    try:
        forgotten = copies.forget_unnamed(named)
        for url in named:
            _adopt(copies, url)
        dropped = copies.drop_legacy()
    except OSError as exc:  # tried again by the next run
        log.warning("advisory feeds: cannot delete a copy: %s", exc)
        return
    for name in forgotten:
        log.info("advisory feed copy %s: no filter names its feed any more; deleted", name)
    if dropped:
        log.info("advisory feeds: %d files an earlier sitegen kept of them deleted", dropped)


def _adopt(copies: FeedCopies, url: str) -> None:
    """Read the archive an earlier version kept as the last good copy of the feed at ``url``
    into the copy, as an archive the feed serves is read (its URL's secrets hidden, refused
    alike), when no copy of today is there: the first run after an upgrade, with the feed down,
    goes on with it as with any last good copy instead of not running the mirrors it filters.
    An archive that cannot be used is only deleted, as the rest of what was kept with it."""
    archive = copies.legacy_archive(url)
    if archive is None:
        return
    display = redact_url(url)
    names = list(dict.fromkeys(ENV_REF_RE.findall(url)))
    missing = [name for name in names if name not in os.environ]
    try:
        if missing:  # its secrets cannot be hidden
            raise ArchiveError(f"environment variable {', '.join(missing)} is not set")
        advisories = read_served(url, archive)
        copies.adopt(url, encode_copy(advisories))
    except ArchiveError as exc:
        why = scrub_names(names)(str(exc))
        log.warning(
            "advisory feed %s: the archive an earlier sitegen kept of it cannot be used: %s; deleted",
            display,
            why,
        )
        return
    except OSError as exc:
        log.warning(
            "advisory feed %s: the archive an earlier sitegen kept of it cannot be read: %s",
            display,
            exc.strerror or exc,
        )
        return
    remember(copies.copy(url), advisories)
    log.info(
        "advisory feed %s: the archive an earlier sitegen kept of it is read (%s), its copy"
        " until the feed is fetched whole",
        display,
        _count(advisories),
    )


def _scratch(copies: FeedCopies, url: str, keeps: bool) -> Path:
    """Where a new body is written: beside the kept copy, or (a dry run writes nothing in the
    site, nor a run in a feed's folder behind a link) in the system's temporary directory."""
    if keeps:
        return copies.scratch(url)
    handle, name = tempfile.mkstemp(prefix="sitegen-feed-", suffix=".zip")
    os.close(handle)
    return Path(name)


def _count(advisories: tuple[Advisory, ...]) -> str:
    return f"{len(advisories)} advisor{'y' if len(advisories) == 1 else 'ies'}"


def _day(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(moment))
