"""Select each readable mirror's records through its filters, then close over dependencies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sitegen.conda.records import Record
from sitegen.conda.version import RecordMatcher
from sitegen.config import ChannelConfig, FilterSpec, MirrorConfig, SiteConfig
from sitegen.filters.apply import apply_filters, effective_newest, include_dependencies
from sitegen.filters.kind import FilterResult
from sitegen.filters.lockfiles import missing_pins, policy_of
from sitegen.sync.closure import NOARCH, DependencyReport, MirrorSelection, close_dependencies
from sitegen.sync.fetch import ParseResult, SubdirKey
from sitegen.sync.report import MissingPin


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
    """The (channel, subdir)s whose published records stand in for an unreadable mirror with
    include_dependencies: its channel keeps what it publishes, and what that needs from
    other mirrors must stay too (a mirror read before it, in config order, may hold it)."""
    held = []
    for channel, mirror in mirrors:
        if mirror.name not in readable and _is_held(
            channel, mirror, config.filter_levels(channel, mirror)
        ):
            held.extend((channel.path, subdir) for subdir in mirror.subdirs)
    return held


def _is_held(channel: ChannelConfig, mirror: MirrorConfig, levels: tuple[FilterSpec, ...]) -> bool:
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
    """Apply the filters of every readable mirror to each of its subdirs, in config order.

    ``held``: what the channels of :func:`held_sources` publish now, by (channel, subdir). An
    unreadable mirror with include_dependencies gets these as its kept records, and nothing
    to add: the closure walks them as it walked them when the mirror was read, so a mirror
    down upstream never takes the dependencies of its packages out of another channel."""
    selections = []
    for channel, mirror in mirrors:
        levels = config.filter_levels(channel, mirror)
        if mirror.name not in readable:
            if held is not None and _is_held(channel, mirror, levels):
                selections.append(_held_selection(channel, mirror, held, levels))
            continue
        # Only approvals put packages into an approval-gated channel (with_dependencies
        # approves what they need): neither its own closure nor another mirror's may pull
        # in a record its allowlist of approved files leaves out.
        gated = channel.approval is not None
        results = {}
        for subdir in mirror.subdirs:
            result = parsed.get((mirror.name, subdir))
            records = result.repodata.records if result and result.repodata else {}
            results[subdir] = apply_filters(records, subdir, levels, matcher)
            if gated:
                results[subdir].candidates.clear()
        selections.append(
            MirrorSelection(
                mirror=mirror.name,
                include_dependencies=include_dependencies(levels) and not gated,
                newest_versions=effective_newest(levels),
                results=results,
                platforms=_channel_platforms(channel),
            )
        )
    return selections


def _channel_platforms(channel: ChannelConfig) -> tuple[str, ...]:
    """The platform subdirs a channel serves, for which its noarch records' dependencies are
    resolved (see :class:`MirrorSelection`)."""
    return tuple(s for s in channel.subdirs if s != NOARCH)


def _held_selection(
    channel: ChannelConfig,
    mirror: MirrorConfig,
    held: Mapping[tuple[str, str], Mapping[str, Record]],
    levels: tuple[FilterSpec, ...],
) -> MirrorSelection:
    return MirrorSelection(
        mirror=mirror.name,
        include_dependencies=True,
        newest_versions=effective_newest(levels),
        results={
            subdir: FilterResult(kept=dict(held.get((channel.path, subdir), {})))
            for subdir in mirror.subdirs
        },
        platforms=_channel_platforms(channel),
    )


def close(selections: list[MirrorSelection], matcher: RecordMatcher) -> ClosureResult:
    """Pull dependencies back in. The selections' FilterResults are completed in place, not
    copied: at conda-forge scale they hold hundreds of thousands of records."""
    dependencies = close_dependencies(selections, matcher)
    return ClosureResult({s.mirror: s for s in selections}, dependencies)


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
