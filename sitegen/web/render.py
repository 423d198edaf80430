"""Render the browse pages of the site from what is on disk: published repodata and the ledger.

``render_site(config)`` never touches the network. It is incremental (:mod:`.manifest`): a
page whose inputs did not change is neither computed nor written, a channel whose metadata
files did not change is skipped as a whole, and the rows of a subdir listing come from a cache
of rendered chunks (:mod:`.listing_cache`). At conda-forge scale (500,000 records in a subdir)
a changed channel costs one cheap pass over its records plus what changed (:mod:`.channel_pages`);
many package pages (a first render, new templates) are split between worker processes
(:mod:`.pool`).

Pages that are no longer produced (a package that left the channel) are removed.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec

from sitegen import layout
from sitegen.config import SiteConfig, make_scrub
from sitegen.filters.feeds import with_kept_feeds
from sitegen.gc_pause import gc_paused
from sitegen.layout import LOCK_NAME, listings_dir, render_dir, render_manifest_path
from sitegen.store.links_out import channel_link_out, own_state_folder, state_link_out
from sitegen.store.lock import taking_turns
from sitegen.store.site import Site, UnsafePathError
from sitegen.sync.history import History
from sitegen.sync.installer_state import linked_elsewhere
from sitegen.sync.report import RUNNING, RunReport
from sitegen.web.channel_pages import ChannelPages
from sitegen.web.downloads import (
    installer_downloads,
    landing_stats,
    load_stats,
    site_stats,
    stats_page_model,
)
from sitegen.web.environment import TEMPLATES_DIR, make_environment, templates_digest
from sitegen.web.frozen import frozen_notes
from sitegen.web.gates import (
    advisory_inputs,
    advisory_levels,
    approval_inputs,
    approval_pages,
    approval_relpaths,
    blocked_versions,
    gate_changes,
)
from sitegen.web.history import (
    FEED_ENTRIES,
    feed_entries,
    feed_groups,
    history_json,
    history_pages,
)
from sitegen.web.installers import installer_page, landing_installers
from sitegen.web.landing import landing_model
from sitegen.web.listing_cache import remove_stale_caches
from sitegen.web.manifest import (
    MANIFEST_VERSION,
    RENDER_VERSION,
    FeedState,
    Manifest,
    digest,
    load_manifest,
)
from sitegen.web.private import landing_private, private_paths, public_reports
from sitegen.web.run import RUN_ID_RE, run_detail, run_summary
from sitegen.web.unconfigured import unconfigured_pages
from sitegen.web.writer import PageWriter, RenderStats

__all__ = ["TEMPLATES_DIR", "RenderStats", "make_environment", "render_site"]

log = logging.getLogger("sitegen")


def render_site(
    config: SiteConfig, *, templates_dir: Path | None = None, stop: threading.Event | None = None
) -> RenderStats:
    """Render every page of the site under ``config.output``; returns what was done.

    With ``stop``, the render gives up (raising ``store.lock.Stopped``) soon after it is set:
    while it waits for another render of the site, or at its next page. What it wrote by then
    is as a killed render leaves it (each file replaced whole, the manifest not yet), which the
    next render completes."""
    site = Site(config.output)
    site.ensure_dir(site.root)
    with _render_lock(site, stop), gc_paused():
        renderer = _Renderer(config, site, Path(templates_dir or TEMPLATES_DIR), stop)
        renderer.run()
    log.info("pages: %s", renderer.writer.stats)
    return renderer.writer.stats


@contextlib.contextmanager
def _render_lock(site: Site, stop: threading.Event | None) -> Iterator[None]:
    """One render at a time per site (`sitegen serve --watch` beside a cron run)."""
    directory = render_dir(site.root)
    # The render's lock and manifest are never reached through a link planted in the private
    # state: what it leads to is not the site's (nor are the listing caches below it).
    linked = state_link_out(site, directory)
    if linked is not None:
        raise OSError(f"{linked}: the render keeps its lock and manifest there (remove the link)")
    directory.mkdir(parents=True, exist_ok=True)

    def waiting() -> None:
        log.info("pages: another render of %s is under way; waiting for it", site.root)

    with taking_turns(directory / LOCK_NAME, stop=stop, waiting=waiting):
        yield


class _Renderer:
    def __init__(
        self,
        config: SiteConfig,
        site: Site,
        templates_dir: Path,
        stop: threading.Event | None = None,
    ) -> None:
        self.config = config
        self.site = site
        # The feeds' kept copies are read only in folders of the state reached through no link.
        self._state_folder = functools.partial(own_state_folder, site)
        self.templates_dir = templates_dir
        digest_of_templates = templates_digest(templates_dir)
        env = make_environment(templates_dir, digest_of_templates)
        # Pages show the site's address (base_url) in their snippets and install lines.
        global_key = digest(RENDER_VERSION, digest_of_templates, config.title, config.base_url)
        self.manifest_path = render_manifest_path(site.root)
        self.listings_dir = listings_dir(site.root)  # ListingCache files
        old = load_manifest(self.manifest_path)
        self.old_feed = old.feed
        self.feed: dict[str, FeedState] = {}
        self.writer = PageWriter(site, env, config.title, global_key, old.pages, stop)
        # --- download statistics: while stats.json exists (see web.downloads) ---
        doc = load_stats(site)
        self.stats = None if doc is None else site_stats(doc, config)
        # --- end of download statistics ---
        self.channels = ChannelPages(
            self.writer,
            templates_dir,
            old.channels,
            config.base_url,
            self.stats,
            private_paths(config),
            config.access.site_private,
        )
        self.scrub = make_scrub(config)
        # Read once: the channel pages and the approval pages say the same of a freeze.
        self.frozen = frozen_notes(config, site, self.scrub)
        self.channels.frozen = self.frozen
        # Channels whose folder (or a subdir's) a link leads out of the site: their pages
        # are left as they are, since writing or removing them would go through the link.
        self.links_out = {
            c.path: why for c in config.channels if (why := channel_link_out(site, c))
        }
        for why in self.links_out.values():
            log.warning("pages: %s: its pages are left as they are", why)
        self.writer.stats.left_out = sorted(self.links_out.values())

    def run(self) -> None:
        self._clean_temporaries()
        self._assets()
        reports = [r for r in History(self.site).runs() if RUN_ID_RE.match(r.id)]
        self._approval_pages()
        self._advisories(reports)
        summaries = {
            c.path: self.channels.keep(c) if c.path in self.links_out else self.channels.render(c)
            for c in self.config.channels
        }
        package_pages = self._package_names()
        # Site-wide pages are public: private channels' runs stay out of them.
        reports = public_reports(reports, self.config)
        landing = landing_private(
            landing_model(self.config, summaries, reports, self.scrub), self.config
        )
        landing["stats"] = landing_stats(self.stats)  # download statistics: None without
        folder_pages = self._installers(reports)
        landing["installers"] = landing_installers(folder_pages)
        self.writer.page(layout.LANDING_PAGE, "landing.html", landing)
        if self.stats is not None:
            model = stats_page_model(self.stats, package_pages, set(folder_pages))
            self.writer.page(layout.STATS_PAGE, "stats.html", model)
        self._history(reports, package_pages, set(folder_pages))
        self._remove_stale()
        self.writer.name_left_out()
        manifest = Manifest(
            version=MANIFEST_VERSION,
            pages=self.writer.pages,
            channels=self.channels.channels,
            feed=self.feed,
        )
        self.site.write_bytes(self.manifest_path, msgspec.json.encode(manifest))

    def _installers(self, reports: list[RunReport]) -> dict[str, dict]:
        """Each installer folder's page; returns their models by folder. A folder that is a
        link its runs leave alone (to a channel's directory, the site's...) has none: written
        or removed through the link, its page would replace or take another (the page it had
        stays in the manifest as it was)."""
        channels = [channel.path for channel in self.config.channels]
        folders = [installer.path for installer in self.config.installers]
        pages: dict[str, dict] = {}
        for installer in self.config.installers:
            relpath = layout.installer_page_path(installer.path)
            if linked_elsewhere(self.site.root, channels, installer.path, folders) is not None:
                if (old := self.writer.old_pages.get(relpath)) is not None:
                    self.writer.produced(relpath, old)
                continue
            downloads = installer_downloads(self.stats, installer.path)
            model = installer_page(self.site.root, installer, reports, self.scrub, downloads)
            self.writer.page(relpath, "installer.html", model)
            pages[installer.path] = model
        return pages

    def _approval_pages(self) -> None:
        """The pending and approved pages of approval-gated channels."""
        now = time.time()
        private = private_paths(self.config)
        writer = self.writer
        # The advisories of the feeds too, from the copies the last run kept.
        config = with_kept_feeds(self.config, self.site.root, self._state_folder)
        for channel in config.channels:
            relpaths = approval_relpaths(channel, private)
            if channel.path in self.links_out:
                for relpath in relpaths:
                    if (old := writer.old_pages.get(relpath)) is not None:
                        writer.produced(relpath, old)
                continue
            # Keyed by their inputs: the pending page costs a dependency walk per candidate.
            levels = (config.filters, channel.filters)
            inputs = approval_inputs(self.site.root, channel, now, levels, self.scrub)
            # The pages link to each other: a pending page gone (the source turned private)
            # renders the approved page again, without its link. They say whether the channel
            # is frozen (approvals are published once it is unfrozen).
            frozen = self.frozen.get(channel.path)
            key = digest(writer.global_key, "approvals", inputs, relpaths, frozen)
            if all([writer.up_to_date(relpath, key) for relpath in relpaths]):
                continue
            pages = approval_pages(self.site.root, channel, now, private, levels, self.scrub)
            for page in pages:
                if writer.leave_out(page.relpath):
                    continue
                model = {**page.model, "frozen": frozen}
                data = writer.template(page.template, page.relpath, model=model)
                writer.rendered(page.relpath, writer.files.write(page.relpath, data))

    def _advisories(self, reports: list[RunReport]) -> None:
        """What package pages need to list the advisories affecting each version (those of
        the feeds too, from the copies the last run kept)."""
        config = with_kept_feeds(self.config, self.site.root, self._state_folder)
        for channel in config.channels:
            levels = advisory_levels(config, channel)
            if levels:
                blocked = blocked_versions(reports, channel.path)
                self.channels.advisories[channel.path] = (
                    levels,
                    blocked,
                    digest(advisory_inputs(levels), blocked),
                )

    def _clean_temporaries(self) -> None:
        """Remove what a killed render left half-written in the directories only pages use
        (temporaries of live writers are kept; subdirs and channel roots are the mirror's)."""
        root = self.site.root
        directories = [root, root / layout.ASSETS_DIR, root / layout.HISTORY_DIR]
        directories.append(self.manifest_path.parent)
        channels = [c.path for c in self.config.channels if c.path not in self.links_out]
        directories += [root / layout.package_pages_dir(path) for path in channels]
        directories += [self.listings_dir / path for path in channels]
        for directory in directories:
            # Never through a link out of the site: what it holds is not the site's to delete.
            relpath = directory.relative_to(root).as_posix()
            if relpath == "." or self.writer.files.folder_leads_out(relpath) is None:
                self.site.clean_temp_files(directory)

    def _assets(self) -> None:
        directory = self.templates_dir / layout.ASSETS_DIR
        if not directory.is_dir():
            return
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                data = path.read_bytes()
                relpath = f"{layout.ASSETS_DIR}/{path.relative_to(directory).as_posix()}"
                self.writer.emit(relpath, digest(data), lambda data=data: data)

    def _package_names(self) -> dict[str, set[str]]:
        """Channel -> names that have a package page (for links from history pages)."""
        out: dict[str, set[str]] = {}
        for channel in self.config.channels:
            prefix = f"{layout.package_pages_dir(channel.path)}/"
            out[channel.path] = {
                p[len(prefix) : -len(".html")]
                for p in self.writer.pages
                if p.startswith(prefix) and p.endswith(".html") and "/" not in p[len(prefix) :]
            }
        return out

    def _remove_stale(self) -> None:
        # Without the last manifest (lost, damaged, of another version) the pages an earlier
        # render left are found where nothing but pages lives.
        old = self.writer.old_pages.keys() or self._pages_on_disk()
        for relpath in sorted(set(old) - set(self.writer.pages)):
            try:
                target = self.writer.files.removable(relpath)
            except UnsafePathError:
                continue
            if target is not None and self.site.remove(target):
                self.writer.stats.removed.append(relpath)
        remove_stale_caches(self.site, self.config.subdir_paths())

    def _pages_on_disk(self) -> set[str]:
        """The history pages and the package pages on disk, the listing pages of each
        configured subdir (``page-N.html``, numbered from 2 without a gap), and the pages of
        what channels.yaml no longer names (see sitegen.web.unconfigured)."""
        root = self.site.root
        found = unconfigured_pages(root, self.config)
        places = [
            layout.HISTORY_DIR,
            *(layout.package_pages_dir(c.path) for c in self.config.channels),
        ]
        for place in places:
            with contextlib.suppress(OSError):
                for entry in os.scandir(root / place):
                    if entry.name.endswith(".html") and entry.is_file(follow_symlinks=False):
                        found.add(f"{place}/{entry.name}")
        for channel in self.config.channels:
            for subdir in channel.subdirs:
                number = 2
                while (root / layout.subdir_page_path(channel.path, subdir, number)).is_file():
                    found.add(layout.subdir_page_path(channel.path, subdir, number))
                    number += 1
        return found

    # ------------------------------------------------------------------ history

    def _feed_groups(self, reports: list[RunReport]) -> dict[str, list]:
        """The feed groups of each finished run, kept in the manifest while its record file is
        the same (a first run's record lists every file of the channel) and so are the channels
        the public pages show of it."""
        out = {}
        for report in reports:
            if report.status == RUNNING:
                continue
            try:
                st = self.site.path(layout.run_record_path(report.id)).stat()
            except (OSError, UnsafePathError):
                continue
            stamp = [st.st_size, st.st_mtime_ns, FEED_ENTRIES]
            cached = self.old_feed.get(report.id)
            # Groups kept from before a channel was hidden (turned private, left channels.yaml)
            # would name its packages; from before it was shown, leave them out.
            shown = sorted({c.channel for c in report.channels})
            if cached is not None and cached.stamp == stamp and cached.shown == shown:
                groups = cached.groups
            else:
                groups = feed_groups(report)
            self.feed[report.id] = FeedState(stamp=stamp, groups=groups, shown=shown)
            out[report.id] = groups
        return out

    def _history(
        self, reports: list[RunReport], package_pages: dict[str, set[str]], folders: set[str]
    ) -> None:
        """The history pages, run pages, history.json and feed; ``folders``: the installer
        folders with a page, which they link."""
        gates = gate_changes(reports, self.scrub)
        summaries = [
            {**run_summary(r, self.scrub, folders), "gate_counts": gates[r.id]["gate_counts"]}
            for r in reports
        ]
        for chunk in history_pages(summaries):
            self.writer.page(chunk["path"], "history.html", chunk)
        for report in reports:
            self.writer.page(
                layout.run_page_path(report.id),
                "run.html",
                {**run_detail(report, self.scrub, package_pages, folders), **gates[report.id]},
            )
        self.writer.json(layout.HISTORY_JSON, history_json(reports, self.scrub, folders))
        entries = feed_entries(reports, package_pages, groups=self._feed_groups(reports))
        feed = {
            "entries": entries,
            "updated": entries[0]["updated"] if entries else "1970-01-01T00:00:00Z",
            "base": f"{self.config.base_url}/history/" if self.config.base_url else None,
        }
        self.writer.page(layout.FEED, "feed.atom", feed)
