"""Select each readable mirror's records through its filters, then close over dependencies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sitegen.conda.records import Record
from sitegen.conda.version import RecordMatcher
from sitegen.config import ChannelConfig, FilterSpec, MirrorConfig, SiteConfig
from sitegen.filters.apply import (
    RecordIndex,
    apply_filters,
    effective_newest,
    include_dependencies,
    unmatched_entries,
)
from sitegen.filters.kind import FilterResult
from sitegen.filters.lockfiles import missing_pins, policy_of
from sitegen.sync.approvals import unsatisfied
from sitegen.sync.closure import NOARCH, close_dependencies
from sitegen.sync.closure_model import DependencyReport, MirrorSelection
from sitegen.sync.fetch import ParseResult, SubdirKey
from sitegen.sync.report import MissingPin, UnmatchedEntry


@dataclass(frozen=True)
class ClosureResult:
    """The records each readable mirror keeps, dependencies included."""

    selections: dict[str, MirrorSelection]  # mirror name -> selection, in config order
    dependencies: DependencyReport

    def kept(self, mirror: str, subdir: str) -> Mapping[str, Record]:
        return self.selections[mirror].results[subdir].kept


def held_sources(
    config: SiteConfig,
    mirrors: Sequence[tuple[ChannelConfig, MirrorConfig]],
    readable: set[str],
) -> list[tuple[str, str]]:
    """The (channel, subdir)s whose published records stand in for a mirror in the dependency
    closure (see :func:`_stands_in`): what such a channel publishes holds through this run, so
    what it needs from other channels must stay there too, and it satisfies dependencies as it
    does in a run of every mirror."""
    in_run = {m.name for _c, m in mirrors}
    walked = _walks(config)
    held = []
    for channel, mirror in config.mirrors:
        rebuilt = mirror.name in in_run and mirror.name in readable
        if _stands_in(channel, rebuilt, walked):
            held.extend((channel.path, subdir) for subdir in mirror.subdirs)
    return list(dict.fromkeys(held))


def _walks(config: SiteConfig) -> bool:
    """Whether a mirror of the site pulls in dependencies: only then does the closure look
    for anything, and so at what the channels a run does not rebuild publish."""
    return any(_pulls_in(c, config.filter_levels(c, m)) for c, m in config.mirrors)


def _stands_in(channel: ChannelConfig, rebuilt: bool, walked: bool) -> bool:
    """Whether the channel's published records take the place of the mirror's selection: the
    channel is frozen (it keeps them, whatever upstream offers; nothing may be added to it),
    or the run does not rebuild the mirror (another mirror's schedule, ``--only``, its
    upstream down) while a mirror of the site pulls in dependencies. Such a channel goes on
    publishing what it did, so the closure finds in it what a run of every mirror finds."""
    return channel.frozen or (not rebuilt and walked)


def _pulls_in(channel: ChannelConfig, levels: tuple[FilterSpec, ...]) -> bool:
    # A gated channel pulls in nothing (only approvals put packages there).
    return channel.approval is None and include_dependencies(levels)


def select_all(
    config: SiteConfig,
    mirrors: Sequence[tuple[ChannelConfig, MirrorConfig]],
    readable: set[str],
    parsed: Mapping[SubdirKey, ParseResult],
    matcher: RecordMatcher,
    held: Mapping[tuple[str, str], Mapping[str, Record]] | None = None,
) -> list[MirrorSelection]:
    """Apply the filters of every readable mirror of the run to each of its subdirs, in config
    order (that of every mirror of the site, the run's or not).

    ``held``: what the channels of :func:`held_sources` publish now, by (channel, subdir). A
    mirror whose channel's records stand in (see :func:`_stands_in`) gets these as its kept
    records, and nothing to add: the closure walks them as it walked them when they were
    published, so a mirror down upstream, a frozen channel or a channel this run does not
    rebuild never has the dependencies of its packages taken out of another channel, and
    what it publishes satisfies dependencies as in a run of every mirror. A frozen mirror's
    filter outcome is still what its report shows."""
    in_run = {m.name for _c, m in mirrors}
    walked = _walks(config)
    selections = []
    for channel, mirror in config.mirrors:
        levels = config.filter_levels(channel, mirror)
        name = mirror.name
        rebuilt = name in in_run and name in readable
        stands_in = held is not None and _stands_in(channel, rebuilt, walked)
        selection = None
        if rebuilt:
            selection = _filtered(channel, mirror, levels, parsed, matcher)
        if stands_in:
            assert held is not None
            # A mirror not read has no filter outcome of its own: what it keeps is counted
            # from what its channel publishes of it (see RunResults.still_supplied).
            reported = selection.results if selection is not None else {}
            selection = _held_selection(channel, mirror, held, levels, matcher)
            selection.reported = reported
        if selection is not None:
            selections.append(selection)
    return selections


def _filtered(
    channel: ChannelConfig,
    mirror: MirrorConfig,
    levels: tuple[FilterSpec, ...],
    parsed: Mapping[SubdirKey, ParseResult],
    matcher: RecordMatcher,
) -> MirrorSelection:
    # Only approvals put packages into an approval-gated channel (with_dependencies
    # approves what they need): neither its own closure nor another mirror's may pull
    # in a record its allowlist of approved files leaves out.
    gated = channel.approval is not None
    results = {}
    upstream = {}
    for subdir in mirror.subdirs:
        result = parsed.get((mirror.name, subdir))
        records = result.repodata.records if result and result.repodata else {}
        upstream[subdir] = records
        results[subdir] = apply_filters(records, subdir, levels, matcher)
        if gated:
            results[subdir].candidates.clear()
    return MirrorSelection(
        mirror=mirror.name,
        include_dependencies=include_dependencies(levels) and not gated,
        newest_versions=effective_newest(levels),
        results=results,
        platforms=_channel_platforms(channel),
        channel=channel.path,
        # What an approval with dependencies approved may still be left out by the channel's
        # own filters (a licence, an advisory).
        unsatisfied=_approved_lacking(channel, results, matcher),
        upstream=upstream,
        gated=gated,
    )


def _channel_platforms(channel: ChannelConfig) -> tuple[str, ...]:
    """The platform subdirs a channel serves, for which its noarch records' dependencies are
    resolved (see :class:`MirrorSelection`)."""
    return tuple(s for s in channel.subdirs if s != NOARCH)


def _held_selection(
    channel: ChannelConfig,
    mirror: MirrorConfig,
    held: Mapping[tuple[str, str], Mapping[str, Record]],
    levels: tuple[FilterSpec, ...],
    matcher: RecordMatcher,
) -> MirrorSelection:
    results = {
        subdir: FilterResult(kept=dict(held.get((channel.path, subdir), {})))
        for subdir in mirror.subdirs
    }
    return MirrorSelection(
        mirror=mirror.name,
        include_dependencies=_pulls_in(channel, levels),
        newest_versions=effective_newest(levels),
        results=results,
        platforms=_channel_platforms(channel),
        channel=channel.path,
        unsatisfied=_approved_lacking(channel, results, matcher),
    )


def _approved_lacking(
    channel: ChannelConfig, results: Mapping[str, FilterResult], matcher: RecordMatcher
) -> list[tuple[str, str, str]]:
    """The dependencies of the files an approval with dependencies approved that ``results``
    (what a gated channel is to publish, or publishes where it stands in) do not satisfy:
    those files would not install from it. The closure never finds these, since nothing pulls
    dependencies into a gated channel."""
    if channel.approval is None:
        return []
    kept = {subdir: result.kept for subdir, result in results.items()}
    return unsatisfied(kept, channel.approval.dependency_roots, matcher)


def close(selections: list[MirrorSelection], matcher: RecordMatcher) -> ClosureResult:
    """Pull dependencies back in. The selections' FilterResults are completed in place, not
    copied: at conda-forge scale they hold hundreds of thousands of records."""
    dependencies = close_dependencies(selections, matcher)
    return ClosureResult({s.mirror: s for s in selections}, dependencies)


def entries_matching_nothing(
    config: SiteConfig,
    mirrors: Sequence[tuple[ChannelConfig, MirrorConfig]],
    readable: set[str],
    parsed: Mapping[SubdirKey, ParseResult],
    matcher: RecordMatcher,
) -> dict[str, list[UnmatchedEntry]]:
    """Per mirror of the run, the entries of its levels' lists that select records
    (``names.include``, ``except``) and match no record of any subdir of any mirror the level
    applies to: a typo does nothing otherwise. A level is judged only when the run read every
    mirror it applies to (upstream down, or a mirror outside the run, may well have them)."""
    in_run = {m.name for _c, m in mirrors}
    scopes: list[tuple[str, FilterSpec, list[MirrorConfig]]] = [
        ("site", config.filters, [m for _c, m in config.mirrors])
    ]
    for channel in config.channels:
        scopes.append((f"channel {channel.path}", channel.filters, list(channel.mirrors)))
        scopes.extend((f"mirror {m.name}", m.filters, [m]) for m in channel.mirrors)
    out: dict[str, list[UnmatchedEntry]] = {}
    for whose, level, applies_to in scopes:
        if not all(m.name in readable for m in applies_to):
            continue
        records = (
            record
            for m in applies_to
            for subdir in m.subdirs
            if (result := parsed.get((m.name, subdir))) and result.repodata
            for record in result.repodata.records.values()
        )
        found = unmatched_entries(level, RecordIndex(records, matcher))
        for mirror in applies_to:
            if mirror.name in in_run:
                entries = out.setdefault(mirror.name, [])
                entries.extend(UnmatchedEntry(whose, key, entry) for key, entry in found)
    return out


def lockfile_pins_missing(
    config: SiteConfig,
    mirrors: Sequence[tuple[ChannelConfig, MirrorConfig]],
    readable: set[str],
    parsed: Mapping[SubdirKey, ParseResult],
) -> dict[str, list[MissingPin]]:
    """Per mirror, the lockfile pins that no mirror of its channel offers upstream. A channel
    with a mirror that could not be read is skipped: its pins may well be there."""
    out: dict[str, list[MissingPin]] = {}
    by_channel: dict[str, list[MirrorConfig]] = {}
    for channel, mirror in mirrors:
        by_channel.setdefault(channel.path, []).append(mirror)
    for channel, mirror in mirrors:
        levels = config.filter_levels(channel, mirror)
        if not any(policy_of(level) for level in levels):
            continue
        feeding = by_channel[channel.path]
        if any(m.name not in readable for m in feeding):
            continue
        available: dict[tuple[str, str], list[Record]] = {}
        for other in feeding:
            for subdir in other.subdirs:
                result = parsed.get((other.name, subdir))
                records = result.repodata.records if result and result.repodata else {}
                for fn, record in records.items():
                    available.setdefault((subdir, fn), []).append(record)
        missing = missing_pins(levels, mirror.subdirs, available)
        if missing:
            out[mirror.name] = [MissingPin(**pin) for pin in missing]
    return out
