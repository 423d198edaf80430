"""``sitegen status`` presented: :func:`format_status` for a person at a terminal or in a
cron log, :func:`status_json` for a program. Both read the model of ``tools.status``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import msgspec

from sitegen.sync.progress import human_bytes
from sitegen.sync.report import UNMATCHED_SHOWN, excepted_text, iso_utc, new_files_text
from sitegen.tools.status import LastRun, SiteStatus
from sitegen.tools.status_filters import filters_text
from sitegen.tools.status_installers import InstallerLastRun, InstallerStatus
from sitegen.wording import counted


def span(seconds: float) -> str:
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def status_json(status: SiteStatus) -> dict[str, Any]:
    """The model for programs: times as ISO 8601 UTC strings."""

    def last(run: LastRun | InstallerLastRun | None) -> dict[str, Any] | None:
        if run is None:
            return None
        shown = {**asdict(run), "started": iso_utc(run.started), "ended": iso_utc(run.ended)}
        if isinstance(run, LastRun):
            shown["unmatched"] = [msgspec.structs.asdict(u) for u in run.unmatched]
        return shown

    active = None
    if status.active is not None:
        active = {**asdict(status.active), "started": iso_utc(status.active.started)}
    return {
        "site": status.site,
        "now": iso_utc(status.now),
        "running": active,
        "mirrors": [
            {
                "name": m.name,
                "channel": m.channel,
                "schedule": m.schedule,
                "source": m.source,
                "mode": m.mode,
                "subdirs": list(m.subdirs),
                "filters": m.filters,
                "last_run": last(m.last_run),
                "last_completed": iso_utc(m.last_completed),
                "next_due": iso_utc(m.next_due),
                "due": m.due,
            }
            for m in status.mirrors
        ],
        "channels": [asdict(c) for c in status.channels],
        "unfinished": [{**asdict(u), "started": iso_utc(u.started)} for u in status.unfinished],
        "frozen": [{**asdict(f), "when": iso_utc(f.when)} for f in status.frozen],
        "frozen_error": status.frozen_error,
        "unconfigured": [asdict(u) for u in status.unconfigured],
        "unconfigured_channels": [asdict(u) for u in status.unconfigured_channels],
        "installers": [
            {
                "path": i.path,
                "source": i.source,
                "schedule": i.schedule,
                "files": i.files,
                "bytes": i.bytes,
                "last_run": last(i.last_run),
                "last_completed": iso_utc(i.last_completed),
                "next_due": iso_utc(i.next_due),
                "due": i.due,
            }
            for i in status.installers
        ],
        "unconfigured_installers": [asdict(u) for u in status.unconfigured_installers],
    }


def format_status(status: SiteStatus) -> str:
    """The model for a person at a terminal or in a cron log."""
    lines = [f"site: {status.site}"]
    if status.active is None:
        lines.append("running: no run holds the site now")
    else:
        run = status.active
        since = (
            f", run {run.id} started {iso_utc(run.started)} ({span(status.now - run.started)} ago)"
            if run.id and run.started is not None
            else ""
        )
        lines.append(f"running: pid {run.pid} holds the site lock{since}")
        if run.progress:
            done = run.progress
            lines.append(
                f"  downloading: {done.get('files', 0)}/{done.get('total_files', 0)} files"
                f" ({done.get('failed', 0)} failed),"
                f" {human_bytes(done.get('bytes', 0))} of {human_bytes(done.get('total_bytes', 0))}"
            )
    lines.extend(
        f"unfinished: run {u.id} (pid {u.pid}) started {iso_utc(u.started)} and did not finish;"
        " the next run records it as interrupted"
        for u in status.unfinished
    )
    for m in status.mirrors:
        lines.append(f"mirror {m.name} (channel {m.channel}, schedule {m.schedule})")
        lines.append(f"  source: {m.source}, {m.mode}, subdirs {', '.join(m.subdirs)}")
        lines.append(f"  filters: {filters_text(m.filters)}")
        run = m.last_run
        if run is None:
            lines.append("  last run: never")
        else:
            took = f", took {span(run.ended - run.started)}" if run.ended else ""
            lines.append(
                f"  last run: {run.id}, {run.status}, started {iso_utc(run.started)}{took}"
            )
            lines.append(
                f"    {counted(run.records_kept, 'record')} kept{excepted_text(run.excepted)};"
                f" channel: {counted(run.packages, 'file')} published"
                f" (+{run.added} ~{run.updated} -{run.removed}), "
                + new_files_text(
                    (run.downloaded_files, run.downloaded_bytes),
                    (run.local_files, run.local_bytes),
                )
            )
            lines.extend(f"    error: {e}" for e in run.errors[:5])
            if len(run.errors) > 5:
                lines.append(f"    ... {len(run.errors) - 5} more errors")
            lines.extend(
                f"    matched nothing: {u.text()}" for u in run.unmatched[:UNMATCHED_SHOWN]
            )
            if (more := len(run.unmatched) - UNMATCHED_SHOWN) > 0:
                lines.append(
                    f"    ... {more} more filter entries matched nothing (see the run record)"
                )
        if m.last_completed is None and run is None:
            lines.append("  next due: now (never completed)")
        elif m.last_completed is None:
            # It ran, but never completed its channel as configured now (see last_completed).
            lines.append(f"  next due: now (no completed run of {m.channel} as configured now)")
        elif m.due:
            lines.append(f"  next due: now (since {iso_utc(m.next_due)})")
        else:
            lines.append(
                f"  next due: {iso_utc(m.next_due)} (in {span(m.next_due - status.now)});"
                f" last completed {iso_utc(m.last_completed)}"
            )
    for i in status.installers:
        lines.extend(_installer_lines(i, status.now))
    if status.frozen_error:
        lines.append(
            f"frozen: every channel (runs keep them all as published): {status.frozen_error}"
        )
    for f in status.frozen:
        if f.in_config:
            why = "frozen: true in channels.yaml"
        else:
            reason = f": {f.reason}" if f.reason else ""
            why = (
                f"by {f.by or 'sitegen freeze'} at {iso_utc(f.when)}{reason};"
                f" lift with `sitegen unfreeze {f.channel}`"
            )
        lines.append(f"frozen: {f.channel} (runs keep its published state; {why})")
    lines.append("disk used:")
    width = max((len(c.channel) for c in status.channels), default=0)
    for c in status.channels:
        kept = f" ({c.kept} kept unlisted)" if c.kept else ""
        lines.append(
            f"  {c.channel:<{width}}  {human_bytes(c.bytes)} in {counted(c.files, 'file')}{kept}"
        )
    lines.extend(
        f"not configured, still served: {u.path} ({human_bytes(u.bytes)} in"
        f" {counted(u.files, 'file')}): no channel in the configuration publishes it, so runs"
        f" leave it as it is and clients still read it; `sitegen remove {u.path}` stops"
        " serving it"
        for u in status.unconfigured
    )
    lines.extend(
        f"channel not configured, still served: {u.path} ({human_bytes(u.bytes)} in"
        f" {counted(u.files, 'file')} beside its subdirs: channeldata.json, pages): the"
        " configuration does not name it, so runs leave it as it is; `sitegen remove"
        f" {u.path}` stops serving it and its subdirs"
        for u in status.unconfigured_channels
    )
    lines.extend(
        f"installer folder not configured, still served: {u.path} ({human_bytes(u.bytes)} in"
        f" {counted(u.files, 'file')}): channels.yaml no longer names it, so runs leave it as"
        f" it is and the web server still serves it; `sitegen remove {u.path}` stops serving it"
        for u in status.unconfigured_installers
    )
    return "\n".join(lines) + "\n"


def _installer_lines(folder: InstallerStatus, now: float) -> list[str]:
    lines = [
        f"installer folder {folder.path} (schedule {folder.schedule})",
        f"  source: {folder.source}/",
        f"  holds: {counted(folder.files, 'file')}, {human_bytes(folder.bytes)} on disk",
    ]
    run = folder.last_run
    if run is None:
        lines.append("  last run: never")
    else:
        took = f", took {span(run.ended - run.started)}" if run.ended else ""
        lines.append(f"  last run: {run.id}, {run.status}, started {iso_utc(run.started)}{took}")
        skipped = f"; {counted(run.skipped, 'row')} of the index skipped" if run.skipped else ""
        lines.append(
            f"    index: {counted(run.listed, 'file')} listed; folder: {counted(run.files, 'file')}"
            f" (+{run.added} ~{run.updated} -{run.removed}), "
            + new_files_text((run.downloaded_files, run.downloaded_bytes), (0, 0))
            + skipped
        )
        lines.extend(f"    error: {e}" for e in run.errors[:5])
        if len(run.errors) > 5:
            lines.append(f"    ... {len(run.errors) - 5} more errors")
    if folder.last_completed is None:
        lines.append("  next due: now (never completed)")
    elif folder.due:
        lines.append(f"  next due: now (since {iso_utc(folder.next_due)})")
    else:
        lines.append(
            f"  next due: {iso_utc(folder.next_due)} (in {span(folder.next_due - now)});"
            f" last completed {iso_utc(folder.last_completed)}"
        )
    return lines
