"""The merge stage: every subdir of the rebuilt channels merged from its mirrors' kept records
(:func:`sitegen.sync.merge.merge_subdir`, pure) over what it publishes now, read here, and
for a ``keep_removed`` channel the files it keeps past their upstream listing
(:mod:`sitegen.sync.keep`)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace

from sitegen.conda.records import Record
from sitegen.conda.version import RecordMatcher
from sitegen.config import ChannelConfig, MirrorConfig
from sitegen.layout import repodata_map_path
from sitegen.store.frozen import FrozenChannels
from sitegen.store.origins import load_origins
from sitegen.sync.download import TargetKey
from sitegen.sync.fetch import ParseResult, SubdirKey
from sitegen.sync.keep import UNREADABLE_KEPT, judge_kept, still_kept
from sitegen.sync.merge import (
    FROZEN,
    HELD,
    DeletionGuard,
    Feed,
    MergedSubdir,
    load_previous,
    merge_subdir,
)
from sitegen.sync.scope import RunScope
from sitegen.sync.selection import ClosureResult

log = logging.getLogger("sitegen")


def merge_all(
    scope: RunScope,
    readable: set[str],
    parsed: Mapping[SubdirKey, ParseResult],
    closure: ClosureResult,
    matcher: RecordMatcher,
    kept: dict[TargetKey, dict[str, Record]],
) -> list[MergedSubdir]:
    """Merge every subdir of the rebuilt channels, reading what each publishes now; into
    ``kept``, the files each keeps past its upstream listing (keep_removed): those it is to
    keep when it is published, those it goes on keeping when it is not."""
    guard = DeletionGuard(scope.config.max_delete_fraction, scope.options.force_delete)
    # Read again: a channel frozen since the run started is honoured before anything is fetched.
    # Not when every channel is frozen already (as when the file could not be read at the
    # start, which the run reported then): nothing would change, and nothing to say twice.
    frozen_now: set[str] = set()
    if not all(c.frozen for c in scope.channels):
        frozen_now, unreadable = FrozenChannels(scope.site).load_or_all(
            c.path for c in scope.channels
        )
        if unreadable:  # damaged since the run started: reported by the next run as well
            log.error("%s", unreadable)
    merged_all = []
    for channel in scope.channels:
        for subdir in channel.subdirs:
            directory = scope.site.path(channel.path, subdir)
            map_path = repodata_map_path(scope.site.root, channel.path, subdir)
            if channel.frozen or channel.path in frozen_now:
                previous = load_previous(directory, subdir, map_path=map_path)
                merged_all.append(MergedSubdir(channel.path, subdir, FROZEN, previous))
                kept[(channel.path, subdir)] = still_kept(scope.site, channel, subdir)
                continue
            feeding = [m for m in channel.mirrors if subdir in m.subdirs]
            broken = [m.name for m in feeding if m.name not in readable]
            feeds = [] if broken else [_feed(parsed, closure, m.name, subdir) for m in feeding]
            previous = load_previous(directory, subdir, feeds, map_path)
            merged = merge_subdir(channel.path, subdir, feeds, broken, previous, guard)
            if merged is None:
                continue
            if merged.meta is not None:
                upstream = [feed.repodata for feed in feeds]
                published = merged.meta.records
                keeps = judge_kept(
                    scope.site,
                    scope.config,
                    channel,
                    subdir,
                    previous,
                    upstream,
                    published,
                    matcher,
                )
                if keeps is None:
                    # Which unlisted files it keeps is unknown: published now, the files
                    # upstream just dropped would be kept by nothing. Held, as by the guard.
                    why = f"{UNREADABLE_KEPT}; kept the previous state"
                    merged = replace(merged, status=HELD, meta=None, errors=(why,))
                else:
                    kept[merged.key] = keeps
            else:  # held back or failed: it goes on publishing, and keeping, what it did
                kept[merged.key] = still_kept(scope.site, channel, subdir)
            merged_all.append(merged)
    return merged_all


def still_supplied(
    scope: RunScope,
    mirrors: Sequence[tuple[ChannelConfig, MirrorConfig]],
    readable: set[str],
    merged: Sequence[MergedSubdir],
) -> dict[SubdirKey, int]:
    """(mirror, subdir) -> how many records of what the channel subdir publishes came from
    that mirror (its origins map), for each mirror of the run that could not be read: its
    channel keeps its previous state, so these are what the mirror keeps, as a run that read
    it counts what it keeps."""
    previous = {m.key: m.previous for m in merged}
    unread = [(c, m) for c, m in mirrors if m.name not in readable]
    counts: dict[SubdirKey, int] = {}
    for key in dict.fromkeys((c.path, s) for c, m in unread for s in m.subdirs):
        state = previous.get(key)
        if state is None:
            continue
        origins = Counter(map(load_origins(scope.site, *key).mirror_of, state.records)).get
        for channel, mirror in unread:
            if channel.path == key[0] and key[1] in mirror.subdirs:
                counts[(mirror.name, key[1])] = origins(mirror.name, 0)
    return counts


def _feed(
    parsed: Mapping[SubdirKey, ParseResult], closure: ClosureResult, mirror: str, subdir: str
) -> Feed:
    result = parsed.get((mirror, subdir))
    if result is None:
        return Feed(mirror, None, closure.kept(mirror, subdir))
    return Feed(mirror, result.repodata, closure.kept(mirror, subdir), result.run_exports)
