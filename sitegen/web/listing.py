"""The listing of a subdir: its metadata files, then a row per package file, rendered in
chunks of rows that a cache keeps between renders, and split into pages of ~8,000 rows (all
of conda-forge's ``linux-64`` on one page would be 200 MB: more than a browser can open)."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator, Mapping
from operator import attrgetter
from typing import Any

from sitegen.conda.records import Record
from sitegen.layout import present_metadata_files
from sitegen.web.format import format_bytes, format_date_ms, format_time, url_quote
from sitegen.web.forms import ListingRow
from sitegen.web.published import PublishedFile, values

# A listing is rendered in chunks of rows that end where a file name's hash says so (about 1
# in CHUNK_ROWS), so that a file added or removed changes one chunk, not the rest.
CHUNK_ROWS = 512
CHUNK_ROWS_MAX = 8 * CHUNK_ROWS
# A listing's pages start at a chunk whose first file name's hash says so (about 1 chunk in
# PAGE_CHUNKS), or where a page would pass PAGE_ROWS_MAX rows: a file added or removed
# changes the rows of one page, and the others stay as they are.
PAGE_CHUNKS = 16
PAGE_ROWS_MAX = 2 * PAGE_CHUNKS * CHUNK_ROWS


def subdir_listing_head(
    channel: str,
    subdir: str,
    records: Mapping[str, Record] | Iterable[Any],
    metadata: Mapping[str, tuple[int, float]],
) -> dict[str, Any]:
    """A subdir's listing but for its package rows: ``records`` (as :func:`values` takes them)
    sorted by file name instead, of which :func:`listing_rows` makes the rows, in chunks.

    ``metadata`` maps present metadata file names to (size, mtime seconds).
    """
    meta_rows = [
        {"fn": fn, "size": metadata[fn][0], "modified": format_time(metadata[fn][1])}
        for fn in present_metadata_files()  # every one that is present
        if fn in metadata
    ]
    ordered = sorted(values(records), key=attrgetter("fn"))
    return {
        "channel": channel,
        "subdir": subdir,
        "metadata": meta_rows,
        "files": len(ordered),
        "size": sum(r.size for r in ordered),
        "records": ordered,
    }


def listing_rows(records: Iterable[Any]) -> list[ListingRow]:
    """Rows of a subdir listing, one per record, in order."""
    return [
        ListingRow(
            url_quote(r.fn),
            r.fn,
            format_bytes(r.size),
            format_date_ms(r.timestamp_ms),
            r.sha256 or "",
        )
        for r in records
    ]


def chunked(files: list[PublishedFile]) -> Iterator[list[PublishedFile]]:
    """A listing's files (sorted by name) in chunks whose ends depend on the names alone, so
    that a file added or removed changes one chunk only."""
    start = 0
    for i in range(1, len(files)):
        if zlib.crc32(files[i].fn.encode()) % CHUNK_ROWS == 0 or i - start >= CHUNK_ROWS_MAX:
            yield files[start:i]
            start = i
    if start < len(files):
        yield files[start:]


def paged(chunks: Iterable[list[Any]]) -> list[list[list[Any]]]:
    """:func:`chunked` files grouped into the pages of a listing (at least one, maybe empty):
    where pages start depends on the file names alone, as where chunks end does."""
    pages: list[list[list[Any]]] = [[]]
    rows = 0
    for chunk in chunks:
        # Chunks end before a name whose hash is 0 modulo CHUNK_ROWS; of those names, 1 in
        # PAGE_CHUNKS is 0 modulo their product.
        starts = zlib.crc32(chunk[0].fn.encode()) % (CHUNK_ROWS * PAGE_CHUNKS) == 0
        if pages[-1] and (starts or rows + len(chunk) > PAGE_ROWS_MAX):
            pages.append([])
            rows = 0
        pages[-1].append(chunk)
        rows += len(chunk)
    return pages
