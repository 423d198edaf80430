"""``max_size``: leave out package files larger than a size (``500MB``, ``1.5 GiB``, bytes)."""

from __future__ import annotations

from collections.abc import Mapping

from sitegen.config.model import FilterSpec
from sitegen.config.site_settings import parse_size
from sitegen.config.yaml_nodes import YamlNode
from sitegen.filters.kind import Check, FilterContext, FilterKind, show_field

REASON_TOO_LARGE = "too large"


def parse(node: YamlNode) -> Mapping[str, object]:
    try:
        size = parse_size(node.scalar())
    except ValueError as exc:
        raise node.error(str(exc)) from None
    if size <= 0:
        raise node.error("must be larger than zero")
    return {"max_size": size}


def predicate(spec: FilterSpec, context: FilterContext) -> Check | None:
    max_size = spec.max_size
    if max_size is None:
        return None
    return lambda r, n: REASON_TOO_LARGE if r.size > max_size else None


KIND = FilterKind(
    "max_size", parse, show=show_field("max_size"), reasons=(REASON_TOO_LARGE,), predicate=predicate
)
