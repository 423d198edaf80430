"""Filters applied to records built by hand (:mod:`testkit.records`), as one subdir of a
mirror applies them, and what a result must hold whatever the filters."""

from __future__ import annotations

from sitegen.conda.records import Record
from sitegen.conda.version import RecordMatcher
from sitegen.config import FilterSpec
from sitegen.filters import apply as f
from sitegen.filters.apply import FilterResult, apply_filters

DAY_MS = 86_400_000


def run(
    records: list[Record],
    *levels: FilterSpec,
    subdir: str = "linux-64",
    matcher: RecordMatcher | None = None,
) -> FilterResult:
    """Apply the filters of up to three levels (site, channel, mirror) to ``records``."""
    padded = (*levels, *(FilterSpec() for _ in range(3 - len(levels))))
    return apply_filters({r.fn: r for r in records}, subdir, padded, matcher or RecordMatcher())


def kept(result: FilterResult) -> set[str]:
    """The filenames ``result`` keeps."""
    return set(result.kept)


def check_partition(records: list[Record], result: FilterResult) -> None:
    """Every input is either kept or excluded, and candidates are the soft exclusions."""
    fns = {r.fn for r in records}
    assert set(result.kept) | set(result.excluded) == fns
    assert not set(result.kept) & set(result.excluded)
    soft = {fn for fn, why in result.excluded.items() if why in f.CANDIDATE_REASONS}
    assert set(result.candidates) == soft
