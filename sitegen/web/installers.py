"""The installer folders on the pages: each folder's own page (its files with size, date and
sha256), its entry on the landing page, and its rows on the run pages.

A folder's files are those on disk that its state (what its last run verified) describes:
the state gives what a page shows of them, the disk whether they are still there.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

from sitegen.config import InstallerConfig
from sitegen.layout import installer_page_path, run_page_path
from sitegen.sync.installer_state import read_state, stored_names
from sitegen.sync.report import COMPLETED, FAILED, RUNNING, InstallerReport, RunReport
from sitegen.web.format import format_time, iso_time

LIST_MAX = 2000  # file names listed per change list on a run page, as for channels
REMOVED = "removed"  # a folder's status in the run record of its removal (sitegen remove)
# What a run page says of a folder's status; a dry run's and a removal's are shown as the
# channels' are.
STATUS_WORDS = {"dry-run": "dry run", REMOVED: "removed by sitegen remove"}


def installer_files(root: Path, installer: InstallerConfig) -> list[dict[str, Any]]:
    """The folder's files, newest first (then by name)."""
    state = read_state(root, installer.path)
    present = stored_names(root / installer.path)
    files = sorted(
        ((name, stored) for name, stored in state.files.items() if name in present),
        key=lambda item: (-item[1].modified, item[0]),
    )
    return [
        {
            "name": name,
            "size": stored.size,
            "modified": format_time(stored.modified),
            "modified_iso": iso_time(stored.modified),
            "sha256": stored.sha256,
        }
        for name, stored in files
    ]


def folder_status(reports: list[RunReport], path: str) -> dict[str, Any]:
    """The last run of a folder (its status there) and its last successful one."""
    out: dict[str, Any] = {"last_status": None, "last_run_page": None, "last_success": None}
    for report in reports:  # newest first
        found = next((i for i in report.installers if i.path == path), None)
        if found is None:
            continue
        if report.removal:
            break  # the runs before it were of the folder `sitegen remove` deleted
        if out["last_run_page"] is None:
            out["last_run_page"] = run_page_path(report.id)
            out["last_status"] = report.status if report.status == RUNNING else found.status
        if found.status == COMPLETED:
            out["last_success"] = report.ended
            break
    return out


def installer_page(
    root: Path,
    installer: InstallerConfig,
    reports: list[RunReport],
    scrub: Any,
    downloads: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The model of a folder's own page; ``downloads`` are its download counts while the site
    has statistics (see :func:`sitegen.web.downloads.installer_downloads`)."""
    files = installer_files(root, installer)
    if downloads is not None:
        for f in files:
            f["downloads"] = downloads["files"].get(f["name"], 0)
    return {
        "path": installer.path,
        "source": scrub(installer.display_url()),
        "files": files,
        "total": sum(f["size"] for f in files),
        "downloads": downloads,
        **folder_status(reports, installer.path),
    }


def landing_installers(pages: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The folders' entries on the landing page, from their pages' models."""
    return [
        {
            "path": path,
            "page": installer_page_path(path),
            "source": model["source"],
            "count": len(model["files"]),
            "total": model["total"],
            "last_status": model["last_status"],
            "last_success": model["last_success"],
            "last_run_page": model["last_run_page"],
        }
        for path, model in pages.items()
    ]


def installer_row(
    ir: InstallerReport, scrub: Any, folder_pages: Collection[str] | None = None
) -> dict[str, Any]:
    """A folder's row in a run's summary (the history pages, history.json); ``folder_pages``:
    the folders whose page the render writes (None: every folder's)."""
    return {
        "path": ir.path,
        "page": _page(ir, folder_pages),
        "source": scrub(ir.source),
        "status": ir.status,
        "status_words": STATUS_WORDS.get(ir.status, ir.status),
        "listed": ir.listed,
        "files": ir.files,
        "added": len(ir.added),
        "updated": len(ir.updated),
        "removed": len(ir.removed),
        "downloaded_files": ir.downloaded_files,
        "downloaded_bytes": ir.downloaded_bytes,
        "skipped": ir.skipped_total,
        "errors": [scrub(e) for e in ir.errors],
    }


def installer_changes(
    ir: InstallerReport, scrub: Any, folder_pages: Collection[str] | None = None
) -> dict[str, Any]:
    """What a run changed in a folder, for its page: the files and the rows it skipped."""

    def listed(names: list[str]) -> dict[str, Any]:
        items = [{"fn": name, "page": None} for name in names[:LIST_MAX]]
        return {"items": items, "more": max(0, len(names) - LIST_MAX)}

    return {
        "path": ir.path,
        "page": _page(ir, folder_pages),
        "added": listed(ir.added),
        "updated": listed(ir.updated),
        "removed": listed(ir.removed),
        "skipped": [{"row": scrub(row), "why": why} for row, why in ir.skipped.items()],
        "skipped_more": ir.skipped_total - len(ir.skipped),
        "errors": [scrub(e) for e in ir.errors],
        "failed": ir.status == FAILED,
    }


def _page(ir: InstallerReport, folder_pages: Collection[str] | None) -> str | None:
    """The folder's page; None for a folder ``sitegen remove`` deleted, page and all, and for
    one without a page now (taken out of channels.yaml, or a link its runs leave alone)."""
    if ir.status == REMOVED or (folder_pages is not None and ir.path not in folder_pages):
        return None
    return installer_page_path(ir.path)
