"""``newest_versions``: per package name, keep all builds of only the N highest versions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sitegen.conda.version import parse_version
from sitegen.config.model import FilterSpec
from sitegen.config.yaml_nodes import YamlNode
from sitegen.filters.kind import FilterKind, FilterResult, Step, show_field

REASON_OLDER_VERSION = "older version"


def parse(node: YamlNode) -> Mapping[str, object]:
    return {"newest_versions": node.integer(minimum=1)}


def effective_newest(levels: Iterable[FilterSpec]) -> int | None:
    """The strictest newest_versions of all levels, or None when no level sets it."""
    return min(
        (lv.newest_versions for lv in levels if lv.newest_versions is not None), default=None
    )


def step(levels: tuple[FilterSpec, ...]) -> Step | None:
    newest = effective_newest(levels)
    if newest is None:
        return None
    return lambda result: keep_newest(result, newest)


def keep_newest(result: FilterResult, newest: int) -> None:
    """Per name, keep all builds of the `newest` highest versions among the kept records.

    What this drops passes every other filter, so it becomes a candidate for the dependency
    closure.
    """
    # name -> version text -> fns: each distinct version string is parsed and hashed once.
    by_name: dict[str, dict[str, list[str]]] = {}
    for fn, record in result.kept.items():
        raw = record.raw
        by_name.setdefault(raw["name"].lower(), {}).setdefault(raw["version"], []).append(fn)
    for by_version in by_name.values():
        if len(by_version) <= newest:  # texts bound the distinct versions ("1.0" == "1.0.0")
            continue
        parsed = {text: parse_version(text) for text in by_version}
        top = set(sorted(set(parsed.values()), reverse=True)[:newest])
        for text, fns in by_version.items():
            if parsed[text] in top:
                continue
            for fn in fns:
                result.candidates[fn] = result.kept.pop(fn)
                result.excluded[fn] = REASON_OLDER_VERSION


KIND = FilterKind(
    "newest_versions",
    parse,
    show=show_field("newest_versions"),
    reasons=(REASON_OLDER_VERSION,),
    step=step,
)
