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

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import msgspec
from rattler import Version

from sitegen.conda.records import Record, gc_paused
from sitegen.conda.run_exports import EMPTY
from sitegen.conda.schema import CONDA_SUFFIX, TAR_BZ2_SUFFIX
from sitegen.conda.version import InvalidVersionError, parse_version, timestamp_ms

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


def _newest_first(candidates: list[_Candidate]) -> list[Record]:
    """One name's records, newest first by conda ordering, deterministically."""
    by_text: defaultdict[str, list[_Candidate]] = defaultdict(list)
    for candidate in candidates:
        by_text[candidate[5].raw["version"]].append(candidate)
    parsed: list[tuple[Version, list[_Candidate]]] = []
    for text, group in by_text.items():
        try:
            parsed.append((parse_version(text), group))
        except InvalidVersionError:
            continue  # cannot be ordered; parse_repodata already rejects these
    # Versions are compared once per distinct string; within a version only plain ints and
    # strings remain, which sort far faster than rattler Versions.
    parsed.sort(key=lambda item: item[0], reverse=True)
    ordered: list[Record] = []
    index = 0
    while index < len(parsed):
        version, release = parsed[index][0], list(parsed[index][1])
        index += 1
        # "1.0" and "1.0.0" are one version to conda: order their builds together.
        while index < len(parsed) and parsed[index][0] == version:
            release.extend(parsed[index][1])
            index += 1
        release.sort(reverse=True)
        ordered.extend(candidate[5] for candidate in release)
    return ordered


def _about(ordered: list[Record]) -> dict[str, str]:
    """Each about-field from the newest record that has it."""
    found: dict[str, str] = {}
    for record in ordered:
        # A package indexed here brings its about.json; the record's own fields come first.
        fields = record.raw if record.about is None else {**record.about, **record.raw}
        # Most repodata records carry none of these: one C-level set operation rules them out.
        for field in _ABOUT_SET.intersection(fields.keys()):
            value = fields[field]
            # Only strings: the values are upstream's and end up in pages and clients that
            # expect text, so a list or object here is dropped rather than passed on.
            if field not in found and isinstance(value, str) and value.strip():
                found[field] = value
        if len(found) == len(ABOUT_FIELDS):
            break
    return found


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
    subdir_records: dict[str, dict[str, Record]], run_exports: SubdirExports | None = None
) -> dict[str, Any]:
    """channeldata.json for a channel, from each subdir's published records (keyed by fn) and
    the run_exports known of them (``run_exports``: by subdir, then fn; a subdir without
    any left out)."""
    # A tuple per record and a list per name, none in a cycle: the cyclic GC, which they
    # would set off over and over (~1 s at 800,000 records), has nothing to find in them.
    with gc_paused():
        return _build_channeldata(subdir_records, run_exports or {})


def _build_channeldata(
    subdir_records: dict[str, dict[str, Record]], run_exports: SubdirExports
) -> dict[str, Any]:
    exports = {subdir: known for subdir, known in run_exports.items() if known}
    raws: dict[bytes, msgspec.Raw] = {}
    candidates: defaultdict[str, list[_Candidate]] = defaultdict(list)
    subdirs_of: defaultdict[str, set[str]] = defaultdict(set)
    newest_ms: defaultdict[str, int] = defaultdict(int)
    for subdir, records in subdir_records.items():
        conda_stems = {fn[: -len(CONDA_SUFFIX)] for fn in records if fn.endswith(CONDA_SUFFIX)}
        for fn, record in records.items():
            raw = record.raw
            name = raw["name"]
            ms = timestamp_ms(raw)
            subdirs_of[name].add(subdir)
            if ms > newest_ms[name]:
                newest_ms[name] = ms
            is_conda = fn.endswith(CONDA_SUFFIX)
            if (
                not is_conda
                and fn.endswith(TAR_BZ2_SUFFIX)
                and fn[: -len(TAR_BZ2_SUFFIX)] in conda_stems
            ):
                continue  # its .conda twin speaks for the same build
            build_number = raw.get("build_number", 0)
            if not isinstance(build_number, int):
                build_number = 0
            candidates[name].append((build_number, ms, is_conda, subdir, fn, record))

    packages: dict[str, dict[str, Any]] = {}
    for name in sorted(candidates):
        ordered = _newest_first(candidates[name])
        if not ordered:
            continue
        entry: dict[str, Any] = _about(ordered)
        entry["subdirs"] = sorted(subdirs_of[name])
        if newest_ms[name]:
            # CEP-38 wants seconds; records hold ms (timestamp_ms already lifted old
            # second-based values, so one division serves both).
            entry["timestamp"] = newest_ms[name] // 1000
        entry["version"] = ordered[0].version
        if exports:
            by_version = _run_exports(candidates[name], exports, raws)
            if by_version:
                entry["run_exports"] = by_version
        packages[name] = dict(sorted(entry.items()))

    return {
        "channeldata_version": CHANNELDATA_VERSION,
        "packages": packages,
        "subdirs": sorted(subdir_records),
    }
