"""Security advisories in the OSV format (https://ossf.github.io/osv-schema/), read offline.

There is no public vulnerability feed for conda packages, so operators bring OSV files (one
advisory per file, or a JSON list of them): written for conda, or those of other ecosystems
(PyPI, npm...) joined with conda names through a purl mapping (see
:mod:`sitegen.filters.identities`). Each ``affected`` entry is kept with the key of its package
(:mod:`sitegen.filters.purls`): the conda name for the ``conda`` ecosystem or a
``pkg:conda/<name>`` purl, ``<purl type>/<name>`` for an ecosystem with a purl type; entries of
other ecosystems (Linux distributions) are read and ignored. Versions compare in conda order
(``1.0a1 < 1.0 < 1.0.post1``); ``ECOSYSTEM`` and ``SEMVER`` ranges are evaluated with the
schema's algorithm, ``GIT`` ranges name commits, which conda records do not carry, so they match
nothing.

Everything is validated on reading: a malformed file is an :class:`OsvError` naming the JSON path
(or line, for a syntax error) of the problem, so a broken advisory stops a run before anything is
touched instead of silently letting records through. An entry of another ecosystem that is
malformed (a version conda cannot parse, most often) is skipped instead: third-party databases
are not the operator's to fix, and the rest of the file still counts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sitegen.conda.version import InvalidVersionError, parse_version
from sitegen.config.operator_files import (
    MAX_FILE_BYTES,
    OperatorFileError,
    tree_files,
)
from sitegen.config.yaml_nodes import shown_reason, shown_value
from sitegen.filters.json_nodes import JsonFileError, JsonNode, load_json, read_json_bytes
from sitegen.filters.osv_severity import severity_scores
from sitegen.filters.osv_versions import Events, VersionIndex
from sitegen.filters.purls import PURL_TYPES, PurlError, ecosystem_key, may_name_conda, parse_purl

if TYPE_CHECKING:
    from rattler import Version  # for annotations: rattler loads when a version is parsed

RANGE_TYPES = ("ECOSYSTEM", "SEMVER", "GIT")
EVENT_KEYS = ("introduced", "fixed", "last_affected", "limit")
# PEP 440's development release segment, always the last of a public version: ".dev1", "-dev",
# "_DEV2" (see Affected.compared).
_PEP440_DEV = re.compile(r"[._-]?dev(\d*)$", re.IGNORECASE)
# A leap second's seconds field ("23:59:60Z"): RFC 3339 allows it, datetime has no such second.
_LEAP_SECOND = re.compile(r"(?<=[T ]\d\d:\d\d:)60(?=(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)$)")
# Published ids are a few tens of characters (GHSA-xxxx-xxxx-xxxx, PYSEC-2023-74); a record
# kept out names its advisory in the run's record, once per file, and on the history pages.
MAX_ID_CHARS = 200


# An advisory file's errors are those of any operator JSON file: file and JSON path.
OsvError = JsonFileError


@dataclass(frozen=True)
class VersionRange:
    """One ``ranges[]`` entry: ``events`` as (kind, version text) in the file's order, which
    :class:`sitegen.filters.osv_versions.VersionIndex` evaluates."""

    type: str
    events: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Affected:
    """One ``affected[]`` entry of a package sitegen can name (see the module docstring)."""

    name: str  # the package's key: a lower-cased conda name, or "<purl type>/<name>"
    ranges: tuple[VersionRange, ...]
    versions: tuple[str, ...]
    score: float | None  # this entry's own severity, when it has one
    # Its own severity could not be scored (a feed's, see Advisory.unscored): it blocks at any
    # min_score, rather than fall back on the advisory's score.
    unscored: bool = False

    def contains(self, version: str) -> bool:
        return self._named.contains(self.compared(version))

    def among(self, versions: Sequence[Version]) -> list[tuple[int, int]]:
        """Which of these versions it names, as runs of their positions (start, end): each
        version as this entry compares it (see :meth:`compared`), parsed, in conda order."""
        return self._named.among(versions)

    @cached_property
    def _named(self) -> VersionIndex:
        """Its versions and ranges indexed (once, when first asked), so a check costs the same
        however many it lists."""
        return VersionIndex(*self.compared_events)

    @property
    def compared_events(self) -> tuple[tuple[str, ...], tuple[Events, ...]]:
        """Its listed versions and the events of its ranges but GIT ones, as it compares them."""
        compared = self.compared
        return tuple(map(compared, self.versions)), tuple(
            tuple((kind, compared(text)) for kind, text in r.events)
            for r in self.ranges
            if r.type != "GIT"
        )

    def __getstate__(self) -> dict[str, Any]:
        # Pickled (the package pages' worker processes are sent it) without its index:
        # rattler's versions cannot be pickled, and the index is made again when first asked.
        state = dict(self.__dict__)
        state.pop("_named", None)
        return state

    def compared(self, version: str) -> str:
        """A version as this entry's ranges compare it (its package key alone decides how): a
        conda package's as it is; another ecosystem's without its local part (``1.0+cpu`` as
        ``1.0``). PEP 440 places a local version just above its public one and SemVer's build
        metadata does not count, while conda places ``1.0+cpu`` below ``1.0``: compared whole,
        it would fall outside a range introduced at ``1.0`` that affects it. A PyPI entry's
        development release is written as conda orders it (``1.0.dev1`` as ``1.0dev1``): PEP
        440 places it below ``1.0a1``, conda the dotted form above, which would take it out of
        a range fixed at ``1.0a1``."""
        if "/" not in self.name:
            return version
        public = version.partition("+")[0]
        return _PEP440_DEV.sub(r"dev\1", public) if self.name.startswith("pypi/") else public


@dataclass(frozen=True)
class Advisory:
    id: str
    aliases: tuple[str, ...]
    summary: str
    score: float | None  # highest base score of its severity entries; None: unscored
    vectors: tuple[str, ...]  # the CVSS vectors as written
    affected: tuple[Affected, ...]
    withdrawn: bool = False
    # Entries of other ecosystems left out as malformed: "<JSON path>: <problem>".
    skipped: tuple[str, ...] = ()
    # Severity entries that could not be scored, in a feed's archive: "<JSON path>: <problem>".
    # What they score counts as unscored (the advisory's ``score`` None, or the affected
    # entry's ``unscored``), which blocks at any min_score.
    unscored: tuple[str, ...] = ()

    @property
    def names(self) -> frozenset[str]:
        return frozenset(a.name for a in self.affected)

    @cached_property
    def folded_ids(self) -> frozenset[str]:
        """Its id and aliases, case-folded: an ``allow`` list names them in any case."""
        return frozenset(i.casefold() for i in (self.id, *self.aliases))

    def score_for(self, affected: Affected) -> float | None:
        if affected.unscored:
            return None
        return affected.score if affected.score is not None else self.score

    def entries_for(self, name: str | Iterable[str]) -> list[Affected]:
        """The affected entries naming a package, in the advisory's order (the first naming a
        version is the one that affects it): ``name`` is a package key, or several keys of one
        package (its conda name and its upstream identities)."""
        keys = (name,) if isinstance(name, str) else set(name)
        named = [e for key in keys for e in self._by_name.get(key, ())]
        return [entry for _position, entry in sorted(named, key=itemgetter(0))]

    @cached_property
    def _by_name(self) -> dict[str, list[tuple[int, Affected]]]:
        """Its entries by package key, with their positions: a check meets only the entries of
        its package, in the advisory's order."""
        by_name: dict[str, list[tuple[int, Affected]]] = {}
        for position, entry in enumerate(self.affected):
            by_name.setdefault(entry.name, []).append((position, entry))
        return by_name


def load_files(paths: Iterable[Path]) -> tuple[Advisory, ...]:
    """Every advisory of these files (a directory stands for the ``*.json`` files below it, at
    any depth: see tree_files)."""
    advisories: list[Advisory] = []
    for path in paths:
        files = _tree(path) if path.is_dir() else [path]
        for file in files:
            advisories.extend(read_file(file))
    return tuple(advisories)


def _tree(directory: Path) -> list[Path]:
    try:
        return tree_files(directory, ".json")
    except OperatorFileError as exc:
        raise OsvError(directory, "", str(exc)) from None


def read_file(file: Path) -> list[Advisory]:
    return parse_bytes(read_json_bytes(file, MAX_FILE_BYTES), file)


def parse_bytes(data: bytes, file: Path, *, unscored_ok: bool = False) -> list[Advisory]:
    """The advisories of one file's bytes: one OSV object or a list of them. With
    ``unscored_ok``, a severity entry that cannot be scored (its vector unreadable, its
    ``type`` or ``score`` missing) makes its advisory unscored (see
    :attr:`Advisory.unscored`) instead of an error."""
    document = load_json(data, file)
    if isinstance(document, list):
        return [
            _advisory(JsonNode(item, f"[{i}]", file), unscored_ok)
            for i, item in enumerate(document)
        ]
    return [_advisory(JsonNode(document, "", file), unscored_ok)]


def _advisory(node: JsonNode, unscored_ok: bool) -> Advisory:
    node.object()
    advisory_id = _identifier(node.require("id"))
    aliases = node.get("aliases")
    summary = node.get("summary")
    severity = node.get("severity")
    vectors, score, unscored = severity_scores(severity, unscored_ok)
    affected_node = node.get("affected")
    affected, skipped = [], []
    for item in affected_node.items() if affected_node else ():
        try:
            entry = _affected(item, unscored_ok, unscored)
        except _Skipped as exc:
            skipped.append(f"{exc.error.where}: {exc.error.message}")
            continue
        if entry is not None:
            affected.append(entry)
    return Advisory(
        id=advisory_id,
        aliases=tuple(_identifier(a) for a in aliases.items()) if aliases else (),
        summary=summary.string() if summary else "",
        score=score,
        vectors=vectors,
        affected=tuple(affected),
        withdrawn=_withdrawn(node.get("withdrawn")),
        skipped=tuple(skipped),
        unscored=tuple(unscored),
    )


def id_problem(text: str) -> str | None:
    """Why ``text`` cannot be an advisory's id or alias (or an ``allow`` entry naming one);
    None when it can. Ids are shown in the run's log (a record kept out for one is counted
    under ``advisory <id>``): one holding a newline or a terminal escape could forge log lines
    or rewrite the operator's screen, and one of only blanks would read as no id at all. A
    longer one than :data:`MAX_ID_CHARS` would be written once per file it blocks: an id of
    megabytes blocking a package of many builds would make each run's record gigabytes."""
    if not text.isprintable():
        return f"expected an id of printable characters, got {shown_value(text)}"
    if not text.strip():
        return f"expected an id, got {shown_value(text)}"
    if len(text) > MAX_ID_CHARS:
        return f"expected an id of at most {MAX_ID_CHARS} characters, got {shown_value(text)}"
    return None


def _identifier(node: JsonNode) -> str:
    """An advisory's id or alias (see :func:`id_problem`)."""
    text = node.string()
    if (why := id_problem(text)) is not None:
        raise node.error(why)
    return text


def _withdrawn(node: JsonNode | None) -> bool:
    """Whether the advisory is withdrawn: ``withdrawn`` holds the time it was (RFC 3339, a
    leap second such as ``2016-12-31T23:59:60Z`` included). A withdrawn advisory blocks
    nothing, so anything else there (``false``, ``0``, ``""``) is an error rather than a
    withdrawal."""
    if node is None:
        return False
    text = node.string()
    # A leap second is read as the last second of its minute: only whether it is a time counts.
    moment = _LEAP_SECOND.sub("59", text.upper())
    try:
        datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        raise node.error(
            f"expected the time of withdrawal (RFC 3339), got {shown_value(text)}"
        ) from None
    return True


class _Skipped(Exception):
    """An entry of another ecosystem that is malformed: left out, not an error of the file."""

    def __init__(self, error: JsonFileError) -> None:
        super().__init__(str(error))
        self.error = error


def _affected(node: JsonNode, unscored_ok: bool, unscored: list[str]) -> Affected | None:
    """The entry when it concerns a package sitegen can name, else None: versions of other
    ecosystems (Debian's ``1:2.3-4``, commits) need not be conda versions. With
    ``unscored_ok``, why its own severity cannot be scored goes to ``unscored``."""
    package = node.get("package")
    try:
        found = _package_key(package) if package else None
    except JsonFileError as exc:
        # A purl or name that cannot be read: skipped as the entry's other faults are, unless
        # it may name a conda package (then it refuses the file, as a conda entry's faults do).
        if package is None or may_name_conda(package.value):
            raise
        raise _Skipped(exc) from None
    if found is None:
        return None
    assert package is not None
    key, purl_version, conda = found
    try:
        ranges = node.get("ranges")
        versions = node.get("versions")
        listed = []
        for item in versions.items() if versions else ():
            listed.append(item.string())
            _version(listed[-1], item.path, node.file)
        if purl_version is not None:
            purl = package.require("purl")
            _version(purl_version, purl.path, package.file)
            listed.append(purl_version)
        parsed_ranges = tuple(_range(r) for r in ranges.items()) if ranges else ()
        severity = node.get("severity")
        _vectors, score, problems = severity_scores(severity, unscored_ok)
        unscored.extend(problems)  # the entry is kept from here on
        return Affected(
            name=key,
            ranges=parsed_ranges,
            versions=tuple(listed),
            score=score,
            unscored=bool(problems),
        )
    except JsonFileError as exc:
        if conda:
            raise
        raise _Skipped(exc) from None


def _package_key(package: JsonNode) -> tuple[str, str | None, bool] | None:
    """(key, the version a purl names, whether it is a conda package) of an entry's package;
    None when it is of an ecosystem without a purl type."""
    ecosystem = package.get("ecosystem")
    name = package.get("name")
    purl_node = package.get("purl")
    if purl_node is not None:
        try:
            purl = parse_purl(purl_node.string())
        except PurlError as exc:
            raise purl_node.error(str(exc)) from None
        if purl.type == "conda" or purl.type in PURL_TYPES:
            return purl.key, purl.version, purl.type == "conda"
    if ecosystem is None:
        if name is not None:
            name.string()
        return None
    text = ecosystem.string()
    if text.split(":")[0].lower() == "conda":
        return package.require("name").string().lower(), None, True
    key = ecosystem_key(text, package.require("name").string())
    return (key, None, False) if key is not None else None


def _range(node: JsonNode) -> VersionRange:
    kind = node.require("type").string()
    if kind not in RANGE_TYPES:
        raise node.require("type").error(
            f"unknown range type {shown_value(kind)}; expected one of {', '.join(RANGE_TYPES)}"
        )
    events: list[tuple[str, str]] = []
    for item in node.require("events").items():
        fields = item.object()
        if len(fields) != 1 or next(iter(fields)) not in EVENT_KEYS:
            raise item.error(
                f"an event is one of {', '.join(EVENT_KEYS)},"
                f" got {shown_value(', '.join(sorted(fields)))}"
            )
        key = next(iter(fields))
        value = item.require(key)
        text = value.string()
        # GIT events are commits; "0" and a "*" limit stand for no version at all.
        if kind != "GIT" and (key, text) not in (("introduced", "0"), ("limit", "*")):
            _version(text, value.path, node.file)
        events.append((key, text))
    kinds = {k for k, _ in events}
    if "introduced" not in kinds:
        raise node.error("a range needs an 'introduced' event")
    # The schema wants one kind of upper bound per range; one holding both (published feeds
    # do) is walked as any range is (see osv_versions), rather than dropped with what it
    # affects: an advisory file refused, or a feed's entry left out, blocks nothing.
    return VersionRange(kind, tuple(events))


def _version(text: Any, path: str, file: Path) -> None:
    try:
        parse_version(str(text))
    except InvalidVersionError as exc:
        raise OsvError(
            file, path, f"invalid conda version {shown_value(str(text))}: {shown_reason(str(exc))}"
        ) from None
