"""The first two stages: fetch each mirror subdir's repodata, then parse it.

Fetching yields a `FetchResult` per (mirror, subdir) and the bodies as served; parsing consumes
those bodies (each is dropped as soon as it is parsed: at conda-forge scale they are hundreds of
megabytes) and yields a `ParseResult` per subdir that was served.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import unquote, urlsplit

import trio

from sitegen.conda.records import Repodata, RepodataError, parse_repodata
from sitegen.config import ChannelConfig, MirrorConfig
from sitegen.layout import upstream_cache_dir
from sitegen.net.upstream import CacheValidators, SubdirMissing, Upstream, UpstreamError
from sitegen.net.upstream_cache import AS_SERVED, UNESCAPED, UpstreamCache
from sitegen.net.zstd_body import decode_body
from sitegen.store.interface import PendingWrite
from sitegen.store.links_out import state_link_out
from sitegen.store.spill import Spilled, spill
from sitegen.sync.report import ERROR, FETCHED, MISSING, UNCHANGED
from sitegen.sync.upstream_copy import (
    forget_copy,
    keep_copy,
    kept_copy,
    received,
    record_sha256,
    sha256_of,
)

log = logging.getLogger("sitegen")

# (mirror name, subdir)
SubdirKey = tuple[str, str]


@dataclass(frozen=True)
class FetchResult:
    status: str  # FETCHED, UNCHANGED, MISSING or ERROR
    validators: CacheValidators | None = None  # with a body
    error: str = ""
    # The body holds the secrets of the mirror's URL as their references (see
    # upstream_secrets): they are filled in again to parse it.
    hidden: bool = False
    # The body was read back as upstream served it, the secrets of the mirror's URL maybe in
    # it: kept again without them (see store_body).
    rekeep: bool = False
    # The body's sha256 (hex): recorded with the copy kept of it, and taken by the digest of
    # the run's inputs (see sitegen.sync.inputs) rather than hashed again.
    sha256: str = ""
    # The copy kept stands for a mirror the run does not fetch: upstream was not asked.
    stand_in: bool = False
    # The body is the copy kept, whose validators record no sha256 (an earlier sitegen kept
    # it): recorded once the body parses (see store_body).
    unrecorded: bool = False


@dataclass(frozen=True)
class ParseResult:
    repodata: Repodata | None  # None when the body could not be decoded or parsed
    error: str = ""
    base_url: str | None = None  # CEP-15: where upstream's packages live, as written
    # CEP-12: fn -> run_exports served beside (see sitegen.sync.run_exports_fetch); None: none
    run_exports: Mapping[str, bytes] | None = None


def package_bases(parsed: Mapping[SubdirKey, ParseResult], subdir: str) -> dict[str, str]:
    """mirror name -> the CEP-15 base_url its upstream repodata of ``subdir`` sets."""
    return {
        mirror: result.base_url
        for (mirror, s), result in parsed.items()
        if s == subdir and result.base_url
    }


async def missing_folders(
    mirrors: Iterable[tuple[ChannelConfig, MirrorConfig]], selected: Collection[str]
) -> dict[str, str]:
    """Why each selected mirror of a ``file://`` URL whose folder is not there (a typo in the
    path, a share not mounted) cannot be read, by mirror name. Read as a channel that serves
    none of its subdirs it would publish an empty channel; like an upstream that cannot be
    reached, it fails its mirror instead. A folder that lacks some subdir is read as usual.
    An approval-gated channel reads a channel of this site, which may not be published yet."""
    unusable = {}
    for channel, mirror in mirrors:
        if mirror.name not in selected or channel.approval is not None:
            continue
        if any(name not in os.environ for name in mirror.secret_env):
            continue  # no URL to read: open_upstreams says which variable is missing
        parts = urlsplit(mirror.source_url())
        if parts.scheme != "file":
            continue
        # In a worker thread: a stat on a hung network mount would hold every other mirror.
        if not await trio.to_thread.run_sync(Path(unquote(parts.path)).is_dir):
            unusable[mirror.name] = f"{mirror.display_url()}: no such folder"
            log.error("%s: %s", mirror.name, unusable[mirror.name])
    return unusable


async def fetch_all(
    upstreams: dict[str, Upstream],
    mirrors: Iterable[MirrorConfig],
    selected: Collection[str],
    cache: UpstreamCache,
    results: dict[SubdirKey, FetchResult],
    bodies: dict[SubdirKey, bytes],
    *,
    store: bool,
) -> None:
    """Fetch every subdir of the usable mirrors into ``results`` and ``bodies`` (filled as each
    fetch ends, so that a stopped run still reports what it fetched); ``store``: note in
    ``cache`` a subdir upstream serves none of (a dry run writes nothing)."""
    async with trio.open_nursery() as nursery:
        for mirror in mirrors:
            upstream = upstreams.get(mirror.name)
            if upstream is None:
                continue
            for subdir in mirror.subdirs:
                args = (upstream, subdir, mirror.name in selected, cache, store, results, bodies)
                nursery.start_soon(_fetch_one, *args)


async def _fetch_one(
    upstream: Upstream,
    subdir: str,
    selected: bool,
    cache: UpstreamCache,
    store: bool,
    results: dict[SubdirKey, FetchResult],
    bodies: dict[SubdirKey, bytes],
) -> None:
    mirror = upstream.mirror
    key = (mirror.name, subdir)
    try:
        result, body = await _fetch_repodata(upstream, subdir, selected, cache, store)
    except SubdirMissing:
        log.info("%s: %s is not served upstream", mirror.name, subdir)
        results[key] = FetchResult(MISSING)
        return
    except (UpstreamError, RepodataError) as exc:
        log.error("%s: %s: %s", mirror.name, subdir, exc)
        results[key] = FetchResult(ERROR, error=str(exc))
        return
    bodies[key] = body
    results[key] = result


async def _fetch_repodata(
    upstream: Upstream, subdir: str, selected: bool, cache: UpstreamCache, store: bool
) -> tuple[FetchResult, bytes]:
    mirror = upstream.mirror
    form = cache.hidden_form(mirror.name, subdir)
    if form == UNESCAPED and not upstream.secrets:
        form = AS_SERVED  # nothing in it is filled in
    # The references an earlier sitegen wrote are not told apart from upstream's own text
    # (see upstream_secrets): fetched whole again, and kept with that text escaped.
    refetch = form == UNESCAPED and selected
    kept = None if refetch else await kept_copy(cache, mirror.name, subdir)
    if not selected:
        # Not run now, but its channel is rebuilt: use what its last run fetched.
        if kept is None and cache.served_none(mirror.name, subdir):
            raise SubdirMissing(f"{upstream.display(subdir)}: none upstream at the last run")
        if kept is None and cache.validators(mirror.name, subdir) is not None:
            raise UpstreamError(f"the copy kept is lost or damaged; run mirror {mirror.name}")
        if kept is None:
            raise UpstreamError(f"never fetched; run mirror {mirror.name} first")
        response = kept.answer()
    else:
        previous = None if kept is None else kept.validators
        try:
            response = await upstream.fetch_repodata(subdir, previous)
        except SubdirMissing:
            if store:  # a later run that does not fetch the mirror stands for none
                forget_copy(cache, (mirror.name, subdir), "repodata", served_none=True)
            raise
    got = await received(upstream, response, kept, kept_hidden=form != AS_SERVED)
    unrecorded = False
    if kept is not None and got.body is kept.body:
        digest, unrecorded = kept.sha256, not kept.recorded
    else:
        digest = await trio.to_thread.run_sync(sha256_of, got.body)
    result = FetchResult(
        FETCHED if got.changed else UNCHANGED,
        validators=got.validators,
        hidden=got.hidden,
        rekeep=got.rekeep,
        sha256=digest,
        stand_in=not selected,
        unrecorded=unrecorded,
    )
    return result, got.body


async def _fetch_whole(upstream: Upstream, subdir: str) -> tuple[FetchResult, bytes]:
    """The subdir's repodata asked for without validators: the copy kept, found current by
    upstream, did not parse."""
    response = await upstream.fetch_repodata(subdir, None)
    got = await received(upstream, response, None, kept_hidden=False)
    digest = await trio.to_thread.run_sync(sha256_of, got.body)
    return FetchResult(FETCHED, got.validators, hidden=got.hidden, sha256=digest), got.body


async def _stage_body(
    cache: UpstreamCache, key: SubdirKey, fetched: FetchResult, body: bytes
) -> PendingWrite | None:
    """A newly fetched body written beside the cache (see UpstreamCache.stage); None when it
    was not newly fetched, or could not be written (then it is stored after the parse)."""
    if fetched.status != FETCHED:
        return None
    assert fetched.validators is not None
    try:
        return await trio.to_thread.run_sync(cache.stage, *key, fetched.validators, body)
    except OSError:
        return None


async def store_body(
    cache: UpstreamCache, key: SubdirKey, fetched: FetchResult, body: bytes | PendingWrite
) -> None:
    """Keep a newly fetched body (or the one staged for it, see UpstreamCache.stage) for
    conditional requests, once it is known to be usable; and one read back that an earlier
    sitegen kept, without the secrets of its mirror's URL, or at least with its sha256."""
    if fetched.status != FETCHED and not fetched.rekeep:
        if fetched.unrecorded:  # just parsed, so sound: damage from now on is told
            await record_sha256(cache, key, fetched.sha256, "repodata")
        return
    assert fetched.validators is not None
    await keep_copy(
        cache, key, fetched.validators, body, fetched.hidden, fetched.sha256, "repodata"
    )


async def parse_all(
    upstreams: dict[str, Upstream],
    fetched: dict[SubdirKey, FetchResult],
    bodies: dict[SubdirKey, bytes],
    cache: UpstreamCache | None,
    results: dict[SubdirKey, ParseResult],
) -> None:
    """Parse every fetched body into ``results``, taking it out of ``bodies``; ``cache``: where
    usable new bodies are kept (None in a dry run). A copy kept that does not parse is
    forgotten; after a 304 the subdir is fetched whole once more (its ``fetched`` entry then
    says so), and a body upstream serves that does not parse fails it."""
    async with trio.open_nursery() as nursery:
        for key in list(bodies):
            nursery.start_soon(_parse_one, upstreams[key[0]], key, fetched, bodies, cache, results)


async def _parse_one(
    upstream: Upstream,
    key: SubdirKey,
    fetched: dict[SubdirKey, FetchResult],
    bodies: dict[SubdirKey, bytes],
    cache: UpstreamCache | None,
    results: dict[SubdirKey, ParseResult],
) -> None:
    mirror, subdir = upstream.mirror, key[1]
    repodata: Repodata | None = None
    try:
        repodata = await _parse(upstream, key, fetched[key], bodies, cache)
    except (UpstreamError, RepodataError) as exc:
        read_back = fetched[key].status == UNCHANGED
        if read_back and cache is not None:
            # The copy kept (damaged where no sha256 of it was recorded, or read otherwise
            # by the sitegen that kept it) is not trusted again, whatever upstream says.
            forget_copy(cache, key, "repodata")
        if not read_back or fetched[key].stand_in:
            _failed(key, exc, results)
            return
        log.warning("%s: %s: the copy kept of upstream's repodata: %s", mirror.name, subdir, exc)
    if repodata is None:
        # Out of the handler, which held the copy's bytes: upstream asked once more, whole.
        try:
            fetched[key], bodies[key] = await _fetch_whole(upstream, subdir)
            repodata = await _parse(upstream, key, fetched[key], bodies, cache)
        except (UpstreamError, RepodataError) as exc:
            _failed(key, exc, results)
            return
    base_url = repodata.info.pop("base_url", None)
    # CEP-15 says a string; anything else names no place to fetch from. Kept in the origins
    # map, it holds the mirror's secrets as their references (upstream's own escaped).
    base_url = upstream.secrets.hide_text(base_url) if isinstance(base_url, str) else None
    # The version of the document sitegen publishes: 1, its records beside it and no
    # base_url (CEP-15's packages elsewhere are fetched from there and served here).
    # Upstream's own (2 with a base_url, or one no client knows) describes upstream's.
    repodata.extra["repodata_version"] = 1
    results[key] = ParseResult(repodata, base_url=base_url)
    for fn, reason in list(repodata.rejected.items())[:20]:
        log.warning("%s/%s: skipped %s: %s", mirror.name, subdir, fn, reason)


def _failed(key: SubdirKey, exc: Exception, results: dict[SubdirKey, ParseResult]) -> None:
    log.error("%s: %s: %s", *key, exc)
    results[key] = ParseResult(None, error=str(exc))


async def _parse(
    upstream: Upstream,
    key: SubdirKey,
    fetched: FetchResult,
    bodies: dict[SubdirKey, bytes],
    cache: UpstreamCache | None,
) -> Repodata:
    """The records of the body ``fetched`` describes, taken out of ``bodies`` (nothing else
    holds it: see below); a new body is kept once it parsed, unless ``cache`` is None."""
    subdir = key[1]
    body: bytes | None = bodies.pop(key)
    assert fetched.validators is not None and body is not None
    variant = fetched.validators.variant
    # A new body goes to the cache's door first: the compressed bytes are then not held
    # while the records are built (~75 MB at conda-forge scale).
    staged = None if cache is None else await _stage_body(cache, key, fetched, body)
    spilled = None
    try:
        data = await trio.to_thread.run_sync(decode_body, variant, body)
        if fetched.hidden:
            data = await trio.to_thread.run_sync(upstream.secrets.reveal, data)
        if staged is not None:
            body = None
            # Out of the heap while the records are built (see sitegen.store.spill), where
            # nothing else holds it: staged, the body is on disk already.
            spilled = await trio.to_thread.run_sync(_spill, cache, key, data)
        parsed = partial(
            parse_repodata,
            data if spilled is None else spilled.data,
            subdir,
            upstream.mirror.name,
            upstream.secrets.in_records,
            release=(lambda: None) if spilled is None else spilled.release,
        )
        del data
        repodata = await trio.to_thread.run_sync(parsed)
        del parsed
        if staged is not None:
            await store_body(cache, key, fetched, staged)
    finally:
        if spilled is not None:
            spilled.close()
        if staged is not None:
            staged.discard()  # unless kept: after a failed parse, a failed keep or a stop
    if staged is None and cache is not None and body is not None:
        await store_body(cache, key, fetched, body)
    return repodata


def _spill(cache: UpstreamCache | None, key: SubdirKey, data: bytes) -> Spilled | None:
    """``data`` spilled beside the cache's copy of the subdir's document, unless that folder
    leads out of the site (or cannot take it): None, and it is read from the heap."""
    if cache is None:
        return None
    directory = upstream_cache_dir(cache.site.root, *key)
    if state_link_out(cache.site, directory) is not None:
        return None
    return spill(directory, data)
