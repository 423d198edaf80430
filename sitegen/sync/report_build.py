"""Assemble the run report from the results of the stages a run got through.

The stages return what they did (`RunResults`); this is the one place that turns it into the
MirrorReport and ChannelSubdirReport entries the history pages, the exit status and the tests
read. A run stopped part-way is reported from the stages it finished.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from sitegen.conda.indexed import same_except_indexed
from sitegen.conda.records import Record
from sitegen.config import ChannelConfig, MirrorConfig
from sitegen.config.local_source import KIND as LOCAL_KIND
from sitegen.filters.advisories import REASON_PREFIX as ADVISORY
from sitegen.sync.download import DownloadOutcome, TargetKey
from sitegen.sync.fetch import ERROR, FetchResult, ParseResult, SubdirKey
from sitegen.sync.inputs import BuiltFrom
from sitegen.sync.keep import log_kept
from sitegen.sync.merge import MERGED, MergedSubdir
from sitegen.sync.plan import Plan
from sitegen.sync.publish import PublishOutcome
from sitegen.sync.report import (
    FAILED,
    NOT_REACHED,
    AddedDependency,
    BlockedFile,
    ChannelSubdirReport,
    MirrorReport,
    MirrorSubdirReport,
    MissingPin,
    RunReport,
    UnmatchedEntry,
    UnsatisfiedDependency,
    recorded_list,
)
from sitegen.sync.run_exports_fetch import RunExportsRead
from sitegen.sync.selection import ClosureResult

REJECTED_EXAMPLES = 50  # refused records named in a mirror subdir's report


@dataclass
class RunResults:
    """What each stage returned, as far as the run got; filled in by the pipeline only."""

    mirrors: list[tuple[ChannelConfig, MirrorConfig]]  # every mirror of the rebuilt channels
    dry_run: bool = False
    unusable: dict[str, str] = field(default_factory=dict)  # mirror -> why it cannot be used
    warnings: dict[str, list[str]] = field(default_factory=dict)  # mirror -> what it ran without
    fetched: dict[SubdirKey, FetchResult] = field(default_factory=dict)
    parsed: dict[SubdirKey, ParseResult] = field(default_factory=dict)
    run_exports: dict[SubdirKey, RunExportsRead] = field(default_factory=dict)  # CEP-12
    reused: BuiltFrom | None = None  # the unchanged-inputs shortcut was taken
    closure: ClosureResult | None = None
    merged: list[MergedSubdir] = field(default_factory=list)
    # (mirror, subdir) -> the published records a mirror that could not be read still supplies
    still_supplied: dict[SubdirKey, int] = field(default_factory=dict)
    kept: dict[TargetKey, dict[str, Record]] = field(default_factory=dict)  # keep_removed
    plans: dict[TargetKey, Plan] = field(default_factory=dict)
    downloads: dict[TargetKey, DownloadOutcome] = field(default_factory=dict)
    publish: dict[TargetKey, PublishOutcome] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # of the run as a whole
    pins_missing: dict[str, list[MissingPin]] = field(default_factory=dict)  # by mirror
    unmatched: dict[str, list[UnmatchedEntry]] = field(default_factory=dict)  # by mirror


def build_report(report: RunReport, selected: set[str], results: RunResults) -> list[MirrorReport]:
    """Add the results to ``report`` (its selected mirrors, channel subdirs and run errors);
    returns the reports of every mirror of the rebuilt channels, selected or riding along."""
    mirror_reports = {m.name: _mirror_report(c, m, results) for c, m in results.mirrors}
    if results.reused is not None:
        _restore(mirror_reports, report, results)
    else:
        if results.closure is not None:
            _add_closure(mirror_reports, results.closure)
        for (name, subdir), count in results.still_supplied.items():
            # What a mirror down upstream keeps is what its channel goes on publishing of it.
            sub = mirror_reports[name].subdirs.get(subdir)
            if sub is not None:  # a subdir not tried (the mirror not run) counts nothing
                sub.kept = count
        for name, missing in results.pins_missing.items():
            mirror_reports[name].pins_missing = missing
        for name, unmatched in results.unmatched.items():
            mirror_reports[name].unmatched = unmatched
        for merged in results.merged:
            for mirror, message in merged.conflicts:
                mirror_reports[mirror].conflicts.append(message)
            for mirror, fn, reason in merged.refused:
                _add_rejected(mirror_reports[mirror], merged.subdir, fn, reason)
            report.channels.append(_channel_report(merged, results))
    report.mirrors.extend(mr for mr in mirror_reports.values() if mr.name in selected)
    report.errors.extend(recorded_list(results.errors, "error"))
    for cr in report.channels:
        # A failed download is an error each: thousands when an upstream fails mid-run.
        cr.errors = recorded_list(cr.errors, "error")
    return list(mirror_reports.values())


def _mirror_report(
    channel: ChannelConfig, mirror: MirrorConfig, results: RunResults
) -> MirrorReport:
    mr = MirrorReport(
        name=mirror.name,
        channel=channel.path,
        source=mirror.display_url(),
        mode=mirror.mode,
        kind=mirror.kind,
    )
    if mirror.name in results.unusable:
        mr.errors.append(results.unusable[mirror.name])
    mr.warnings.extend(results.warnings.get(mirror.name, ()))
    parse_errors = []
    for subdir in mirror.subdirs:
        key = (mirror.name, subdir)
        fetched = results.fetched.get(key)
        if fetched is None:
            continue
        sub = mr.subdirs[subdir] = MirrorSubdirReport(upstream=fetched.status)
        if fetched.status == ERROR:
            mr.errors.append(f"{subdir}: {fetched.error}")
        parsed = results.parsed.get(key)
        if parsed is None:
            continue
        repodata = parsed.repodata
        if repodata is None:
            sub.upstream = ERROR
            parse_errors.append(f"{subdir}: {parsed.error}")
            continue
        sub.records = len(repodata.records)
        sub.rejected = dict(Counter(repodata.rejected.values()))
        sub.rejected_examples = dict(list(repodata.rejected.items())[:REJECTED_EXAMPLES])
    mr.errors.extend(parse_errors)  # the parse stage runs after every fetch
    mr.errors = recorded_list(mr.errors, "error")
    mr.warnings = recorded_list(mr.warnings, "warning")
    return mr


def _add_rejected(mr: MirrorReport, subdir: str, fn: str, reason: str) -> None:
    """A record refused after parsing (see sitegen.sync.merge), counted with those refused
    while parsing: not a sound record, and not kept."""
    sub = mr.subdirs.setdefault(subdir, MirrorSubdirReport())
    sub.records = max(0, sub.records - 1)
    sub.kept = max(0, sub.kept - 1)
    sub.rejected[reason] = sub.rejected.get(reason, 0) + 1
    if len(sub.rejected_examples) < REJECTED_EXAMPLES:
        sub.rejected_examples[fn] = reason


def _add_closure(mirror_reports: Mapping[str, MirrorReport], closure: ClosureResult) -> None:
    dependencies = closure.dependencies
    for name, selection in closure.selections.items():
        mr = mirror_reports.get(name)
        if mr is None:
            continue  # a mirror of a channel the run does not rebuild, walked as published
        for subdir, result in selection.outcome.items():
            sub = mr.subdirs.setdefault(subdir, MirrorSubdirReport())
            sub.kept = len(result.kept)
            sub.excluded = dict(Counter(result.excluded.values()))
            sub.excepted = dict(Counter(result.excepted.values()))
            mr.advisories_blocked.extend(
                BlockedFile(subdir, fn, why.removeprefix(ADVISORY))
                for fn, why in sorted(result.excluded.items())
                if why.startswith(ADVISORY)
            )
        for added in dependencies.added.get(name, []):
            mr.subdirs[added.subdir].added_as_dependency += 1
            # whose file `why` names: the public pages leave it out for a private one (a
            # channel the run does not rebuild may need it too)
            needing = mirror_reports.get(added.needed_by)
            needed_by = needing.channel if needing else closure.selections[added.needed_by].channel
            mr.dependencies_added.append(
                AddedDependency(added.subdir, added.fn, added.why, needed_by)
            )
        reasons = dependencies.reasons.get(name, {})
        for subdir, spec, needed_by in dependencies.unsatisfied.get(name, []):
            reason = reasons.get((subdir, spec), "")
            mr.unsatisfied.append(UnsatisfiedDependency(subdir, spec, needed_by, reason))


def _channel_report(merged: MergedSubdir, results: RunResults) -> ChannelSubdirReport:
    # Until a new state is published the subdir serves its previous one (held back, failed,
    # stopped before publishing): that is what it publishes.
    published = len(merged.previous.records) if merged.previous is not None else 0
    cr = ChannelSubdirReport(channel=merged.channel, subdir=merged.subdir, packages=published)
    if merged.status != MERGED:
        cr.status = merged.status
        cr.errors.extend(merged.errors)
        # The previous state stays published (held, failed or frozen): it is what the subdir
        # serves, and keeps.
        cr.packages = len(merged.previous.records) if merged.previous else 0
        cr.kept_files = len(results.kept.get(merged.key, ()))
        return cr
    assert merged.meta is not None
    key = merged.key
    if results.dry_run:
        plan = results.plans.get(key)
        if plan is not None:
            cr.status = "dry-run"
            local = {m.name for _c, m in results.mirrors if m.kind == LOCAL_KIND}
            for record in (*plan.to_download, *plan.to_stage):
                if record.origin in local:
                    cr.local_files += 1
                    cr.local_bytes += record.size
                else:
                    cr.downloaded_files += 1
                    cr.downloaded_bytes += record.size
            cr.kept_files = len(results.kept.get(key, ()))
            cr.deleted_files = plan.unreferenced - cr.kept_files  # kept files are on disk
            _diff(cr, merged, merged.meta.records)
        return cr
    downloaded = results.downloads.get(key)
    if downloaded is not None:
        cr.downloaded_files = downloaded.files
        cr.downloaded_bytes = downloaded.bytes
        cr.local_files = downloaded.local_files
        cr.local_bytes = downloaded.local_bytes
        cr.errors.extend(downloaded.errors)
    outcome = results.publish.get(key)
    if outcome is None:
        # The run ended before it published this subdir (a stop, or a failure of the run as
        # a whole): nothing was found unchanged, and its downloads wait for the next run.
        cr.status = NOT_REACHED
        return cr
    cr.status = outcome.status
    if outcome.error:
        cr.errors.append(outcome.error)
    if outcome.records is None:  # failed, and kept its previous state
        return cr
    cr.first_step_only = outcome.status == FAILED  # failed, with records: its first step
    cr.deleted_files = outcome.deleted
    cr.kept_files = len(results.kept.get(key, ()))
    _diff(cr, merged, outcome.records)
    return cr


def _diff(cr: ChannelSubdirReport, merged: MergedSubdir, new: Mapping[str, Record]) -> None:
    old = merged.previous.records if merged.previous else {}
    added: list[str] = []
    updated: list[str] = []
    for fn, record in new.items():
        before = old.get(fn)
        if before is None:
            added.append(fn)
        # A record published again unchanged is the very object read back (load_published).
        elif before is not record and not same_except_indexed(record.raw, before.raw):
            updated.append(fn)
    cr.added = sorted(added)
    cr.removed = sorted(fn for fn in old if fn not in new)
    cr.updated = sorted(updated)
    cr.packages = len(new)


def _restore(
    mirror_reports: Mapping[str, MirrorReport], report: RunReport, results: RunResults
) -> None:
    """Report what the run that built the site found: these inputs give the same results."""
    built = results.reused
    assert built is not None
    for data in built.mirrors:
        mr = mirror_reports.get(data["name"])
        if mr is None:
            continue
        restored = MirrorReport.from_json(data)
        for subdir, sub in restored.subdirs.items():
            sub.upstream = results.fetched[(mr.name, subdir)].status
        mr.subdirs = restored.subdirs
        mr.unsatisfied = restored.unsatisfied
        mr.dependencies_added = restored.dependencies_added
        mr.pins_missing = restored.pins_missing
        mr.unmatched = restored.unmatched
        mr.advisories_blocked = restored.advisories_blocked
        mr.conflicts = restored.conflicts
        mr.filtered_run = restored.filtered_run
    for data in built.channels:
        cr = ChannelSubdirReport(
            channel=data["channel"],
            subdir=data["subdir"],
            packages=data["packages"],
            # The site keeps them as that run left them (their records are in the signature);
            # a record written before this count was kept says none.
            kept_files=data.get("kept_files", 0),
        )
        log_kept(cr.channel, cr.subdir, cr.kept_files)
        report.channels.append(cr)


def clean_rebuild(report: RunReport, results: RunResults) -> bool:
    """True when every subdir was published in full and nothing failed: a run with the same
    inputs may then skip the work."""
    return not report.failed and all(
        m.status == MERGED
        and not (results.downloads.get(m.key) or DownloadOutcome()).failed
        and m.key in results.publish
        and results.publish[m.key].status in ("published", "unchanged")
        for m in results.merged
    )


def inputs_record(
    digest: str,
    files: dict[str, list[int]],
    mirror_reports: list[MirrorReport],
    report: RunReport,
) -> BuiltFrom:
    """What a later run with the same inputs restores its report from."""
    mirrors = [asdict(mr) for mr in mirror_reports]
    for mr in mirrors:
        mr.pop("errors")
        mr.pop("warnings")
        mr.pop("status")
    channels = [
        {
            "channel": c.channel,
            "subdir": c.subdir,
            "packages": c.packages,
            "kept_files": c.kept_files,
        }
        for c in report.channels
    ]
    return BuiltFrom(digest=digest, files=files, mirrors=mirrors, channels=channels)
