"""Where pages go, and the writing of a page unless its input key says it is up to date.

Pages that are computed go through :meth:`Site.write_bytes`, which leaves unchanged files
alone (no fsync: a page lost to a crash is rendered again from the same inputs).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import msgspec

from sitegen.store.links_out import leads_out
from sitegen.store.lock import Stopped
from sitegen.store.site import Site
from sitegen.web.format import root_prefix
from sitegen.web.manifest import digest

log = logging.getLogger("sitegen")


@dataclass
class RenderStats:
    """What a render did. ``rendered`` pages were computed; of those, ``written`` changed on
    disk. ``skipped`` pages had unchanged inputs and were not computed at all."""

    rendered: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    skipped: int = 0
    removed: list[str] = field(default_factory=list)
    # What was left as it was, each "<folder or page>: <why>": the channels whose folder
    # leads out of the site, the folders of pages and the pages that do.
    left_out: list[str] = field(default_factory=list)

    @property
    def unchanged(self) -> int:
        return len(self.rendered) - len(self.written)

    def __str__(self) -> str:
        return (
            f"{len(self.written)} pages written, {self.unchanged} unchanged,"
            f" {self.skipped} up to date, {len(self.removed)} removed"
        )


class PageFiles:
    """Where pages go: Site.path of each, resolving each directory once (not each page)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.root = str(site.root)
        self._directories: dict[str, Path] = {}
        self._files: dict[str, set[str]] = {}
        self._own: dict[str, bool] = {}
        self._leading_out: dict[str, str | None] = {}

    def folder_leads_out(self, directory: str) -> str | None:
        """Why the folder of pages ``directory`` ("" for the root) is not the site's (a link
        out of it, or a loop of links); None when it is."""
        if directory not in self._leading_out:
            parts = directory.split("/") if directory else []
            self._leading_out[directory] = leads_out(self.site, *parts) if parts else None
        return self._leading_out[directory]

    def leads_out(self, relpath: str) -> tuple[str, str] | None:
        """(the folder or the page, why) when the page ``relpath`` cannot be written or
        removed without going through a link out of the site (or a loop of links); None when
        it can."""
        directory = relpath.rpartition("/")[0]
        why = self.folder_leads_out(directory)
        if why is not None:
            return directory, why
        # Only a link could lead elsewhere: one lstat per page, resolved only for a link.
        if os.path.islink(os.path.join(self.root, relpath)):
            why = leads_out(self.site, *relpath.split("/"))
            if why is not None:
                return relpath, why
        return None

    def target(self, relpath: str) -> Path:
        directory, _, name = relpath.rpartition("/")
        parent = self._directories.get(directory)
        if parent is None and directory:
            parent = self._directories[directory] = self.site.path(*directory.split("/"))
        if parent is None or name in ("", ".", "..") or "\\" in name or "\x00" in name:
            return self.site.path(*relpath.split("/"))
        target = parent / name
        if os.path.islink(target):  # only a link could lead elsewhere: the full check
            return self.site.path(*relpath.split("/"))
        return target

    def removable(self, relpath: str) -> Path | None:
        """The page's path to remove it by; None where a directory on its way is a link (a
        folder replaced by one since the page was written): removing through it would take
        a file of wherever it leads, so the page is left as it is."""
        directory = relpath.rpartition("/")[0]
        own = self._own.get(directory)
        if own is None:
            top = os.path.realpath(self.root)
            place = os.path.join(top, directory) if directory else top
            own = self._own[directory] = os.path.realpath(place) == place
        return self.target(relpath) if own else None

    def exists(self, relpath: str) -> bool:
        """Whether the page is a file (asked once per page, before it is written or not)."""
        # relpaths are made of validated names; Site.path (which resolves) guards the writes.
        # A link is no page of the site: written over (a link within the site), or left out
        # (one leading out), never taken as up to date. Nor is what a folder leading out holds.
        directory, _, name = relpath.rpartition("/")
        if self.folder_leads_out(directory) is not None:
            return False
        files = self._files.get(directory)
        if files is None:  # one listing of the directory rather than a stat per page
            try:
                with os.scandir(os.path.join(self.root, directory)) as entries:
                    files = self._files[directory] = {
                        e.name for e in entries if e.is_file(follow_symlinks=False)
                    }
            except OSError:
                path = os.path.join(self.root, relpath)
                return os.path.isfile(path) and not os.path.islink(path)
        return name in files

    def stamp(self, relpath: str) -> str | None:
        """The page file's size and modification time (any write changes them, a hand edit
        too); None when it is not there."""
        try:
            st = os.stat(self.target(relpath))
        except OSError:
            return None
        return f"{st.st_size} {st.st_mtime_ns}"

    def write(self, relpath: str, data: bytes) -> bool:
        """Site.write_bytes of the page (no fsync); True if written, False if unchanged."""
        return self.site.write_bytes(self.target(relpath), data, durable=False)

    def write_parts(self, relpath: str, parts: list[Any]) -> bool:
        """:meth:`write` of the concatenation of ``parts``, without making it: the file is
        left alone when it holds exactly that (compared part by part)."""
        target = self.target(relpath)
        if _holds(target, parts):
            return False
        with self.site.pending(target) as pending:
            for part in parts:
                pending.write(part)
            pending.commit()
        return True


def _holds(path: Path, parts: list[Any]) -> bool:
    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size != sum(len(part) for part in parts):
                return False
            return all(handle.read(len(part)) == part for part in parts)
    except FileNotFoundError:
        return False


def render_page(env: jinja2.Environment, title: str, name: str, relpath: str, **context: Any):
    """The page ``relpath`` from the template ``name``, as bytes."""
    text = env.get_template(name).render(
        page=relpath, root=root_prefix(relpath), site_title=title, **context
    )
    return text.encode("utf-8")


class PageWriter:
    """Writes the pages of one render, each unless its input key is the one it was last
    rendered from; keeps the new keys (for the manifest) and the stats. Once ``stop`` is set,
    the next page raises :class:`Stopped`: the render ends between two pages (each replaced
    whole), before its manifest, as if killed there."""

    def __init__(
        self,
        site: Site,
        env: jinja2.Environment,
        title: str,
        global_key: str,
        old_pages: dict[str, str],
        stop: threading.Event | None = None,
    ) -> None:
        self.site = site
        self.env = env
        self.title = title
        self.global_key = global_key
        self.old_pages = old_pages
        self.pages: dict[str, str] = {}  # relpath -> input key, of every page produced
        self._old_groups: dict[str, list[str]] | None = None  # old_pages by key
        self.stats = RenderStats()
        self.files = PageFiles(site)
        self.stop = stop
        # Pages left as they are, since writing them would go through a link out of the site
        # (or a loop of links); and each such folder or page, with why.
        self.left_pages: set[str] = set()
        self.leading_out: dict[str, str] = {}
        # Files of the site the pages are made from that lead out of it, with why: not read.
        self.unread: dict[str, str] = {}

    def leave_out(self, relpath: str) -> bool:
        """Whether the page ``relpath`` is left as it is, its folder or itself a link out of
        the site (or a loop of links): then it keeps the key it had (the manifest goes on
        naming what is there) and is neither written nor removed."""
        found = self.files.leads_out(relpath)
        if found is None:
            return False
        self.leading_out.setdefault(*found)
        self.left_pages.add(relpath)
        if (old := self.old_pages.get(relpath)) is not None:
            self.pages[relpath] = old
        else:
            self.pages.pop(relpath, None)
        return True

    def name_left_out(self) -> None:
        """Warn of each folder of pages, or page, left as it was since it leads out of the
        site (:meth:`leave_out`), and of each file not read for that (:attr:`unread`): a
        render that leaves them is not a whole one."""
        for place, why in sorted(self.leading_out.items()):
            what = "left as it is" if place.endswith(".html") else "its pages are left as they are"
            log.warning("pages: %s: %s: %s", place, why, what)
            self.stats.left_out.append(f"{place}: {why}")
        for relpath, why in sorted(self.unread.items()):
            log.warning("pages: %s: %s: not read for the pages", relpath, why)
            self.stats.left_out.append(f"{relpath}: {why}")

    def check(self) -> None:
        """Raise Stopped once the render is to stop."""
        if self.stop is not None and self.stop.is_set():
            raise Stopped

    def up_to_date(self, relpath: str, key: str) -> bool:
        """Whether the page ``relpath`` was last rendered from ``key`` (and is there); the
        page is produced by this render either way."""
        self.check()
        self.pages[relpath] = key
        if self.old_pages.get(relpath) == key and self.files.exists(relpath):
            self.stats.skipped += 1
            return True
        return False

    def produced(self, relpath: str, key: str) -> None:
        """The page ``relpath`` is produced by this render from ``key`` (a page of a group, see
        :meth:`group_up_to_date`)."""
        self.pages[relpath] = key

    def group_up_to_date(self, key: str) -> bool:
        """Whether the pages last rendered from ``key`` (a group of pages with one input, such
        as the pages of a listing) are all there; if so, this render produces them as they are.
        """
        if self._old_groups is None:  # once per render, not a pass over every page per group
            self._old_groups = {}
            for relpath, old in self.old_pages.items():
                self._old_groups.setdefault(old, []).append(relpath)
        relpaths = self._old_groups.get(key, [])
        if not relpaths or not all(self.files.exists(relpath) for relpath in relpaths):
            return False
        for relpath in relpaths:
            self.pages[relpath] = key
        self.stats.skipped += len(relpaths)
        return True

    def rendered(self, relpath: str, written: bool) -> None:
        self.check()
        self.stats.rendered.append(relpath)
        if written:
            self.stats.written.append(relpath)

    def emit(self, relpath: str, key: str, build: Callable[[], bytes]) -> None:
        """Write the page ``relpath`` unless its input key is the one it was last rendered from
        (or it is left out, see :meth:`leave_out`)."""
        if self.leave_out(relpath):
            return
        if not self.up_to_date(relpath, key):
            self.rendered(relpath, self.files.write(relpath, build()))

    def page(self, relpath: str, template: str, model: Any) -> None:
        """Render ``template`` with ``model`` to ``relpath``; the model is the key."""
        key = digest(self.global_key, template, model)
        self.emit(relpath, key, lambda: self.template(template, relpath, model=model))

    def template(self, name: str, relpath: str, **context: Any) -> bytes:
        return render_page(self.env, self.title, name, relpath, **context)

    def json(self, relpath: str, document: Any) -> None:
        data = msgspec.json.encode(document)
        self.emit(relpath, digest(self.global_key, data), lambda: data)
