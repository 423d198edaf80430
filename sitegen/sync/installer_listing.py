"""An upstream installer folder's index page, read: the HTML table of Filename, Size, Last
Modified and SHA256 that repo.anaconda.com serves for /miniconda/ and /archive/.

The page is parsed with the standard library's HTML parser, never matched with patterns, and
every row is judged on its own: a file name that is not a plain name (no path, no dot first,
bounded), a size that is none or too large, a date that does not read or a sha256 that is not
64 hex digits skips that row with its reason, and the good rows stand. So does a row holding a
credential of the folder's URL (the token of ``/t/<token>/``, a password, a user name without
one) in any cell: stored, listed on the folder's page or reported, it would hand the credential
to every reader of the site; it is reported with the credential hidden. The name a row gives is the only name a file
is ever stored or fetched under (a link's target is only checked against it, never stored).
Pure: the caller fetches the page and chooses what to download.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit

from sitegen.conda.record_secrets import SecretSearch
from sitegen.config import InstallerConfig
from sitegen.layout import INSTALLER_PAGE
from sitegen.sync.report import SKIPPED_EXAMPLES

# The name of a stored file: letters and digits first (never a dot: hidden and temporary
# files start with one), then what installer names use; bounded well below a file system's
# 255 bytes.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$")
SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
# The largest installer: Anaconda's are about 1 GB; a row claiming more is not believed.
MAX_INSTALLER_BYTES = 16 << 30
# "148.7M" (repo.anaconda.com), "148.7 MiB", "155469432" (bytes): digits, up to three
# decimals with a unit, a unit of K, M, G or T with or without "B" or "iB".
_SIZE_RE = re.compile(r"^(\d{1,15})(?:\.(\d{1,3}))?\s*(?:([KMGT])(?:i?B)?|B)?$", re.IGNORECASE)
_DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S",
    "%d-%b-%Y %H:%M",
)
# Header cells, lower-cased with everything but letters and digits left out.
_COLUMNS = {
    "filename": "name",
    "name": "name",
    "size": "size",
    "lastmodified": "modified",
    "modified": "modified",
    "date": "modified",
    "sha256": "sha256",
}
SHOWN_NAME = 80  # characters of a skipped row's name kept for the report
# Cells of a row read: a listing has 4; more are passed over (an index page of nothing but
# "<td>" would otherwise be millions of cells in one row).
MAX_CELLS = 32
REASON_SECRET = "holds a secret of the folder's URL"


@dataclass(frozen=True)
class ListedFile:
    """A row of the index that reads as an installer file."""

    name: str
    low: int  # the sizes the listed (rounded) size stands for, in bytes
    high: int
    modified: float  # seconds since the epoch, UTC
    sha256: str  # lower case

    @property
    def exact(self) -> bool:
        """Whether the index states the size to the byte."""
        return self.low == self.high

    def fits(self, size: int) -> bool:
        """Whether ``size`` bytes is what the listed size stands for."""
        return self.low <= size <= self.high


@dataclass
class Listing:
    """What an index page lists: the files of its good rows by name, and why other rows were
    skipped (``(what, why)``; ``what`` names the row's file, cut short): the first
    SKIPPED_EXAMPLES as examples, and how many in all."""

    files: dict[str, ListedFile] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    skipped_total: int = 0
    # Plain file names of skipped rows: a file stored under one stays (its row is unreadable
    # now, not gone).
    unreadable: set[str] = field(default_factory=set)
    found: bool = False  # a table with the columns was there at all

    def skip(self, what: str, why: str) -> None:
        self.skipped_total += 1
        if len(self.skipped) < SKIPPED_EXAMPLES:
            self.skipped.append((what, why))


@dataclass
class _Cell:
    header: bool
    text: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)

    @property
    def value(self) -> str:
        return " ".join("".join(self.text).split())


class _Tables(HTMLParser):
    """The rows of every table in a page, in order, each handed to ``on_row`` with the number
    of its table as it ends (a page's rows are never all held at once)."""

    def __init__(self, on_row: Callable[[int, list[_Cell]], None]) -> None:
        super().__init__(convert_charrefs=True)
        self._on_row = on_row
        self._tables = 0
        self._open: list[int] = []  # the tables open, innermost last
        self._row: list[_Cell] | None = None
        self._cell: _Cell | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._end_row()
            self._tables += 1
            self._open.append(self._tables)
        elif tag == "tr" and self._open:
            self._end_row()
            self._row = []
        elif tag in ("td", "th") and self._open:
            if self._row is None:
                self._row = []  # a cell with no <tr> (HTML allows leaving it out)
            self._end_cell()
            if len(self._row) < MAX_CELLS:
                self._cell = _Cell(header=tag == "th")
        elif tag == "a" and self._cell is not None:
            href = dict(attrs).get("href")
            if href is not None:
                self._cell.links.append(href)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th"):
            self._end_cell()
        elif tag == "tr":
            self._end_row()
        elif tag == "table" and self._open:
            self._end_row()
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.text.append(data)

    def _end_cell(self) -> None:
        if self._cell is not None and self._row is not None:
            self._row.append(self._cell)
        self._cell = None

    def _end_row(self) -> None:
        self._end_cell()
        if self._row and self._open:
            self._on_row(self._open[-1], self._row)
        self._row = None

    def close(self) -> None:
        # Not HTMLParser.close(): what feed() leaves unparsed is an unfinished construct
        # running to the end of the page (an unclosed comment or tag), which close() takes
        # apart piece by piece, each piece scanning the rest of the page again: quadratic in
        # many Python releases sitegen runs on, hours for an index page under its 8 MB cap.
        # It holds no cell, as an unclosed comment runs to the end of a page for a browser too.
        self._end_row()


def parse_listing(page: str, secrets: SecretSearch | None = None) -> Listing:
    """The files an index page lists, and why each row that is not one was skipped; a row
    holding one of ``secrets`` (the credentials of the folder's URL) is skipped too, its name
    shown with them hidden."""
    rows = _Rows(secrets)
    parser = _Tables(rows.judge)
    parser.feed(page)
    parser.close()
    return rows.finished()


class _Rows:
    """The listing the rows of a page make, judged one by one as the parser ends them."""

    def __init__(self, secrets: SecretSearch | None) -> None:
        self.secrets = secrets
        self.listing = Listing()
        self.columns: dict[str, int] | None = None
        self.table = 0
        self.number = 0
        self.seen: dict[str, ListedFile] = {}
        self.twice: set[str] = set()

    def judge(self, in_table: int, cells: list[_Cell]) -> None:
        self.number += 1
        listing, secrets = self.listing, self.secrets
        if in_table != self.table:
            self.table, self.columns = in_table, None
        heading = _heading(cells)
        if heading is not None:
            self.columns = heading
            listing.found = True
            return
        if self.columns is None:
            return  # a row of some other table
        width = max(self.columns.values()) + 1
        if len(cells) < width:
            listing.skip(f"row {self.number}", f"{len(cells)} cells, not {width}")
            return
        name_cell = cells[self.columns["name"]]
        name = name_cell.value
        values = {key: cells[index].value for key, index in self.columns.items()}
        if secrets and secrets.holds(list(values.values())):
            # Before any other judgement: its reasons quote the cells, cut short.
            listing.skip(_shown(secrets.hide(name)), REASON_SECRET)
            return
        try:
            found = _row(name_cell, values)
        except ValueError as exc:
            listing.skip(_shown(name), str(exc))
            if NAME_RE.match(name):
                listing.unreadable.add(name)
            return
        earlier = self.seen.get(name)
        if earlier is None:
            self.seen[name] = found
        elif earlier.sha256 != found.sha256:
            self.twice.add(name)

    def finished(self) -> Listing:
        listing = self.listing
        for name in sorted(self.twice):
            listing.skip(_shown(name), "listed twice, with different checksums")
            listing.unreadable.add(name)
        listing.files = {name: f for name, f in self.seen.items() if name not in self.twice}
        return listing


def _heading(cells: list[_Cell]) -> dict[str, int] | None:
    """The column of each field, when ``cells`` are the table's header (its own Filename and
    SHA256 cells at least)."""
    columns: dict[str, int] = {}
    for index, cell in enumerate(cells):
        key = _COLUMNS.get(re.sub(r"[^a-z0-9]", "", cell.value.lower()))
        if key is not None and key not in columns:
            columns[key] = index
    if {"name", "size", "modified", "sha256"} <= columns.keys():
        return columns
    return None


def _shown(name: str) -> str:
    return repr(name if len(name) <= SHOWN_NAME else f"{name[:SHOWN_NAME]}…")


def _row(name_cell: _Cell, values: Mapping[str, str]) -> ListedFile:
    """The file a row names; ValueError saying why the row is no file to mirror."""
    name = values["name"]
    if not NAME_RE.match(name):
        raise ValueError("not a plain file name (a path, a dot first, odd characters or too long)")
    if name.lower() == INSTALLER_PAGE:  # also where file names ignore case
        raise ValueError(f"{INSTALLER_PAGE} is the folder's own page")
    for href in name_cell.links:
        # Files are fetched by the name the row shows; a link that names another file says
        # the row is not what it seems.
        if unquote(urlsplit(href).path.rstrip("/").rpartition("/")[2]) != name:
            raise ValueError("its link names another file")
    low, high = listed_size(values["size"])
    modified = _date(values["modified"])
    sha256 = values["sha256"]
    if not SHA256_RE.match(sha256):
        raise ValueError("its sha256 is not 64 hexadecimal digits")
    return ListedFile(name, low, high, modified, sha256.lower())


def listed_size(text: str) -> tuple[int, int]:
    """The smallest and largest size in bytes a listed size stands for: ``148.7M`` is rounded
    (to a tenth of a mebibyte or of a megabyte: both readings are allowed), ``155469432`` is
    exact. ValueError for what is no size, nothing, or more than an installer may be."""
    match = _SIZE_RE.match(text.strip())
    if match is None:
        raise ValueError(f"its size {text[:20]!r} is not a size")
    whole, decimals, unit = match.groups()
    if decimals and not unit:
        raise ValueError(f"its size {text[:20]!r} has decimals but no unit")
    if not unit:
        low = high = int(whole)
    else:
        power = "KMGT".index(unit.upper()) + 1
        scale = 10 ** len(decimals or "")
        tenths = int(whole) * scale + int(decimals or 0)  # the size in units of 1/scale
        # Half a last digit either way, in 1000-based units at the least and 1024-based at
        # the most.
        low = max(1, (2 * tenths - 1) * 1000**power // (2 * scale))
        high = -(-(2 * tenths + 1) * 1024**power // (2 * scale))
    if high <= 0:
        raise ValueError("its size is 0")
    if low > MAX_INSTALLER_BYTES:
        raise ValueError(f"its size {text[:20]!r} is more than an installer may be (16 GiB)")
    return low, min(high, MAX_INSTALLER_BYTES)


def _date(text: str) -> float:
    for pattern in _DATE_FORMATS:
        try:
            moment = datetime.strptime(text, pattern)
        except ValueError:
            continue
        return moment.replace(tzinfo=UTC).timestamp()
    raise ValueError(f"its date {text[:40]!r} does not read as one")


def select(files: Mapping[str, ListedFile], installer: InstallerConfig) -> dict[str, ListedFile]:
    """The files an installer folder mirrors, by name: those an include glob matches (every
    file without include globs) and no exclude glob does; with ``newest``, of each include glob
    the ``newest`` most recently modified of them only."""
    candidates = [
        f
        for f in files.values()
        if not any(fnmatch.fnmatchcase(f.name, p) for p in installer.exclude)
    ]
    chosen: dict[str, ListedFile] = {}
    for pattern in installer.include or ("*",):
        matched = [f for f in candidates if fnmatch.fnmatchcase(f.name, pattern)]
        matched.sort(key=lambda f: (f.modified, f.name), reverse=True)
        if installer.newest is not None:
            matched = matched[: installer.newest]
        chosen.update((f.name, f) for f in matched)
    return dict(sorted(chosen.items()))
