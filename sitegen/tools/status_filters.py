"""The filters in force for a mirror, per level (site, channel, mirror), as ``sitegen status``
shows them: in full for programs, in the form channels.yaml writes them (``names: {include:
[...]}``, dates as ISO 8601, advisories and lockfiles by their file paths), and in short for a
person (``site licenses.exclude; mirror specs.include (+dependencies)``).

Only what a level sets is shown: a setting equal to its default (``formats: both``,
``allow_missing: true``) filters nothing. Filters hold no secrets: their values are globs,
MatchSpecs, numbers, dates and the paths of local files.
"""

from __future__ import annotations

from typing import Any

from sitegen.config.model import FilterSpec
from sitegen.filters import registry

LEVELS = ("site", "channel", "mirror")


def level_filters(spec: FilterSpec) -> dict[str, Any]:
    """One level's filters that differ from the defaults, keyed as under ``filters:`` (each
    kind shows its own settings: :attr:`~sitegen.filters.kind.FilterKind.show`)."""
    return {kind.key: shown for kind in registry.KINDS if (shown := kind.show(spec)) is not None}


def filters_in_force(levels: tuple[FilterSpec, ...]) -> dict[str, dict[str, Any]]:
    """Level name -> its filters (an empty mapping for a level that sets none)."""
    return {name: level_filters(spec) for name, spec in zip(LEVELS, levels, strict=True)}


def filters_text(filters: dict[str, dict[str, Any]]) -> str:
    """The short form: per level that sets any, the keys it sets (``names.include/exclude``), and
    ``(+dependencies)`` / ``(no dependencies)`` for ``include_dependencies``."""
    parts = []
    for level, settings in filters.items():
        words = []
        for key, value in settings.items():
            if key == "include_dependencies":
                continue
            if isinstance(value, dict):
                words.append(f"{key}." + "/".join(value))
            else:
                words.append(key)
        text = f"{level} {', '.join(words)}" if words else level
        if "include_dependencies" in settings:
            text += " (+dependencies)" if settings["include_dependencies"] else " (no dependencies)"
        if words or "include_dependencies" in settings:
            parts.append(text)
    return "; ".join(parts) if parts else "none"
