"""``subdirs``: mirror only some of the subdirs a mirror names."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from sitegen.config.model import FilterSpec, MirrorConfig
from sitegen.config.subdirs import parse_subdirs
from sitegen.config.yaml_nodes import YamlNode
from sitegen.filters.kind import FilterKind, show_field

REASON_SUBDIR = "subdir not selected"


def parse(node: YamlNode) -> Mapping[str, object]:
    subdirs = parse_subdirs(node)
    if not subdirs:
        raise node.error("an empty subdir list would exclude everything")
    return {"subdirs": subdirs}


def check_levels(levels: tuple[FilterSpec, ...], mirror: MirrorConfig) -> Iterator[str]:
    subdirs = set(mirror.subdirs)
    for level in levels:
        if level.subdirs is not None:
            subdirs &= set(level.subdirs)
    if not subdirs:
        yield "the subdirs filters of the site, channel and mirror leave no subdir to mirror"


def gate(spec: FilterSpec, subdir: str) -> str | None:
    return REASON_SUBDIR if spec.subdirs is not None and subdir not in spec.subdirs else None


KIND = FilterKind(
    "subdirs",
    parse,
    show=show_field("subdirs"),
    reasons=(REASON_SUBDIR,),
    check_levels=check_levels,
    gate=gate,
)
