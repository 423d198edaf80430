"""Decide which records of one mirror's subdir are mirrored, and why the others are not.

A record must pass every level (site defaults, channel, mirror). The per-record predicates of
all levels run first, then the allowlists, then the whole-result steps (``newest_versions``,
``prefer-conda``); so a record excluded as "not in allowlist" or "older version" is known to
pass everything else, and the dependency closure may pull it back in (see
:mod:`sitegen.sync.closure`).

A level's exceptions (``except``) take back a record its own checks exclude: such a record is
judged again by the level without the excludes they override, and if that passes it the
level lets it through (:attr:`FilterResult.excepted` says which, and from what reason).

The filter kinds of :mod:`sitegen.filters.registry` compile each level into closures once per
subdir; the loop over records calls only those. Work is proportional to what the config asks
for: with no filters set nothing is evaluated per record, and MatchSpecs (and ``except``
entries naming packages) are only tried on records whose name they name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import reduce

from sitegen.conda.records import Record
from sitegen.conda.version import RecordMatcher
from sitegen.config.model import FilterSpec
from sitegen.filters import registry
from sitegen.filters.builds import REASON_BUILD_EXCLUDED, REASON_BUILD_NOT_INCLUDED
from sitegen.filters.dates import REASON_TOO_NEW, REASON_TOO_OLD
from sitegen.filters.formats import REASON_FORMAT, REASON_TWIN
from sitegen.filters.include_dependencies import include_dependencies
from sitegen.filters.kind import Allowed, Check, FilterContext, FilterResult, RecordIndex
from sitegen.filters.licenses import (
    REASON_LICENSE_EXCLUDED,
    REASON_LICENSE_FAMILY,
    REASON_LICENSE_MALFORMED,
    REASON_LICENSE_MISSING,
    REASON_LICENSE_NOT_INCLUDED,
)
from sitegen.filters.max_size import REASON_TOO_LARGE
from sitegen.filters.names import REASON_NAME
from sitegen.filters.newest_versions import REASON_OLDER_VERSION, effective_newest
from sitegen.filters.specs import REASON_SPEC
from sitegen.filters.subdirs import REASON_SUBDIR

__all__ = [
    "CANDIDATE_REASONS",
    "REASON_BUILD_EXCLUDED",
    "REASON_BUILD_NOT_INCLUDED",
    "REASON_FORMAT",
    "REASON_LICENSE_EXCLUDED",
    "REASON_LICENSE_FAMILY",
    "REASON_LICENSE_MALFORMED",
    "REASON_LICENSE_MISSING",
    "REASON_LICENSE_NOT_INCLUDED",
    "REASON_NAME",
    "REASON_NOT_ALLOWED",
    "REASON_OLDER_VERSION",
    "REASON_SPEC",
    "REASON_SUBDIR",
    "REASON_TOO_LARGE",
    "REASON_TOO_NEW",
    "REASON_TOO_OLD",
    "REASON_TWIN",
    "FilterResult",
    "RecordIndex",
    "apply_filters",
    "effective_newest",
    "include_dependencies",
    "unmatched_entries",
]

REASON_NOT_ALLOWED = "not in allowlist"

# Reasons that leave a record eligible for the dependency closure.
CANDIDATE_REASONS = frozenset({REASON_NOT_ALLOWED, REASON_OLDER_VERSION})


def apply_filters(
    records: dict[str, Record],
    subdir: str,
    levels: tuple[FilterSpec, ...],
    matcher: RecordMatcher,
) -> FilterResult:
    """Split one subdir's records into kept, excluded (with reason) and closure candidates."""
    kinds = registry.KINDS
    result = FilterResult()
    for gate in [k.gate for k in kinds if k.gate is not None]:
        for level in levels:
            reason = gate(level, subdir)
            if reason is not None:
                result.excluded = dict.fromkeys(records, reason)
                return result

    context = FilterContext(records, subdir, matcher)
    predicates = [k.predicate for k in kinds if k.predicate is not None]
    excepting = [k.exceptions for k in kinds if k.exceptions is not None]

    def compiled(level: FilterSpec) -> list[Check]:
        return [c for predicate in predicates if (c := predicate(level, context)) is not None]

    stages: list[_Stage] = []
    for level in levels:
        found = next((e for part in excepting if (e := part(level, context)) is not None), None)
        if found is None:
            stages.append(_Stage(compiled(level)))
        else:
            stages.append(_Stage(compiled(level), found.names, compiled(found.lifted)))
    if all(stage.excepts is None for stage in stages):
        # Without exceptions the levels' checks are one pass, as they all must pass.
        stages = [_Stage([check for stage in stages for check in stage.checks])]
    stages = [stage for stage in stages if stage.checks]
    allows = [k.allow for k in kinds if k.allow is not None]
    allowlists: list[Allowed] = []
    for level in levels:
        parts = [part for allow in allows if (part := allow(level, context)) is not None]
        if parts:
            allowlists.append(reduce(_either, parts))

    if not stages and not allowlists:
        result.kept = dict(records)
    else:
        names = context.names() if context.uses_names else {}
        kept, excluded, candidates = result.kept, result.excluded, result.candidates
        for fn, record in records.items():
            name = names.get(fn, "")
            reason = taken_back = None
            for stage in stages:
                for check in stage.checks:
                    reason = check(record, name)
                    if reason is not None:
                        break
                if reason is not None and stage.excepts is not None and stage.excepts(record, name):
                    # Judged again without the excludes the level's exceptions override.
                    overridden = reason
                    for check in stage.lifted:
                        reason = check(record, name)
                        if reason is not None:
                            break
                    else:
                        reason = None
                        taken_back = taken_back or overridden
                if reason is not None:
                    break
            else:
                for allowed in allowlists:
                    if not allowed(record, name):
                        reason = REASON_NOT_ALLOWED
                        break
            if reason is None:
                kept[fn] = record
                if taken_back is not None:
                    result.excepted[fn] = taken_back
            else:
                excluded[fn] = reason
                if reason == REASON_NOT_ALLOWED:
                    candidates[fn] = record

    for kind in kinds:
        if kind.step is not None and (step := kind.step(levels)) is not None:
            step(result)
    if result.excepted:
        # A step may still leave out a record an exception took back (newest_versions).
        result.excepted = {fn: why for fn, why in result.excepted.items() if fn in result.kept}
    return result


def unmatched_entries(level: FilterSpec, index: RecordIndex) -> list[tuple[str, str]]:
    """The entries of ``level`` that select records but match none of ``index``, as
    (key, entry as written), in the order of the filter kinds."""
    return [
        found
        for kind in registry.KINDS
        if kind.unmatched is not None
        for found in kind.unmatched(level, index)
    ]


@dataclass(frozen=True)
class _Stage:
    """The per-record checks of a level (of all levels, when none has exceptions); for a level
    with exceptions, which records they name and the checks of the level as it judges them."""

    checks: list[Check]
    excepts: Allowed | None = None
    lifted: list[Check] = field(default_factory=list)


def _either(first: Allowed, second: Allowed) -> Allowed:
    """Allowed by either part: a level's allowlist is the union of its kinds' allowlists."""
    return lambda record, name: first(record, name) or second(record, name)
