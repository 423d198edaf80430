"""Why the dependency closure (:mod:`sitegen.sync.closure`) found nothing for a dependency:
upstream has no record of the name, or none whose version matches; or the filters left the
matching records out (their reasons, as the filtered lists name them); or, in an
approval-gated channel, they wait for approval. ``sitegen pending`` asks the same of what a
gated channel's candidates would lack (:func:`sitegen.sync.approvals.pending`).

Worked out from the records the run read, once the walk is over: only the names of the
dependencies left unsatisfied are looked up, so the cost stays that of one pass over the
records of the subdirs concerned, and each answer is a few short words.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

from sitegen.conda.records import Record
from sitegen.conda.version import RecordMatcher
from sitegen.filters.apply import REASON_NOT_ALLOWED
from sitegen.sync.closure_model import MirrorSelection
from sitegen.sync.closure_specs import NOARCH, SpecCache, dependency_scope

NOT_UPSTREAM = "not upstream"
NO_MATCH_UPSTREAM = "no matching version upstream"
# As `sitegen pending` lists them: a gated channel's candidates no approval covers.
NOT_APPROVED = "not approved"
NOT_A_SPEC = "not a valid spec"
# The filter reasons one answer names; an advisory's reason names its id, so the matching
# records of a name could bring many.
REASONS_SHOWN = 3


class Question(NamedTuple):
    """Why ``dep`` has nothing for ``platform``, looked for in ``mirrors``: the mirror the
    name resolves in and those before it in priority (which have the name only as records
    their filters leave out), or every mirror when none has it."""

    mirrors: tuple[int, ...]
    platform: str
    dep: str


def looked_in(order: Sequence[int], target: int | None) -> tuple[int, ...]:
    """The mirrors of a :class:`Question`, from the needing mirror's priority ``order``."""
    return tuple(order) if target is None else tuple(order[: order.index(target) + 1])


def asked_by(
    where: str, dep: str, mirrors: tuple[int, ...], platforms: Sequence[str]
) -> list[Question]:
    """The questions one entry of a dependency report asks, looked for in ``mirrors``:
    ``where`` is its subdir, or "noarch (<platform>)" for a noarch record lacking ``dep`` on
    that platform only; a noarch record lacking it on every platform asks for each of
    ``platforms`` (those its dependencies resolve for)."""
    subdir, _, platform = where.partition(" (")
    if subdir != NOARCH:
        return [Question(mirrors, subdir, dep)]
    return [Question(mirrors, p, dep) for p in ((platform.rstrip(")"),) if platform else platforms)]


def explain(
    selections: Sequence[MirrorSelection],
    matcher: RecordMatcher,
    specs: SpecCache,
    questions: Iterable[Question],
) -> dict[Question, frozenset[str]]:
    """Each question's answer: the filters' reasons for the matching records, else
    :data:`NO_MATCH_UPSTREAM` or :data:`NOT_UPSTREAM`."""
    asked = {q: specs.parse(q.dep) for q in questions}
    wanted: dict[tuple[int, str], set[str]] = {}
    for question, parsed in asked.items():
        for index in question.mirrors if parsed is not None else ():
            for subdir in dependency_scope(question.platform):
                wanted.setdefault((index, subdir), set()).add(parsed.name)
    found = {
        (index, subdir): _by_name(_records(selections[index], subdir), names)
        for (index, subdir), names in wanted.items()
    }
    answers: dict[Question, frozenset[str]] = {}
    for question, parsed in asked.items():
        if parsed is None:
            answers[question] = frozenset({NOT_A_SPEC})
            continue
        reasons: set[str] = set()
        named = False
        for index in question.mirrors:
            selection = selections[index]
            for subdir in dependency_scope(question.platform):
                result = selection.results.get(subdir)
                for record in found[(index, subdir)].get(parsed.name, ()):
                    named = True
                    reason = result.excluded.get(record.fn) if result is not None else None
                    if reason is None or not matcher.matches(parsed.spec, record.raw):
                        continue
                    if selection.gated and reason == REASON_NOT_ALLOWED:
                        reason = NOT_APPROVED
                    reasons.add(reason)
        answers[question] = frozenset(reasons or {NO_MATCH_UPSTREAM if named else NOT_UPSTREAM})
    return answers


def reason_text(reasons: Iterable[str]) -> str:
    """One answer (or several, for a row standing for several platforms) as a report row
    gives it: ``license excluded``, ``build excluded, not upstream``."""
    ordered = sorted(set(reasons))
    shown = ", ".join(ordered[:REASONS_SHOWN])
    rest = len(ordered) - REASONS_SHOWN
    return f"{shown} and {rest} more" if rest > 0 else shown


def _records(selection: MirrorSelection, subdir: str) -> Iterator[Record]:
    if selection.upstream is not None:
        yield from selection.upstream.get(subdir, {}).values()
        return
    result = selection.results.get(subdir)
    if result is not None:
        yield from result.kept.values()
        yield from result.candidates.values()


def _by_name(records: Iterable[Record], names: set[str]) -> dict[str, list[Record]]:
    out: dict[str, list[Record]] = {}
    for record in records:
        name = record.name.lower()
        if name in names:
            out.setdefault(name, []).append(record)
    return out
