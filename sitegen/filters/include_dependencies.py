"""``include_dependencies``: also mirror what the kept records depend on (see
:mod:`sitegen.sync.closure`); the most specific level that sets it decides."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sitegen.config.model import FilterSpec
from sitegen.config.yaml_nodes import YamlNode
from sitegen.filters.kind import FilterKind, show_field


def parse(node: YamlNode) -> Mapping[str, object]:
    return {"include_dependencies": node.boolean()}


def include_dependencies(levels: Iterable[FilterSpec]) -> bool:
    """The most specific level that sets include_dependencies decides; off by default."""
    decided = False
    for level in levels:
        if level.include_dependencies is not None:
            decided = level.include_dependencies
    return decided


KIND = FilterKind("include_dependencies", parse, show=show_field("include_dependencies"))
