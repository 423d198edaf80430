"""``names``: include (an allowlist) and exclude package names by glob, case-insensitively."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping
from functools import partial

from sitegen.config.model import FilterSpec, MirrorConfig
from sitegen.config.yaml_nodes import YamlNode, shown_value
from sitegen.filters.exceptions import may_take_back
from sitegen.filters.kind import (
    Allowed,
    Check,
    FilterContext,
    FilterKind,
    RecordIndex,
    glob_matcher,
    is_literal,
    parse_globs,
    parse_include_exclude,
    show_fields,
)

REASON_NAME = "name excluded"


def parse(node: YamlNode) -> Mapping[str, object]:
    return parse_include_exclude(node, "names", partial(parse_globs, lower=True))


def check_level(spec: FilterSpec) -> Iterator[str]:
    # What the level's exceptions may take back is not excluded for good.
    if "*" in spec.exclude_names and not may_take_back(spec):
        yield "names.exclude '*' excludes every package"
    for pattern in spec.include_names:
        if is_literal(pattern) and _excluded_for_good(pattern, spec):
            yield (
                f"names.include {shown_value(pattern)} is also excluded by names.exclude,"
                " so nothing it names can be mirrored"
            )


def check_levels(levels: tuple[FilterSpec, ...], mirror: MirrorConfig) -> Iterator[str]:
    # A level whose allowlist also has specs or lockfiles may still mirror what they name.
    allow_names = [
        lv.include_names
        for lv in levels
        if lv.include_names and not lv.include_specs and lv.setting("lockfiles") is None
    ]
    for names in allow_names:
        if all(is_literal(n) for n in names) and all(
            any(_excluded_for_good(n, lv) for lv in levels) for n in names
        ):
            yield "every name in an allowlist is excluded at another level"
            return


def _excluded_for_good(name: str, level: FilterSpec) -> bool:
    """Whether the level's names.exclude leaves out the name and no exception of it may take
    it back."""
    return any(fnmatch.fnmatchcase(name, ex) for ex in level.exclude_names) and not (
        may_take_back(level, name)
    )


def predicate(spec: FilterSpec, context: FilterContext) -> Check | None:
    # Conda names are case-insensitive; config keeps name globs as written, so fold both sides.
    glob = glob_matcher(spec.exclude_names, lower=True)
    if glob is None:
        return None
    excluded = frozenset(n for n in context.distinct_names() if glob(n))
    if not excluded:
        return None
    return lambda r, n: REASON_NAME if n in excluded else None


def allow(spec: FilterSpec, context: FilterContext) -> Allowed | None:
    glob = glob_matcher(spec.include_names, lower=True)
    if glob is None:
        return None
    allowed = frozenset(n for n in context.distinct_names() if glob(n))
    return lambda r, n: n in allowed


def unmatched(spec: FilterSpec, index: RecordIndex) -> list[tuple[str, str]]:
    return [
        ("names.include", glob)
        for glob in spec.include_names
        if next(index.named(glob), None) is None
    ]


KIND = FilterKind(
    "names",
    parse,
    show=show_fields(include="include_names", exclude="exclude_names"),
    reasons=(REASON_NAME,),
    check_level=check_level,
    check_levels=check_levels,
    predicate=predicate,
    allow=allow,
    unmatched=unmatched,
)
