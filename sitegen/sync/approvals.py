"""Which candidates of an approval-gated channel are approved, and what waits.

Pure over plain data: the candidates are the records its source channel publishes, by subdir.
An active entry (not expired) approves every candidate its MatchSpec matches; one with
``with_dependencies`` also approves what those records need, found by the same dependency
closure as ``include_dependencies`` (across subdirs, noarch included), among the candidates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sitegen.conda.published_repodata import load_published
from sitegen.conda.records import Record, RepodataError
from sitegen.conda.version import (
    RecordMatcher,
    parse_matchspec,
    spec_exact_name,
    timestamp_ms,
)
from sitegen.config.approval_model import Approval
from sitegen.config.model import FilterSpec
from sitegen.filters.apply import REASON_NOT_ALLOWED, FilterResult, apply_filters
from sitegen.layout import REPODATA
from sitegen.sync.closure import NOARCH, close_dependencies
from sitegen.sync.closure_model import DependencyReport, MirrorSelection
from sitegen.sync.closure_reasons import asked_by, explain, reason_text
from sitegen.sync.closure_specs import SpecCache

# (subdir, file name): one package file of the channel.
FileKey = tuple[str, str]
Candidates = Mapping[str, Mapping[str, Record]]  # subdir -> fn -> record


@dataclass
class Approved:
    """The approved files, each with the entries that approved it directly, and those
    approved only as a dependency (with why)."""

    records: dict[FileKey, Record] = field(default_factory=dict)
    by_entry: dict[Approval, list[FileKey]] = field(default_factory=dict)
    dependencies: dict[FileKey, str] = field(default_factory=dict)
    # The files approved with their dependencies (by an entry with ``with_dependencies``).
    roots: list[FileKey] = field(default_factory=list)


def load_candidates(
    site_root: Path, source: str, subdirs: Iterable[str]
) -> dict[str, dict[str, Record]]:
    """What the source channel publishes now, by subdir; an unpublished subdir has nothing."""
    out: dict[str, dict[str, Record]] = {}
    for subdir in subdirs:
        try:
            data = (site_root / source / subdir / REPODATA).read_bytes()
            out[subdir] = load_published(data, subdir).records
        except (OSError, RepodataError):
            out[subdir] = {}
    return out


@dataclass(frozen=True)
class Admissible:
    """The candidates a gated channel's own filters let through, and those they leave out with
    the filters' reason: approving one of those would publish nothing."""

    publishable: dict[str, dict[str, Record]]
    left_out: dict[FileKey, tuple[Record, str]]


def admissible(
    candidates: Candidates, levels: tuple[FilterSpec, ...], matcher: RecordMatcher
) -> Admissible:
    """Split the candidates by a gated channel's own filters (``levels``: the site's and the
    channel's)."""
    out = Admissible({}, {})
    for subdir, records in candidates.items():
        result = apply_filters(dict(records), subdir, levels, matcher)
        out.publishable[subdir] = dict(result.kept)
        for fn, reason in result.excluded.items():
            out.left_out[(subdir, fn)] = (records[fn], reason)
    return out


def matching(
    candidates: Candidates,
    spec: str,
    matcher: RecordMatcher,
    by_name: Mapping[str, list[FileKey]] | None = None,
) -> list[FileKey]:
    """The candidates a MatchSpec matches; with ``by_name`` (see :func:`name_index`), only the
    records of the name it names are tried."""
    parsed = parse_matchspec(spec)
    name = spec_exact_name(parsed)
    if by_name is not None and name is not None:
        keys = by_name.get(name, [])
    else:
        keys = [(s, fn) for s, records in sorted(candidates.items()) for fn in sorted(records)]
    return [k for k in keys if matcher.matches(parsed, candidates[k[0]][k[1]].raw)]


def name_index(candidates: Candidates) -> dict[str, list[FileKey]]:
    index: dict[str, list[FileKey]] = {}
    for subdir, records in sorted(candidates.items()):
        for fn, record in sorted(records.items()):
            index.setdefault(record.name.lower(), []).append((subdir, fn))
    return index


def approve(
    candidates: Candidates, entries: Iterable[Approval], now: float, matcher: RecordMatcher
) -> Approved:
    """The candidates the active entries approve."""
    approved = Approved()
    roots: dict[FileKey, bool] = {}  # file -> approved with its dependencies
    by_name = name_index(candidates)
    for entry in entries:
        if not entry.active(now):
            continue
        keys = matching(candidates, entry.spec, matcher, by_name)
        approved.by_entry[entry] = keys
        for key in keys:
            roots[key] = roots.get(key, False) or entry.with_dependencies
    for key in roots:
        approved.records[key] = candidates[key[0]][key[1]]
    approved.roots = sorted(k for k, deps in roots.items() if deps)
    for key, why in closure(candidates, approved.roots, matcher).items():
        if key not in approved.records:
            approved.records[key] = candidates[key[0]][key[1]]
            approved.dependencies[key] = why
    return approved


def closure(
    candidates: Candidates, roots: Iterable[FileKey], matcher: RecordMatcher
) -> dict[FileKey, str]:
    """What ``roots`` need, transitively, among the candidates: file -> why it is needed."""
    report = _walk(candidates, roots, matcher)
    return {(a.subdir, a.fn): a.why for a in report.added.get(_WALK, [])}


def unsatisfied(
    published: Candidates, roots: Iterable[FileKey], matcher: RecordMatcher
) -> list[tuple[str, str, str]]:
    """The dependencies of ``roots`` that nothing in ``published`` (what a gated channel is
    about to publish) satisfies, transitively, as the dependency report lists them: (subdir,
    dependency spec, the needing file). Roots not published are not walked."""
    present = [key for key in roots if key[1] in published.get(key[0], {})]
    return _walk(published, present, matcher).unsatisfied.get(_WALK, [])


_WALK = "approvals"  # the one mirror of a walk among candidates


def _walk(
    candidates: Candidates, roots: Iterable[FileKey], matcher: RecordMatcher
) -> DependencyReport:
    """The dependency closure of ``roots`` among the candidates, as one mirror."""
    roots = set(roots)
    if not roots:
        return DependencyReport()
    results = {}
    for subdir, records in candidates.items():
        result = FilterResult()
        for fn, record in records.items():
            if (subdir, fn) in roots:
                result.kept[fn] = record
            else:
                result.excluded[fn] = REASON_NOT_ALLOWED
                result.candidates[fn] = record
        results[subdir] = result
    selection = MirrorSelection(_WALK, True, None, results, _platforms(candidates))
    return close_dependencies([selection], matcher)


def _platforms(candidates: Candidates) -> tuple[str, ...]:
    """The platforms a walk among ``candidates`` resolves a noarch record's dependencies for,
    as a run of their subdirs would: each platform subdir there (noarch alone: noarch)."""
    return tuple(sorted(set(candidates) - {NOARCH})) or (NOARCH,)


@dataclass(frozen=True)
class PendingItem:
    """A candidate no active approval covers, and what approving it with its dependencies
    would add besides (files not approved yet)."""

    subdir: str
    record: Record
    would_add: tuple[FileKey, ...]
    # The dependencies nothing among the candidates satisfies, each with why ("zlib >=1.2
    # (license excluded)"): approved, the candidate would not install from the gated channel.
    would_lack: tuple[str, ...] = ()


def pending(
    candidates: Candidates,
    approved: Approved,
    matcher: RecordMatcher,
    *,
    limit: int | None = None,
    left_out: Mapping[FileKey, tuple[Record, str]] | None = None,
) -> list[PendingItem]:
    """Candidates not approved, newest first; ``would_add`` and ``would_lack`` are worked out
    for the first ``limit`` of them (all when None), as they cost a dependency walk each.
    ``left_out``: the source's records the filters dropped from ``candidates``, with their
    reason (see :func:`admissible`), which tell why a dependency would be lacking."""
    waiting = [
        (subdir, record)
        for subdir, records in candidates.items()
        for fn, record in records.items()
        if (subdir, fn) not in approved.records
    ]
    waiting.sort(key=lambda item: (-timestamp_ms(item[1].raw), item[1].fn))
    walked = waiting[:limit]
    adds: list[tuple[FileKey, ...]] = []
    missing: list[list[tuple[str, str, str]]] = []
    for subdir, record in walked:
        report = _walk(candidates, [(subdir, record.fn)], matcher)
        needed = [(a.subdir, a.fn) for a in report.added.get(_WALK, [])]
        adds.append(tuple(sorted(k for k in needed if k not in approved.records)))
        missing.append(report.unsatisfied.get(_WALK, []))
    lacks = lacking(missing, candidates, left_out or {}, matcher)
    out = [
        PendingItem(subdir, record, extra, lack)
        for (subdir, record), extra, lack in zip(walked, adds, lacks, strict=True)
    ]
    out.extend(PendingItem(subdir, record, ()) for subdir, record in waiting[len(walked) :])
    return out


def lacking(
    walks: list[list[tuple[str, str, str]]],
    candidates: Candidates,
    left_out: Mapping[FileKey, tuple[Record, str]],
    matcher: RecordMatcher,
) -> list[tuple[str, ...]]:
    """For each walk (its unsatisfied rows, as :func:`unsatisfied` gives them), each
    dependency it left unsatisfied, once, with why, as a run's dependency report says it
    (:mod:`sitegen.sync.closure_reasons`): ``zlib >=1.2 (license excluded)``. Why: the
    reasons ``left_out`` gives the source's records that match it (a filter's, or
    :data:`~sitegen.sync.closure_reasons.NOT_APPROVED`), else that the source (``candidates``
    and ``left_out``) has no record of it, or none of a matching version. The walks'
    questions are answered together, in one pass over the source's records."""
    # The source as one mirror: every record it publishes, those left out with their reason.
    results = {subdir: FilterResult() for subdir in candidates}
    records = {subdir: dict(published) for subdir, published in candidates.items()}
    for (subdir, fn), (record, reason) in left_out.items():
        results.setdefault(subdir, FilterResult()).excluded[fn] = reason
        records.setdefault(subdir, {})[fn] = record
    source = MirrorSelection(_WALK, False, None, results, upstream=records)
    platforms = _platforms(candidates)
    asked = [
        {(where, dep): asked_by(where, dep, (0,), platforms) for where, dep, _ in walk}
        for walk in walks
    ]
    every = (q for rows in asked for questions in rows.values() for q in questions)
    answers = explain([source], matcher, SpecCache(), every)
    out = []
    for rows in asked:
        reasons: dict[str, set[str]] = {}
        for (_where, dep), questions in rows.items():
            reasons.setdefault(dep, set()).update(r for q in questions for r in answers[q])
        out.append(tuple(f"{dep} ({reason_text(why)})" for dep, why in sorted(reasons.items())))
    return out
