"""The summary of a run in the log: each mirror's status settled once the run went to its end,
what it kept and excluded, and one line per channel subdir (see sitegen.sync.report_build for
the report these read)."""

from __future__ import annotations

import logging
from collections import Counter

from sitegen.sync.merge import FAILED as MERGE_FAILED
from sitegen.sync.merge import HELD
from sitegen.sync.report import (
    COMPLETED,
    FAILED,
    NOT_REACHED,
    UNMATCHED_SHOWN,
    ChannelSubdirReport,
    MirrorReport,
    RunReport,
    excepted_text,
    new_files_text,
)
from sitegen.wording import counted

log = logging.getLogger("sitegen")

# The reasons the line of a mirror's unsatisfied dependencies counts; the record has each row's.
REASONS_LOGGED = 5


def finish(report: RunReport) -> None:
    """Settle the status of each mirror of a run that went to its end, and log the summary."""
    for mr in report.mirrors:
        mr.status = FAILED if mr.errors else COMPLETED
        if mr.errors and not mr.read_upstream():
            source = "the folder" if mr.local else "upstream"
            # Its counts are nil. A mirror with no subdir tried was not run at all (an ${ENV}
            # unset, an advisory feed never had): its error, logged already, says why.
            why = f"{source} could not be read" if mr.subdirs else "not run"
            log.info("%s: failed: %s", mr.name, why)
        else:
            excluded = ", ".join(f"{n} {r}" for r, n in mr.excluded_totals().items())
            kept = sum(s.kept for s in mr.subdirs.values())
            log.info(
                "%s: kept %s%s%s",
                mr.name,
                counted(kept, "record"),
                excepted_text(mr.excepted_totals()),
                f"; excluded: {excluded}" * bool(excluded),
            )
        if mr.unsatisfied:
            log.warning(
                "%s: %d dependencies could not be satisfied%s",
                mr.name,
                len(mr.unsatisfied),
                _reasons_text(mr),
            )
        for pin in mr.pins_missing:
            log.warning(
                "%s: %s pins %s/%s: %s",
                mr.name,
                pin.lockfile,
                pin.subdir,
                pin.file,
                pin.why,
            )
        _log_unmatched(mr)
    for cr in report.channels:
        log_channel_summary(cr)


def _reasons_text(mr: MirrorReport) -> str:
    """`` (2 not upstream, 1 license excluded)``: how many entries the most frequent reasons
    have; the run record and page give them row by row."""
    counts = Counter(u.reason for u in mr.unsatisfied if u.reason).most_common()
    if not counts:
        return ""
    parts = [f"{n} {why}" for why, n in counts[:REASONS_LOGGED]]
    if len(counts) > REASONS_LOGGED:
        parts.append(f"{len(counts) - REASONS_LOGGED} more reasons")
    return f" ({', '.join(parts)})"


def _log_unmatched(mr: MirrorReport) -> None:
    """The first few entries that matched nothing; the run record has them all."""
    for u in mr.unmatched[:UNMATCHED_SHOWN]:
        log.warning("%s: %s matches no record in any subdir", mr.name, u.text())
    if (more := len(mr.unmatched) - UNMATCHED_SHOWN) > 0:
        log.warning(
            "%s: and %d more entries matching no record (see the run record)", mr.name, more
        )


def log_channel_summary(cr: ChannelSubdirReport) -> None:
    """One line per channel subdir: records are counted as files (a record names one file).
    A subdir that kept its previous state says so, and why, like every failure."""
    where = f"{cr.channel}/{cr.subdir}"
    if cr.status in (HELD, MERGE_FAILED, NOT_REACHED):
        if cr.status == HELD:  # the other failures were logged as they happened
            for error in cr.errors:
                log.error("%s: %s", where, error)
        kept = (
            f"still publishes its previous {counted(cr.packages, 'file')}"
            if cr.packages
            else "kept its previous state (no files)"
        )
        log.info("%s: %s, %s", where, cr.status, kept)
        return
    log.info(
        "%s: %s, %s (+%d ~%d -%d), %s",
        where,
        cr.status,
        counted(cr.packages, "file"),
        len(cr.added),
        len(cr.updated),
        len(cr.removed),
        new_files_text(
            (cr.downloaded_files, cr.downloaded_bytes),
            (cr.local_files, cr.local_bytes),
            dry_run=cr.status == "dry-run",
        ),
    )
