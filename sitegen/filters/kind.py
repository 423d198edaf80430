"""What a filter kind declares, and what its parts receive.

A kind owns one key of a ``filters:`` mapping in channels.yaml. Its parts, all optional but
``parse``, are plain functions:

- ``parse(node)``: the validated settings of that key, as FilterSpec values by name (a kind
  whose settings have no FilterSpec field gets them in ``extra``: read them with
  ``spec.setting(name)``);
- ``show(spec)``: what a level sets of the kind, as channels.yaml writes it under its key
  (what ``parse`` reads back), JSON-able; None when the level leaves it at its default
  (``sitegen status``; :func:`show_fields` and :func:`show_field` build it from fields);
- ``reasons``: the exclusion reasons its parts report, unique to the kind;
- ``check_level(spec)`` / ``check_levels(levels, mirror)``: messages for settings that leave
  nothing to mirror, within one level or across the three levels of a mirror;
- ``gate(spec, subdir)``: the reason a whole subdir is excluded, or None;
- ``predicate(spec, context)``: for one level, a per-record check returning the reason a record
  is excluded (or None); None when the level does not use this kind;
- ``allow(spec, context)``: for one level, a per-record test whether its allowlist names the
  record; the allowlist of a level is the union of its kinds' contributions;
- ``exceptions(spec, context)``: for one level, which records its exceptions name, and the
  level as it judges those records (without the settings the exceptions override), as
  :class:`Exceptions`; None when the level has none. A record the level's own checks exclude
  is judged again by that lifted level when its exceptions name it;
- ``step(levels)``: a whole-result step run after the per-record checks, or None;
- ``unmatched(spec, index)``: the entries of the level's lists that select records (an
  allowlist's names, exceptions) matching no record of ``index`` (a typo would otherwise do
  nothing unnoticed), as (key, entry as written).

``predicate``, ``allow``, ``exceptions`` and ``step`` run once per level and subdir, never per
record: they compile the level's settings into the closures they return.
"""

from __future__ import annotations

import fnmatch
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from sitegen.conda.records import Record
from sitegen.conda.version import RecordMatcher
from sitegen.config.model import FilterSpec, MirrorConfig
from sitegen.config.yaml_nodes import YamlNode, shown_reason, shown_value

# (record, lower-cased name) -> the reason it fails, or None.
Check = Callable[[Record, str], str | None]
# (record, lower-cased name) -> whether an allowlist names it.
Allowed = Callable[[Record, str], bool]


@dataclass
class FilterResult:
    """The outcome for one subdir of one mirror; every input record is in kept or excluded."""

    kept: dict[str, Record] = field(default_factory=dict)
    excluded: dict[str, str] = field(default_factory=dict)
    # Dropped only by an allowlist or newest_versions; a subset of excluded.
    candidates: dict[str, Record] = field(default_factory=dict)
    # Kept only because an exception of a level took it back: filename -> the reason that
    # level's excludes had for leaving it out; a subset of kept.
    excepted: dict[str, str] = field(default_factory=dict)

    def reason_counts(self) -> dict[str, int]:
        """How many records each reason excluded, most frequent first."""
        return dict(Counter(self.excluded.values()).most_common())


Step = Callable[[FilterResult], None]


@dataclass(frozen=True)
class Exceptions:
    """A level's exceptions in one filter run: ``names`` tells whether they name a record,
    ``lifted`` is the level as it judges a record they name (its overridden settings left
    out)."""

    names: Allowed
    lifted: FilterSpec


class RecordIndex:
    """Every record a level was applied to in a run (all subdirs of its mirrors), by
    lower-cased name, for :attr:`FilterKind.unmatched`. Indexed when first asked: most levels
    have no entries to look for."""

    def __init__(self, records: Iterable[Record], matcher: RecordMatcher) -> None:
        self.matcher = matcher
        self._records = records

    @cached_property
    def by_name(self) -> dict[str, list[Record]]:
        by_name: dict[str, list[Record]] = {}
        for record in self._records:
            by_name.setdefault(record.name.lower(), []).append(record)
        return by_name

    def named(self, glob: str) -> Iterator[str]:
        """The names (lower-cased) a lower-cased glob matches."""
        if is_literal(glob):
            yield from (glob,) if glob in self.by_name else ()
        else:
            yield from filter(re.compile(fnmatch.translate(glob)).match, self.by_name)

    def records(self, names: Iterable[str] | None = None) -> Iterator[Record]:
        """The records of ``names`` (every record when None)."""
        for name in self.by_name if names is None else names:
            yield from self.by_name.get(name, ())


class FilterContext:
    """What the parts of one filter run over one subdir share.

    Lower-cased record names cost a pass over every record, so they are built only when a part
    asks for them; parts whose closures use the ``name`` argument must ask.
    """

    def __init__(self, records: Mapping[str, Record], subdir: str, matcher: RecordMatcher) -> None:
        self.records = records
        self.subdir = subdir
        self.matcher = matcher
        self._names: dict[str, str] | None = None
        self._distinct: frozenset[str] = frozenset()

    def names(self) -> dict[str, str]:
        """Lower-cased name by filename (conda names are case-insensitive). Built on first use;
        from then on every check of the run gets the record's name as its ``name`` argument."""
        if self._names is None:
            self._names = {fn: r.name.lower() for fn, r in self.records.items()}
            self._distinct = frozenset(self._names.values())
        return self._names

    def distinct_names(self) -> frozenset[str]:
        self.names()
        return self._distinct

    @property
    def uses_names(self) -> bool:
        return self._names is not None


@dataclass(frozen=True)
class FilterKind:
    """One kind of filter; see the module docstring for its parts."""

    key: str
    parse: Callable[[YamlNode], Mapping[str, object]]
    show: Callable[[FilterSpec], object]
    reasons: tuple[str, ...] = ()
    check_level: Callable[[FilterSpec], Iterator[str]] | None = None
    check_levels: Callable[[tuple[FilterSpec, ...], MirrorConfig], Iterator[str]] | None = None
    gate: Callable[[FilterSpec, str], str | None] | None = None
    predicate: Callable[[FilterSpec, FilterContext], Check | None] | None = None
    allow: Callable[[FilterSpec, FilterContext], Allowed | None] | None = None
    exceptions: Callable[[FilterSpec, FilterContext], Exceptions | None] | None = None
    step: Callable[[tuple[FilterSpec, ...]], Step | None] | None = None
    unmatched: Callable[[FilterSpec, RecordIndex], list[tuple[str, str]]] | None = None


# --------------------------------------------------------------------------- shared helpers

_DEFAULTS = FilterSpec()


def _as_written(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def show_field(name: str) -> Callable[[FilterSpec], object]:
    """``show`` of a kind whose key holds one FilterSpec field."""

    def show(spec: FilterSpec) -> object:
        value = getattr(spec, name)
        return None if value == getattr(_DEFAULTS, name) else _as_written(value)

    return show


def show_fields(**fields: str) -> Callable[[FilterSpec], object]:
    """``show`` of a kind whose key holds a mapping: each key below it -> its FilterSpec field
    (``include="include_names"``)."""

    def show(spec: FilterSpec) -> object:
        shown = {
            key: _as_written(getattr(spec, name))
            for key, name in fields.items()
            if getattr(spec, name) != getattr(_DEFAULTS, name)
        }
        return shown or None

    return show


def parse_globs(node: YamlNode, *, lower: bool = False) -> tuple[str, ...]:
    """A list of fnmatch globs, each checked to compile."""
    return tuple(parse_glob(item, lower=lower) for item in node.items())


def parse_glob(node: YamlNode, *, lower: bool = False) -> str:
    """One fnmatch glob, checked to compile."""
    pattern = node.string()
    if pattern.count("[") != pattern.count("]"):
        raise node.error(f"invalid glob {shown_value(pattern)}: unbalanced brackets")
    try:
        re.compile(fnmatch.translate(pattern))
    except re.error as exc:
        raise node.error(f"invalid glob {shown_value(pattern)}: {shown_reason(str(exc))}") from None
    return pattern.lower() if lower else pattern


def parse_include_exclude(
    node: YamlNode, setting: str, parse_items: Callable[[YamlNode], tuple[str, ...]]
) -> dict[str, object]:
    """``{include: [...], exclude: [...]}`` into ``include_<setting>`` / ``exclude_<setting>``."""
    keys = node.mapping(("include", "exclude"))
    return {
        f"{key}_{setting}": parse_items(keys[key]) for key in ("include", "exclude") if key in keys
    }


def glob_matcher(patterns: Iterable[str], *, lower: bool = False) -> Callable[[str], bool] | None:
    """One compiled regex for a list of fnmatch globs; None when there are none."""
    patterns = [p.lower() if lower else p for p in patterns]
    if not patterns:
        return None
    match = re.compile("|".join(fnmatch.translate(p) for p in patterns)).match
    return lambda text: match(text) is not None


def is_literal(pattern: str) -> bool:
    """Whether a glob names exactly one string."""
    return not any(ch in pattern for ch in "*?[")
