"""The dependency specs of the closure (:mod:`sitegen.sync.closure`): parsed once each, and
matched against records as cheaply as each spec allows."""

from __future__ import annotations

from dataclasses import dataclass

from rattler import MatchSpec

from sitegen.conda.records import Record
from sitegen.conda.version import (
    SPEC_ANY,
    SPEC_FULL,
    InvalidSpecError,
    RecordMatcher,
    parse_matchspec,
    readable_build,
    spec_exact_name,
    spec_kind,
)

NOARCH = "noarch"


def dependency_scope(platform: str) -> list[str]:
    """The subdirs a dependency of a record for `platform` is looked for in: the platform's
    and noarch, or noarch alone (NOARCH standing in for the platform in a noarch-only run)."""
    return [NOARCH] if platform == NOARCH else [platform, NOARCH]


@dataclass(frozen=True, slots=True)
class DependencySpec:
    spec: MatchSpec
    name: str  # normalized package name
    kind: str


class SpecMatch:
    """Whether records match one spec, asking rattler as the spec allows."""

    def __init__(self, parsed: DependencySpec, matcher: RecordMatcher) -> None:
        self.spec = parsed.spec
        self.kind = parsed.kind
        self.matches = matcher.matches
        self.by_version: dict[str, bool] = {}

    def __call__(self, record: Record) -> bool:
        if self.kind == SPEC_FULL:
            return self.matches(self.spec, record.raw)
        # As RecordMatcher.matches, a record rattler cannot build matches nothing. Its build
        # string is all that sets it apart from the other builds of its version: judged apart,
        # it neither satisfies the spec nor decides the answer for those builds.
        if not readable_build(record.raw["build"]):
            return False
        if self.kind == SPEC_ANY:
            return True
        version = record.raw["version"]
        known = self.by_version.get(version)
        if known is None:
            known = self.by_version[version] = self.matches(self.spec, record.raw)
        return known


class SpecCache:
    """Dependency spec text -> its parsed spec, or None when it names no single package."""

    def __init__(self) -> None:
        # parse_matchspec caches successes only; failures are remembered here too.
        self.specs: dict[str, DependencySpec | None] = {}

    def parse(self, dep: str) -> DependencySpec | None:
        try:
            return self.specs[dep]
        except KeyError:
            pass
        parsed: DependencySpec | None = None
        try:
            spec = parse_matchspec(dep)
        except InvalidSpecError:
            pass
        else:
            name = spec_exact_name(spec)
            if name is not None:
                parsed = DependencySpec(spec, name, spec_kind(spec, name))
        self.specs[dep] = parsed
        return parsed
