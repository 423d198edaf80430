"""What a package page shows of the advisories of its channel's filter levels: per version,
each advisory that affects it, its score, and whether a filter keeps the version out for it
(see :mod:`sitegen.filters.advisories`, whose policies these are). Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sitegen.config.model import FilterSpec
from sitegen.filters.advisories import AdvisoryPolicy, policy_of


@dataclass(frozen=True)
class AdvisoryNote:
    """One advisory as a package page lists it under a version."""

    id: str
    aliases: tuple[str, ...]
    summary: str
    score: float | None
    blocked: bool  # whether a filter of the channel keeps this version out because of it


def package_advisories(
    levels: Iterable[FilterSpec],
    name: str,
    versions: Iterable[str],
    blocked_by: Mapping[str, Iterable[str]] | None = None,
) -> dict[str, tuple[AdvisoryNote, ...]]:
    """Per version of a package, the advisories of these filter levels (those of a channel's
    mirrors) that affect it, by id; versions no advisory names are left out. ``blocked_by``:
    version -> ids of the advisories a run kept it out for, listed even where the name and
    the mappings do not reach them (a record's own purls did, and the page has no record of a
    blocked version to read them from). Advisories sharing an id (from two files or feeds)
    each block what they name, so each is listed as itself; one read twice (the same in a
    file and a feed, or in two levels) is listed once. Pure, for the package pages."""
    policies = [p for p in map(policy_of, levels) if p is not None]
    name = name.lower()
    # The package's name and its identities in any of the levels' mappings.
    keys = {key for p in policies for key in p.keys_for(name)}
    # By identity: a level's advisory is one object however many keys name it.
    naming = {id(a): a for p in policies for key in keys for a in p.naming.get(key, ())}
    found = sorted(naming.values(), key=lambda a: a.id)
    blocked_notes: dict[str, tuple[AdvisoryNote, ...]] = {}
    out: dict[str, tuple[AdvisoryNote, ...]] = {}
    for version in versions:
        notes = []
        for advisory in found:
            entry = None if advisory.withdrawn else advisory.affects(keys, version)
            if entry is None:
                continue
            # Blocked by a level whose own mapping (or the name itself) reaches the entry.
            blocked = any(
                entry.name in p.keys_for(name) and p.blocks(advisory, entry) for p in policies
            )
            score = advisory.score_for(entry)
            notes.append(
                AdvisoryNote(advisory.id, advisory.aliases, advisory.summary, score, blocked)
            )
        listed = {note.id for note in notes}
        for advisory_id in sorted(set((blocked_by or {}).get(version, ())) - listed):
            if advisory_id not in blocked_notes:
                blocked_notes[advisory_id] = _blocked_notes(policies, advisory_id)
            notes.extend(blocked_notes[advisory_id])
        if notes:
            out[version] = tuple(dict.fromkeys(notes))
    return out


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
