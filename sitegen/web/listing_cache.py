"""The rendered chunks of a subdir listing's rows, kept between renders beside the manifest
(in ``.sitegen/render/listings/``): a chunk whose rows did not change is taken from there
rather than rendered again.

The chunks of the listing being rendered are handed to the cache as they are written; the
new ones are held until the end, to be appended, unless they pass HELD_MAX: then the rows file
is written afresh as they come (a first render of conda-forge's ``linux-64`` has ~0.2 GB of
rows, which the render need never hold)."""

from __future__ import annotations

import contextlib
import mmap
import os
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

from sitegen.layout import LISTING_CACHE_SUFFIXES, listing_cache_paths, listings_dir
from sitegen.store.links_out import state_link_out
from sitegen.store.pending import PendingFile
from sitegen.store.site import Site

LISTING_CACHE_VERSION = 1
# New chunks held for appending, at most (bytes): past it, the rows file is written afresh.
HELD_MAX = 16 << 20
# Not through a symlink, as the store appends; a FIFO is not waited on.
NO_FOLLOW_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class ListingCache:
    """``<subdir>.rows`` holds chunks one after the other (new ones are appended) and
    ``<subdir>.json`` where each is (key -> [offset, length, crc32]). A chunk is used only when
    its bytes check out. Chunks handed out are views of the mapped file, valid until
    :meth:`close`.

    The index also keeps a digest of each page of the listing as last written (``pages``:
    relpath -> digest of its head, tail and chunk keys, and its file's size and modification
    time once written), so that a page that comes out the same need not be read back to be
    compared while its file is as it was left."""

    def __init__(self, site: Site, paths: tuple[Path, ...], kept: bool = True) -> None:
        """``paths``: the rows and index files (see layout.listing_cache_paths); not
        ``kept``: they are neither read nor written (every chunk is rendered)."""
        self.site = site
        self.rows_path, self.index_path = paths
        self.kept = kept
        self.index, self.pages = self._load_index() if kept else ({}, {})
        self.used: dict[str, list[int]] = {}
        self._exit = contextlib.ExitStack()
        self._rows: memoryview | None = None
        self._size = 0
        # The chunks of the listing being rendered, in order, while the rows file may still
        # be appended to (``_held`` bytes of them new); else ``_fresh``, the rows file being
        # written afresh, and ``_fresh_index`` where its chunks are.
        self._chunks: list[tuple[str, Any]] = []
        self._held = 0
        self._live = 0
        self._fresh: PendingFile | None = None
        self._fresh_index: dict[str, list[int]] = {}
        self._fresh_size = 0
        if self.index:
            self._open()

    def _load_index(self) -> tuple[dict[str, Any], dict[str, Any]]:
        try:
            document = msgspec.json.decode(self.index_path.read_bytes())
        except (OSError, msgspec.DecodeError):
            return {}, {}
        if not isinstance(document, dict) or document.get("version") != LISTING_CACHE_VERSION:
            return {}, {}
        chunks, pages = document.get("chunks"), document.get("pages")
        return (
            chunks if isinstance(chunks, dict) else {},
            pages if isinstance(pages, dict) else {},
        )

    def _open(self) -> None:
        try:
            with open(os.open(self.rows_path, NO_FOLLOW_READ), "rb") as handle:
                mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # absent, empty, a symlink or no regular file
            return
        # After the views on it are released (in reverse); one may outlive the cache in the
        # traceback of a write that failed: the map then goes with it, rather than raise
        # BufferError over the error being reported.
        self._exit.callback(_close_quietly, mapped)
        self._rows = memoryview(mapped)
        self._exit.callback(self._rows.release)
        self._size = len(mapped)

    def get(self, key: str) -> memoryview | None:
        entry = self.index.get(key)
        if self._rows is None or not isinstance(entry, list) or len(entry) != 3:
            return None
        offset, length, crc = entry
        if not all(type(n) is int and n >= 0 for n in entry) or offset + length > self._size:
            return None
        chunk = self._rows[offset : offset + length]
        if zlib.crc32(chunk) != crc:
            chunk.release()
            return None
        self.used[key] = entry
        self._exit.callback(chunk.release)
        return chunk

    def keep(self, key: str, data: bytes | memoryview) -> None:
        """A chunk of the listing just rendered (new, or from :meth:`get`), in order."""
        if not self.kept:
            return
        self._live += len(data)
        if self._fresh is not None:
            self._write_fresh(key, data)
            return
        self._chunks.append((key, data))
        if key not in self.used:
            self._held += len(data)
            if self._held > HELD_MAX:
                self.site.ensure_dir(self.rows_path.parent)
                self._fresh = self._exit.enter_context(self.site.pending(self.rows_path))
                for held_key, held in self._chunks:
                    self._write_fresh(held_key, held)
                self._chunks = []

    def _write_fresh(self, key: str, data: bytes | memoryview) -> None:
        assert self._fresh is not None
        offset = self._fresh_size
        self._fresh.write(data)
        self._fresh_size += len(data)
        self._fresh_index[key] = [offset, len(data), zlib.crc32(data)]

    def save(self, pages: dict[str, str]) -> None:
        """Keep the chunks of the listing just rendered (see :meth:`keep`), and the digests of
        its ``pages``: new chunks are appended, unless they were too many to hold or most of
        the file would then be chunks no longer used (then it is written afresh)."""
        if not self.kept:
            return
        if self._fresh is not None:
            self._fresh.commit()
            self._write_index(self._fresh_index, pages)
            return
        chunks = self._chunks
        new = [(key, data) for key, data in chunks if key not in self.used]
        if not new and len(self.used) == len(self.index) and pages == self.pages:
            return
        self.site.ensure_dir(self.rows_path.parent)
        added = sum(len(data) for _key, data in new)
        index: dict[str, list[int]] = {}
        if self._rows is not None and self._size + added <= 2 * self._live:
            offset = self.site.append(self.rows_path, [data for _key, data in new])
            for key, data in new:
                index[key] = [offset, len(data), zlib.crc32(data)]
                offset += len(data)
            index.update(self.used)
        else:
            with self.site.pending(self.rows_path) as pending:
                offset = 0
                for key, data in chunks:
                    pending.write(data)
                    index[key] = [offset, len(data), zlib.crc32(data)]
                    offset += len(data)
                pending.commit()
        self._write_index(index, pages)

    def _write_index(self, index: dict[str, list[int]], pages: dict[str, str]) -> None:
        document = {"version": LISTING_CACHE_VERSION, "chunks": index, "pages": pages}
        self.site.write_bytes(self.index_path, msgspec.json.encode(document), durable=False)

    def close(self) -> None:
        self._exit.close()


def _close_quietly(mapped: mmap.mmap) -> None:
    with contextlib.suppress(BufferError):
        mapped.close()


def remove_stale_caches(site: Site, subdirs: Iterable[str]) -> None:
    """Remove the caches of the subdirs not among ``subdirs`` (``<channel>/<subdir>``: those
    configured), each of which can be as large as its listing; never past a link planted in the
    private state (rglob itself descends into none), what it leads to not being the site's."""
    directory = listings_dir(site.root)
    if not directory.is_dir() or state_link_out(site, directory) is not None:
        return
    kept = {
        path
        for relpath in subdirs
        for path in listing_cache_paths(site.root, *relpath.rsplit("/", 1))
    }
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.name.endswith(LISTING_CACHE_SUFFIXES) and path not in kept:
            site.remove(path)
