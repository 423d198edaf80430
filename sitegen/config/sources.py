"""Source kinds: what a mirror reads its packages from, and the one key that says where.

A mirror names its source with exactly one registered key (``url:`` for an upstream conda
channel). A new kind of source is one module that builds a :class:`SourceKind`, plus one
registration line at the bottom of this file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sitegen.config import channel_source, local_source
from sitegen.config.yaml_nodes import YamlNode


@dataclass(frozen=True)
class SourceKind:
    kind: str  # MirrorConfig.kind
    key: str  # the mirror's key in channels.yaml that says where the source is
    # The validated location from that key's node, stored as MirrorConfig.url.
    parse: Callable[[YamlNode], str]
    # Whether `mode: passive` (files fetched on first request) can apply to this kind.
    passive: bool = True
    # Whether `move: true` (files moved out of the source once published) can apply to it.
    movable: bool = False


# Every registered kind, in the order their keys are listed in error messages.
SOURCES: tuple[SourceKind, ...] = ()


def register_source(kind: SourceKind) -> SourceKind:
    global SOURCES
    if any(s.kind == kind.kind or s.key == kind.key for s in SOURCES):
        raise ValueError(f"source kind {kind.kind!r} or its key {kind.key!r} is registered")
    SOURCES = (*SOURCES, kind)
    return kind


register_source(SourceKind("channel", "url", channel_source.parse_url))
# Its files are published from the folder by every run: there is nothing to fetch on request.
register_source(
    SourceKind(local_source.KIND, "path", local_source.parse_path, passive=False, movable=True)
)
