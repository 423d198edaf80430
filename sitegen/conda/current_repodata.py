"""Choose the records of one subdir that belong in ``current_repodata.json``.

``current_repodata.json`` is the small index conda's classic solver tries first: if a request
can be solved from it, the full ``repodata.json`` is never loaded. It therefore has to hold what
a fresh install most likely needs, and conda-index defines that as three steps over the
(filtered, patched) records of a subdir:

1. **Newest.** For every package name, all builds of its newest version (conda version
   ordering), in both formats.
2. **Dependency back-fill, one pass.** For every dependency spec of the records from step 1 that
   no step-1 record satisfies, all builds of the newest version of that name that satisfies it.
   Only the step-1 records' dependencies are examined and only against the step-1 set; the added
   records' own dependencies are not chased further, exactly as conda-index does (the solver
   falls back to the full repodata when the small one is not enough). Virtual packages
   (``__glibc`` ...) never appear in a subdir and are skipped; specs naming packages that are
   absent, or that nothing satisfies, add nothing.
3. **Pre-feature version.** For a name where some kept record carries ``track_features`` or
   ``features`` (the MKL/nomkl pattern: the featured build is de-prioritised by the solver), also
   keep the featureless builds of the newest version that has any, so that a solve which must
   avoid the feature still finds a candidate in the small index.

Differences from conda-index, on purpose:

- conda-index selects "all builds of version V" with the fuzzy spec ``name=V``, which also
  catches ``V.1``, ``V.post1`` and so on; we select records whose version *equals* V in conda
  ordering (so ``1.0`` and ``1.0.0`` are the same version), which is what the algorithm means.
- conda-index keeps a single record for the pre-feature version; we keep all of its featureless
  builds so both package formats and every Python variant are there.
- conda-index reads the subdir through conda's ``SubdirData``, which hides a ``.tar.bz2`` whose
  ``.conda`` twin exists, so its output drops those ``.tar.bz2`` records. We keep both twins:
  clients running with ``use_only_tar_bz2`` must find the ``.tar.bz2`` in every index we
  publish.
- Names are the records' ``name`` as written, so ``Foo`` and ``foo`` each keep their newest
  version. conda-index groups by that name too, but picks each group's newest builds with a
  ``MatchSpec``, whose name conda lower-cases and then compares with the record's as written:
  records named in capitals never reach its output (nor can conda's solver use them). We keep
  them, as every reader of repodata.json finds them there. For the back-fill we follow conda: a
  spec (lower case) is satisfied only by records whose name is spelled exactly so.
- No "pins" (conda-index's ``--current-index-versions-file``) yet.

Speed: conda-index needs ~171 s for 500k records because it builds a conda record object for
every record and matches with conda's Python MatchSpec. Here records are grouped by name once,
versions are compared as cached ``rattler.Version`` objects, and a rattler record is built only
for records a dependency spec is actually tested against.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import compress, repeat
from operator import attrgetter, itemgetter
from typing import Any

from rattler import MatchSpec, Version, VersionSpec

from sitegen.conda.records import Record, names_of
from sitegen.conda.version import (
    SPEC_FULL,
    InvalidSpecError,
    InvalidVersionError,
    RecordMatcher,
    build_matches,
    parse_version,
    plain_build_pattern,
    read_matchspec,
    read_version_spec,
    spec_kind,
)
from sitegen.gc_pause import gc_paused


class _Release:
    """All records (every build, both formats) of one version of one name.

    Versions are merged by conda equality, so ``1.0`` and ``1.0.0`` form one release;
    ``spellings`` holds each of its version strings parsed (a version spec may tell them apart),
    ``texts`` those strings. Its records are found when first asked for (see :class:`_Name`):
    the dependency back-fill decides most specs from the versions alone.
    """

    __slots__ = ("_name", "_records", "spellings", "texts", "version")

    def __init__(self, name: _Name, version: Version, text: str) -> None:
        self._name = name
        self.version = version
        self.spellings = [version]
        self.texts = [text]
        self._records: list[Record] | None = None

    @property
    def records(self) -> list[Record]:
        if self._records is None:
            self._records = self._name.records_of(self.texts)
        return self._records


class _Name:
    """One package name's records, and the version text of each (in the same order).

    ``newest`` is its newest release, all that step 1 needs of most names; the older ones are
    made only for a name that a dependency spec looks past its newest version in (the full
    list of every name would be ~250,000 releases at conda-forge scale, held through the
    publishing of the subdir)."""

    __slots__ = ("_asked", "_by_text", "_releases", "newest", "records", "versions")

    def __init__(self, records: list[Record]) -> None:
        self.records = records
        self.versions: list[str] = list(map(_VERSION, map(_RAW, records)))
        self._by_text: dict[str, list[Record]] | None = None
        self._asked = False
        self._releases: list[_Release] | None = None
        parsed = self._parsed()
        self.newest = self._merged(parsed[: 1 + _equal_to_first(parsed)])[0] if parsed else None

    def _parsed(self) -> list[tuple[Version, str]]:
        """Each distinct version text parsed, newest first."""
        parsed: list[tuple[Version, str]] = []
        for text in dict.fromkeys(self.versions):
            try:
                parsed.append((parse_version(text), text))
            except InvalidVersionError:
                # Cannot be ordered against its siblings, so it can be neither "newest" nor a
                # candidate; parse_repodata already rejects these, this is a backstop.
                continue
        parsed.sort(key=itemgetter(0), reverse=True)
        return parsed

    def _merged(self, parsed: list[tuple[Version, str]]) -> list[_Release]:
        releases: list[_Release] = []
        for version, text in parsed:
            # "1.0" and "1.0.0" are one version to conda: merge them into one release.
            if releases and releases[-1].version == version:
                releases[-1].spellings.append(version)
                releases[-1].texts.append(text)
            else:
                releases.append(_Release(self, version, text))
        return releases

    def release(self, index: int) -> _Release:
        """The release at ``index`` in newest-first order (0: ``newest``)."""
        if index == 0 and self.newest is not None:
            return self.newest
        return self.releases()[index]

    def releases(self) -> list[_Release]:
        """The name's releases, newest first (none when no version parses); ``newest`` is
        the first of them."""
        if self._releases is None:
            releases = self._merged(self._parsed())
            if releases:
                releases[0] = self.newest  # the one whose records may be known already
            self._releases = releases
        return self._releases

    def records_of(self, texts: list[str]) -> list[Record]:
        """The records whose version text is one of ``texts``."""
        if self._by_text is None:
            if not self._asked:
                # The first release asked for (most often the only one, the newest): picked
                # out in C, no bytecode per record.
                self._asked = True
                wanted = set(texts)
                return list(compress(self.records, map(wanted.__contains__, self.versions)))
            # A second one: the name's older releases are looked into, each record placed once.
            by_text: dict[str, list[Record]] = {}
            add = by_text.setdefault
            for text, record in zip(self.versions, self.records, strict=True):
                add(text, []).append(record)
            self._by_text = by_text
        return [record for text in texts for record in self._by_text[text]]


def _equal_to_first(parsed: list[tuple[Version, str]]) -> int:
    """How many versions after the first of ``parsed`` (sorted) equal it."""
    first = parsed[0][0]
    count = 0
    for version, _text in parsed[1:]:
        if version != first:
            break
        count += 1
    return count


_RAW = attrgetter("raw")
_VERSION = itemgetter("version")


def has_features(raw: dict[str, Any]) -> bool:
    """True when the record carries ``track_features`` or ``features`` (string or list)."""
    for key in ("track_features", "features"):
        value = raw.get(key)
        if not value:
            continue
        if isinstance(value, str):
            # conda joins several with spaces or commas; blank means none.
            if value.replace(",", " ").strip():
                return True
        else:
            return True
    return False


def _names_by_name(names: Mapping[str, list[Record]]) -> dict[str, _Name]:
    """Each name with its records, from the records grouped by their exact ``name`` (``Foo``
    and ``foo`` are two names, as in conda's ``Resolve.groups``); a name none of whose versions
    parses is left out."""
    out: dict[str, _Name] = {}
    for name, group in names.items():
        entry = _Name(group)
        if entry.newest is not None:
            out[name] = entry
    return out


def current_records(
    records: dict[str, Record],
    matcher: RecordMatcher,
    names: Mapping[str, list[Record]] | None = None,
) -> dict[str, Record]:
    """The subset of one subdir's records that conda-index would put in current_repodata.json.

    ``records`` are the subdir's published records (already filtered and patched: a hotfix only
    reaches classic-solver users if the patched record is what lands here); ``names``, the same
    grouped by name (:func:`sitegen.conda.records.names_of`), when the caller has them. The
    result keeps the input's keys and order; the records are the same objects, unchanged.
    """
    # Groups, releases and sets by the hundred thousand, none in a cycle: without the pause
    # they set off full collections over and over (~2 s at 800,000 records).
    with gc_paused():
        return _current_records(records, names_of(records) if names is None else names, matcher)


def _current_records(
    records: dict[str, Record], names: Mapping[str, list[Record]], matcher: RecordMatcher
) -> dict[str, Record]:
    by_name = _names_by_name(names)
    # Step 1: all builds of each name's newest version (release 0 of each name).
    kept: dict[str, set[int]] = {name: {0} for name in by_name}

    # Step 2: one pass of dependency back-fill over step-1 records, judged against step 1 only.
    # Each distinct spec once; the specs are gathered in C (no bytecode per record).
    specs: set[Any] = set()
    for entry in by_name.values():
        raws = list(map(_RAW, entry.newest.records))
        for depends in filter(None, map(dict.get, raws, repeat("depends"))):
            specs.update(compress(depends, map(isinstance, depends, repeat(str))))
    for spec in specs:
        found = _backfill(spec, by_name, matcher)
        if found is not None:
            kept[found[0]].add(found[1])

    chosen: set[int] = set()
    for name, indexes in kept.items():
        entry = by_name[name]
        for index in indexes:
            chosen.update(map(id, entry.release(index).records))
        # Step 3: the featureless builds of the newest version that has any, beside featured
        # ones. (conda-index looks at versions <= the newest kept one: that is all of them,
        # since step 1 kept the newest.)
        if any(_featured(entry.release(i).records) for i in indexes):
            for release in entry.releases():
                featureless = [r for r in release.records if not has_features(r.raw)]
                if featureless:
                    chosen.update(map(id, featureless))
                    break

    # .conda records go out exactly as upstream wrote them. conda-index adds legacy_bz2_md5 from
    # the .tar.bz2 twin "to prevent package churn", but the upstream record is the truth: we do
    # not invent fields, and every record must read the same here as in repodata.json.
    return dict(compress(records.items(), map(chosen.__contains__, map(id, records.values()))))


def _featured(records: list[Record]) -> bool:
    """Whether any of ``records`` has features; in C for the many that hold neither key set."""
    raws = list(map(_RAW, records))
    if not any(map(dict.get, raws, repeat("track_features"))) and not any(
        map(dict.get, raws, repeat("features"))
    ):
        return False
    return any(map(has_features, raws))


def _backfill(
    spec: str, by_name: dict[str, _Name], matcher: RecordMatcher
) -> tuple[str, int] | None:
    """(name, release index) to add for a spec that step 1 leaves unsatisfied, else None.

    Releases are scanned newest first, so the first one with a matching build is the newest
    satisfying version; when that is release 0 (step 1's own), nothing needs adding. The spec
    is parsed here for this once (see version.read_matchspec): the 40,000 distinct specs of
    conda-forge's records, kept, would be ~40 MB held through the publishing of the subdir.
    """
    try:
        match_spec = read_matchspec(spec)
    except InvalidSpecError:
        # conda would refuse such a record at solve time anyway; nothing sensible to add.
        return None
    name = match_spec.name.normalized
    if name.startswith("__"):
        return None
    # The spec's name is lower case; conda compares it with a record's name as written, so a
    # record named "PyYAML" satisfies no spec and only the group spelled in lower case counts.
    entry = by_name.get(name)
    if entry is None:
        return None
    version_spec = read_version_spec(str(match_spec.version)) if match_spec.version else None
    # A spec of a name and a version only (most are) is decided by the versions, one of a
    # name, a version and a plain build string pattern by those and the build strings: no
    # build need be built as a rattler record (at 800,000 records those took ~0.4 GB and
    # seconds). The rest is matched by rattler, build by build.
    understood = version_spec is not None or not match_spec.version
    by_version = understood and spec_kind(match_spec, name) != SPEC_FULL
    pattern = plain_build_pattern(match_spec, name) if understood and not by_version else None

    def found(release: _Release) -> bool:
        if by_version:
            return version_spec is None or any(map(version_spec.matches, release.spellings))
        if pattern is not None:
            return _any_build_match(pattern, version_spec, release)
        return _any_match(match_spec, version_spec, release, matcher)

    if found(entry.newest):
        return None
    for index, release in enumerate(entry.releases()[1:], start=1):
        if found(release):
            return name, index
    return None


def _any_build_match(pattern: str, version_spec: VersionSpec | None, release: _Release) -> bool:
    if version_spec is not None and not version_spec.matches(release.version):
        return False
    return any(
        build_matches(pattern, r.raw["build"])
        and (version_spec is None or version_spec.matches(parse_version(r.raw["version"])))
        for r in release.records
    )


def _any_match(
    match_spec: MatchSpec,
    version_spec: VersionSpec | None,
    release: _Release,
    matcher: RecordMatcher,
) -> bool:
    # A version the constraint rejects cannot match in any build, and testing the Version costs
    # far less than the rattler record the full match needs for each build (~8 µs apiece).
    if version_spec is not None and not version_spec.matches(release.version):
        return False
    return any(matcher.matches(match_spec, r.raw) for r in release.records)
