"""The records a run's filters left out, by name: ``history/filtered/<run id>.json``.

The run record keeps counts per reason; this file keeps every record (name, version, build,
reason) so that a person can find out why a package is not in a channel. At conda-forge scale
it holds hundreds of thousands of rows, so it is compact (reasons by index, one row per build,
not per format) and apart from the run record the history pages load.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import msgspec
import trio

from sitegen import layout
from sitegen.store.links_out import within
from sitegen.store.site import Site
from sitegen.sync.report import MirrorReport
from sitegen.sync.report_build import RunResults

log = logging.getLogger("sitegen")

FORMAT_VERSION = 1
COLUMNS = ("name", "version", "build", "reason")


def filtered_document(run_id: str, results: RunResults) -> dict[str, Any] | None:
    """The filtered-out records of each mirror and subdir of the run; None when the run's
    filters left nothing out (or never ran)."""
    closure = results.closure
    if closure is None:
        return None
    reasons: dict[str, int] = {}
    mirrors = []
    for name, selection in closure.selections.items():
        channel = next((c.path for c, m in results.mirrors if m.name == name), "")
        subdirs = {}
        for subdir, result in selection.outcome.items():
            parsed = results.parsed.get((name, subdir))
            records = parsed.repodata.records if parsed and parsed.repodata else {}
            rows = set()
            for fn, reason in result.excluded.items():
                record = records.get(fn)
                if record is not None:
                    key = (record.name, record.version, record.build)
                else:  # name-version-build.ext: what every checked record is named
                    stem = fn.removesuffix(".conda").removesuffix(".tar.bz2")
                    key = tuple(stem.rsplit("-", 2)) if stem.count("-") >= 2 else (stem, "", "")
                rows.add((*key, reasons.setdefault(reason, len(reasons))))
            if rows:
                subdirs[subdir] = [list(row) for row in sorted(rows)]
        if subdirs:
            mirrors.append({"mirror": name, "channel": channel, "subdirs": subdirs})
    if not mirrors:
        return None
    return {
        "v": FORMAT_VERSION,
        "run": run_id,
        "columns": list(COLUMNS),
        "reasons": list(reasons),
        "mirrors": mirrors,
    }


async def save_filtered(
    site: Site, run_id: str, results: RunResults, mirror_reports: Iterable[MirrorReport]
) -> None:
    """Write the run's filtered-out records and point the mirrors' reports at the file. The
    list is worth no failed run: a file that cannot be written is logged and left out."""

    def write() -> set[str]:
        document = filtered_document(run_id, results)
        if document is None:
            return set()
        # Refused (an OSError) through a link out of the site: the list is left out.
        path = within(site, layout.filtered_records_path(run_id))
        site.ensure_dir(path.parent)
        site.write_bytes(path, msgspec.json.encode(document))
        return {m["mirror"] for m in document["mirrors"]}

    try:
        listed = await trio.to_thread.run_sync(write)
    except OSError as exc:
        log.warning("could not record the filtered-out records of this run: %s", exc)
        return
    for mr in mirror_reports:
        if mr.name in listed:
            mr.filtered_run = run_id
