"""``formats``: which package formats to mirror: both, only .conda, only .tar.bz2, or
``prefer-conda`` (a .tar.bz2 only where it has no .conda twin)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from sitegen.conda.schema import CONDA_SUFFIX, TAR_BZ2_SUFFIX
from sitegen.config.model import FilterSpec, MirrorConfig
from sitegen.config.yaml_nodes import YamlNode, shown_value
from sitegen.filters.kind import Check, FilterContext, FilterKind, FilterResult, Step, show_field

REASON_FORMAT = "format not mirrored"
REASON_TWIN = "has .conda twin"

FORMATS = ("both", "conda", "prefer-conda", "tar.bz2")


def parse(node: YamlNode) -> Mapping[str, object]:
    fmt = node.string()
    if fmt not in FORMATS:
        raise node.error(f"expected one of {', '.join(FORMATS)}, got {shown_value(fmt)}")
    return {"formats": fmt}


def check_levels(levels: tuple[FilterSpec, ...], mirror: MirrorConfig) -> Iterator[str]:
    if len({lv.formats for lv in levels} - {"both", "prefer-conda"}) > 1:
        yield "formats 'conda' and 'tar.bz2' exclude each other"


def predicate(spec: FilterSpec, context: FilterContext) -> Check | None:
    # prefer-conda needs the whole subdir's outcome: step() applies it afterwards.
    if spec.formats == "conda":
        return lambda r, n: REASON_FORMAT if r.fn.endswith(TAR_BZ2_SUFFIX) else None
    if spec.formats == "tar.bz2":
        return lambda r, n: REASON_FORMAT if r.fn.endswith(CONDA_SUFFIX) else None
    return None


def step(levels: tuple[FilterSpec, ...]) -> Step | None:
    return drop_tar_twins if any(lv.formats == "prefer-conda" for lv in levels) else None


def drop_tar_twins(result: FilterResult) -> None:
    """Drop a .tar.bz2 whose .conda twin is mirrored, or is a candidate beside it.

    Twins share name, version and build, so they get the same allowlist and newest_versions
    verdict; dropping a candidate .tar.bz2 whose .conda twin is also a candidate stops the
    closure from adding both formats later.
    """
    for fn in [fn for fn in result.kept if fn.endswith(TAR_BZ2_SUFFIX)]:
        if fn[: -len(TAR_BZ2_SUFFIX)] + CONDA_SUFFIX in result.kept:
            del result.kept[fn]
            result.excluded[fn] = REASON_TWIN
    for fn in [fn for fn in result.candidates if fn.endswith(TAR_BZ2_SUFFIX)]:
        twin = fn[: -len(TAR_BZ2_SUFFIX)] + CONDA_SUFFIX
        if twin in result.kept or twin in result.candidates:
            del result.candidates[fn]
            result.excluded[fn] = REASON_TWIN


KIND = FilterKind(
    "formats",
    parse,
    show=show_field("formats"),
    reasons=(REASON_FORMAT, REASON_TWIN),
    check_levels=check_levels,
    predicate=predicate,
    step=step,
)
