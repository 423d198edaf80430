"""What a package page shows of the advisories of its channel's filter levels: per version,
each advisory that affects it, its score, and whether a filter keeps the version out for it
(see :mod:`sitegen.filters.advisories`, whose policies these are). Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sitegen.config.model import FilterSpec
from sitegen.filters.advisories import AdvisoryPolicy, policy_of
from sitegen.filters.osv import Advisory


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
    blocked version to read them from). Pure, for the package pages."""
    policies = [p for p in map(policy_of, levels) if p is not None]
    name = name.lower()
    # The package's name and its identities in any of the levels' mappings.
    keys = {key for p in policies for key in p.keys_for(name)}
    ids = {i for p in policies for key in keys for i in p.naming.get(key, ())}
    found = [advisory for i in sorted(ids) if (advisory := _last(policies, i)) is not None]
    blocked_notes: dict[str, AdvisoryNote] = {}
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
            note = blocked_notes.get(advisory_id)
            if note is None and (advisory := _last(policies, advisory_id)) is not None:
                note = blocked_notes[advisory_id] = _blocked_note(advisory, policies)
            if note is not None:
                notes.append(note)
        if notes:
            out[version] = tuple(notes)
    return out


def _last(policies: Iterable[AdvisoryPolicy], advisory_id: str) -> Advisory | None:
    """The advisory of this id as the pages take it: the last the levels hold."""
    found = None
    for policy in policies:
        found = policy.by_id.get(advisory_id, found)
    return found


def _blocked_note(advisory: Advisory, policies: Iterable[AdvisoryPolicy]) -> AdvisoryNote:
    """The note of an advisory a run blocked a version for, scored as its first entry that
    blocks (a record's purl matched one of them, which one the run did not say)."""
    entries = [e for p in policies for e in advisory.affected if p.blocks(advisory, e)]
    score = advisory.score_for(entries[0]) if entries else advisory.score
    return AdvisoryNote(advisory.id, advisory.aliases, advisory.summary, score, True)
