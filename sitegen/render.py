"""Render the browse pages of the site from what is on disk: published repodata and the ledger.

``render_site(config)`` never touches the network. It is incremental at two levels:

* every page has an *input key* (a hash of exactly the data it shows, the templates and the
  site title) kept in ``<site>/.sitegen/render/manifest.json``; a page whose key did not change
  and whose file exists is neither computed nor written;
* a whole channel whose metadata files (``repodata.json`` & co., ``channeldata.json``) have the
  same size and mtime as at the last render is skipped without parsing its repodata.

Pages that are computed go through :meth:`Site.write_bytes`, which leaves unchanged files alone,
and pages that are no longer produced (a package that left the channel) are removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import msgspec

from sitegen import pages
from sitegen.config import ChannelConfig, SiteConfig, redact_url
from sitegen.history import History
from sitegen.records import Record, RepodataError, parse_repodata
from sitegen.report import RunReport
from sitegen.storage import Site, UnsafePathError

log = logging.getLogger("sitegen")

# Bump when the page models change shape, so every page is rendered again.
RENDER_VERSION = "1"
TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
MANIFEST_VERSION = 1


@dataclass
class RenderStats:
    """What a render did. ``rendered`` pages were computed; of those, ``written`` changed on
    disk. ``skipped`` pages had unchanged inputs and were not computed at all."""

    rendered: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    skipped: int = 0
    removed: list[str] = field(default_factory=list)

    @property
    def unchanged(self) -> int:
        return len(self.rendered) - len(self.written)

    def __str__(self) -> str:
        return (
            f"{len(self.written)} pages written, {self.unchanged} unchanged,"
            f" {self.skipped} up to date, {len(self.removed)} removed"
        )


def render_site(config: SiteConfig, *, templates_dir: Path | None = None) -> RenderStats:
    """Render every page of the site under ``config.output``; returns what was done."""
    site = Site(config.output)
    site.ensure_dir(site.root)
    with _render_lock(site):
        renderer = _Renderer(config, site, Path(templates_dir or TEMPLATES_DIR))
        renderer.run()
    log.info("pages: %s", renderer.stats)
    return renderer.stats


@contextlib.contextmanager
def _render_lock(site: Site) -> Iterator[None]:
    """One render at a time per site (`sitegen serve --watch` beside a cron run)."""
    directory = site.state_dir / "render"
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _digest(*parts: Any) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        data = part if isinstance(part, bytes) else msgspec.json.encode(part)
        hasher.update(len(data).to_bytes(8, "little"))
        hasher.update(data)
    return hasher.hexdigest()


def _page_templates(directory: Path) -> list[Path]:
    """The files pages are made of: the templates at the top and assets/ (other tools keep
    their own templates in subdirectories, e.g. webconf/)."""
    files = [p for p in directory.iterdir() if p.is_file()]
    assets = directory / "assets"
    if assets.is_dir():
        files += [p for p in assets.rglob("*") if p.is_file()]
    return sorted(files)


def _templates_digest(directory: Path) -> str:
    files = _page_templates(directory)
    return _digest(*[(str(p.relative_to(directory)), p.read_bytes().hex()) for p in files])


@functools.lru_cache(maxsize=4)
def make_environment(
    templates_dir: Path = TEMPLATES_DIR, templates_digest: str = ""
) -> jinja2.Environment:
    """The jinja2 environment: autoescape always on, strict about undefined names.

    Cached per templates directory and content digest, so the templates of a long-lived
    process (``sitegen serve --watch``, the tests) compile once per version.
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )

    @jinja2.pass_context
    def href(context: Any, target: str) -> str:
        return pages.relative_href(target, context["page"])

    env.globals["href"] = href
    env.filters["bytes"] = pages.format_bytes
    env.filters["time"] = pages.format_time
    env.filters["iso"] = pages.iso_time
    env.filters["date_ms"] = pages.format_date_ms
    env.filters["duration"] = pages.format_duration
    env.filters["quote"] = pages.url_quote
    return env


def make_scrub(config: SiteConfig) -> Callable[[str], str]:
    """Hide tokens in text that came from a run (errors name URLs): URL tokens and the values
    of every ${ENV} the configured URLs use."""
    secrets = sorted(
        {
            value
            for _channel, mirror in config.mirrors
            for name in mirror.secret_env
            if len(value := os.environ.get(name, "")) >= 4
        },
        key=len,
        reverse=True,
    )

    def scrub(text: str) -> str:
        text = redact_url(str(text))
        for secret in secrets:
            text = text.replace(secret, "***")
        return text

    return scrub


class _Renderer:
    def __init__(self, config: SiteConfig, site: Site, templates_dir: Path) -> None:
        self.config = config
        self.site = site
        self.templates_dir = templates_dir
        templates_digest = _templates_digest(templates_dir)
        self.env = make_environment(templates_dir, templates_digest)
        self.global_key = _digest(RENDER_VERSION, templates_digest, config.title)
        self.manifest_path = site.state_dir / "render" / "manifest.json"
        old = self._load_manifest()
        self.old_pages: dict[str, str] = old.get("pages", {})
        self.old_channels: dict[str, Any] = old.get("channels", {})
        self.pages: dict[str, str] = {}
        self.channels: dict[str, Any] = {}
        self.stats = RenderStats()
        self.scrub = make_scrub(config)

    # ------------------------------------------------------------------ plumbing

    def _load_manifest(self) -> dict[str, Any]:
        try:
            data = msgspec.json.decode(self.manifest_path.read_bytes())
        except (OSError, msgspec.DecodeError):
            return {}
        if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
            return {}
        return data

    def _save_manifest(self) -> None:
        document = {"version": MANIFEST_VERSION, "pages": self.pages, "channels": self.channels}
        self.site.write_bytes(self.manifest_path, msgspec.json.encode(document))

    def _target(self, relpath: str) -> Path:
        return self.site.path(*relpath.split("/"))

    def _exists(self, relpath: str) -> bool:
        # relpaths are made of validated names; Site.path (which resolves) guards the writes.
        return (self.site.root / relpath).is_file()

    def emit(self, relpath: str, key: str, build: Callable[[], bytes]) -> None:
        """Write the page ``relpath`` unless its input key is the one it was last rendered from."""
        self.pages[relpath] = key
        if self.old_pages.get(relpath) == key and self._exists(relpath):
            self.stats.skipped += 1
            return
        data = build()
        self.stats.rendered.append(relpath)
        if self.site.write_bytes(self._target(relpath), data, durable=False):
            self.stats.written.append(relpath)

    def page(self, relpath: str, template: str, model: Any, key_data: Any = None) -> None:
        """Render ``template`` with ``model`` to ``relpath``; the key is the model itself unless
        ``key_data`` (cheaper to hash, and enough to determine the model) is given."""
        key = _digest(self.global_key, template, model if key_data is None else key_data)

        def build() -> bytes:
            data = model() if callable(model) else model
            return self.template(template, relpath, model=data)

        self.emit(relpath, key, build)

    def template(self, name: str, relpath: str, **context: Any) -> bytes:
        text = self.env.get_template(name).render(
            page=relpath, root=pages.root_prefix(relpath), site_title=self.config.title, **context
        )
        return text.encode("utf-8")

    def json(self, relpath: str, document: Any) -> None:
        data = msgspec.json.encode(document)
        self.emit(relpath, _digest(self.global_key, data), lambda: data)

    # ------------------------------------------------------------------ the run

    def run(self) -> None:
        self._clean_temporaries()
        self._assets()
        reports = [r for r in History(self.site).runs() if pages.RUN_ID_RE.match(r.id)]
        summaries = {c.path: self._channel(c) for c in self.config.channels}
        package_pages = self._package_names()
        self._landing(summaries, reports)
        self._history(reports, package_pages)
        self._remove_stale()
        self._save_manifest()

    def _clean_temporaries(self) -> None:
        """Remove what a killed render left half-written in the directories only pages use
        (temporaries of live writers are kept; subdirs and channel roots are the mirror's)."""
        root = self.site.root
        directories = [root, root / "assets", root / "history", self.manifest_path.parent]
        directories += [root / c.path / "packages" for c in self.config.channels]
        for directory in directories:
            self.site.clean_temp_files(directory)

    def _assets(self) -> None:
        directory = self.templates_dir / "assets"
        if not directory.is_dir():
            return
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                data = path.read_bytes()
                relpath = "assets/" + path.relative_to(directory).as_posix()
                self.emit(relpath, _digest(data), lambda data=data: data)

    def _package_names(self) -> dict[str, set[str]]:
        """Channel -> names that have a package page (for links from history pages)."""
        out: dict[str, set[str]] = {}
        for channel in self.config.channels:
            prefix = f"{channel.path}/packages/"
            out[channel.path] = {
                p[len(prefix) : -len(".html")]
                for p in self.pages
                if p.startswith(prefix) and p.endswith(".html") and "/" not in p[len(prefix) :]
            }
        return out

    def _remove_stale(self) -> None:
        for relpath in sorted(set(self.old_pages) - set(self.pages)):
            try:
                target = self._target(relpath)
            except UnsafePathError:
                continue
            if self.site.remove(target):
                self.stats.removed.append(relpath)

    # ------------------------------------------------------------------ channels

    def _metadata_stats(self, channel: ChannelConfig) -> dict[str, dict[str, tuple[int, float]]]:
        """Per subdir: present metadata file -> (size, mtime), the inputs of its pages."""
        out: dict[str, dict[str, tuple[int, float]]] = {}
        for subdir in channel.subdirs:
            files = {}
            for name in pages.METADATA_FILES:
                try:
                    st = self.site.path(channel.path, subdir, name).stat()
                except (FileNotFoundError, NotADirectoryError):
                    continue
                files[name] = (st.st_size, st.st_mtime_ns / 1e9)
            if "repodata.json" in files:
                out[subdir] = files
        return out

    def _channeldata(self, channel: ChannelConfig) -> dict[str, Any]:
        """The ``packages`` of the channel's channeldata.json (summary, license, home...)."""
        try:
            document = msgspec.json.decode(
                self.site.path(channel.path, "channeldata.json").read_bytes()
            )
        except (OSError, msgspec.DecodeError):
            return {}
        packages = document.get("packages") if isinstance(document, dict) else None
        return packages if isinstance(packages, dict) else {}

    def _channel_config_data(self, channel: ChannelConfig) -> Any:
        return [[m.name, m.display_url(), list(m.subdirs)] for m in channel.mirrors]

    def _channel(self, channel: ChannelConfig) -> pages.ChannelSummary:
        metadata = self._metadata_stats(channel)
        cd_stat = None
        with contextlib.suppress(OSError):
            st = self.site.path(channel.path, "channeldata.json").stat()
            cd_stat = (st.st_size, st.st_mtime_ns)
        signature = _digest(self.global_key, metadata, cd_stat, self._channel_config_data(channel))
        cached = self.old_channels.get(channel.path)
        if (
            isinstance(cached, dict)
            and cached.get("signature") == signature
            and all(p in self.old_pages and self._exists(p) for p in cached.get("pages", []))
        ):
            for relpath in cached["pages"]:
                self.pages[relpath] = self.old_pages[relpath]
            self.stats.skipped += len(cached["pages"])
            self.channels[channel.path] = cached
            return pages.ChannelSummary.from_json(cached["summary"])

        before = set(self.pages)
        summary = self._render_channel(channel, metadata)
        self.channels[channel.path] = {
            "signature": signature,
            "summary": summary.to_json(),
            "pages": sorted(set(self.pages) - before),
        }
        return summary

    def _read_subdir(self, channel: ChannelConfig, subdir: str) -> dict[str, Record]:
        path = self.site.path(channel.path, subdir, "repodata.json")
        try:
            repodata = parse_repodata(path.read_bytes(), subdir)
        except (OSError, RepodataError) as exc:
            log.warning("%s/%s: cannot read repodata.json for pages: %s", channel.path, subdir, exc)
            return {}
        return repodata.records

    def _render_channel(
        self, channel: ChannelConfig, metadata: dict[str, dict[str, tuple[int, float]]]
    ) -> pages.ChannelSummary:
        subdirs = {subdir: self._read_subdir(channel, subdir) for subdir in metadata}
        channeldata = self._channeldata(channel)
        by_name = pages.group_by_name(subdirs)
        summary = pages.summarize_channel(channel.path, subdirs)
        known = {name.lower() for name in by_name}
        for name, records in by_name.items():
            entry = channeldata.get(name)
            self.page(
                pages.package_page_path(channel.path, name),
                "package.html",
                lambda name=name, records=records, entry=entry: pages.package_model(
                    channel.path, name, records, entry, known
                ),
                key_data=[channel.path, name, pages.package_key_data(records, known), entry],
            )
        for subdir, records in subdirs.items():
            self.page(
                pages.subdir_page_path(channel.path, subdir),
                "subdir.html",
                lambda subdir=subdir, records=records: pages.subdir_listing(
                    channel.path, subdir, records, metadata[subdir]
                ),
                key_data=[channel.path, subdir, metadata[subdir]],
            )
        rows = pages.package_list(by_name, channeldata)
        self.json(pages.search_index_path(channel.path), pages.search_index(channel.path, rows))
        self.page(
            pages.channel_index_path(channel.path),
            "channel.html",
            pages.channel_model(channel, summary, rows),
        )
        return summary

    # ------------------------------------------------------------------ landing and history

    def _landing(self, summaries: dict[str, pages.ChannelSummary], reports: list[RunReport]):
        model = pages.landing_model(self.config, summaries, reports, self.scrub)
        self.page("index.html", "landing.html", model)

    def _history(self, reports: list[RunReport], package_pages: dict[str, set[str]]) -> None:
        summaries = [pages.run_summary(r, self.scrub) for r in reports]
        for chunk in pages.history_pages(summaries):
            self.page(chunk["path"], "history.html", chunk)
        for report in reports:
            self.page(
                pages.run_page_path(report.id),
                "run.html",
                pages.run_detail(report, self.scrub, package_pages),
            )
        self.json("history/history.json", pages.history_json(reports, self.scrub))
        entries = pages.feed_entries(reports, package_pages)
        feed = {
            "entries": entries,
            "updated": entries[0]["updated"] if entries else "1970-01-01T00:00:00Z",
            "base": f"{self.config.base_url}/history/" if self.config.base_url else None,
        }
        self.page("history/feed.atom", "feed.atom", feed)
