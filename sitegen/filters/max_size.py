"""``max_size``: leave out package files larger than a size (``500MB``, ``1.5 GiB``, bytes)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from sitegen.config.model import FilterSpec
from sitegen.config.yaml_nodes import YamlNode
from sitegen.filters.kind import Check, FilterContext, FilterKind

REASON_TOO_LARGE = "too large"

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "B": 1, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4}


def parse_size(text: str) -> int:
    """'500MB', '1.5 GiB', '1024' -> bytes."""
    match = _SIZE_RE.match(text)
    if not match:
        raise ValueError(f"expected a size like 500MB or 2GiB, got {text!r}")
    number, unit = match.groups()
    unit = (unit or "").upper()
    base = unit[:1] if unit not in ("", "B") else unit
    factor = _SIZE_UNITS[base]
    if "I" in unit:
        factor = 1024 ** {"K": 1, "M": 2, "G": 3, "T": 4}[base]
    return int(float(number) * factor)


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


KIND = FilterKind("max_size", parse, reasons=(REASON_TOO_LARGE,), predicate=predicate)
