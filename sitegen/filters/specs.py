"""``specs``: include (an allowlist) and exclude records by conda MatchSpec."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sitegen.conda.records import Record
from sitegen.conda.version import (
    InvalidSpecError,
    parse_matchspec,
    spec_exact_name,
    untested_keys,
)
from sitegen.config.model import FilterSpec
from sitegen.config.yaml_nodes import YamlNode, shown_reason, shown_value
from sitegen.filters.kind import (
    Allowed,
    Check,
    FilterContext,
    FilterKind,
    parse_include_exclude,
    show_fields,
)

if TYPE_CHECKING:
    from rattler import MatchSpec

    # (spec, raw record) -> whether the spec takes the record (RecordMatcher.matches or
    # .excludes).
    SpecTest = Callable[[MatchSpec, dict[str, Any]], bool]

REASON_SPEC = "spec excluded"


def parse_specs(node: YamlNode) -> tuple[str, ...]:
    return tuple(parse_spec(item) for item in node.items())


def parse_spec(node: YamlNode) -> str:
    """One MatchSpec of a filter, as written, checked to be one a filter can match."""
    text = node.string()
    try:
        spec = parse_matchspec(text)
    except InvalidSpecError as exc:
        raise node.error(
            f"invalid MatchSpec {shown_value(text)}: {shown_reason(str(exc))}"
        ) from None
    if spec.channel is not None or spec.subdir is not None:
        raise node.error(
            f"MatchSpec {shown_value(text)}: channel:: and [subdir=...] are not supported in filters;"
            " use the mirror's url and the subdirs filter"
        )
    if (untested := untested_keys(spec)) is not None:
        raise node.error(f"MatchSpec {shown_value(text)}: {untested}")
    return text


def parse(node: YamlNode) -> Mapping[str, object]:
    return parse_include_exclude(node, "specs", parse_specs)


def predicate(spec: FilterSpec, context: FilterContext) -> Check | None:
    if not spec.exclude_specs:
        return None
    specs = SpecIndex(spec.exclude_specs)
    if not specs.applies_to(context.distinct_names()):
        return None
    excludes = context.matcher.excludes
    return lambda r, n: REASON_SPEC if specs.matches(r, n, excludes) else None


def allow(spec: FilterSpec, context: FilterContext) -> Allowed | None:
    if not spec.include_specs:
        return None
    specs = SpecIndex(spec.include_specs)
    context.names()  # SpecIndex.matches looks records up by their name
    selects = context.matcher.matches
    return lambda r, n: specs.matches(r, n, selects)


class SpecIndex:
    """MatchSpecs grouped by the package name they name, so other names cost a dict lookup."""

    def __init__(self, texts: Iterable[str]) -> None:
        self.by_name: dict[str, list[MatchSpec]] = {}
        self.any_name: list[MatchSpec] = []  # name globs/regexes, should rattler accept them
        for text in texts:
            spec = parse_matchspec(text)
            exact = spec_exact_name(spec)
            if exact is None:
                self.any_name.append(spec)
            else:
                self.by_name.setdefault(exact, []).append(spec)

    def applies_to(self, names: Iterable[str]) -> bool:
        return bool(self.any_name) or any(n in names for n in self.by_name)

    def matches(self, record: Record, name: str, test: SpecTest) -> bool:
        """Whether a spec naming the record passes ``test``: RecordMatcher.matches for an
        allowlist, RecordMatcher.excludes for an exclude (see there for records rattler cannot
        build)."""
        for spec in self.by_name.get(name, ()):
            if test(spec, record.raw):
                return True
        return any(test(spec, record.raw) for spec in self.any_name)


KIND = FilterKind(
    "specs",
    parse,
    show=show_fields(include="include_specs", exclude="exclude_specs"),
    reasons=(REASON_SPEC,),
    predicate=predicate,
    allow=allow,
)
