"""``builds``: include and exclude records by build string glob, in any case."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from sitegen.conda.records import Record
from sitegen.config.model import FilterSpec
from sitegen.config.yaml_nodes import YamlNode
from sitegen.filters.exceptions import may_take_back
from sitegen.filters.kind import (
    Check,
    FilterContext,
    FilterKind,
    glob_matcher,
    parse_globs,
    parse_include_exclude,
    show_fields,
)

REASON_BUILD_EXCLUDED = "build excluded"
REASON_BUILD_NOT_INCLUDED = "build not included"


def parse(node: YamlNode) -> Mapping[str, object]:
    return parse_include_exclude(node, "builds", parse_globs)


def check_level(spec: FilterSpec) -> Iterator[str]:
    if "*" in spec.exclude_builds and not may_take_back(spec):
        yield "builds.exclude '*' excludes every package"


def predicate(spec: FilterSpec, context: FilterContext) -> Check | None:
    # Folded as a spec's build glob and conda-mirror's blacklist compare it, so that
    # ``builds.exclude`` leaves out what their ``py2*`` does.
    exclude = glob_matcher(spec.exclude_builds, lower=True)
    include = glob_matcher(spec.include_builds, lower=True)
    if exclude is None and include is None:
        return None

    def check_build(record: Record, name: str) -> str | None:
        build = record.build.lower()
        if exclude is not None and exclude(build):
            return REASON_BUILD_EXCLUDED
        if include is not None and not include(build):
            return REASON_BUILD_NOT_INCLUDED
        return None

    return check_build


KIND = FilterKind(
    "builds",
    parse,
    show=show_fields(include="include_builds", exclude="exclude_builds"),
    reasons=(REASON_BUILD_EXCLUDED, REASON_BUILD_NOT_INCLUDED),
    check_level=check_level,
    predicate=predicate,
)
