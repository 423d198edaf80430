"""An upstream installer folder as repo.anaconda.com serves /miniconda/: files, and an index
page that is an HTML table of Filename, Size (rounded: ``2.9K``, ``148.7M``), Last Modified and
SHA256, answered at the folder's URL (``/miniconda/``) from the page written beside the files.

Rows are :class:`Row` values: the good ones are made from the files by :func:`row_of`; a test
may add hand-made rows (hostile names, bad checksums) in any order.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from testkit.upstream import UpstreamHandler, UpstreamServer

PAGE = "index.html"  # where the folder's page is kept beside its files upstream


@dataclass(frozen=True)
class Row:
    """One row of the index table, as it is written (``href`` None: the name's own)."""

    name: str
    size: str
    modified: str
    sha256: str
    href: str | None = None


def human_size(size: int) -> str:
    """The size as repo.anaconda.com writes it: one decimal and a 1024-based unit."""
    for unit in ("K", "M", "G"):
        size_in = size / 1024 ** ("KMG".index(unit) + 1)
        if size_in < 1024 or unit == "G":
            return f"{size_in:.1f}{unit}"
    raise AssertionError("unreachable")


def row_of(folder: Path, name: str, modified: str = "2025-06-26 13:03:13") -> Row:
    data = (folder / name).read_bytes()
    return Row(name, human_size(len(data)), modified, hashlib.sha256(data).hexdigest())


def index_page(rows: Iterable[Row], title: str = "Miniconda installer archive") -> str:
    cells = []
    for row in rows:
        href = html.escape(row.href if row.href is not None else row.name, quote=True)
        cells.append(
            "    <tr>\n"
            f'        <td><a href="{href}">{html.escape(row.name)}</a></td>\n'
            f'        <td class="s">{html.escape(row.size)}</td>\n'
            f"        <td>{html.escape(row.modified)}</td>\n"
            f"        <td>{html.escape(row.sha256)}</td>\n"
            "    </tr>\n"
        )
    return (
        "<!DOCTYPE html>\n<html>\n<head>\n"
        f"  <title>{html.escape(title)}</title>\n"
        "  <style>td.s { text-align: right; }</style>\n"
        "</head>\n<body>\n"
        f"<h2>{html.escape(title)}</h2>\n"
        "<table>\n"
        "    <tr>\n        <th>Filename</th>\n        <th>Size</th>\n"
        "        <th>Last Modified</th>\n        <th>SHA256</th>\n    </tr>\n"
        + "".join(cells)
        + "</table>\n</body>\n</html>\n"
    )


def write_folder(folder: Path, files: dict[str, bytes], extra: Iterable[Row] = ()) -> list[Row]:
    """Write ``files`` into ``folder`` (and nothing else of it stays) and its index page, which
    lists them (each modified a minute after the one before, in the order given) and then
    ``extra``; returns the rows written."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        path.unlink()
    rows = []
    for minute, (name, data) in enumerate(files.items()):
        (folder / name).write_bytes(data)
        rows.append(row_of(folder, name, f"2025-06-26 13:{minute:02d}:00"))
    rows.extend(extra)
    (folder / PAGE).write_text(index_page(rows))
    return rows


def serve_index(server: UpstreamServer, url_path: str) -> None:
    """Answer ``url_path`` (``/miniconda/``) with the page written in that folder, read at
    each request (a test may rewrite it between runs)."""
    folder = server.root.joinpath(*[p for p in url_path.split("/") if p])

    def hook(handler: UpstreamHandler) -> None:
        handler.respond(200, (folder / PAGE).read_bytes(), {"Content-Type": "text/html"})

    server.add_fault(url_path, hook)
