"""What the dependency closure (:mod:`sitegen.sync.closure`) is given and what it reports:
each mirror's filter outcome, the records it added and the dependencies nothing satisfied."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from sitegen.conda.records import Record
from sitegen.filters.apply import FilterResult


@dataclass
class MirrorSelection:
    """One mirror's filter outcome for every subdir of the run, in config order."""

    mirror: str
    include_dependencies: bool
    newest_versions: int | None
    results: dict[str, FilterResult]  # subdir -> result (mutated by close_dependencies)
    # The platform subdirs of the mirror's channel (of all its mirrors), for which its noarch
    # records' dependencies are resolved. Empty (a noarch-only channel): every platform subdir
    # of the run, as a client of any platform may install them.
    platforms: tuple[str, ...] = ()
    channel: str = ""  # the path of the mirror's channel
    # When `results` are what the channel publishes, standing in for the mirror (a frozen
    # channel, a mirror not read), the mirror's own filter outcome, which its report shows:
    # none (empty) for a mirror not read.
    reported: dict[str, FilterResult] | None = None
    # Dependencies found unsatisfied before the walk, reported with its own (an approval-gated
    # channel's approved packages whose dependencies its filters leave out), as in
    # DependencyReport.unsatisfied.
    unsatisfied: list[tuple[str, str, str]] = field(default_factory=list)
    # Every record read for the mirror, by subdir (those the filters left out included), which
    # tells why a dependency found nothing. None: `results` hold every record there is (what a
    # channel publishes, standing in for the mirror).
    upstream: dict[str, Mapping[str, Record]] | None = None
    # An approval-gated channel's mirror: what its allowlist leaves out is not approved.
    gated: bool = False

    @property
    def outcome(self) -> dict[str, FilterResult]:
        """The mirror's filter outcome per subdir, as its report and filtered list show it."""
        return self.results if self.reported is None else self.reported


class Addition(NamedTuple):
    """One record the closure added to a mirror, and the record that needed it."""

    subdir: str
    fn: str
    why: str  # "needed by <fn> (<spec>)", or "for a constraint of <fn> (<spec>)"
    # The mirror of the needing record: another mirror's, maybe of another channel, when the
    # dependency resolved elsewhere. Kept apart from `why` so that a page can tell whose file
    # `why` names without reading the text.
    needed_by: str


@dataclass
class DependencyReport:
    """What the closure added and what it could not find; mirrors without entries are absent."""

    # mirror -> its additions, sorted by subdir and fn
    added: dict[str, list[Addition]] = field(default_factory=dict)
    # mirror of the needing record -> [(its subdir, dependency spec, its fn)], sorted. A noarch
    # record's dependency missing for some platforms only is listed for each of them, its
    # subdir written "noarch (<platform>)".
    unsatisfied: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    # mirror -> (subdir, dependency spec) of its unsatisfied entries -> why nothing satisfies
    # it (see sitegen.sync.closure_reasons): the same for every record needing it there.
    reasons: dict[str, dict[tuple[str, str], str]] = field(default_factory=dict)
