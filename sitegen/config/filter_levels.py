"""The ``filters:`` levels of channels.yaml (site, channel, mirror), each key parsed by its
registered filter kind (:mod:`sitegen.filters.registry`)."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from sitegen.config.model import FilterSpec, MirrorConfig
from sitegen.config.yaml_nodes import YamlNode

if TYPE_CHECKING:
    from sitegen.filters.kind import FilterKind


def filter_kinds() -> tuple[FilterKind, ...]:
    # Imported on use: the filter kinds build on this package's model and YAML walker.
    from sitegen.filters import registry

    return registry.KINDS


def parse_filters(node: YamlNode | None) -> FilterSpec:
    """One level of ``filters:``, each key parsed by its registered filter kind."""
    if node is None or node.is_null:
        return FilterSpec()
    state = node.state
    start = len(state.errors)
    kinds = filter_kinds()
    keys = node.mapping(tuple(kind.key for kind in kinds))
    values: dict[str, object] = {}
    for kind in kinds:
        if kind.key in keys:
            values.update(state.attempt(partial(kind.parse, keys[kind.key])) or {})
    state.settle(start)
    spec = FilterSpec.from_values(values)
    # Settings of one level that contradict each other, so it could mirror nothing.
    for kind in kinds:
        for message in kind.check_level(spec) if kind.check_level else ():
            state.add(node.error(message))
    state.settle(start)
    return spec


def check_levels(levels: tuple[FilterSpec, ...], mirror: MirrorConfig, node: YamlNode) -> None:
    """Record filters of different levels that together leave a mirror with nothing."""
    for kind in filter_kinds():
        for message in kind.check_levels(levels, mirror) if kind.check_levels else ():
            node.state.add(node.error(f"mirror {mirror.name!r}: {message}"))
