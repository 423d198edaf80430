"""Each mirror subdir's CEP-12 ``run_exports.json`` (see sitegen.conda.run_exports), read
once its repodata is: fetched as repodata is (conditionally, with the validators of the copy
kept in the state; ``.zst`` first where upstream serves ``repodata.json.zst``), and kept the
same way in a folder of its own, without the secrets of the mirror's URL.

The file is optional: a subdir whose upstream serves none publishes none. One that cannot be
fetched or read is no failure of the subdir: it is published without one, with a warning in
the run report (build tools then read the packages themselves, as they do without one).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import trio

from sitegen.conda.run_exports import (
    MAX_RUN_EXPORTS_BYTES,
    RUN_EXPORTS_FILE,
    RunExports,
    RunExportsError,
)
from sitegen.conda.run_exports import parse_run_exports as parse_document
from sitegen.layout import upstream_run_exports_dir
from sitegen.net.upstream import Upstream, UpstreamError
from sitegen.net.upstream_cache import HIDDEN, UpstreamCache
from sitegen.net.zstd_body import decode_body
from sitegen.sync.fetch import FetchResult, ParseResult, SubdirKey
from sitegen.sync.report import FETCHED, UNCHANGED
from sitegen.sync.scope import RunScope
from sitegen.sync.upstream_copy import (
    Received,
    forget_copy,
    keep_copy,
    kept_copy,
    received,
    record_sha256,
)

log = logging.getLogger("sitegen")

RUN_EXPORTS_VARIANTS = (f"{RUN_EXPORTS_FILE}.zst", RUN_EXPORTS_FILE)
# How a subdir's run_exports.json was read, for the digest of the run's inputs.
NONE_SERVED = "none"
UNREADABLE = "unreadable"


@dataclass(frozen=True)
class RunExportsRead:
    """A mirror subdir's run_exports: file name -> entry (None: none to publish), and what was
    read (the sha256 of the body, or NONE_SERVED, UNREADABLE)."""

    entries: Mapping[str, bytes] | None
    state: str = NONE_SERVED
    warnings: tuple[str, ...] = field(default=())


async def read_all(
    upstreams: Mapping[str, Upstream],
    scope: RunScope,
    fetched: Mapping[SubdirKey, FetchResult],
    results: dict[SubdirKey, RunExportsRead],
    warnings: dict[str, list[str]],
) -> None:
    """Read the run_exports.json of every mirror subdir of the run whose repodata was read
    into ``results``, and what went wrong into ``warnings`` (by mirror, for the run report).
    A mirror not selected uses the copy its last run kept; a dry run keeps none."""
    cache = UpstreamCache(scope.site, upstream_run_exports_dir)
    store = not scope.options.dry_run
    async with trio.open_nursery() as nursery:
        for _channel, mirror in scope.mirrors:
            upstream = upstreams.get(mirror.name)
            for subdir in mirror.subdirs if upstream is not None else ():
                result = fetched.get((mirror.name, subdir))
                if result is None or result.status not in (FETCHED, UNCHANGED):
                    continue
                selected = mirror.name in scope.selected
                args = (upstream, subdir, selected, result, cache, store, results)
                nursery.start_soon(_read_one, *args)
    for (mirror_name, _subdir), read in sorted(results.items()):
        if read.warnings:
            warnings.setdefault(mirror_name, []).extend(read.warnings)


def with_run_exports(
    parsed: dict[SubdirKey, ParseResult], reads: Mapping[SubdirKey, RunExportsRead]
) -> None:
    """Give each parsed mirror subdir the run_exports its upstream serves beside."""
    for key, read in reads.items():
        result = parsed.get(key)
        if result is not None and read.entries is not None:
            parsed[key] = replace(result, run_exports=read.entries)


async def _read_one(
    upstream: Upstream,
    subdir: str,
    selected: bool,
    repodata: FetchResult,
    cache: UpstreamCache,
    store: bool,
    results: dict[SubdirKey, RunExportsRead],
) -> None:
    name = upstream.mirror.name
    key = (name, subdir)
    where = f"{subdir}: {RUN_EXPORTS_FILE}"
    kept = await kept_copy(cache, name, subdir)
    served_zst = repodata.validators is not None and repodata.validators.variant.endswith(".zst")
    variants = RUN_EXPORTS_VARIANTS if served_zst else RUN_EXPORTS_VARIANTS[1:]
    try:
        if not selected:  # not run now: what its last run read, if anything
            response = None if kept is None else kept.answer()
        else:
            previous = None if kept is None else kept.validators
            limit = MAX_RUN_EXPORTS_BYTES
            response = await upstream.fetch_variants(subdir, variants, previous, limit)
    except UpstreamError as exc:
        results[key] = _unreadable(name, f"{where}: {exc}")
        return
    if response is None:
        if selected and kept is not None and store:
            forget_copy(cache, key, RUN_EXPORTS_FILE)  # gone upstream: never read back
        results[key] = RunExportsRead(None)
        return
    kept_hidden = cache.hidden_form(name, subdir) == HIDDEN
    got = await received(upstream, response, kept, kept_hidden, MAX_RUN_EXPORTS_BYTES)
    parsed: RunExports | None = None
    try:
        parsed = await _parse_received(upstream, got)
    except (UpstreamError, RunExportsError) as exc:
        if got.changed or not selected:
            # Upstream's own body; or the copy stands for a mirror not run now, and is kept
            # for that mirror's own run to ask about (forgotten, its absence would read as
            # "none served" and publish without it silently).
            results[key] = _unreadable(name, f"{where}: {exc}")
            return
        # The copy kept, found current by upstream, does not parse (damaged where no sha256
        # of it was recorded, or read otherwise by the sitegen that kept it): it is not
        # trusted again, and upstream is asked once more, whole.
        log.warning("%s: %s: the copy kept: %s", name, where, exc)
        if store:
            forget_copy(cache, key, RUN_EXPORTS_FILE)
    if parsed is None:
        try:
            response = await upstream.fetch_variants(subdir, variants, None, MAX_RUN_EXPORTS_BYTES)
            if response is None:
                results[key] = RunExportsRead(None)
                return
            got = await received(upstream, response, None, False, MAX_RUN_EXPORTS_BYTES)
            parsed = await _parse_received(upstream, got)
        except (UpstreamError, RunExportsError) as exc:
            results[key] = _unreadable(name, f"{where}: {exc}")
            return
    variant, body = got.validators.variant, got.body
    digest = hashlib.sha256(body).hexdigest()
    if store and got.to_keep:
        await keep_copy(cache, key, got.validators, body, got.hidden, digest, variant)
    elif store and kept is not None and body is kept.body and not kept.recorded:
        # The copy an earlier sitegen kept without its sha256 just parsed, so it is sound.
        await record_sha256(cache, key, digest, variant)
    warnings = ()
    if parsed.dropped:
        reasons = ", ".join(f"{n} {why}" for why, n in Counter(parsed.dropped).most_common())
        total = sum(parsed.dropped.values())
        entries = f"{total} entry that is" if total == 1 else f"{total} entries that are"
        warnings = (f"{where}: left out {entries} not sound ({reasons})",)
        log.warning("%s: %s", name, warnings[0])
    results[key] = RunExportsRead(parsed.entries, digest, warnings)


async def _parse_received(upstream: Upstream, got: Received) -> RunExports:
    variant, body = got.validators.variant, got.body
    return await trio.to_thread.run_sync(_parse, upstream, variant, body, got.hidden)


def _parse(upstream: Upstream, variant: str, body: bytes, hidden: bool) -> RunExports:
    data = decode_body(variant, body, MAX_RUN_EXPORTS_BYTES)
    if hidden:
        data = upstream.secrets.reveal(data)
    return parse_document(data, upstream.secrets.in_records)


def _unreadable(mirror: str, why: str) -> RunExportsRead:
    warning = f"{why}; published without it"
    log.warning("%s: %s", mirror, warning)
    return RunExportsRead(None, UNREADABLE, (warning,))
