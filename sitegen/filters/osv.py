"""Security advisories in the OSV format (https://ossf.github.io/osv-schema/), read offline.

There is no public vulnerability feed for conda packages, so operators bring their own OSV files
(one advisory per file, or a JSON list of them). An ``affected`` entry applies to conda records
when its package names the ``conda`` ecosystem or carries a ``pkg:conda/<name>`` purl; entries of
other ecosystems are read, checked and ignored. Versions compare in conda order
(``1.0a1 < 1.0 < 1.0.post1``); ``ECOSYSTEM`` and ``SEMVER`` ranges are evaluated with the
schema's algorithm, ``GIT`` ranges name commits, which conda records do not carry, so they match
nothing.

Everything is validated on reading: a malformed file is an :class:`OsvError` naming the JSON path
(or line, for a syntax error) of the problem, so a broken advisory stops a run before anything is
touched instead of silently letting records through.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError

from sitegen.conda.version import InvalidVersionError, parse_version
from sitegen.config.operator_files import (
    MAX_FILE_BYTES,
    OperatorFileError,
    read_capped,
    tree_files,
)

# An advisory is a few kilobytes; a file far above this is not an advisory file.
RANGE_TYPES = ("ECOSYSTEM", "SEMVER", "GIT")
EVENT_KEYS = ("introduced", "fixed", "last_affected", "limit")


class OsvError(ValueError):
    """A file that is not a valid OSV advisory: ``where`` is a JSON path or ``line N``."""

    def __init__(self, file: Path, where: str, message: str) -> None:
        super().__init__(f"{file}: {where}: {message}" if where else f"{file}: {message}")
        self.file = file
        self.where = where


@dataclass(frozen=True)
class VersionRange:
    """One ``ranges[]`` entry: ``events`` as (kind, version text) in the file's order."""

    type: str
    events: tuple[tuple[str, str], ...]

    def contains(self, version: str) -> bool:
        if self.type == "GIT":
            return False
        v = parse_version(version)
        limits = [parse_version(t) for k, t in self.events if k == "limit" and t != "*"]
        if limits and all(v >= limit for limit in limits):
            return False
        affected = False
        # The schema's evaluation: walk the events in version order ("0" first).
        for kind, text in sorted(
            (e for e in self.events if e[0] != "limit"), key=lambda e: _event_order(e[1])
        ):
            if kind == "introduced" and (text == "0" or v >= parse_version(text)):
                affected = True
            elif (kind == "fixed" and v >= parse_version(text)) or (
                kind == "last_affected" and v > parse_version(text)
            ):
                affected = False
        return affected


@dataclass(frozen=True)
class Affected:
    """One ``affected[]`` entry that concerns a conda package."""

    name: str  # lower-cased conda package name
    ranges: tuple[VersionRange, ...]
    versions: tuple[str, ...]
    score: float | None  # this entry's own severity, when it has one

    def contains(self, version: str) -> bool:
        parsed = parse_version(version)
        if any(parse_version(v) == parsed for v in self.versions):
            return True
        return any(r.contains(version) for r in self.ranges)


@dataclass(frozen=True)
class Advisory:
    id: str
    aliases: tuple[str, ...]
    summary: str
    score: float | None  # highest base score of its severity entries; None: unscored
    vectors: tuple[str, ...]  # the CVSS vectors as written
    affected: tuple[Affected, ...]
    withdrawn: bool = False

    @property
    def names(self) -> frozenset[str]:
        return frozenset(a.name for a in self.affected)

    def score_for(self, affected: Affected) -> float | None:
        return affected.score if affected.score is not None else self.score

    def affects(self, name: str, version: str) -> Affected | None:
        """The affected entry naming this conda package version, or None."""
        for entry in self.affected:
            if entry.name == name and entry.contains(version):
                return entry
        return None


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
    try:
        data = read_capped(file, MAX_FILE_BYTES)
    except FileNotFoundError as exc:
        raise OsvError(file, "", f"cannot read: {exc.strerror}") from None
    except OperatorFileError as exc:
        raise OsvError(file, "", str(exc)) from None
    return parse_bytes(data, file)


def parse_bytes(data: bytes, file: Path) -> list[Advisory]:
    """The advisories of one file's bytes: one OSV object or a list of them."""
    try:
        document = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise OsvError(file, "", "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise OsvError(file, f"line {exc.lineno}", f"not valid JSON: {exc.msg}") from None
    except ValueError as exc:
        raise OsvError(file, "", f"not valid JSON: {exc}") from None
    except RecursionError:
        # A few hundred kilobytes of brackets exhaust the decoder's stack: a bad file, which
        # must stop the configuration with its name, not crash the run with a traceback.
        raise OsvError(file, "", "not valid JSON: nested too deeply") from None
    try:
        # A lone surrogate escape ("\\ud800") reads as a str that cannot be written as UTF-8:
        # in an id or summary it would end the run (the run record, the pages) mid-way.
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise OsvError(file, "", "not UTF-8 text (a lone surrogate escape)") from None
    if isinstance(document, list):
        return [_advisory(_Node(item, f"[{i}]", file)) for i, item in enumerate(document)]
    return [_advisory(_Node(document, "", file))]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


class _Node:
    """A JSON value with its path, for errors that say where the problem is."""

    def __init__(self, value: Any, path: str, file: Path) -> None:
        self.value = value
        self.path = path
        self.file = file

    def error(self, message: str) -> OsvError:
        return OsvError(self.file, self.path or "(top level)", message)

    def get(self, key: str) -> _Node | None:
        fields = self.object()
        if key not in fields or fields[key] is None:
            return None
        return _Node(fields[key], f"{self.path}.{key}" if self.path else key, self.file)

    def require(self, key: str) -> _Node:
        node = self.get(key)
        if node is None:
            raise self.error(f"missing required key {key!r}")
        return node

    def object(self) -> dict[str, Any]:
        if not isinstance(self.value, dict):
            raise self.error("expected an object")
        return self.value

    def items(self) -> Iterator[_Node]:
        if not isinstance(self.value, list):
            raise self.error("expected a list")
        for i, item in enumerate(self.value):
            yield _Node(item, f"{self.path}[{i}]", self.file)

    def string(self) -> str:
        if not isinstance(self.value, str) or not self.value:
            raise self.error("expected a non-empty string")
        return self.value

    def strings(self) -> tuple[str, ...]:
        return tuple(item.string() for item in self.items())


def _advisory(node: _Node) -> Advisory:
    node.object()
    advisory_id = node.require("id").string()
    aliases = node.get("aliases")
    summary = node.get("summary")
    severity = node.get("severity")
    vectors, score = _severity(severity) if severity else ((), None)
    affected_node = node.get("affected")
    affected = []
    for item in affected_node.items() if affected_node else ():
        entry = _affected(item)
        if entry is not None:
            affected.append(entry)
    return Advisory(
        id=advisory_id,
        aliases=aliases.strings() if aliases else (),
        summary=summary.string() if summary else "",
        score=score,
        vectors=vectors,
        affected=tuple(affected),
        withdrawn=_withdrawn(node.get("withdrawn")),
    )


def _withdrawn(node: _Node | None) -> bool:
    """Whether the advisory is withdrawn: ``withdrawn`` holds the time it was (RFC 3339). A
    withdrawn advisory blocks nothing, so anything else there (``false``, ``0``, ``""``) is an
    error rather than a withdrawal."""
    if node is None:
        return False
    text = node.string()
    try:
        datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        raise node.error(f"expected the time of withdrawal (RFC 3339), got {text!r}") from None
    return True


def _severity(node: _Node) -> tuple[tuple[str, ...], float | None]:
    """The vectors and the highest base score of a ``severity`` list."""
    vectors, scores = [], []
    for item in node.items():
        kind = item.require("type").string()
        score_node = item.require("score")
        text = score_node.string()
        score = cvss_score(kind, text)
        if score is None:
            continue  # a qualitative scale such as Ubuntu's: no number to compare
        if isinstance(score, str):
            raise score_node.error(score)
        vectors.append(text)
        scores.append(score)
    return tuple(vectors), max(scores, default=None)


def cvss_score(kind: str, text: str) -> float | str | None:
    """The base score of a CVSS vector (or a plain number); an error message when the text is
    not valid; None for severity types that carry no CVSS score."""
    parser = {"CVSS_V2": CVSS2, "CVSS_V3": CVSS3, "CVSS_V4": CVSS4}.get(kind)
    if parser is None:
        return None
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(number) or not 0.0 <= number <= 10.0:
            return f"score {text!r} is not between 0 and 10"
        return number
    try:
        parsed = parser(text)
    except (CVSSError, ValueError, KeyError, IndexError) as exc:
        return f"invalid {kind} vector {text!r}: {exc}"
    return float(parsed.base_score if isinstance(parsed, CVSS4) else parsed.scores()[0])


def _affected(node: _Node) -> Affected | None:
    """The entry when it concerns a conda package, else None: versions of other ecosystems
    (Debian's ``1:2.3-4``, commits) need not be conda versions."""
    package = node.get("package")
    name = _conda_name(package) if package else None
    if name is None:
        return None
    ranges = node.get("ranges")
    versions = node.get("versions")
    listed = []
    for item in versions.items() if versions else ():
        listed.append(item.string())
        _version(listed[-1], item.path, node.file)
    assert package is not None
    purl_version = _purl_version(package)
    if purl_version is not None:
        listed.append(purl_version)
    severity = node.get("severity")
    _vectors, score = _severity(severity) if severity else ((), None)
    return Affected(
        name=name,
        ranges=tuple(_range(r) for r in ranges.items()) if ranges else (),
        versions=tuple(listed),
        score=score,
    )


def _conda_name(package: _Node) -> str | None:
    ecosystem = package.get("ecosystem")
    name = package.get("name")
    purl = package.get("purl")
    from_purl = _purl_name(purl) if purl else None
    if from_purl is not None:
        return from_purl
    if ecosystem and ecosystem.string().split(":")[0].lower() == "conda":
        return package.require("name").string().lower()
    if name is not None:
        name.string()
    return None


def _purl_parts(purl: _Node) -> tuple[str, str, str | None] | None:
    """(type, name, version) of a package URL, or None when it is not one."""
    text = purl.string()
    if not text.startswith("pkg:"):
        raise purl.error(f"not a package URL: {text!r}")
    body = text[4:].split("#")[0].split("?")[0]
    kind, _, rest = body.partition("/")
    if not rest:
        raise purl.error(f"package URL without a name: {text!r}")
    path, _, version = rest.partition("@")
    name = unquote(path.rsplit("/", 1)[-1])
    if not name:
        raise purl.error(f"package URL without a name: {text!r}")
    return kind.lower(), name.lower(), unquote(version) or None


def _purl_name(purl: _Node) -> str | None:
    parts = _purl_parts(purl)
    return parts[1] if parts and parts[0] == "conda" else None


def _purl_version(package: _Node) -> str | None:
    purl = package.get("purl")
    parts = _purl_parts(purl) if purl else None
    if parts is None or parts[0] != "conda" or parts[2] is None:
        return None
    assert purl is not None
    _version(parts[2], purl.path, package.file)
    return parts[2]


def _range(node: _Node) -> VersionRange:
    kind = node.require("type").string()
    if kind not in RANGE_TYPES:
        raise node.require("type").error(
            f"unknown range type {kind!r}; expected one of {', '.join(RANGE_TYPES)}"
        )
    events: list[tuple[str, str]] = []
    for item in node.require("events").items():
        fields = item.object()
        if len(fields) != 1 or next(iter(fields)) not in EVENT_KEYS:
            raise item.error(f"an event is one of {', '.join(EVENT_KEYS)}, got {sorted(fields)}")
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
    if {"fixed", "last_affected"} <= kinds:
        raise node.error("a range has either 'fixed' or 'last_affected' events, not both")
    return VersionRange(kind, tuple(events))


def _version(text: Any, path: str, file: Path) -> None:
    try:
        parse_version(str(text))
    except InvalidVersionError as exc:
        raise OsvError(file, path, f"invalid conda version {text!r}: {exc}") from None


def _event_order(text: str) -> tuple[int, Any]:
    # "0" stands for "before every version", below anything conda can parse.
    return (0, 0) if text == "0" else (1, parse_version(text))
