"""The filter kinds, in order: the one place that lists them.

The order is the order of the keys in error messages, of the per-record checks within a level
(so the order of reasons reported) and of the whole-result steps. A new kind is one module
that builds a :class:`~sitegen.filters.kind.FilterKind`, plus one ``register`` line here.
"""

from __future__ import annotations

from sitegen.filters import (
    advisories,
    builds,
    dates,
    exceptions,
    formats,
    include_dependencies,
    licenses,
    lockfiles,
    max_size,
    names,
    newest_versions,
    specs,
    subdirs,
)
from sitegen.filters.kind import FilterKind

KINDS: tuple[FilterKind, ...] = ()


def register(kind: FilterKind) -> FilterKind:
    """Add a kind after those registered so far; its key and reasons must be new."""
    global KINDS
    if any(k.key == kind.key for k in KINDS):
        raise ValueError(f"filter kind {kind.key!r} is already registered")
    taken = {reason for k in KINDS for reason in k.reasons}
    if taken & set(kind.reasons):
        # A run report counts exclusions by reason: each must say which filter it came from.
        raise ValueError(
            f"filter kind {kind.key!r} reuses reasons {sorted(taken & set(kind.reasons))}"
        )
    KINDS = (*KINDS, kind)
    return kind


register(names.KIND)
register(specs.KIND)
register(builds.KIND)
register(licenses.KIND)
register(subdirs.KIND)
register(dates.KIND)
register(newest_versions.KIND)
register(max_size.KIND)
register(formats.KIND)
register(advisories.KIND)
register(lockfiles.KIND)
register(include_dependencies.KIND)
register(exceptions.KIND)
