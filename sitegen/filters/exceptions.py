"""``except``: records taken back from the excludes of their own level, as conda-mirror's
``whitelist`` takes them back from its ``blacklist``.

```yaml
filters:
  builds: {exclude: ['py2*']}
  licenses: {exclude: ['*gpl*']}
  except:
    - readline                      # a MatchSpec, as specs reads them
    - python 2.7.18
    - {name: six, build: 'py27*'}   # conda-mirror's entry: repodata keys and globs
```

An entry is a MatchSpec or a mapping of repodata keys (:data:`KEYS`) to case-insensitive
globs, a conda-mirror whitelist entry as written, which matches a record when every key does.
A record the level's excludes leave out (the settings of :data:`OVERRIDDEN`) is kept when an
entry matches it and the rest of the level passes it. Nothing else gives way: the filters of
the other levels; what a level selects (include lists, lockfiles, dates, newest_versions,
formats: an exception takes back, it does not add to a selection); advisories (their own
``allow`` accepts one); max_size; subdirs; and so the approvals of a gated channel, an
allowlist of its mirror's level. An operator's "keep this" holds against their own exclude
rules, not against a security policy or a limit.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from sitegen.conda.records import Record
from sitegen.conda.version import parse_matchspec, spec_exact_name
from sitegen.config.model import FilterSpec
from sitegen.config.yaml_nodes import YamlNode
from sitegen.filters.kind import (
    Allowed,
    Exceptions,
    FilterContext,
    FilterKind,
    RecordIndex,
    is_literal,
    parse_glob,
)
from sitegen.filters.specs import SpecIndex, parse_spec

KEY = "except"

# The repodata keys a conda-mirror style entry may name: the fields a package is told apart by
# (conda-mirror reads any key, but a glob over the text of a list such as depends means little).
KEYS = ("name", "version", "build", "build_number", "license", "license_family", "subdir")
_LICENCE_KEYS = ("license", "license_family")

# The settings an exception overrides, as a level without them has them: conda-mirror's
# blacklist as sitegen writes it (see the README's translation table).
_DEFAULTS = FilterSpec()
OVERRIDDEN: dict[str, Any] = {
    name: getattr(_DEFAULTS, name)
    for name in (
        "exclude_names",
        "exclude_specs",
        "exclude_builds",
        "exclude_licenses",
        "exclude_license_families",
        "allow_missing_license",
    )
}
OVERRIDDEN_TEXT = (
    "names.exclude, specs.exclude, builds.exclude, licenses.exclude,"
    " licenses.exclude_families, licenses.allow_missing: false"
)

# A conda-mirror style entry: (key, lower-cased glob) pairs, all of which must match.
Entry = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ExceptionList:
    """One level's ``except`` entries, in the order written: MatchSpecs and key/glob entries."""

    entries: tuple[str | Entry, ...]
    line: int = 0  # where `except:` is written, for errors (not an input of a run)

    @property
    def specs(self) -> tuple[str, ...]:
        return tuple(e for e in self.entries if isinstance(e, str))

    @property
    def globs(self) -> tuple[Entry, ...]:
        return tuple(e for e in self.entries if not isinstance(e, str))

    def may_name(self, name: str) -> bool:
        """Whether an entry may match records of the package ``name`` (lower-cased): a
        MatchSpec of that name, or a key/glob entry whose name glob matches it or that sets no
        name."""
        if any(spec_exact_name(parse_matchspec(text)) == name for text in self.specs):
            return True
        for entry in self.globs:
            named = dict(entry).get("name")
            if named is None or fnmatch.fnmatchcase(name, named):
                return True
        return False


def parse(node: YamlNode) -> Mapping[str, object]:
    state = node.state
    start = len(state.errors)
    entries = [
        entry
        for item in node.items()
        if (entry := state.attempt(partial(_parse_entry, item))) is not None
    ]
    state.settle(start)
    if not entries:
        raise node.error("expected at least one MatchSpec or {key: glob} entry")
    return {KEY: ExceptionList(tuple(entries), node.line)}


def _parse_entry(node: YamlNode) -> str | Entry:
    if node.is_scalar:
        return parse_spec(node)
    if not node.is_mapping:
        raise node.error("expected a MatchSpec or a mapping of repodata keys to globs")
    state = node.state
    start = len(state.errors)
    keys = node.mapping(KEYS)
    entry = tuple(
        (key, glob)
        for key, value in keys.items()
        if (glob := state.attempt(partial(parse_glob, value, lower=True))) is not None
    )
    state.settle(start)
    if not entry:
        raise node.error(f"an empty entry would match every record; name one of: {', '.join(KEYS)}")
    if all(glob == "*" for _key, glob in entry):
        raise node.error("an entry of only '*' globs would match every record")
    return entry


def policy_of(spec: FilterSpec) -> ExceptionList | None:
    policy = spec.setting(KEY)
    return policy if isinstance(policy, ExceptionList) else None


def lifted(spec: FilterSpec) -> FilterSpec:
    """The level as it judges a record its exceptions name: without the settings of
    :data:`OVERRIDDEN`."""
    return replace(spec, **OVERRIDDEN)


def may_take_back(spec: FilterSpec, name: str | None = None) -> bool:
    """Whether the level's exceptions may take back a record (of the package ``name``,
    lower-cased, when given): the checks of a level's settings that would mirror nothing ask
    before they say so."""
    policy = policy_of(spec)
    return policy is not None and (name is None or policy.may_name(name))


def check_level(spec: FilterSpec) -> Iterator[str]:
    policy = policy_of(spec)
    if policy is not None and lifted(spec) == spec:
        yield (
            f"except (line {policy.line}): this level excludes nothing to take back; an"
            f" exception overrides only the excludes of its own level ({OVERRIDDEN_TEXT}),"
            " not those of another level"
        )


def show(spec: FilterSpec) -> object:
    """The entries as channels.yaml writes them (the globs lower-cased, as they match)."""
    policy = policy_of(spec)
    if policy is None:
        return None
    return [entry if isinstance(entry, str) else dict(entry) for entry in policy.entries]


def exceptions(spec: FilterSpec, context: FilterContext) -> Exceptions | None:
    policy = policy_of(spec)
    if policy is None:
        return None
    # An entry naming packages is tried only on their records (found by name, as MatchSpecs
    # are): hundreds of conda-mirror whitelist entries, each tried on every record a
    # `names: {exclude: ['*']}` leaves out, cost minutes a subdir at conda-forge size.
    named: dict[str, list[Allowed | None]] = {}
    unnamed: list[Allowed] = []  # tried on every record the level leaves out
    if policy.globs:
        names = context.distinct_names()  # records are looked up by their lower-cased name
        for entry in policy.globs:
            keys = dict(entry)
            glob = keys.pop("name", None)
            if glob is None:
                unnamed.append(_entry_test(entry))
                continue
            rest = _entry_test(tuple(keys.items())) if keys else None  # None: the name is all
            if is_literal(glob):
                found = [glob] if glob in names else []
            else:
                found = list(filter(re.compile(fnmatch.translate(glob)).match, names))
            for name in found:
                named.setdefault(name, []).append(rest)
    if policy.specs:
        index = SpecIndex(policy.specs)
        context.names()  # SpecIndex.matches looks records up by their name
        selects = context.matcher.matches
        unnamed.append(lambda r, n: index.matches(r, n, selects))

    def names_record(record: Record, name: str) -> bool:
        if any(rest is None or rest(record, name) for rest in named.get(name, ())):
            return True
        return any(test(record, name) for test in unnamed)

    return Exceptions(names=names_record, lifted=lifted(spec))


def _entry_test(entry: Entry) -> Allowed:
    """Whether a record matches every key of a conda-mirror style entry (or of its keys but
    ``name``, which :func:`exceptions` matches by the record's name)."""
    matchers = [(key, re.compile(fnmatch.translate(glob)).match) for key, glob in entry]

    def test(record: Record, name: str) -> bool:
        raw = record.raw
        for key, match in matchers:
            text = _text_of(key, raw.get(key))
            if text is None or not match(text.lower()):
                return False
        return True

    return test


def _text_of(key: str, value: Any) -> str | None:
    """The text a glob is matched against, as conda-mirror reads a field: an absent one as
    empty text (which only ``*`` matches), a number as written (build_number). None (no
    match) for any other value, and for a licence field that is not text: a list or number,
    which a record kept by ``keep_removed`` may hold from when upstream wrote one, is
    malformed to the licenses filter, and an exception does not take back what that filter
    cannot read."""
    if value is None:
        return ""
    if type(value) is str:
        return value
    if type(value) is int and key not in _LICENCE_KEYS:
        return str(value)
    return None


def unmatched(spec: FilterSpec, index: RecordIndex) -> list[tuple[str, str]]:
    policy = policy_of(spec)
    if policy is None:
        return []
    return [(KEY, _text(entry)) for entry in policy.entries if not _matches_any(entry, index)]


def _matches_any(entry: str | Entry, index: RecordIndex) -> bool:
    if isinstance(entry, str):
        spec = parse_matchspec(entry)
        name = spec_exact_name(spec)
        records = index.records(None if name is None else (name,))
        return any(index.matcher.matches(spec, record.raw) for record in records)
    keys = dict(entry)
    glob = keys.pop("name", None)
    names = None if glob is None else list(index.named(glob))
    rest = _entry_test(tuple(keys.items())) if keys else None
    if rest is None:
        return bool(names)
    return any(rest(record, "") for record in index.records(names))


def _text(entry: str | Entry) -> str:
    """An entry as channels.yaml writes it (the globs lower-cased, as they match)."""
    if isinstance(entry, str):
        return entry
    return "{" + ", ".join(f"{key}: {glob}" for key, glob in entry) + "}"


KIND = FilterKind(
    KEY,
    parse,
    show=show,
    check_level=check_level,
    exceptions=exceptions,
    unmatched=unmatched,
)
