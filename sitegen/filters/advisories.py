"""``advisories``: leave out records that a security advisory (OSV format) names.

```yaml
filters:
  advisories:
    files: [advisories/, extra/GHSA-xxxx.json]   # OSV files, or directory trees of them
    min_score: 7.0         # block advisories scoring at least this (CVSS base score)
    allow: [GHSA-xxxx, CVE-2024-1234]   # accepted as mitigated (an id or any alias)
```

A blocked record is excluded with the reason ``advisory <id>``. An advisory without a CVSS
score blocks whatever the threshold: unknown severity is not taken for harmless (allow it by
id). Withdrawn advisories block nothing. The files are read and validated when the
configuration is loaded, and their content is part of the configuration, so an edited advisory
file makes the next run redo the selection.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

from sitegen.conda.records import Record
from sitegen.config.model import FilterSpec
from sitegen.config.yaml_nodes import YamlNode
from sitegen.filters.kind import Check, FilterContext, FilterKind
from sitegen.filters.osv import Advisory, Affected, OsvError, load_files

log = logging.getLogger("sitegen")

KEY = "advisories"
REASON_PREFIX = "advisory "


@dataclass(frozen=True)
class AdvisoryPolicy:
    """One level's advisory filter: the advisories read, the threshold and the allow list."""

    files: tuple[str, ...]
    min_score: float
    allow: tuple[str, ...]
    advisories: tuple[Advisory, ...]

    def blocks(self, advisory: Advisory, entry: Affected) -> bool:
        if advisory.withdrawn:
            return False
        allowed = set(self.allow)
        if advisory.id in allowed or allowed.intersection(advisory.aliases):
            return False
        score = advisory.score_for(entry)
        return score is None or score >= self.min_score

    @cached_property
    def blocking(self) -> dict[str, list[tuple[Advisory, Affected]]]:
        """Per lower-cased package name, the affected entries that block, by advisory id."""
        index: dict[str, list[tuple[Advisory, Affected]]] = {}
        for advisory in sorted(self.advisories, key=lambda a: a.id):
            for entry in advisory.affected:
                if self.blocks(advisory, entry):
                    index.setdefault(entry.name, []).append((advisory, entry))
        return index

    def reason(self, name: str, version: str) -> str | None:
        for advisory, entry in self.blocking.get(name, ()):
            if entry.contains(version):
                return REASON_PREFIX + advisory.id
        return None


def parse(node: YamlNode) -> Mapping[str, object]:
    keys = node.mapping(("files", "min_score", "allow"))
    if "files" not in keys:
        raise node.error("missing required key 'files' (OSV advisory files or directories)")
    state = node.state
    start = len(state.errors)
    paths = []
    advisories: list[Advisory] = []
    for item in keys["files"].items():
        path = item.file_path()
        try:
            if not path.exists():
                state.add(item.error(f"no such file or directory: {path}"))
                continue
            found = load_files([path])
            if not found and path.is_dir():
                # Likely the wrong directory: a filter that blocks nothing should not look fine.
                log.warning(
                    "%s:%d: %s: no advisories in the *.json files below %s",
                    state.filename,
                    item.line,
                    item.path,
                    path,
                )
            advisories.extend(found)
        except OsvError as exc:
            state.add(item.error(f"bad advisory file: {exc}"))
        except OSError as exc:
            state.add(item.error(f"cannot read {path}: {exc.strerror or exc}"))
        paths.append(str(path))
    min_score = (
        state.attempt(lambda: keys["min_score"].number(0.0, 10.0)) if "min_score" in keys else 0.0
    )
    allow = (
        state.attempt(lambda: tuple(i.string() for i in keys["allow"].items()))
        if "allow" in keys
        else ()
    )
    state.settle(start)
    assert min_score is not None and allow is not None
    policy = AdvisoryPolicy(tuple(paths), min_score, allow, tuple(advisories))
    return {KEY: policy}


def policy_of(spec: FilterSpec) -> AdvisoryPolicy | None:
    policy = spec.setting(KEY)
    return policy if isinstance(policy, AdvisoryPolicy) else None


def show(spec: FilterSpec) -> object:
    """The files, threshold and allow list as channels.yaml writes them (the advisories read
    from the files are not settings: the files name them)."""
    policy = policy_of(spec)
    if policy is None:
        return None
    return {"files": list(policy.files), "min_score": policy.min_score, "allow": list(policy.allow)}


def predicate(spec: FilterSpec, context: FilterContext) -> Check | None:
    policy = policy_of(spec)
    if policy is None or not set(policy.blocking) & context.distinct_names():
        return None
    # Builds of one version share the verdict: decide once per (name, version).
    verdicts: dict[tuple[str, str], str | None] = {}

    def check(record: Record, name: str) -> str | None:
        if name not in policy.blocking:
            return None
        key = (name, record.raw["version"])
        if key not in verdicts:
            verdicts[key] = policy.reason(*key)
        return verdicts[key]

    return check


def advisories_affecting(advisories: Iterable[Advisory], name: str, version: str) -> list[Advisory]:
    """Every advisory naming this package version, blocked or not (for the package pages)."""
    name = name.lower()
    return [a for a in advisories if not a.withdrawn and a.affects(name, version) is not None]


@dataclass(frozen=True)
class AdvisoryNote:
    """One advisory as a package page lists it under a version."""

    id: str
    aliases: tuple[str, ...]
    summary: str
    score: float | None
    blocked: bool  # whether a filter of the channel keeps this version out because of it


def package_advisories(
    levels: Iterable[FilterSpec], name: str, versions: Iterable[str]
) -> dict[str, tuple[AdvisoryNote, ...]]:
    """Per version of a package, the advisories of these filter levels (those of a channel's
    mirrors) that affect it, by id; versions no advisory names are left out. Pure, for the
    package pages."""
    policies = [p for p in map(policy_of, levels) if p is not None]
    advisories = {a.id: a for p in policies for a in p.advisories}
    name = name.lower()
    out: dict[str, tuple[AdvisoryNote, ...]] = {}
    for version in versions:
        notes = []
        for advisory in sorted(advisories.values(), key=lambda a: a.id):
            entry = None if advisory.withdrawn else advisory.affects(name, version)
            if entry is None:
                continue
            blocked = any(p.blocks(advisory, entry) for p in policies)
            score = advisory.score_for(entry)
            notes.append(
                AdvisoryNote(advisory.id, advisory.aliases, advisory.summary, score, blocked)
            )
        if notes:
            out[version] = tuple(notes)
    return out


KIND = FilterKind(KEY, parse, show=show, predicate=predicate)
