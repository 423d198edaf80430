"""The filters in force for a mirror, per level (site, channel, mirror), as ``sitegen status``
shows them: in full for programs, in the form channels.yaml writes them (``names: {include:
[...]}``, dates as ISO 8601, advisories and lockfiles by their file paths), and in short for a
person (``site licenses.exclude; mirror specs.include (+dependencies)``).

Only what a level sets is shown: a setting equal to its default (``formats: both``,
``allow_missing: true``) filters nothing. Filters hold no secrets: their values are globs,
MatchSpecs, numbers, dates and the paths of local files.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from sitegen.config.model import FilterSpec
from sitegen.filters import advisories, lockfiles

LEVELS = ("site", "channel", "mirror")

# FilterSpec field -> (its key under `filters:`, its key below that or None). A field missing
# here is shown under its own name, so a new filter kind is never silently left out.
FIELD_KEYS: dict[str, tuple[str, str | None]] = {
    "include_names": ("names", "include"),
    "exclude_names": ("names", "exclude"),
    "include_specs": ("specs", "include"),
    "exclude_specs": ("specs", "exclude"),
    "include_builds": ("builds", "include"),
    "exclude_builds": ("builds", "exclude"),
    "include_licenses": ("licenses", "include"),
    "exclude_licenses": ("licenses", "exclude"),
    "exclude_license_families": ("licenses", "exclude_families"),
    "allow_missing_license": ("licenses", "allow_missing"),
    "subdirs": ("subdirs", None),
    "after_ms": ("dates", "after"),
    "before_ms": ("dates", "before"),
    "newest_versions": ("newest_versions", None),
    "max_size": ("max_size", None),
    "formats": ("formats", None),
    "include_dependencies": ("include_dependencies", None),
}

_DEFAULT = FilterSpec()
# The keys whose parts the short form names (`names.include`): those of different fields.
_SPLIT = frozenset(key for key, sub in FIELD_KEYS.values() if sub is not None)


def _json_value(name: str, value: object) -> object:
    if name in ("after_ms", "before_ms") and isinstance(value, int):
        moment = datetime.fromtimestamp(value / 1000, UTC)
        return moment.isoformat().replace("+00:00", "Z")
    if isinstance(value, tuple):
        return list(value)
    return value


def _extra_value(value: object) -> object:
    """A setting a filter kind keeps in ``extra``, as channels.yaml writes it."""
    if isinstance(value, advisories.AdvisoryPolicy):
        # The advisories read from the files are not settings: the files name them.
        return {
            "files": list(value.files),
            "min_score": value.min_score,
            "allow": list(value.allow),
        }
    if isinstance(value, lockfiles.LockfilePolicy):
        return [path for path, _pins in value.files]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, tuple | list) and all(isinstance(v, str | int | float) for v in value):
        return list(value)
    # A kind's own object: say that the level sets it rather than print its innards.
    return True


def level_filters(spec: FilterSpec) -> dict[str, Any]:
    """One level's filters that differ from the defaults, keyed as under ``filters:``."""
    out: dict[str, Any] = {}
    for f in fields(FilterSpec):
        if f.name == "extra":
            continue
        value = getattr(spec, f.name)
        if value == getattr(_DEFAULT, f.name):
            continue
        key, sub = FIELD_KEYS.get(f.name, (f.name, None))
        shown = _json_value(f.name, value)
        if sub is None:
            out[key] = shown
        else:
            out.setdefault(key, {})[sub] = shown
    for name, value in spec.extra:
        out[name] = _extra_value(value)
    return out


def filters_in_force(levels: tuple[FilterSpec, ...]) -> dict[str, dict[str, Any]]:
    """Level name -> its filters (an empty mapping for a level that sets none)."""
    return {name: level_filters(spec) for name, spec in zip(LEVELS, levels, strict=True)}


def filters_text(filters: dict[str, dict[str, Any]]) -> str:
    """The short form: per level that sets any, the keys it sets (``names.include``), and
    ``(+dependencies)`` / ``(no dependencies)`` for ``include_dependencies``."""
    parts = []
    for level, settings in filters.items():
        words = []
        for key, value in settings.items():
            if key == "include_dependencies":
                continue
            if key in _SPLIT and isinstance(value, dict):
                words.extend(f"{key}.{sub}" for sub in value)
            else:
                words.append(key)
        text = f"{level} {', '.join(words)}" if words else level
        if "include_dependencies" in settings:
            text += " (+dependencies)" if settings["include_dependencies"] else " (no dependencies)"
        if words or "include_dependencies" in settings:
            parts.append(text)
    return "; ".join(parts) if parts else "none"
