"""Build a channel's ``channeldata.json`` (CEP-38) from the records every subdir publishes.

One entry per package name across all subdirs: its newest version (conda ordering), the
subdirs it exists in, its newest timestamp in **seconds** (records store milliseconds, very old
ones seconds), and descriptive fields (summary, home, license ...) from the newest record that
has each of them. Repodata records rarely carry the about-fields (conda-index reads them from
the package files), so most entries hold just version, subdirs and timestamp; that is fine for
clients and for our browse pages.

``run_exports`` maps each version (its text as the records give it) to what it exports, as
conda-index writes it: conda-build's ``--use-channeldata`` looks a dependency's run_exports up
there (``packages[name]["run_exports"][version]``) and takes a version missing from it for one
that exports nothing, never reading the package. They come from each subdir's CEP-12
``run_exports.json`` entries (upstream's, or read from a local source's package files). As
conda-index decides, a version's exports are those of its newest build (by timestamp) in a
subdir, the subdirs taken in name order and a later one's non-empty exports replacing an
earlier one's; a version whose chosen builds export nothing or are not known is left out, and
a name with no such version has no ``run_exports``.

Like conda-index, a ``.tar.bz2`` whose ``.conda`` twin sits in the same subdir is ignored: both
describe the same build and conda prefers the ``.conda``. Unlike conda-index this is built from
scratch each run from the published (filtered, patched) records, so nothing we no longer
publish can linger in it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import chain, repeat
from operator import attrgetter, contains
from typing import Any

import msgspec
from rattler import Version

from sitegen.conda.records import Record, names_of
from sitegen.conda.run_exports import EMPTY
from sitegen.conda.schema import CONDA_SUFFIX, TAR_BZ2_SUFFIX
from sitegen.conda.version import (
    MAX_SECONDS,
    InvalidVersionError,
    milliseconds,
    parse_version,
    timestamp_ms,
)
from sitegen.gc_pause import gc_paused

CHANNELDATA_VERSION = 1
# Descriptive fields copied from the newest record that has a (non-empty string) value.
ABOUT_FIELDS = (
    "description",
    "dev_url",
    "doc_url",
    "home",
    "icon_url",
    "license",
    "license_family",
    "source_url",
    "summary",
)
_ABOUT_SET = frozenset(ABOUT_FIELDS)


# (build_number, timestamp_ms, is .conda, subdir, fn, record): within one version conda
# prefers the higher build number, then the newer build; the rest only makes the choice
# independent of input order ((subdir, fn) is unique, so the record itself is never compared).
_Candidate = tuple[int, int, bool, str, str, Record]
# (subdir, fn, record): a record that speaks for its build (no .tar.bz2 with a .conda twin).
_Found = tuple[str, str, Record]


def _candidate(found: _Found) -> _Candidate:
    subdir, fn, record = found
    raw = record.raw
    build_number = raw.get("build_number", 0)
    if not isinstance(build_number, int):
        build_number = 0
    return (build_number, timestamp_ms(raw), fn.endswith(CONDA_SUFFIX), subdir, fn, record)


def _releases(by_text: dict[str, list[_Found]]) -> list[list[_Found]]:
    """One name's records (by version text) by release, newest first by conda ordering
    ("1.0" and "1.0.0" are one release); within a release in no particular order (see
    :func:`_ranked`)."""
    parsed: list[tuple[Version, list[_Found]]] = []
    for text, group in by_text.items():
        try:
            parsed.append((parse_version(text), group))
        except InvalidVersionError:
            continue  # cannot be ordered; parse_repodata already rejects these
    # Versions are compared once per distinct string.
    parsed.sort(key=lambda item: item[0], reverse=True)
    releases: list[list[_Found]] = []
    previous: Version | None = None
    for version, group in parsed:
        if previous is not None and version == previous:
            releases[-1].extend(group)
        else:
            releases.append(list(group))
        previous = version
    return releases


def _ranked(release: list[_Found]) -> list[Record]:
    """A release's records, newest build first, deterministically."""
    return [candidate[5] for candidate in sorted(map(_candidate, release), reverse=True)]


def _fields(record: Record) -> dict[str, Any]:
    # A package indexed here brings its about.json; the record's own fields come first.
    return record.raw if record.about is None else {**record.about, **record.raw}


def _take_about(record: Record, found: dict[str, str]) -> None:
    """The about-fields of ``record`` that ``found`` lacks, into it."""
    fields = _fields(record)
    # Most repodata records carry few of these: one C-level set operation finds them.
    for field in _ABOUT_SET.intersection(fields.keys()):
        value = fields[field]
        # Only strings: the values are upstream's and end up in pages and clients that
        # expect text, so a list or object here is dropped rather than passed on.
        if field not in found and isinstance(value, str) and value.strip():
            found[field] = value


def _about_and_version(
    releases: list[list[_Found]], records: list[Record], held: frozenset[str]
) -> tuple[dict[str, str], str]:
    """Each about-field from the newest record that has it, and the newest record's version.

    Records are ranked a release at a time, newest first, and only as far as a field may
    still be found: ``held`` are the about-fields any record of the channel holds (as keys),
    of which those none of the name's ``records`` holds are never looked for, so in most names
    the older releases are never ranked."""
    found: dict[str, str] = {}
    newest = _ranked(releases[0])
    version = newest[0].version
    for record in newest:
        _take_about(record, found)
    missing = held.difference(found)
    if not missing or len(releases) == 1:
        return found, version
    # In C, field by field: whether any record of the name holds it (its value may still
    # not count, then every release is looked through, as the rule asks).
    fields = list(map(_fields, records)) if any(map(_ABOUT, records)) else list(map(_RAW, records))
    missing = {field for field in missing if any(map(contains, fields, repeat(field)))}
    for release in releases[1:]:
        if missing.issubset(found):
            break
        for record in _ranked(release):
            _take_about(record, found)
            if len(found) == len(ABOUT_FIELDS):
                return found, version
    return found, version


def _held(records: Iterable[Record]) -> frozenset[str]:
    """The about-fields any of ``records`` holds, as keys (in C: no bytecode per record)."""
    held = _ABOUT_SET.intersection(chain.from_iterable(map(dict.keys, map(_RAW, records))))
    abouts = filter(None, map(_ABOUT, records))
    return held.union(_ABOUT_SET.intersection(chain.from_iterable(map(dict.keys, abouts))))


_RAW = attrgetter("raw")
_ABOUT = attrgetter("about")


def _newest_ms(stamps: list[Any]) -> int:
    """The largest of :func:`timestamp_ms` over records whose ``timestamp`` values are
    ``stamps``: in C when all are numbers in milliseconds (as every recent record's are)."""
    try:
        low, high = min(stamps), max(stamps)
    except TypeError:  # of several kinds (an absent one is None): each is read on its own
        return max(map(milliseconds, stamps))
    if type(low) in _NUMBERS and type(high) in _NUMBERS and low > MAX_SECONDS:
        return int(high)  # all numbers, all milliseconds: the largest as milliseconds() reads it
    return max(map(milliseconds, stamps))


_NUMBERS = (int, float)


# subdir -> fn -> the canonical JSON of its run_exports (see sitegen.conda.run_exports).
SubdirExports = Mapping[str, Mapping[str, bytes]]


def _build_age(candidate: _Candidate) -> tuple[int, int, bool, str]:
    """Newest by timestamp, as conda-index picks a version's build; the rest only makes a tie
    independent of input order."""
    return (candidate[1], candidate[0], candidate[2], candidate[4])


def _run_exports(
    candidates: list[_Candidate], exports: SubdirExports, raws: dict[bytes, msgspec.Raw]
) -> dict[str, msgspec.Raw]:
    """One name's run_exports by version, as conda-index chooses them (see above)."""
    newest: dict[tuple[str, str], _Candidate] = {}
    for candidate in candidates:
        subdir = candidate[3]
        if subdir not in exports:
            continue  # none known in that subdir: it has nothing to say
        key = (subdir, candidate[5].raw["version"])
        best = newest.get(key)
        # Timestamps mostly differ: the whole comparison only where they do not.
        if (
            best is None
            or candidate[1] > best[1]
            or (candidate[1] == best[1] and _build_age(candidate) > _build_age(best))
        ):
            newest[key] = candidate
    found: dict[str, msgspec.Raw] = {}
    for (subdir, version), candidate in sorted(newest.items(), key=lambda item: item[0]):
        entry = exports[subdir].get(candidate[4])
        if entry is not None and entry != EMPTY:
            # Entries are canonical JSON already: written as they are, one Raw per text
            # (most versions of a channel export one of a few texts).
            raw = raws.get(entry)
            if raw is None:
                raw = raws[entry] = msgspec.Raw(entry)
            found[version] = raw
    return dict(sorted(found.items()))


def build_channeldata(
    subdir_records: dict[str, dict[str, Record]],
    run_exports: SubdirExports | None = None,
    names: Mapping[str, Mapping[str, list[Record]]] | None = None,
) -> dict[str, Any]:
    """channeldata.json for a channel, from each subdir's published records (keyed by fn) and
    the run_exports known of them (``run_exports``: by subdir, then fn; a subdir without
    any left out). ``names``: by subdir, its records grouped by name (see names_of), for
    the subdirs where the caller has them."""
    # A tuple per record and a list per name, none in a cycle: the cyclic GC, which they
    # would set off over and over (~1 s at 800,000 records), has nothing to find in them.
    with gc_paused():
        return _build_channeldata(subdir_records, run_exports or {}, names or {})


def _build_channeldata(
    subdir_records: dict[str, dict[str, Record]],
    run_exports: SubdirExports,
    names: Mapping[str, Mapping[str, list[Record]]],
) -> dict[str, Any]:
    exports = {subdir: known for subdir, known in run_exports.items() if known}
    raws: dict[bytes, msgspec.Raw] = {}
    # subdir -> name -> its records there: grouped once (or by the caller), then each name is
    # judged from its groups (800,000 records at conda-forge scale; per-record work is kept to
    # the grouping and the .conda twin check).
    by_subdir: dict[str, Mapping[str, list[Record]]] = {}
    for subdir in sorted(subdir_records):
        grouped = names.get(subdir)
        by_subdir[subdir] = names_of(subdir_records[subdir]) if grouped is None else grouped
    names = sorted(set().union(*by_subdir.values()))
    held = frozenset().union(*(_held(records.values()) for records in subdir_records.values()))

    packages: dict[str, dict[str, Any]] = {}
    for name in names:
        subdirs: list[str] = []
        records: list[Record] = []  # every record of the name, twins too
        stamps: list[Any] = []  # their timestamp values
        by_text: dict[str, list[_Found]] = {}
        add = by_text.setdefault
        for subdir, grouped in by_subdir.items():
            items = grouped.get(name)
            if items is None:
                continue
            subdirs.append(subdir)
            records.extend(items)
            published = subdir_records[subdir]
            for record in items:
                fn = record.fn
                stamps.append(record.raw.get("timestamp"))
                if fn.endswith(TAR_BZ2_SUFFIX) and fn[: -len(TAR_BZ2_SUFFIX)] + CONDA_SUFFIX in (
                    published
                ):
                    continue  # its .conda twin speaks for the same build
                add(record.raw["version"], []).append((subdir, fn, record))
        releases = _releases(by_text)
        if not releases:
            continue
        entry: dict[str, Any]
        entry, version = _about_and_version(releases, records, held)
        entry["subdirs"] = subdirs
        newest = _newest_ms(stamps)
        if newest:
            # CEP-38 wants seconds; records hold ms (timestamp_ms already lifted old
            # second-based values, so one division serves both).
            entry["timestamp"] = newest // 1000
        entry["version"] = version
        if exports.keys() & subdirs:
            found = [item for release in by_text.values() for item in release]
            by_version = _run_exports(list(map(_candidate, found)), exports, raws)
            if by_version:
                entry["run_exports"] = by_version
        packages[name] = dict(sorted(entry.items()))

    return {
        "channeldata_version": CHANNELDATA_VERSION,
        "packages": packages,
        "subdirs": sorted(subdir_records),
    }
