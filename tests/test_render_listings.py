"""Subdir listings: rows from a checked cache, chunks and pages that stay put as files come
and go, and a large listing split into pages."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from sitegen.store.pending import PendingFile
from sitegen.web import listing as listing_module
from sitegen.web import listing_cache, listing_pages
from sitegen.web.published import PublishedFile
from sitegen.web.render import render_site
from sitegen.web.writer import PageFiles
from testkit.rendered import (
    FULL,
    ONE_CHANNEL,
    demo_config,
    distinct_run_ids,
    page_text,
    records_of,
    repodata,
)
from testkit.site import mirror_unchecked
from testkit.upstream import ExampleUpstream

pytestmark = pytest.mark.integration


unique_run_ids = pytest.fixture(autouse=True, name="unique_run_ids")(distinct_run_ids)


async def test_listing_rows_come_from_a_checked_cache(
    tmp_path: Path, example_upstream: ExampleUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing_module, "CHUNK_ROWS", 2)  # chunks of a few rows
    monkeypatch.setattr(listing_module, "PAGE_CHUNKS", 1 << 40)  # on one page
    rows_made: list[int] = []
    real = listing_module.listing_rows

    def spy(records: Any) -> Any:
        rows = real(records)
        rows_made.append(len(rows))
        return rows

    monkeypatch.setattr(listing_pages, "listing_rows", spy)
    site = tmp_path / "site"
    config = demo_config(site, example_upstream.url, body=ONE_CHANNEL)
    await mirror_unchecked(config)
    render_site(config)
    listing = f"{FULL}/linux-64/index.html"
    files = len(records_of(repodata(site, FULL, "linux-64")))
    noarch = len(records_of(repodata(site, FULL, "noarch")))
    assert sum(rows_made) == files + noarch and len(rows_made) > 2
    repodata_path = site / FULL / "linux-64" / "repodata.json"
    cache = site / ".sitegen" / "render" / "listings" / FULL / "linux-64.rows"
    assert cache.is_file()

    # New metadata times: the page is rendered again, its rows come from the cache.
    os.utime(repodata_path, ns=(1_600_000_000 * 10**9,) * 2)
    rows_made.clear()
    stats = render_site(config)
    assert listing in stats.written and rows_made == []
    assert "2020-09-13 12:26 UTC" in page_text(site, listing)
    cached = (site / listing).read_bytes()

    # A cache that does not check out is not used.
    cache.write_bytes(cache.read_bytes().replace(b"<tr>", b"<td>"))
    os.utime(repodata_path, ns=(1_500_000_000 * 10**9,) * 2)
    render_site(config)
    assert sum(rows_made) == files
    os.utime(repodata_path, ns=(1_600_000_000 * 10**9,) * 2)
    render_site(config)
    assert (site / listing).read_bytes() == cached
    assert page_text(site, listing).count("<tr>") == files + 1  # and the header
    (site / ".sitegen" / "render" / "manifest.json").unlink()
    again = render_site(config)  # the same page again: left alone
    assert listing in again.rendered and listing not in again.written

    # The caches of subdirs that are no longer configured go.
    gone = [cache.with_name("osx-arm64.rows"), cache.parent.parent / "old" / "linux-64.json"]
    for path in gone:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"stale")
    render_site(config)
    assert cache.is_file() and cache.with_suffix(".json").is_file()
    assert not any(path.exists() for path in gone)


async def test_a_listing_cache_that_is_a_symlink_is_replaced_not_written_through(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    """The rows of a listing cache are appended to in place: never through a symlink out of
    the site (written through the store, as every other file of it)."""
    site = tmp_path / "site"
    config = demo_config(site, example_upstream.url, body=ONE_CHANNEL)
    await mirror_unchecked(config)
    render_site(config)
    listing = f"{FULL}/linux-64/index.html"
    before = (site / listing).read_bytes()
    cache = site / ".sitegen" / "render" / "listings" / FULL / "linux-64.rows"
    outside = tmp_path / "elsewhere.rows"
    outside.write_bytes(b"not rows")
    cache.unlink()
    cache.symlink_to(outside)
    repodata_path = site / FULL / "linux-64" / "repodata.json"
    os.utime(repodata_path, ns=(1_600_000_000 * 10**9,) * 2)  # the listing is made again
    assert listing in render_site(config).written
    assert outside.read_bytes() == b"not rows"
    assert not cache.is_symlink() and cache.is_file()
    assert page_text(site, listing).count("<tr>") == before.decode().count("<tr>")


def test_listing_chunks_end_where_the_names_say() -> None:
    def files(names: list[str]) -> list[PublishedFile]:
        return [PublishedFile(n, "linux-64", n, 1, 0, None, None) for n in sorted(names)]

    names = [f"pkg{i:05d}-1.0-h_0.conda" for i in range(20_000)]
    before = [tuple(f.fn for f in c) for c in listing_module.chunked(files(names))]
    after = [
        tuple(f.fn for f in c) for c in listing_module.chunked(files([*names, "pkg10000x.conda"]))
    ]
    assert 20 < len(before) < 120
    assert max(len(c) for c in before) <= listing_module.CHUNK_ROWS_MAX
    assert len(set(after) - set(before)) == 1  # the chunk the new file went into


def test_listing_pages_start_where_the_names_say() -> None:
    def pages(names: list[str]) -> list[tuple[str, ...]]:
        files = [PublishedFile(n, "linux-64", n, 1, 0, None, None) for n in sorted(names)]
        paged = listing_module.paged(listing_module.chunked(files))
        return [tuple(f.fn for chunk in page for f in chunk) for page in paged]

    names = [f"pkg{i:06d}-1.0-h_0.conda" for i in range(200_000)]
    before = pages(names)
    assert [fn for page in before for fn in page] == sorted(names)  # every row once, in order
    assert 8 < len(before) < 60  # ~8,000 rows a page
    assert max(len(page) for page in before) <= listing_module.PAGE_ROWS_MAX
    # A file added or removed changes the one page it is on; the others stay as they were.
    assert len(set(pages([*names, "pkg100000x.conda"])) - set(before)) == 1
    assert len(set(pages(names[:5000] + names[5001:])) - set(before)) == 1
    # Names that never start a page still get pages of bounded size.
    same = pages([f"{'a' * 9}-{i}" for i in range(100_000)])
    assert all(len(page) <= listing_module.PAGE_ROWS_MAX for page in same)
    assert pages([]) == [()]


async def mirrored_in_small_pages(
    tmp_path: Path, example_upstream: ExampleUpstream, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, Any]:
    """The example channel mirrored, its listings to be rendered in pages of a few rows (to
    have several of them); the site and its config."""
    monkeypatch.setattr(listing_module, "CHUNK_ROWS", 2)
    monkeypatch.setattr(listing_module, "PAGE_CHUNKS", 2)
    monkeypatch.setattr(listing_module, "PAGE_ROWS_MAX", 4)
    site = tmp_path / "site"
    config = demo_config(site, example_upstream.url, body=ONE_CHANNEL)
    await mirror_unchecked(config)
    return site, config


async def test_a_large_listing_is_split_into_pages(
    tmp_path: Path, example_upstream: ExampleUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    site, config = await mirrored_in_small_pages(tmp_path, example_upstream, monkeypatch)
    first = render_site(config)
    directory = site / FULL / "linux-64"
    fns = sorted(records_of(repodata(site, FULL, "linux-64")))
    numbered = sorted(directory.glob("page-*.html"), key=lambda p: int(p.stem.split("-")[1]))
    paths = [directory / "index.html", *numbered]
    assert len(paths) >= 4
    assert all(f"{FULL}/linux-64/{p.name}" in first.written for p in paths)
    shown: list[str] = []
    for number, path in enumerate(paths, start=1):
        text = path.read_text()
        rows = re.findall(r'<tr><td><a href="([^"]+)">', text)
        assert rows
        shown += rows
        # Every page links every other page, by number and the package it starts with, above
        # and below its rows.
        links = re.findall(r'<a href="([^"]+)" title="from ([^"]+)">(\d+) ', text)
        others = [n for n in range(1, len(paths) + 1) if n != number]
        assert [int(n) for _href, _fn, n in links] == others * 2
        for href, starts_with, n in links:
            target = (path.parent / href).resolve()
            assert target == paths[int(n) - 1].resolve()
            assert re.search(rf'<tr><td><a href="{re.escape(starts_with)}">', target.read_text())
        # The pages after the first lead back to it.
        assert ('<a href="index.html">linux-64</a>' in text) == (number > 1)
        # The totals and the metadata files are on the first page only.
        assert ('class="meta-file"' in text) == (number == 1)
        assert (f"<b>{len(fns)}</b> package files" in text) == (number == 1)
    assert shown == fns

    # Nothing changed: nothing rendered. New metadata times: only the first page changes, and
    # the others, made of the same parts as last written, are not even read back.
    assert not any("linux-64/" in p for p in render_site(config).rendered)
    compared: list[str] = []
    write_parts = PageFiles.write_parts

    def spy(self: PageFiles, relpath: str, parts: list[Any]) -> bool:
        compared.append(relpath)
        return write_parts(self, relpath, parts)

    monkeypatch.setattr(PageFiles, "write_parts", spy)
    os.utime(directory / "repodata.json", ns=(1_600_000_000 * 10**9,) * 2)
    again = render_site(config)
    listing = sorted(p for p in again.rendered if p.startswith(f"{FULL}/linux-64/"))
    assert listing == sorted(f"{FULL}/linux-64/{p.name}" for p in paths)
    first_page = f"{FULL}/linux-64/index.html"
    assert [p for p in again.written if p.startswith(f"{FULL}/linux-64/")] == [first_page]
    assert [p for p in compared if p.startswith(f"{FULL}/linux-64/")] == [first_page]
    # A page changed by hand is written again, also when its size stayed the same.
    third = paths[2].read_bytes()
    fourth = paths[3].read_bytes()
    paths[2].write_bytes(third[:100])
    paths[3].write_bytes(fourth.replace(b"<tr>", b"<TR>", 1))
    compared.clear()
    os.utime(directory / "repodata.json", ns=(1_550_000_000 * 10**9,) * 2)
    render_site(config)
    assert paths[2].read_bytes() == third and paths[3].read_bytes() == fourth
    assert [p for p in compared if p.startswith(f"{FULL}/linux-64/")] == [
        first_page,
        f"{FULL}/linux-64/{paths[2].name}",
        f"{FULL}/linux-64/{paths[3].name}",
    ]

    # Fewer pages: the pages no longer produced go, also when the last render's manifest is
    # lost (then with the package pages of packages gone since, and nothing but pages).
    monkeypatch.setattr(listing_module, "PAGE_ROWS_MAX", 1000)
    monkeypatch.setattr(listing_module, "PAGE_CHUNKS", 1 << 40)
    os.utime(directory / "repodata.json", ns=(1_500_000_000 * 10**9,) * 2)
    (site / ".sitegen" / "render" / "manifest.json").unlink()
    gone_package = site / FULL / "packages" / "gone-away.html"
    gone_package.write_bytes(b"<p>a package no longer mirrored")
    kept = [directory / "notes.html", site / FULL / "packages" / "README.txt"]
    for path in kept:
        path.write_bytes(b"not a page")
    noarch = sorted((site / FULL / "noarch").glob("page-*.html"))
    assert noarch  # (every listing is rendered again without a manifest)
    fewer = render_site(config)
    assert sorted(fewer.removed) == sorted(
        [f"{FULL}/{p.parent.name}/{p.name}" for p in paths[1:] + noarch]
        + [f"{FULL}/packages/gone-away.html"]
    )
    assert not list(site.rglob("page-*.html")) and not gone_package.exists()
    assert all(path.exists() for path in kept)
    assert re.findall(r'<tr><td><a href="([^"]+)">', (directory / "index.html").read_text()) == fns
    assert 'class="pager"' not in (directory / "index.html").read_text()


async def test_a_listing_with_many_new_rows_writes_its_cache_as_it_goes(
    tmp_path: Path, example_upstream: ExampleUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past HELD_MAX bytes of new rows, the listing cache's rows file is written afresh, a
    page's rows at a time, rather than held whole until the end; the pages and the cache come
    out as when the rows are held."""
    site, config = await mirrored_in_small_pages(tmp_path, example_upstream, monkeypatch)
    held = tmp_path / "held"
    shutil.copytree(site, held, symlinks=True)
    render_site(replace(config, output=held))

    events: list[str] = []  # rows rendered, rows written to a cache's file, in order
    real_rows = listing_module.listing_rows
    real_write = PendingFile.write

    def rows(records: Any) -> Any:
        events.append("rendered")
        return real_rows(records)

    def write(self: PendingFile, data: bytes | memoryview) -> None:
        if self.target.suffix == ".rows":
            events.append("cached")
        real_write(self, data)

    monkeypatch.setattr(listing_pages, "listing_rows", rows)
    monkeypatch.setattr(PendingFile, "write", write)
    monkeypatch.setattr(listing_cache, "HELD_MAX", 1)
    render_site(config)
    # linux-64's rows went to its cache's file before its last rows were rendered.
    assert events.index("cached") < len(events) - 1 - events[::-1].index("rendered")
    assert html_pages(site) == html_pages(held)
    rows_file = f".sitegen/render/listings/{FULL}/linux-64.rows"
    assert (site / rows_file).read_bytes()

    # Every row from that cache when the listing is made again; a file shown with another
    # size changes its chunk, rendered anew, the others from the cache.
    events.clear()
    repodata_path = site / FULL / "linux-64" / "repodata.json"
    os.utime(repodata_path, ns=(1_600_000_000 * 10**9,) * 2)
    render_site(config)
    assert "rendered" not in events
    document = json.loads(repodata_path.read_bytes())
    fn = sorted(document["packages.conda"])[0]
    document["packages.conda"][fn]["size"] = 123_456_789
    repodata_path.write_bytes(json.dumps(document).encode())
    render_site(config)
    assert events.count("rendered") == 1
    events.clear()
    os.utime(repodata_path, ns=(1_500_000_000 * 10**9,) * 2)
    render_site(config)
    assert "rendered" not in events
    shown = "".join(p.read_text() for p in (site / FULL / "linux-64").glob("*.html"))
    assert "123.5 MB" in shown
    assert all(f'<a href="{other}">' in shown for other in document["packages.conda"])


def html_pages(site: Path) -> dict[str, bytes]:
    return {p.relative_to(site).as_posix(): p.read_bytes() for p in site.rglob("*.html")}


async def test_a_listing_cache_write_that_fails_fails_the_render_with_its_own_error(
    tmp_path: Path, example_upstream: ExampleUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that fills while the rows file is written afresh, cached rows among what is
    written: the render fails with the disk's error, not one about the cache's views."""
    site, config = await mirrored_in_small_pages(tmp_path, example_upstream, monkeypatch)
    render_site(config)
    real_write = PendingFile.write

    def full(self: PendingFile, data: bytes | memoryview) -> None:
        if self.target.suffix == ".rows" and isinstance(data, memoryview):
            view = memoryview(data)  # as the write holds it, when os.write fails
            raise OSError(errno.ENOSPC, "No space left on device", len(view))
        real_write(self, data)

    monkeypatch.setattr(PendingFile, "write", full)
    monkeypatch.setattr(listing_cache, "HELD_MAX", 1)
    repodata_path = site / FULL / "linux-64" / "repodata.json"
    document = json.loads(repodata_path.read_bytes())
    fn = sorted(document["packages.conda"])[0]
    document["packages.conda"][fn]["size"] = 123_456_789  # a new chunk: written afresh
    repodata_path.write_bytes(json.dumps(document).encode())
    with pytest.raises(OSError, match="No space left on device"):
        render_site(config)
