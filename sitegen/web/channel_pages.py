"""The pages of a channel: its index, its search index, a listing per subdir, a page per
package.

A whole channel whose metadata files (``repodata.json`` & co., ``channeldata.json``) have the
same size and mtime as at the last render is skipped without parsing its repodata. Otherwise
one pass over its records groups them by package name and gives each name a fingerprint (a
hash of its records' JSON text): the facts the channel page and the keys need of a name are
kept from the last render until its fingerprint changes, so the records of a name are parsed
only for its page, or for new facts.
"""

from __future__ import annotations

import contextlib
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from sitegen import layout
from sitegen.conda.notices import active_notices
from sitegen.conda.records import RepodataError
from sitegen.config import ChannelConfig
from sitegen.store.links_out import leads_out
from sitegen.store.site import UnsafePathError
from sitegen.web.channel import ChannelSummary, channel_model, summarize_channel
from sitegen.web.downloads import NONE_COUNTED, SiteStats
from sitegen.web.facts import package_row, page_entries
from sitegen.web.gates import approval_links
from sitegen.web.listing_pages import write_listing
from sitegen.web.manifest import ChannelState, KnownPackage, digest, package_key
from sitegen.web.package import page_names
from sitegen.web.package_pages import PackageContext, PackageTask, package_pages
from sitegen.web.private import private_channel_extras
from sitegen.web.published import (
    PAGE_NAME,
    PublishedFile,
    checked_files,
    fingerprint,
    group_by_name,
    published_files,
)
from sitegen.web.search import search_index
from sitegen.web.writer import PageWriter

log = logging.getLogger("sitegen")

MetadataStats = dict[str, dict[str, tuple[int, float]]]


class ChannelPages:
    """Renders the pages of the channels of one render through ``writer``."""

    def __init__(
        self,
        writer: PageWriter,
        templates_dir: Path,
        old_channels: dict[str, ChannelState],
        base_url: str | None = None,
        stats: SiteStats | None = None,
        private: frozenset[str] = frozenset(),
        site_private: bool = False,
    ) -> None:
        self.writer = writer
        self.site = writer.site
        self.global_key = writer.global_key
        self.templates_dir = templates_dir
        self.old_channels = old_channels
        self.channels: dict[str, ChannelState] = {}  # for the manifest
        self.base_url = base_url  # of the site: package pages' install lines
        self.stats = stats  # download statistics, for the package pages (None: none)
        self.private = private  # paths of the private channels: what a gated page links to
        self.site_private = site_private  # every channel answers only to a token
        # Channel -> (its advisory filter levels, blocked versions by name, their digest):
        # package pages list the advisories affecting each version (see web/gates.py).
        self.advisories: dict[
            str, tuple[tuple[Any, ...], dict[str, dict[str, list[str]]], str]
        ] = {}
        # Channel -> what its page says of its freeze (frozen channels only; web/frozen.py).
        self.frozen: dict[str, dict[str, Any]] = {}

    def render(self, channel: ChannelConfig) -> ChannelSummary:
        """Every page of ``channel`` (none when its inputs did not change); its summary."""
        metadata = self._metadata_stats(channel)
        cd_stat = None
        with contextlib.suppress(OSError):
            st = self._input(channel.path, layout.CHANNELDATA).stat()
            cd_stat = (st.st_size, st.st_mtime_ns)
        mirrors = [[m.name, m.display_url(), list(m.subdirs)] for m in channel.mirrors]
        stored_stamp = self._stored_stamp(channel)
        # The notices shown: a notice posted, changed or expired renders the page again.
        notices = active_notices(channel.notices, datetime.now(UTC))
        # What the page shows of the channel's settings beyond its files: a channel turned
        # private (or public), gated, frozen or unfrozen renders the page again, with (or
        # without) its token set-up, approval links and freeze note.
        extras = channel_extras(
            channel,
            self.base_url,
            self.private,
            self.site_private,
            self.frozen.get(channel.path),
        )
        signature = digest(
            self.global_key, metadata, cd_stat, mirrors, stored_stamp, notices, extras
        )
        advisories = self.advisories.get(channel.path)
        if advisories is not None:
            signature = digest(signature, advisories[2])
        if self.stats is not None:  # the package pages show their downloads
            signature = digest(signature, self.stats.downloads(channel.path))
        cached = self.old_channels.get(channel.path)
        writer = self.writer
        if (
            cached is not None
            and cached.signature == signature
            and all(p in writer.old_pages and writer.files.exists(p) for p in cached.pages)
        ):
            for relpath in cached.pages:
                writer.pages[relpath] = writer.old_pages[relpath]
            writer.stats.skipped += len(cached.pages)
            self.channels[channel.path] = cached
            return ChannelSummary.from_json(cached.summary)

        before = set(writer.pages)
        names = cached.names if cached is not None and cached.names_key == self.global_key else {}
        summary, names = self._render_channel(channel, metadata, names, stored_stamp, extras)
        self.channels[channel.path] = ChannelState(
            signature=signature,
            summary=summary.to_json(),
            pages=sorted(set(writer.pages) - before),
            names_key=self.global_key,
            names=names,
        )
        return summary

    def keep(self, channel: ChannelConfig) -> ChannelSummary:
        """The pages of ``channel`` as the last render left them, not read or written: its
        folder (or a subdir's) is a link out of the site, which pages never go through."""
        cached = self.old_channels.get(channel.path)
        if cached is None:
            return ChannelSummary(path=channel.path)
        for relpath in cached.pages:
            if (old := self.writer.old_pages.get(relpath)) is not None:
                self.writer.produced(relpath, old)
        self.channels[channel.path] = cached
        return ChannelSummary.from_json(cached.summary)

    def _metadata_stats(self, channel: ChannelConfig) -> MetadataStats:
        """Per subdir: present metadata file -> (size, mtime), the inputs of its pages."""
        out: MetadataStats = {}
        for subdir in channel.subdirs:
            files = {}
            for name in layout.present_metadata_files():  # every one that is present
                try:
                    st = self._input(channel.path, subdir, name).stat()
                except (FileNotFoundError, NotADirectoryError):
                    continue
                files[name] = (st.st_size, st.st_mtime_ns / 1e9)
            if layout.REPODATA in files:
                out[subdir] = files
        return out

    def _input(self, *parts: str) -> Path:
        """The file of the site ``parts`` that pages are made from; one that leads out of the
        site (or into a loop of links) is named and taken as missing (FileNotFoundError):
        what lies past the link is not the site's to show."""
        try:
            return self.site.path(*parts)
        except UnsafePathError:
            relpath = "/".join(parts)
            self.writer.unread[relpath] = leads_out(self.site, *parts) or "not the site's"
            raise FileNotFoundError(relpath) from None

    def _stored_stamp(self, channel: ChannelConfig) -> dict[str, int] | None:
        """Where a passive mirror feeds the channel, files arrive whenever someone asks for
        them: per subdir the mtime of its directory (a stored file changes it); else None."""
        if all(m.mode != "passive" for m in channel.mirrors):
            return None
        stamp = {}
        for subdir in channel.subdirs:
            with contextlib.suppress(OSError):
                stamp[subdir] = self.site.path(channel.path, subdir).stat().st_mtime_ns
        return stamp

    def _stored_files(self, channel: ChannelConfig, subdir: str) -> set[str]:
        try:
            with os.scandir(self.site.path(channel.path, subdir)) as entries:
                return {entry.name for entry in entries}
        except OSError:
            return set()

    def _channeldata(self, channel: ChannelConfig) -> dict[str, Any]:
        """The ``packages`` of the channel's channeldata.json (summary, license, home...)."""
        try:
            return page_entries(self._input(channel.path, layout.CHANNELDATA).read_bytes())
        except (OSError, msgspec.DecodeError, RecursionError):  # nested too deeply
            return {}

    def _read_subdir(self, channel: ChannelConfig, subdir: str) -> list[PublishedFile]:
        """The records of the site's own repodata.json, in file order: decoded lightly, or
        parsed and checked when the file is not as sitegen writes it."""
        path = self.site.path(channel.path, subdir, layout.REPODATA)
        try:
            data = path.read_bytes()
        except OSError as exc:
            log.warning("%s/%s: cannot read repodata.json for pages: %s", channel.path, subdir, exc)
            return []
        try:
            return published_files(data, subdir)
        # Also msgspec.ValidationError: not as sitegen writes it; RecursionError: nested
        # deeper than a decoder goes (which the checked parse says).
        except (msgspec.DecodeError, RecursionError):
            pass
        try:
            return checked_files(data, subdir)
        except RepodataError as exc:
            log.warning("%s/%s: cannot read repodata.json for pages: %s", channel.path, subdir, exc)
            return []

    def _render_channel(
        self,
        channel: ChannelConfig,
        metadata: MetadataStats,
        old_names: dict[str, KnownPackage],
        stored_stamp: dict[str, int] | None,
        extras: dict[str, Any],
    ) -> tuple[ChannelSummary, dict[str, KnownPackage]]:
        """Every page of a channel; its summary and its packages. With ``stored_stamp`` (a
        passive mirror feeds it) the pages tell stored files from those fetched on request;
        ``extras`` (:func:`channel_extras`) go on its index page."""
        writer = self.writer
        subdirs = {subdir: self._read_subdir(channel, subdir) for subdir in metadata}
        by_name = group_by_name(subdirs)
        unsafe = [name for name in by_name if not PAGE_NAME.match(name)]
        if unsafe:  # never in repodata sitegen wrote: its file names were checked
            log.warning("%s: no pages for package names %s", channel.path, unsafe[:10])
            for name in unsafe:
                del by_name[name]
            subdirs = {
                subdir: [f for f in files if f.name in by_name] for subdir, files in subdirs.items()
            }
        channeldata = self._channeldata(channel)
        summary = summarize_channel(channel.path, subdirs)
        stored: dict[str, set[str]] | None = None
        if stored_stamp is not None:
            stored = {subdir: self._stored_files(channel, subdir) for subdir in subdirs}
            for row in summary.subdirs:
                row.stored = sum(1 for f in subdirs[row.subdir] if f.fn in stored[row.subdir])
            summary.stored = sum(row.stored or 0 for row in summary.subdirs)
        pages_of = page_names(by_name)
        downloads = None if self.stats is None else self.stats.downloads(channel.path)
        advisories = self.advisories.get(channel.path)
        # Package pages show advisories: their keys change with them.
        package_global = (
            self.global_key if advisories is None else digest(self.global_key, advisories[2])
        )
        names: dict[str, KnownPackage] = {}
        tasks: list[PackageTask] = []
        for name, files in by_name.items():
            fp = fingerprint(files)
            relpath = layout.package_page_path(channel.path, name)
            entry = channeldata.get(name)
            known = old_names.get(name)
            kept = None
            if stored is not None:
                kept = sorted(f"{f.subdir}/{f.fn}" for f in files if f.fn in stored[f.subdir])
            counted = None if downloads is None else downloads.get(name, NONE_COUNTED)
            left_out = writer.leave_out(relpath)
            if known is None or known.fingerprint != fp:
                # New facts, then the key: computed with the page.
                old_key = writer.old_pages.get(relpath)
                tasks.append(
                    PackageTask(
                        relpath, name, files, fp, entry, None, old_key, kept, counted, left_out
                    )
                )
                continue
            names[name] = known
            if left_out:
                continue
            key = package_key(
                package_global, channel.path, name, known, entry, pages_of, kept, counted
            )
            if not writer.up_to_date(relpath, key):
                tasks.append(
                    PackageTask(relpath, name, files, fp, entry, known, key, kept, counted)
                )
        context = PackageContext(
            self.site,
            self.templates_dir,
            writer.title,
            package_global,
            channel.path,
            pages_of,
            self.base_url,
            advisories[:2] if advisories is not None else None,
        )
        with package_pages(context, writer.env, tasks) as results:
            # The listings meanwhile, here.
            for subdir, files in subdirs.items():
                row = next(r for r in summary.subdirs if r.subdir == subdir)
                key = digest(
                    self.global_key,
                    "subdir.html",
                    [channel.path, subdir, metadata[subdir], row.stored],
                )
                if not writer.group_up_to_date(key):
                    write_listing(
                        writer, key, channel.path, subdir, files, metadata[subdir], row.stored
                    )
            for task, result in zip(tasks, results(), strict=True):
                writer.check()  # between parts of the worker processes too
                if result.known is not None:
                    names[task.name] = result.known
                if task.left_out:
                    continue
                if result.key is not None:
                    writer.pages[task.relpath] = result.key
                if result.written is None:
                    writer.stats.skipped += 1
                else:
                    writer.rendered(task.relpath, result.written)
        rows = [package_row(n, names[n].facts, channeldata.get(n)) for n in sorted(names)]
        writer.json(layout.search_index_path(channel.path), search_index(channel.path, rows))
        writer.page(
            layout.channel_index_path(channel.path),
            "channel.html",
            {**channel_model(channel, summary, rows), **extras},
        )
        return summary, names


def channel_extras(
    channel: ChannelConfig,
    base_url: str | None,
    private: frozenset[str],
    site_private: bool,
    frozen: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A channel page's links to its approval pages, its freeze note (``frozen``, see
    :mod:`sitegen.web.frozen`; None while it is not frozen) and, when it answers only to a
    token (it is private or ``site_private``), its token snippets (``private``: paths of the
    private channels)."""
    links = approval_links(channel, private)
    return {**links, "frozen": frozen, **private_channel_extras(channel, base_url, site_private)}
