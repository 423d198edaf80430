"""Decide which records of one mirror's subdir are mirrored, and why the others are not.

A record must pass every level (site defaults, channel, mirror). The per-record predicates of
all levels run first, then the allowlists, then the whole-result steps (``newest_versions``,
``prefer-conda``); so a record excluded as "not in allowlist" or "older version" is known to
pass everything else, and the dependency closure may pull it back in (see
:mod:`sitegen.sync.closure`).

The filter kinds of :mod:`sitegen.filters.registry` compile each level into closures once per
subdir; the loop over records calls only those. Work is proportional to what the config asks
for: with no filters set nothing is evaluated per record, and MatchSpecs are only tried on
records whose name the spec names.
"""

from __future__ import annotations

from functools import reduce

from sitegen.conda.records import Record
from sitegen.conda.version import RecordMatcher
from sitegen.config.model import FilterSpec
from sitegen.filters import registry
from sitegen.filters.builds import REASON_BUILD_EXCLUDED, REASON_BUILD_NOT_INCLUDED
from sitegen.filters.dates import REASON_TOO_NEW, REASON_TOO_OLD
from sitegen.filters.formats import REASON_FORMAT, REASON_TWIN
from sitegen.filters.include_dependencies import include_dependencies
from sitegen.filters.kind import Allowed, Check, FilterContext, FilterResult
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
    "apply_filters",
    "effective_newest",
    "include_dependencies",
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
    checks: list[Check] = [
        check
        for level in levels
        for predicate in predicates
        if (check := predicate(level, context)) is not None
    ]
    allows = [k.allow for k in kinds if k.allow is not None]
    allowlists: list[Allowed] = []
    for level in levels:
        parts = [part for allow in allows if (part := allow(level, context)) is not None]
        if parts:
            allowlists.append(reduce(_either, parts))

    if not checks and not allowlists:
        result.kept = dict(records)
    else:
        names = context.names() if context.uses_names else {}
        kept, excluded, candidates = result.kept, result.excluded, result.candidates
        for fn, record in records.items():
            name = names.get(fn, "")
            reason = None
            for check in checks:
                reason = check(record, name)
                if reason is not None:
                    break
            else:
                for allowed in allowlists:
                    if not allowed(record, name):
                        reason = REASON_NOT_ALLOWED
                        break
            if reason is None:
                kept[fn] = record
            else:
                excluded[fn] = reason
                if reason == REASON_NOT_ALLOWED:
                    candidates[fn] = record

    for kind in kinds:
        if kind.step is not None and (step := kind.step(levels)) is not None:
            step(result)
    return result


def _either(first: Allowed, second: Allowed) -> Allowed:
    """Allowed by either part: a level's allowlist is the union of its kinds' allowlists."""
    return lambda record, name: first(record, name) or second(record, name)
