"""The pages of a subdir listing, written from their parts: a head and a tail rendered from
``subdir.html`` around chunks of rows rendered from ``_listing_row.html``, each chunk taken from
the listing cache when its rows did not change.

Every page of one listing is produced from the same input key: the listing is rendered again,
all of it, when the subdir's metadata files change. A page made of the same parts as when it
was last written (the digests the listing cache keeps), whose file has the size and time it
was left with, is not even read back; any other page
is compared with what is on disk and left alone when its bytes come out the same
(:meth:`PageFiles.write_parts`).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, NamedTuple

import markupsafe

from sitegen import layout
from sitegen.store.links_out import state_link_out
from sitegen.web.listing import chunked, listing_rows, paged, subdir_listing_head
from sitegen.web.listing_cache import ListingCache
from sitegen.web.manifest import digest
from sitegen.web.published import PublishedFile
from sitegen.web.writer import PageWriter

# Where the rows of a page go in the rendered subdir.html: replaced by the rows' chunks.
_ROWS_MARKER = "\x00sitegen-rows\x00"

log = logging.getLogger("sitegen")


class PagerLink(NamedTuple):
    """A page of the listing as its pager shows it, on each of its pages: attributes rather
    than dict items, which the template's ``p.href`` would look up as an attribute first (a
    failed lookup, an exception, for each of ~100 links on each of ~100 pages)."""

    href: str  # its file name: the pages are in one directory
    label: str  # the package it starts with
    first: str  # the file it starts with


def write_listing(
    writer: PageWriter,
    key: str,
    channel: str,
    subdir: str,
    files: list[PublishedFile],
    stats: dict[str, tuple[int, float]],
    stored: int | None = None,
) -> None:
    """Render and write the pages of a subdir's listing, all under the input ``key``.

    ``stats`` are the subdir's metadata files (size, mtime), ``stored`` how many of its files
    a passive channel stores (None elsewhere)."""
    model = subdir_listing_head(channel, subdir, files, stats)
    model["stored"] = stored
    paths = layout.listing_cache_paths(writer.site.root, channel, subdir)
    # Past a link planted in the private state lies what is not the site's: the listing is
    # then rendered whole, its cache neither read nor kept.
    linked = state_link_out(writer.site, paths[0].parent)
    if linked is not None:
        log.warning("pages: %s: the listing cache of %s/%s is not kept", linked, channel, subdir)
    cache = ListingCache(writer.site, paths, kept=linked is None)
    with contextlib.closing(cache):
        pages = paged(chunked(model.pop("records")))
        paths = [layout.subdir_page_path(channel, subdir, n) for n in range(1, len(pages) + 1)]
        # Guide words, as in a dictionary: the package each page starts with. The pages are
        # in one directory: each links the others by file name (a hundred links on each of a
        # hundred pages at conda-forge scale; no relative path to work out for each).
        nav = [
            PagerLink(path.rpartition("/")[2], page[0][0].name, page[0][0].fn)
            for path, page in zip(paths, pages, strict=True)
            if page
        ]
        digests: dict[str, str] = {}
        for number, (path, page) in enumerate(zip(paths, pages, strict=True), start=1):
            # A page's rows at a time, handed to the cache once the page is written.
            chunks = _rendered_chunks(writer, cache, page)
            writer.produced(path, key)
            if not writer.leave_out(path):
                page_model = {**model, "number": number, "pages": nav if len(pages) > 1 else []}
                digests[path] = _write_page(writer, cache, path, page_model, chunks)
            for chunk_key, data in chunks:
                cache.keep(chunk_key, data)
        cache.save(digests)


def _write_page(
    writer: PageWriter,
    cache: ListingCache,
    path: str,
    model: dict[str, Any],
    chunks: list[tuple[str, bytes | memoryview]],
) -> str:
    """Write a page of the listing (unless it is as written last time); its digest for the
    cache."""
    parts = _page_parts(writer, path, model, [data for _key, data in chunks])
    # What the page is made of (its ends and the keys of its chunks, their rows), and the
    # size and time of its file once written.
    made = digest(parts[0], parts[-1], [chunk_key for chunk_key, _ in chunks])
    stamp = writer.files.stamp(path)
    if stamp is not None and cache.pages.get(path) == f"{made} {stamp}":
        writer.rendered(path, False)  # as written last time: not read back
    else:
        writer.rendered(path, writer.files.write_parts(path, parts))
        stamp = writer.files.stamp(path)
    return f"{made} {stamp}"


def _rendered_chunks(
    writer: PageWriter, cache: ListingCache, page: list[list[PublishedFile]]
) -> list[tuple[str, bytes | memoryview]]:
    """The rows of every chunk of a page, with the chunk's key: rendered, or from the
    cache."""
    rows_html = writer.env.filters["listing_rows"]
    out: list[tuple[str, bytes | memoryview]] = []
    for chunk in page:
        # The key: what the rows show of each file (fn, size, timestamp, sha256), and a bit
        # more (the subdir and the name, which follow from them), as sliced.
        chunk_key = digest(writer.global_key, [f[:6] for f in chunk])
        data = cache.get(chunk_key)
        if data is None:
            data = rows_html(listing_rows(chunk)).encode("utf-8")
        out.append((chunk_key, data))
    return out


def _page_parts(
    writer: PageWriter, relpath: str, model: dict[str, Any], chunks: list[Any]
) -> list[Any]:
    page = writer.template(
        "subdir.html", relpath, model=model, rows=markupsafe.Markup(_ROWS_MARKER)
    )
    head, *tail = page.split(_ROWS_MARKER.encode())
    if len(tail) != 1:  # the marker in the data: render the rows in place
        rows = markupsafe.Markup(b"".join(chunks).decode("utf-8"))
        return [writer.template("subdir.html", relpath, model=model, rows=rows)]
    return [head, *chunks, tail[0]]
