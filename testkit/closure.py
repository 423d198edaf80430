"""The dependency closure on records built by hand: a mirror's selection filtered as the
pipeline filters it, the closure over selections in config order, and what a subdir keeps."""

from __future__ import annotations

from sitegen.conda.records import Record
from sitegen.conda.version import RecordMatcher
from sitegen.config import FilterSpec
from sitegen.filters.apply import apply_filters
from sitegen.sync.closure import close_dependencies
from sitegen.sync.closure_model import DependencyReport, MirrorSelection


def selection(
    mirror: str,
    records: list[Record],
    *,
    allow: tuple[str, ...] = (),
    specs: tuple[str, ...] = (),
    include_dependencies: bool = True,
    newest: int | None = None,
    subdirs: tuple[str, ...] = ("linux-64", "noarch"),
    platforms: tuple[str, ...] = (),
    filters: FilterSpec | None = None,
) -> MirrorSelection:
    """Filter `records` like the pipeline would: allowlist `allow`/`specs` and newest N, and
    `filters` as a channel's level. `platforms`: those of the mirror's channel (empty: every
    platform of the run)."""
    level = FilterSpec(include_names=allow, include_specs=specs, newest_versions=newest)
    levels = (level,) if filters is None else (filters, level)
    matcher = RecordMatcher()
    results = {}
    upstream = {}
    for subdir in subdirs:
        mine = upstream[subdir] = {r.fn: r for r in records if r.subdir == subdir}
        results[subdir] = apply_filters(mine, subdir, levels, matcher)
    return MirrorSelection(
        mirror, include_dependencies, newest, results, platforms, upstream=upstream
    )


def close(*selections: MirrorSelection) -> DependencyReport:
    return close_dependencies(list(selections), RecordMatcher())


def kept(sel: MirrorSelection, subdir: str = "linux-64") -> set[str]:
    return set(sel.results[subdir].kept)
