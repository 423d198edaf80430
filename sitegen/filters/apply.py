"""Decide which records of one mirror's subdir are mirrored, and why the others are not.

A record must pass every level (site defaults, channel, mirror). The per-record predicates of
all levels run first, then the allowlists, then ``newest_versions``; so a record excluded as
"not in allowlist" or "older version" is known to pass everything else, and the dependency
closure may pull it back in (see :mod:`sitegen.sync.closure`).

Everything here is a pure function over plain data. Work is proportional to what the config
asks for: with no filters set nothing is evaluated per record, and MatchSpecs are only tried on
records whose name the spec names.
"""

from __future__ import annotations

import fnmatch
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from rattler import MatchSpec

from sitegen.conda.records import Record
from sitegen.conda.schema import CONDA_SUFFIX, TAR_BZ2_SUFFIX
from sitegen.conda.version import RecordMatcher, parse_matchspec, parse_version, timestamp_ms
from sitegen.config.load import FilterSpec

REASON_SUBDIR = "subdir not selected"
REASON_NAME = "name excluded"
REASON_SPEC = "spec excluded"
REASON_BUILD_EXCLUDED = "build excluded"
REASON_BUILD_NOT_INCLUDED = "build not included"
REASON_LICENSE_MISSING = "license missing"
REASON_LICENSE_EXCLUDED = "license excluded"
REASON_LICENSE_NOT_INCLUDED = "license not included"
REASON_LICENSE_FAMILY = "license family excluded"
REASON_TOO_OLD = "older than date range"
REASON_TOO_NEW = "newer than date range"
REASON_TOO_LARGE = "too large"
REASON_FORMAT = "format not mirrored"
REASON_TWIN = "has .conda twin"
REASON_NOT_ALLOWED = "not in allowlist"
REASON_OLDER_VERSION = "older version"

# Reasons that leave a record eligible for the dependency closure.
CANDIDATE_REASONS = frozenset({REASON_NOT_ALLOWED, REASON_OLDER_VERSION})


# (record, lower-cased name) -> the reason it fails, or None.
_Check = Callable[[Record, str], str | None]
# (record, lower-cased name) -> whether an allowlist names it.
_Allowed = Callable[[Record, str], bool]


@dataclass
class FilterResult:
    """The outcome for one subdir of one mirror; every input record is in kept or excluded."""

    kept: dict[str, Record] = field(default_factory=dict)
    excluded: dict[str, str] = field(default_factory=dict)
    # Dropped only by an allowlist or newest_versions; a subset of excluded.
    candidates: dict[str, Record] = field(default_factory=dict)

    def reason_counts(self) -> dict[str, int]:
        """How many records each reason excluded, most frequent first."""
        return dict(Counter(self.excluded.values()).most_common())


def effective_newest(levels: Iterable[FilterSpec]) -> int | None:
    """The strictest newest_versions of all levels, or None when no level sets it."""
    return min(
        (lv.newest_versions for lv in levels if lv.newest_versions is not None), default=None
    )


def include_dependencies(levels: Iterable[FilterSpec]) -> bool:
    """The most specific level that sets include_dependencies decides; off by default."""
    decided = False
    for level in levels:
        if level.include_dependencies is not None:
            decided = level.include_dependencies
    return decided


def apply_filters(
    records: dict[str, Record],
    subdir: str,
    levels: tuple[FilterSpec, ...],
    matcher: RecordMatcher,
) -> FilterResult:
    """Split one subdir's records into kept, excluded (with reason) and closure candidates."""
    result = FilterResult()
    if any(lv.subdirs is not None and subdir not in lv.subdirs for lv in levels):
        result.excluded = dict.fromkeys(records, REASON_SUBDIR)
        return result

    newest = effective_newest(levels)
    prefer_conda = any(lv.formats == "prefer-conda" for lv in levels)
    # Lower-cased names only when a name glob, a MatchSpec or an allowlist needs them.
    by_name = any(lv.exclude_names or lv.exclude_specs or lv.has_allowlist for lv in levels)
    names = {fn: r.name.lower() for fn, r in records.items()} if by_name else {}
    distinct = set(names.values())
    checks = [check for lv in levels for check in _level_checks(lv, distinct, matcher)]
    allowlists = [_allowlist(lv, distinct, matcher) for lv in levels if lv.has_allowlist]

    if not checks and not allowlists:
        result.kept = dict(records)
    else:
        kept, excluded, candidates = result.kept, result.excluded, result.candidates
        for fn, record in records.items():
            name = names.get(fn, "")
            reason = None
            for check in checks:
                reason = check(record, name)
                if reason is not None:
                    break
            else:
                for allowed in allowlists:
                    if not allowed(record, name):
                        reason = REASON_NOT_ALLOWED
                        break
            if reason is None:
                kept[fn] = record
            else:
                excluded[fn] = reason
                if reason == REASON_NOT_ALLOWED:
                    candidates[fn] = record

    if newest is not None:
        _keep_newest(result, newest)
    if prefer_conda:
        _drop_tar_twins(result)
    return result


# --------------------------------------------------------------------------- per-level checks


def _glob_matcher(patterns: Iterable[str], *, lower: bool = False) -> Callable[[str], bool] | None:
    """One compiled regex for a list of fnmatch globs; None when there are none."""
    patterns = [p.lower() if lower else p for p in patterns]
    if not patterns:
        return None
    match = re.compile("|".join(fnmatch.translate(p) for p in patterns)).match
    return lambda text: match(text) is not None


def _level_checks(level: FilterSpec, names: set[str], matcher: RecordMatcher) -> list[_Check]:
    """The per-record predicates of one level that are set, in reporting order."""
    checks: list[_Check] = []

    # Conda names are case-insensitive; config keeps name globs as written, so fold both sides.
    name_glob = _glob_matcher(level.exclude_names, lower=True)
    if name_glob is not None:
        excluded_names = frozenset(n for n in names if name_glob(n))
        if excluded_names:
            checks.append(lambda r, n: REASON_NAME if n in excluded_names else None)

    if level.exclude_specs:
        specs = _SpecIndex(level.exclude_specs)
        if specs.applies_to(names):
            checks.append(lambda r, n: REASON_SPEC if specs.matches(r, n, matcher) else None)

    exclude_build = _glob_matcher(level.exclude_builds)
    include_build = _glob_matcher(level.include_builds)
    if exclude_build is not None or include_build is not None:

        def check_build(record: Record, name: str) -> str | None:
            build = record.build
            if exclude_build is not None and exclude_build(build):
                return REASON_BUILD_EXCLUDED
            if include_build is not None and not include_build(build):
                return REASON_BUILD_NOT_INCLUDED
            return None

        checks.append(check_build)

    license_check = _license_check(level)
    if license_check is not None:
        checks.append(license_check)

    after, before = level.after_ms, level.before_ms
    if after is not None or before is not None:

        def check_date(record: Record, name: str) -> str | None:
            stamp = timestamp_ms(record.raw)  # 0 when absent, so a missing one fails `after`
            if after is not None and stamp < after:
                return REASON_TOO_OLD
            if before is not None and stamp >= before:
                return REASON_TOO_NEW
            return None

        checks.append(check_date)

    max_size = level.max_size
    if max_size is not None:
        checks.append(lambda r, n: REASON_TOO_LARGE if r.size > max_size else None)

    # prefer-conda needs the whole subdir's outcome, so _drop_tar_twins applies it afterwards.
    if level.formats == "conda":
        checks.append(lambda r, n: REASON_FORMAT if r.fn.endswith(TAR_BZ2_SUFFIX) else None)
    elif level.formats == "tar.bz2":
        checks.append(lambda r, n: REASON_FORMAT if r.fn.endswith(CONDA_SUFFIX) else None)
    return checks


def _license_check(level: FilterSpec) -> _Check | None:
    exclude = _glob_matcher(level.exclude_licenses, lower=True)
    include = _glob_matcher(level.include_licenses, lower=True)
    family = _glob_matcher(level.exclude_license_families, lower=True)
    allow_missing = level.allow_missing_license
    if exclude is None and include is None and family is None and allow_missing:
        return None
    # A channel has few distinct licence strings, so decide each (license, family) pair once.
    decided: dict[tuple[Any, Any], str | None] = {}

    def decide(license_value: Any, family_value: Any) -> str | None:
        text = license_value.strip().lower() if isinstance(license_value, str) else ""
        if not text:
            if not allow_missing:
                return REASON_LICENSE_MISSING
        else:
            if exclude is not None and exclude(text):
                return REASON_LICENSE_EXCLUDED
            if include is not None and not include(text):
                return REASON_LICENSE_NOT_INCLUDED
        family_text = family_value.strip().lower() if isinstance(family_value, str) else ""
        if family is not None and family_text and family(family_text):
            return REASON_LICENSE_FAMILY
        return None

    def check_license(record: Record, name: str) -> str | None:
        raw = record.raw
        key = (raw.get("license"), raw.get("license_family"))
        try:
            return decided[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable value from upstream: decide without caching
            return decide(*key)
        reason = decided[key] = decide(*key)
        return reason

    return check_license


def _allowlist(level: FilterSpec, names: set[str], matcher: RecordMatcher) -> _Allowed:
    """A predicate that is true when the record is named by the level's allowlist."""
    name_glob = _glob_matcher(level.include_names, lower=True)
    allowed_names = frozenset(n for n in names if name_glob(n)) if name_glob else frozenset()
    specs = _SpecIndex(level.include_specs) if level.include_specs else None

    def allowed(record: Record, name: str) -> bool:
        if name in allowed_names:
            return True
        return specs is not None and specs.matches(record, name, matcher)

    return allowed


class _SpecIndex:
    """MatchSpecs grouped by the package name they name, so other names cost a dict lookup."""

    def __init__(self, texts: Iterable[str]) -> None:
        self.by_name: dict[str, list[MatchSpec]] = {}
        self.any_name: list[MatchSpec] = []  # name globs/regexes, should rattler accept them
        for text in texts:
            spec = parse_matchspec(text)
            exact = spec_exact_name(spec)
            if exact is None:
                self.any_name.append(spec)
            else:
                self.by_name.setdefault(exact, []).append(spec)

    def applies_to(self, names: set[str]) -> bool:
        return bool(self.any_name) or any(n in names for n in self.by_name)

    def matches(self, record: Record, name: str, matcher: RecordMatcher) -> bool:
        for spec in self.by_name.get(name, ()):
            if matcher.matches(spec, record.raw):
                return True
        return any(matcher.matches(spec, record.raw) for spec in self.any_name)


def spec_exact_name(spec: MatchSpec) -> str | None:
    """The normalized package name of a spec, or None when its name is a pattern or absent."""
    matcher = getattr(spec, "name", None)
    if matcher is None:
        return None
    exact = matcher.as_package_name() if hasattr(matcher, "as_package_name") else matcher
    return None if exact is None else exact.normalized


# --------------------------------------------------------------------------- whole-subdir steps


def _keep_newest(result: FilterResult, newest: int) -> None:
    """Per name, keep all builds of the `newest` highest versions among the kept records."""
    # name -> version text -> fns: each distinct version string is parsed and hashed once.
    by_name: dict[str, dict[str, list[str]]] = {}
    for fn, record in result.kept.items():
        raw = record.raw
        by_name.setdefault(raw["name"].lower(), {}).setdefault(raw["version"], []).append(fn)
    for by_version in by_name.values():
        if len(by_version) <= newest:  # texts bound the distinct versions ("1.0" == "1.0.0")
            continue
        parsed = {text: parse_version(text) for text in by_version}
        top = set(sorted(set(parsed.values()), reverse=True)[:newest])
        for text, fns in by_version.items():
            if parsed[text] in top:
                continue
            for fn in fns:
                result.candidates[fn] = result.kept.pop(fn)
                result.excluded[fn] = REASON_OLDER_VERSION


def _drop_tar_twins(result: FilterResult) -> None:
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
