"""What the pages show of the gates a record passes: approvals and advisories.

* an approval-gated channel gets a "pending approval" page (candidates no active approval
  covers, newest first, with what approving each one with its dependencies would pull in) and
  an "approved" page (who, when, why, expiry), both under the channel's path;
* run pages list the approvals a run granted and revoked, and per mirror the records
  advisories newly blocked and newly cleared (:mod:`sitegen.sync.advisory_changes`); the
  history pages count them;
* package pages list, per version, the advisories of the channel's filters that affect it,
  blocked or not (:func:`sitegen.filters.advisory_notes.package_advisories`).

Page models only; the templates escape every value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from sitegen.approvals.pages import approved_page, pending_page
from sitegen.conda.version import RecordMatcher
from sitegen.config import ChannelConfig, SiteConfig
from sitegen.config.model import FilterSpec
from sitegen.filters.advisories import policy_of
from sitegen.filters.advisory_notes import AdvisoryNote, package_advisories
from sitegen.layout import REPODATA, approved_page_path, channel_index_path, pending_page_path
from sitegen.sync.advisory_changes import Standing, advisory_changes, standing_after
from sitegen.sync.approvals import admissible, approve, load_candidates, pending
from sitegen.sync.report import MirrorReport, RunReport
from sitegen.web.format import clip, format_date_ms, split_filename, version_sort_key
from sitegen.web.run import Scrub, same

# Files listed per mirror as newly blocked or cleared on a run page; the page says how many more.
CHANGES_MAX = 500
# Candidates listed on a pending page, with what each would pull in (a dependency walk over the
# source's records each, done again only when the source or the approvals change); the page
# says how many more wait.
PENDING_MAX = 100
# What a package page shows of an advisory, on the row of each version it affects: a feed's
# summary may be megabytes and its aliases thousands, repeated on every row.
ADVISORY_SUMMARY_MAX = 300  # characters, as a package's own summary (see web.package)
ALIASES_MAX = 5  # aliases listed; the row says how many more
# How many advisories a package page lists: a feed may hold tens of thousands of small ones
# naming one package, each repeated on the row of every version it affects. A real version has
# a handful, a few dozen at most (an old release of a big framework, through a PyPI feed that
# holds each CVE twice, as PYSEC and GHSA); a real page some thousands of rows at most (a
# package with hundreds of versions below a fix). Past these, the page says how many more.
ADVISORIES_MAX = 100  # per version: those that block it first, then the most severe, then by id
ADVISORY_ROWS_MAX = 10_000  # per page: whole versions, in the page's order, while they fit


@dataclasses.dataclass(frozen=True)
class GatePage:
    relpath: str
    template: str
    model: dict[str, Any]


def approval_relpaths(channel: ChannelConfig, private: Iterable[str] = ()) -> list[str]:
    """The approval pages of a gated channel (none for another). A public gated channel whose
    source is private gets no pending page: its candidates are the private channel's packages
    (``private``: paths of private channels)."""
    if channel.approval is None:
        return []
    paths = [approved_page_path(channel.path)]
    if not _source_hidden(channel, private):
        paths.append(pending_page_path(channel.path))
    return paths


def _source_hidden(channel: ChannelConfig, private: Iterable[str]) -> bool:
    """Whether a gated channel's pages are public while its source is private: they may then
    name no candidate the channel does not publish (``private``: paths of private channels)."""
    hidden = set(private)
    gate = channel.approval
    return gate is not None and gate.source in hidden and channel.path not in hidden


def approval_inputs(
    site_root: Path,
    channel: ChannelConfig,
    now: float,
    levels: tuple[FilterSpec, ...] = (),
    scrub: Scrub = same,
) -> list[Any]:
    """What a gated channel's approval pages are made of, cheaply: the source's repodata files
    (size, mtime), the entries (as shown, through ``scrub``) and which of them are active now,
    and the filters the pending page applies (part of the pages' key)."""
    gate = channel.approval
    if gate is None:
        return []
    stats = []
    for subdir in channel.subdirs:
        try:
            st = (site_root / gate.source / subdir / REPODATA).stat()
            stats.append([subdir, st.st_size, st.st_mtime_ns])
        except OSError:
            stats.append([subdir, None, None])
    entries = [[_shown(dataclasses.asdict(e), scrub), e.active(now)] for e in gate.entries]
    return [channel.path, gate.source, stats, entries, PENDING_MAX, levels]


def approval_pages(
    site_root: Path,
    channel: ChannelConfig,
    now: float,
    private: Iterable[str] = (),
    levels: tuple[FilterSpec, ...] = (),
    scrub: Scrub = same,
) -> list[GatePage]:
    """The pages of :func:`approval_relpaths`: the approved list and what waits. ``levels``:
    the gated channel's own filters (the site's and its own); what they leave out is not
    listed as waiting, as approving it would publish nothing, and is marked as left out where
    it is approved as a dependency. Who approved and why is the operator's text: ``scrub``
    hides what the configuration holds as secrets in it, as in a freeze's."""
    gate = channel.approval
    relpaths = approval_relpaths(channel, private)
    if gate is None:
        return []
    candidates = load_candidates(site_root, gate.source, channel.subdirs)
    matcher = RecordMatcher()
    approved = approve(candidates, gate.entries, now, matcher)
    links = approval_links(channel, private)
    admitted = admissible(candidates, levels, matcher)
    approved_rows = approved_page(
        channel.path,
        gate.entries,
        approved,
        now,
        admitted.left_out,
        published_only=_source_hidden(channel, private),
    )
    approved_model = dataclasses.asdict(approved_rows)
    approved_model["rows"] = [_shown(row, scrub) for row in approved_model["rows"]]
    approved_model.update(links, source=gate.source)
    pages = [GatePage(approved_page_path(channel.path), "approvals.html", approved_model)]
    if pending_page_path(channel.path) in relpaths:
        waiting = pending(
            admitted.publishable, approved, matcher, limit=PENDING_MAX, left_out=admitted.left_out
        )
        model = dataclasses.asdict(pending_page(channel.path, gate.source, waiting[:PENDING_MAX]))
        for row in model["rows"]:
            row["date"] = format_date_ms(row["timestamp_ms"])
        more = max(0, len(waiting) - PENDING_MAX)
        model.update(links, waiting=len(waiting), more=more, left_out=len(admitted.left_out))
        pages.append(GatePage(pending_page_path(channel.path), "pending.html", model))
    return pages


def _shown(entry: dict[str, Any], scrub: Scrub) -> dict[str, Any]:
    """An approval entry (or a row of one) with who made it and why through ``scrub``."""
    return {**entry, "by": scrub(entry["by"]), "why": scrub(entry["why"])}


def approval_links(channel: ChannelConfig, private: Iterable[str]) -> dict[str, Any]:
    """The links between a gated channel's page and its approval pages (none elsewhere): to
    the pages :func:`approval_relpaths` gives it, so no pending link where it has no pending
    page (``private``: paths of private channels)."""
    relpaths = approval_relpaths(channel, private)
    if not relpaths:
        return {"approval_pages": None}
    pending = pending_page_path(channel.path)
    return {
        "approval_pages": {
            "channel": channel_index_path(channel.path),
            "pending": pending if pending in relpaths else None,
            "approved": approved_page_path(channel.path),
        }
    }


def gate_changes(reports: Iterable[RunReport], scrub: Scrub = same) -> dict[str, dict[str, Any]]:
    """Per run id: the approvals it granted and revoked (who and why through ``scrub``) and, per
    mirror, the records advisories newly blocked and newly cleared (against what the mirror's
    earlier runs left standing), with their counts. One pass over the runs, oldest first."""
    standing: dict[str, Standing] = {}
    out: dict[str, dict[str, Any]] = {}
    for report in sorted(reports, key=lambda r: (r.started, r.id)):
        mirrors = []
        for mirror in report.mirrors:
            before = standing.get(mirror.name, {})
            changes = advisory_changes(mirror, before)
            standing[mirror.name] = standing_after(before, mirror)
            if changes.blocked or changes.cleared:
                mirrors.append(
                    {
                        "mirror": mirror.name,
                        "channel": mirror.channel,
                        "blocked": changes.blocked[:CHANGES_MAX],
                        "cleared": changes.cleared[:CHANGES_MAX],
                        "counts": {
                            "blocked": len(changes.blocked),
                            "cleared": len(changes.cleared),
                        },
                    }
                )
        approvals = [
            msgspec.structs.replace(a, by=scrub(a.by), why=scrub(a.why)) for a in report.approvals
        ]
        out[report.id] = {
            "approvals": approvals,
            "advisory_changes": mirrors,
            "gate_counts": {
                "granted": sum(1 for a in approvals if a.action == "approve"),
                "revoked": sum(1 for a in approvals if a.action == "revoke"),
                "blocked": sum(m["counts"]["blocked"] for m in mirrors),
                "cleared": sum(m["counts"]["cleared"] for m in mirrors),
            },
        }
    return out


def advisory_levels(config: SiteConfig, channel: ChannelConfig) -> tuple[FilterSpec, ...]:
    """The filter levels of the channel's mirrors that hold an advisory policy (each once)."""
    levels: list[FilterSpec] = []
    for mirror in channel.mirrors:
        for level in config.filter_levels(channel, mirror):
            if policy_of(level) is not None and all(level is not seen for seen in levels):
                levels.append(level)
    return tuple(levels)


def advisory_inputs(levels: Iterable[FilterSpec]) -> list[Any]:
    """What the advisory notes of a channel's pages depend on (a part of their keys)."""
    return [policy for policy in map(policy_of, levels) if policy is not None]


def blocked_versions(reports: Sequence[RunReport], channel: str) -> dict[str, dict[str, list[str]]]:
    """Package name -> version -> the ids of the advisories each of the channel's mirrors keeps
    it out for (such a version has no record on the page, but its advisories are listed): as
    its runs last judged each subdir its newest run covered, so a subdir whose upstream the
    newest run could not read shows what its channel still keeps out."""
    newest: dict[str, MirrorReport] = {}
    for report in reports:  # newest first
        for mirror in report.mirrors:
            if mirror.name not in newest and mirror.subdirs:
                newest[mirror.name] = mirror
    standing: dict[str, Standing] = {}
    for report in sorted(reports, key=lambda r: (r.started, r.id)):
        for mirror in report.mirrors:
            if mirror.channel == channel:
                standing[mirror.name] = standing_after(standing.get(mirror.name, {}), mirror)
    out: dict[str, dict[str, set[str]]] = {}
    for name, latest in newest.items():
        if latest.channel != channel:
            continue
        for subdir in latest.subdirs:
            for blocked in standing.get(name, {}).get(subdir, ()):
                name_, version, _build = split_filename(blocked.file)
                out.setdefault(name_, {}).setdefault(version, set()).add(blocked.advisory)
    return {
        name: {version: sorted(ids) for version, ids in sorted(versions.items())}
        for name, versions in sorted(out.items())
    }


def advisory_notes(
    levels: Iterable[FilterSpec],
    name: str,
    versions: Iterable[str],
    blocked_by: Mapping[str, Iterable[str]] | None = None,
) -> dict[str, Any]:
    """The advisories section of a package page: per version (as given), the advisories that
    affect it, blocked or not (``blocked_by``: those a run blocked versions for, see
    :func:`blocked_versions`), each bounded (see :data:`ADVISORY_SUMMARY_MAX`), as ``rows``;
    how many versions have advisories (``count``) and how many of them are not listed
    (``more``, see :data:`ADVISORY_ROWS_MAX`)."""
    notes = package_advisories(levels, name, versions, blocked_by, ADVISORIES_MAX)
    summaries: dict[str, str] = {}  # clipped once per advisory, not once per row
    rows = []
    budget = ADVISORY_ROWS_MAX
    for version, found in notes.items():
        listed = found.notes
        if len(listed) > budget:
            break
        budget -= len(listed)
        rows.append(
            {
                "version": version,
                "advisories": [_shown_note(n, summaries) for n in listed],
                "more": found.count - len(listed),
            }
        )
    return {"rows": rows, "count": len(notes), "more": len(notes) - len(rows)}


def _shown_note(note: AdvisoryNote, summaries: dict[str, str]) -> dict[str, Any]:
    """A note as a row shows it: its summary clipped and its first aliases, with the count of
    the others."""
    if note.summary not in summaries:
        summaries[note.summary] = clip(note.summary, ADVISORY_SUMMARY_MAX)
    return {
        "id": note.id,
        "aliases": note.aliases[:ALIASES_MAX],
        "more_aliases": max(0, len(note.aliases) - ALIASES_MAX),
        "summary": summaries[note.summary],
        "score": note.score,
        "blocked": note.blocked,
    }


def versions_of(model: Mapping[str, Any], extra: Iterable[str]) -> list[str]:
    """The versions a package page shows, then ``extra`` ones (blocked) it does not, each
    part newest first in conda's order (as strings, 1.2.10 would come before 1.2.9)."""
    shown = [row.version for row in model["versions"]]
    return shown + sorted(set(extra) - set(shown), key=version_sort_key, reverse=True)
