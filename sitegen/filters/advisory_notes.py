"""What a package page shows of the advisories of its channel's filter levels: per version,
each advisory that affects it, its score, and whether a filter keeps the version out for it
(see :mod:`sitegen.filters.advisories`, whose policies these are). Pure."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import accumulate
from operator import itemgetter, or_
from typing import TYPE_CHECKING

from sitegen.conda.version import parse_version
from sitegen.config.model import FilterSpec
from sitegen.filters.advisories import AdvisoryPolicy, policy_of
from sitegen.filters.osv import Affected

if TYPE_CHECKING:
    from rattler import Version  # for annotations: rattler loads when a version is parsed


@dataclass(frozen=True)
class AdvisoryNote:
    """One advisory as a package page lists it under a version."""

    id: str
    aliases: tuple[str, ...]
    summary: str
    score: float | None
    blocked: bool  # whether a filter of the channel keeps this version out because of it


@dataclass(frozen=True)
class VersionNotes:
    """The advisories affecting one version."""

    # Those that block it first, then the highest scores, then by id; at most the limit asked.
    notes: tuple[AdvisoryNote, ...]
    count: int  # how many affect it in all


def _severity_order(note: AdvisoryNote) -> tuple[bool, float, str]:
    """Which of a version's advisories a page lists first: those keeping it out, then the
    highest scores (unscored last), then by id."""
    return (not note.blocked, -(note.score if note.score is not None else -1.0), note.id)


def package_advisories(
    levels: Iterable[FilterSpec],
    name: str,
    versions: Iterable[str],
    blocked_by: Mapping[str, Iterable[str]] | None = None,
    limit: int | None = None,
) -> dict[str, VersionNotes]:
    """Per version of a package, the advisories of these filter levels (those of a channel's
    mirrors) that affect it: the first ``limit`` (all by default) in severity order, and how
    many there are; versions no advisory names are left out. ``blocked_by``: version -> ids of
    the advisories a run kept it out for, listed even where the name and the mappings do not
    reach them (a record's own purls did, and the page has no record of a blocked version to
    read them from). Advisories sharing an id (from two files or feeds) each block what they
    name, so each is listed as itself; one read twice (the same in a file and a feed, or in
    two levels) is listed once. Pure, for the package pages.

    A feed may hold tens of thousands of advisories naming one package, so none is checked
    version by version: each entry is asked once which of the versions it names (as a set of
    them, an int's bits), its note made once, and a version's notes are gathered in severity
    order only until ``limit`` are found; the rest are only counted."""
    policies = [p for p in map(policy_of, levels) if p is not None]
    name = name.lower()
    # The package's name and its identities in any of the levels' mappings.
    keys = {key for p in policies for key in p.keys_for(name)}
    # By identity: a level's advisory is one object however many keys name it.
    naming = {id(a): a for p in policies for key in keys for a in p.naming.get(key, ())}
    page = _PageVersions(list(dict.fromkeys(versions)))
    # (note, position, versions): position orders notes of equal severity as a version reads
    # them: advisories by id, each once (its first entry naming a version affects it), then
    # those a run blocked it for.
    read: list[tuple[AdvisoryNote, int, int]] = []
    listed_ids: dict[str, int] = {}
    for position, advisory in enumerate(sorted(naming.values(), key=lambda a: a.id)):
        if advisory.withdrawn:
            continue
        left = page.every
        for entry in advisory.entries_for(keys):
            named = page.named_by(entry) & left
            if not named:
                continue
            left &= ~named
            # Blocked by a level whose own mapping (or the name itself) reaches the entry.
            blocked = any(
                entry.name in p.keys_for(name) and p.blocks(advisory, entry) for p in policies
            )
            score = advisory.score_for(entry)
            note = AdvisoryNote(advisory.id, advisory.aliases, advisory.summary, score, blocked)
            read.append((note, position, named))
            listed_ids[advisory.id] = listed_ids.get(advisory.id, 0) | named
    wanted: dict[str, int] = {}  # id -> the versions a run blocked for it
    for version, ids in (blocked_by or {}).items():
        for advisory_id in set(ids):
            wanted[advisory_id] = wanted.get(advisory_id, 0) | page.bit.get(version, 0)
    position = len(naming)
    for advisory_id in sorted(wanted):
        unlisted = wanted[advisory_id] & ~listed_ids.get(advisory_id, 0)
        for note in _blocked_notes(policies, advisory_id) if unlisted else ():
            read.append((note, position, unlisted))
            position += 1
    # Each note once per version, at its first reading there.
    seen: dict[AdvisoryNote, int] = {}
    notes = []
    for note, position, named in read:
        first = named & ~seen.get(note, 0)
        if first:
            seen[note] = seen.get(note, 0) | first
            notes.append((note, position, first))
    gathered: list[list[AdvisoryNote]] = [[] for _ in page.versions]
    unfilled = page.every if limit is None or limit > 0 else 0
    for note, _position, named in sorted(notes, key=lambda n: (_severity_order(n[0]), n[1])):
        if not unfilled:
            break
        for i in _members(named & unfilled):
            gathered[i].append(note)
            if len(gathered[i]) == limit:
                unfilled &= ~(1 << i)
    counts = [0] * len(page.versions)
    for _note, _position, named in notes:
        for i in _members(named):
            counts[i] += 1
    return {
        version: VersionNotes(tuple(found), count)
        for version, found, count in zip(page.versions, gathered, counts, strict=True)
        if count
    }


class _PageVersions:
    """A page's versions, a set of them as an int's bits (the i-th version, the i-th bit), and
    which of them an entry names."""

    def __init__(self, versions: list[str]) -> None:
        self.versions = versions
        self.every = (1 << len(versions)) - 1
        self.bit = {version: 1 << i for i, version in enumerate(versions)}
        # Per package key: the versions as its entries compare them, parsed and in conda
        # order, and the sets of the first k of them (for each k), so a run of them is a set
        # in two look-ups.
        self._orders: dict[str, tuple[list[Version], list[int]]] = {}

    def named_by(self, entry: Affected) -> int:
        """The versions an entry names, as a set."""
        order = self._orders.get(entry.name)
        if order is None:
            ranked = sorted(
                ((parse_version(entry.compared(v)), i) for i, v in enumerate(self.versions)),
                key=itemgetter(0),
            )
            firsts = list(accumulate((1 << i for _v, i in ranked), or_, initial=0))
            order = self._orders[entry.name] = ([v for v, _i in ranked], firsts)
        parsed, firsts = order
        named = 0
        for start, end in entry.among(parsed):
            named |= firsts[end] ^ firsts[start]
        return named


def _members(bits: int) -> Iterator[int]:
    """The positions of a set's bits, lowest first."""
    while bits:
        low = bits & -bits
        yield low.bit_length() - 1
        bits ^= low


def _blocked_notes(policies: list[AdvisoryPolicy], advisory_id: str) -> tuple[AdvisoryNote, ...]:
    """The notes of the advisories of an id a run blocked a version for: those of the id with
    an entry that blocks (the run names only the id, and which advisory's entry a record's
    purl matched it did not say), each scored as its first such entry; all of the id when
    none blocks now."""
    advisories = [a for p in policies for a in p.by_id.get(advisory_id, ())]
    notes = []
    for advisory in advisories:
        entries = [e for p in policies for e in advisory.affected if p.blocks(advisory, e)]
        score = advisory.score_for(entries[0]) if entries else advisory.score
        note = AdvisoryNote(advisory.id, advisory.aliases, advisory.summary, score, True)
        notes.append((bool(entries), note))
    blocking = [note for blocks, note in notes if blocks]
    return tuple(dict.fromkeys(blocking or [note for _, note in notes]))
