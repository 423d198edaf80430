"""Render the browse pages of the site from what is on disk: published repodata and the ledger.

``render_site(config)`` never touches the network. It is incremental at two levels:

* every page has an *input key* (a hash of exactly the data it shows, the templates and the
  site title) kept in ``<site>/.sitegen/render/manifest.json``; a page whose key did not change
  and whose file exists is neither computed nor written;
* a whole channel whose metadata files (``repodata.json`` & co., ``channeldata.json``) have the
  same size and mtime as at the last render is skipped without parsing its repodata.

At conda-forge scale (500,000 records in a subdir) a changed channel costs one cheap pass over
its records, plus what changed:

* the site's own repodata (sitegen checked every record before publishing it) is decoded
  lightly: the few fields every render needs, and each record's JSON text, unparsed;
* the records are grouped by package name once; each name's key starts from a fingerprint of
  its records' JSON text, and what the channel page needs of a name (newest version, summary,
  the names its dependencies link to) is kept in the manifest until that fingerprint changes,
  so the records of a name are parsed only when its page is rendered;
* a subdir listing (a row per file) is rendered in chunks of rows, cached in
  ``.sitegen/render/listings/``: only chunks whose rows changed are rendered again;
* many package pages (a first render, new templates) are split between forked processes.

Pages that are computed go through :meth:`Site.write_bytes`, which leaves unchanged files alone,
and pages that are no longer produced (a package that left the channel) are removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import logging
import mmap
import os
import pickle
import re
import signal
import sys
import traceback
import zlib
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType
from typing import Any, NamedTuple

import jinja2
import markupsafe
import msgspec

from sitegen import layout
from sitegen.conda.records import Record, RepodataError, gc_paused, parse_repodata
from sitegen.conda.schema import LISTED_DECODER, RAW_DECODER
from sitegen.conda.version import _MAX_SECONDS, timestamp_ms
from sitegen.config import ChannelConfig, SiteConfig, redact_url
from sitegen.layout import LOCK_NAME, listings_dir, render_dir, render_manifest_path
from sitegen.resources import templates_dir
from sitegen.store.site import Site, UnsafePathError
from sitegen.sync.history import History
from sitegen.sync.report import RUNNING, RunReport
from sitegen.web import pages

log = logging.getLogger("sitegen")

# Bump when the page models change shape, so every page is rendered again (and the facts
# kept per package in the manifest are computed again).
RENDER_VERSION = "2"
TEMPLATES_DIR = templates_dir()
MANIFEST_VERSION = 2
LISTING_CACHE_VERSION = 1
# A subdir listing is rendered in chunks of rows that end where a file name's hash says so
# (about 1 in CHUNK_ROWS), so that a file added or removed changes one chunk, not the rest.
CHUNK_ROWS = 512
CHUNK_ROWS_MAX = 8 * CHUNK_ROWS
# Package pages are rendered by forked processes (one per CPU, at most PAGE_PROCESSES; on Linux)
# when a channel has at least PROCESSES_FROM of them to render.
PAGE_PROCESSES = 4
PROCESSES_FROM = 2000


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
    with _render_lock(site), gc_paused():
        renderer = _Renderer(config, site, Path(templates_dir or TEMPLATES_DIR))
        renderer.run()
    log.info("pages: %s", renderer.stats)
    return renderer.stats


@contextlib.contextmanager
def _render_lock(site: Site) -> Iterator[None]:
    """One render at a time per site (`sitegen serve --watch` beside a cron run)."""
    directory = render_dir(site.root)
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
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


# --------------------------------------------------------------------------- the site's repodata

# What a package name must be made of to name a page (never a path): the characters of the
# file names records.check_record lets through (a package's file names start with its name).
_PAGE_NAME = re.compile(r"^[A-Za-z0-9_+!][A-Za-z0-9._+!=,-]*$")


def _published_files(data: bytes, subdir: str) -> list[pages.PublishedFile]:
    """The records of repodata that sitegen wrote, without building them: two typed decodes
    (the few fields shown of every record; the JSON text of each record), both much cheaper
    than parsing every record into dicts. Raises msgspec.DecodeError when the file is not
    as sitegen writes it."""
    raw = RAW_DECODER.decode(data)
    listed = LISTED_DECODER.decode(data)
    out: list[pages.PublishedFile] = []
    append = out.append
    make = tuple.__new__
    for raw_section, listed_section in (
        (raw.packages, listed.packages),
        (raw.packages_conda, listed.packages_conda),
    ):
        # Both decodes keep the order of the file: the sections line up.
        for (fn, text), record in zip(raw_section.items(), listed_section.values(), strict=True):
            ms = record.timestamp
            if type(ms) is int and ms > 0:  # conda.timestamp_ms, inline for the common case
                ms = ms if ms > _MAX_SECONDS else ms * 1000
            else:
                ms = timestamp_ms({"timestamp": ms})
            append(
                make(
                    pages.PublishedFile,
                    (fn, subdir, record.name, record.size, ms, record.sha256, text),
                )
            )
    return out


def _fingerprint(files: list[pages.PublishedFile]) -> str:
    """A hash of a package's records as published (subdir, file name and JSON text of each)."""
    data = msgspec.json.encode([(f.subdir, f.fn, f.raw) for f in files])
    return hashlib.sha256(data).hexdigest()[:32]


def _package_key(
    global_key: str, channel: str, name: str, facts: list[Any], entry: Any, known: set[str]
) -> str:
    """The input key of a package page: its records (by fingerprint), the names of the channel
    its dependencies link to, its channeldata entry."""
    linked = [dep for dep in facts[4] if dep in known]
    return _digest(global_key, ["package.html", channel, name, facts[0], linked, entry])


class _Pages:
    """Where pages go: Site.path of each, resolving each directory once (not each page)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.root = str(site.root)
        self._directories: dict[str, Path] = {}
        self._files: dict[str, set[str]] = {}

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

    def exists(self, relpath: str) -> bool:
        """Whether the page is a file (asked once per page, before it is written or not)."""
        # relpaths are made of validated names; Site.path (which resolves) guards the writes.
        directory, _, name = relpath.rpartition("/")
        files = self._files.get(directory)
        if files is None:  # one listing of the directory rather than a stat per page
            try:
                with os.scandir(os.path.join(self.root, directory)) as entries:
                    files = self._files[directory] = {e.name for e in entries if e.is_file()}
            except OSError:
                return os.path.isfile(os.path.join(self.root, relpath))
        return name in files


def _records(files: list[pages.PublishedFile]) -> list[Record]:
    """The records of a package, parsed (only when its page or its facts are needed)."""
    raws = msgspec.json.decode(b"[" + b",".join(f.raw for f in files) + b"]")
    return [Record(fn=f.fn, subdir=f.subdir, raw=raw) for f, raw in zip(files, raws, strict=True)]


class _PackageTask(NamedTuple):
    """A package page to render; ``facts`` None: new facts (and key) to compute first, and
    nothing to render if the key is ``old_key`` after all."""

    relpath: str
    name: str
    files: list[pages.PublishedFile]
    entry: Any  # its channeldata.json entry
    facts: list[Any] | None  # [fingerprint, *package facts]
    old_key: str | None


# What rendering a package page gave: its key when computed, True (written) / False (unchanged)
# / None (up to date: not rendered), its facts when computed.
_PackageResult = tuple[str | None, bool | None, list[Any] | None]


class _PackagePages:
    """Renders and writes package pages, in the render's process or in a forked one."""

    def __init__(
        self,
        site: Site,
        env: jinja2.Environment,
        title: str,
        global_key: str,
        channel: str,
        known: set[str],
    ) -> None:
        self.pages = _Pages(site)
        self.site = site
        self.template = env.get_template("package.html")
        self.title = title
        self.global_key = global_key
        self.channel = channel
        self.known = known

    def run(self, task: _PackageTask, fingerprint: str) -> _PackageResult:
        records = None
        key = None
        facts = task.facts
        if facts is None:
            records = _records(task.files)
            facts = [fingerprint, *pages.package_facts(records)]
            key = _package_key(
                self.global_key, self.channel, task.name, facts, task.entry, self.known
            )
            if key == task.old_key and self.pages.exists(task.relpath):
                return key, None, facts
        model = pages.package_model(
            self.channel, task.name, records or _records(task.files), task.entry, self.known
        )
        text = self.template.render(
            page=task.relpath,
            root=pages.root_prefix(task.relpath),
            site_title=self.title,
            model=model,
        )
        target = self.pages.target(task.relpath)
        written = self.site.write_bytes(target, text.encode("utf-8"), durable=False)
        return key, written, facts if task.facts is None else None


def _forked(work: Callable[[], Any]) -> tuple[int, int]:
    """Run ``work`` in a forked process: (pid, file descriptor its pickled outcome comes on).

    The child runs nothing but ``work`` (no logging, no lock another thread of this process
    could hold: pages rendered by a jinja2 environment of its own) and leaves by os._exit.
    """
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        status = 1
        try:
            os.close(read)
            try:
                outcome = ("ok", work())
            except BaseException:
                outcome = ("error", traceback.format_exc())
            data = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
            with open(write, "wb") as handle:
                handle.write(data)
            status = 0 if outcome[0] == "ok" else 1
        finally:
            os._exit(status)
    os.close(write)
    return pid, read


def _join_forked(pid: int, read: int) -> Any:
    """What the forked process ``pid`` gave; raises if it failed."""
    try:
        with open(read, "rb", closefd=True) as handle:
            data = handle.read()
    finally:
        os.waitpid(pid, 0)
    try:
        kind, value = pickle.loads(data)
    except Exception:
        raise RuntimeError(f"a page process ({pid}) died without a result") from None
    if kind != "ok":
        raise RuntimeError(f"a page process failed:\n{value}")
    return value


def _kill_forked(pid: int, read: int) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        os.close(read)
    with contextlib.suppress(OSError):
        os.waitpid(pid, 0)


def _chunked(files: list[pages.PublishedFile]) -> Iterator[list[pages.PublishedFile]]:
    """A listing's files (sorted by name) in chunks whose ends depend on the names alone, so
    that a file added or removed changes one chunk only."""
    start = 0
    for i in range(1, len(files)):
        if zlib.crc32(files[i].fn.encode()) % CHUNK_ROWS == 0 or i - start >= CHUNK_ROWS_MAX:
            yield files[start:i]
            start = i
    if start < len(files):
        yield files[start:]


def _write_parts(site: Site, target: Path, parts: list[Any]) -> bool:
    """Site.write_bytes (no fsync) of the concatenation of ``parts``, without making it: the
    file is left alone when it holds exactly that (compared part by part); True if written."""
    if _holds(target, parts):
        return False
    with site.pending(target) as pending:
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


class _ListingCache:
    """The rendered chunks of a subdir listing's rows, kept between renders beside the
    manifest: ``<subdir>.rows`` holds chunks one after the other (new ones are appended) and
    ``<subdir>.json`` where each is (key -> [offset, length, crc32]). A chunk is used only when
    its bytes check out."""

    SUFFIXES = (".rows", ".json")

    def __init__(self, site: Site, directory: Path, subdir: str) -> None:
        self.site = site
        self.rows_path = directory / f"{subdir}.rows"
        self.index_path = directory / f"{subdir}.json"
        self.index = self._load_index()
        self.used: dict[str, list[int]] = {}
        self._exit = contextlib.ExitStack()
        self._rows: memoryview | None = None
        self._size = 0
        if self.index:
            self._open()

    def _load_index(self) -> dict[str, Any]:
        try:
            document = msgspec.json.decode(self.index_path.read_bytes())
        except (OSError, msgspec.DecodeError):
            return {}
        if not isinstance(document, dict) or document.get("version") != LISTING_CACHE_VERSION:
            return {}
        chunks = document.get("chunks")
        return chunks if isinstance(chunks, dict) else {}

    def _open(self) -> None:
        try:
            with open(self.rows_path, "rb") as handle:
                mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # absent, or empty
            return
        self._exit.callback(mapped.close)  # after the views on it are released (in reverse)
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

    def save(self, chunks: list[tuple[str, Any]]) -> None:
        """Keep the chunks of the page just rendered: the new ones are appended, unless most of
        the file would then be chunks no longer used (then it is written afresh)."""
        new = [(key, data) for key, data in chunks if key not in self.used]
        if not new and len(self.used) == len(self.index):
            return
        live = sum(len(data) for _key, data in chunks)
        added = sum(len(data) for _key, data in new)
        index: dict[str, list[int]] = {}
        if self._rows is not None and self._size + added <= 2 * live:
            with open(self.rows_path, "ab") as handle:
                offset = os.fstat(handle.fileno()).st_size
                for key, data in new:
                    handle.write(data)
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
        document = {"version": LISTING_CACHE_VERSION, "chunks": index}
        self.site.write_bytes(self.index_path, msgspec.json.encode(document), durable=False)

    def close(self) -> None:
        self._exit.close()


# --------------------------------------------------------------------------- templates


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


_DICT_ATTRIBUTES = frozenset(dir(dict))
# markupsafe's own escaping of a str, without wrapping the result in Markup (markupsafe >= 3).
_escape_str: Callable[[str], str] = getattr(markupsafe, "_escape_inner", None) or str
_FAST_ESCAPE = _escape_str is not str and _escape_str("<&>'\"x") == markupsafe.escape("<&>'\"x")


def _escape_output(value: Any) -> Any:
    """What ``{{ value }}`` writes with autoescape on: the same text as markupsafe.escape.

    markupsafe.escape wraps every result in a Markup, in Python, which is most of the cost of
    a large page; an output position only joins the text, so the plain str does.
    """
    if type(value) is str:
        return _escape_str(value)
    if hasattr(value, "__html__"):
        return value.__html__()
    return _escape_str(str(value))


class _Template(jinja2.Template):
    @classmethod
    def from_code(
        cls,
        environment: jinja2.Environment,
        code: CodeType,
        globals: MutableMapping[str, Any],
        uptodate: Callable[[], bool] | None = None,
    ) -> jinja2.Template:
        template = super().from_code(environment, code, globals, uptodate)
        # The compiled code looks ``escape`` up in its module namespace, and calls it only to
        # write an expression's value ({{ ... }}); anything else keeps markupsafe's.
        namespace = template.root_render_func.__globals__
        if _FAST_ESCAPE and namespace.get("escape") is markupsafe.escape:
            namespace["escape"] = _escape_output
        return template


class _Environment(jinja2.Environment):
    """jinja2's environment with a faster ``getattr`` for the plain dicts the page models are.

    ``{{ row.name }}`` on a dict first tries the attribute, which fails with an exception (costly
    in the loops of a page of 100,000 rows), then the item. An attribute of a plain dict exists
    only when its type has it, so checking that first gives exactly the same result.
    """

    template_class = _Template

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


@functools.lru_cache(maxsize=4)
def make_environment(
    templates_dir: Path = TEMPLATES_DIR, templates_digest: str = ""
) -> jinja2.Environment:
    """The jinja2 environment: autoescape always on, strict about undefined names.

    Cached per templates directory and content digest, so the templates of a long-lived
    process (``sitegen serve --watch``, the tests) compile once per version.
    """
    env = _Environment(
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
    # The same as a filter (``{{ path|href }}``): filters are called directly, globals through
    # Context.call, which costs more than the link itself in the loops of the large pages.
    env.filters["href"] = href
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
        self._templates_digest = templates_digest
        self.global_key = _digest(RENDER_VERSION, templates_digest, config.title)
        self.manifest_path = render_manifest_path(site.root)
        self._listings_dir = listings_dir(site.root)  # _ListingCache files
        old = self._load_manifest()
        self.old_pages: dict[str, str] = old.get("pages", {})
        self.old_channels: dict[str, Any] = old.get("channels", {})
        self.old_feed: dict[str, Any] = old.get("feed", {})
        self.feed: dict[str, Any] = {}
        self.pages: dict[str, str] = {}
        self.channels: dict[str, Any] = {}
        self.stats = RenderStats()
        self.scrub = make_scrub(config)
        self._pages = _Pages(site)

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
        document = {
            "version": MANIFEST_VERSION,
            "pages": self.pages,
            "channels": self.channels,
            "feed": self.feed,
        }
        self.site.write_bytes(self.manifest_path, msgspec.json.encode(document))

    def _target(self, relpath: str) -> Path:
        return self._pages.target(relpath)

    def _exists(self, relpath: str) -> bool:
        return self._pages.exists(relpath)

    def emit(self, relpath: str, key: str, build: Callable[[], bytes]) -> None:
        """Write the page ``relpath`` unless its input key is the one it was last rendered from."""
        if not self._up_to_date(relpath, key):
            data = build()
            self._rendered(
                relpath, self.site.write_bytes(self._target(relpath), data, durable=False)
            )

    def _up_to_date(self, relpath: str, key: str) -> bool:
        """Whether the page ``relpath`` was last rendered from ``key`` (and is there)."""
        self.pages[relpath] = key
        if self.old_pages.get(relpath) == key and self._exists(relpath):
            self.stats.skipped += 1
            return True
        return False

    def _rendered(self, relpath: str, written: bool) -> None:
        self.stats.rendered.append(relpath)
        if written:
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
        directories += [self._listings_dir / c.path for c in self.config.channels]
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
        self._remove_stale_listing_caches()

    def _remove_stale_listing_caches(self) -> None:
        """The chunk caches of subdirs no longer configured (each can be as its page)."""
        directory = self._listings_dir
        kept = {
            f"{channel.path}/{subdir}{suffix}"
            for channel in self.config.channels
            for subdir in channel.subdirs
            for suffix in _ListingCache.SUFFIXES
        }
        for path in sorted(directory.rglob("*")) if directory.is_dir() else []:
            relpath = path.relative_to(directory).as_posix()
            if (
                path.is_file()
                and path.name.endswith(_ListingCache.SUFFIXES)
                and relpath not in kept
            ):
                self.site.remove(path)

    # ------------------------------------------------------------------ channels

    def _metadata_stats(self, channel: ChannelConfig) -> dict[str, dict[str, tuple[int, float]]]:
        """Per subdir: present metadata file -> (size, mtime), the inputs of its pages."""
        out: dict[str, dict[str, tuple[int, float]]] = {}
        for subdir in channel.subdirs:
            files = {}
            for name in layout.METADATA_FILES:
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
        summary, names = self._render_channel(channel, metadata, cached)
        self.channels[channel.path] = {
            "signature": signature,
            "summary": summary.to_json(),
            "pages": sorted(set(self.pages) - before),
            "names_key": self.global_key,
            "names": names,
        }
        return summary

    def _read_subdir(self, channel: ChannelConfig, subdir: str) -> list[pages.PublishedFile]:
        """The records of the site's own repodata.json, in file order.

        sitegen wrote that file after checking every record, so it is only decoded here, and
        lightly (:func:`_published_files`); a file that does not decode that way is parsed and
        checked as upstream repodata is."""
        path = self.site.path(channel.path, subdir, "repodata.json")
        try:
            data = path.read_bytes()
        except OSError as exc:
            log.warning("%s/%s: cannot read repodata.json for pages: %s", channel.path, subdir, exc)
            return []
        try:
            return _published_files(data, subdir)
        except msgspec.DecodeError:  # also msgspec.ValidationError: not as sitegen writes it
            pass
        try:
            repodata = parse_repodata(data, subdir)
        except RepodataError as exc:
            log.warning("%s/%s: cannot read repodata.json for pages: %s", channel.path, subdir, exc)
            return []
        return [
            pages.PublishedFile(
                fn,
                subdir,
                r.name,
                r.size,
                r.timestamp_ms,
                r.sha256,
                msgspec.Raw(msgspec.json.encode(r.raw)),
            )
            for fn, r in repodata.records.items()
        ]

    def _names_cache(self, cached: Any) -> dict[str, list[Any]]:
        """Package name -> [fingerprint, *package facts] of the last render of the channel."""
        if not isinstance(cached, dict) or cached.get("names_key") != self.global_key:
            return {}
        names = cached.get("names")
        return names if isinstance(names, dict) else {}

    def _render_channel(
        self,
        channel: ChannelConfig,
        metadata: dict[str, dict[str, tuple[int, float]]],
        cached: Any,
    ) -> tuple[pages.ChannelSummary, dict[str, list[Any]]]:
        """Every page of a channel. One pass over the records groups them by name and gives each
        name a fingerprint (a hash of its records' JSON text). The facts the channel page and
        the keys need of a name are kept from the last render until its fingerprint changes:
        the records of a name are parsed only for its page, or for new facts. Returns the
        summary and name -> [fingerprint, *facts]."""
        subdirs = {subdir: self._read_subdir(channel, subdir) for subdir in metadata}
        by_name = pages.group_by_name(subdirs)
        unsafe = [name for name in by_name if not _PAGE_NAME.match(name)]
        if unsafe:  # never in repodata sitegen wrote: its file names were checked
            log.warning("%s: no pages for package names %s", channel.path, unsafe[:10])
            for name in unsafe:
                del by_name[name]
            subdirs = {
                subdir: [f for f in files if f.name in by_name] for subdir, files in subdirs.items()
            }
        channeldata = self._channeldata(channel)
        summary = pages.summarize_channel(channel.path, subdirs)
        known = {name.lower() for name in by_name}
        old_names = self._names_cache(cached)
        names: dict[str, list[Any]] = {}
        tasks: list[_PackageTask] = []
        fingerprints: list[str] = []
        for name, files in by_name.items():
            fingerprint = _fingerprint(files)
            relpath = layout.package_page_path(channel.path, name)
            entry = channeldata.get(name)
            facts = old_names.get(name)
            if not isinstance(facts, list) or len(facts) != 5 or facts[0] != fingerprint:
                # New facts, then the key: computed with the page.
                tasks.append(
                    _PackageTask(relpath, name, files, entry, None, self.old_pages.get(relpath))
                )
                fingerprints.append(fingerprint)
                continue
            names[name] = facts
            key = _package_key(self.global_key, channel.path, name, facts, entry, known)
            self.pages[relpath] = key
            if key == self.old_pages.get(relpath) and self._exists(relpath):
                self.stats.skipped += 1
            else:
                tasks.append(_PackageTask(relpath, name, files, entry, facts, key))
                fingerprints.append(fingerprint)
        with self._package_pages(channel.path, tasks, fingerprints, known) as results:
            # The listings meanwhile, here.
            for subdir, files in subdirs.items():
                relpath = layout.subdir_page_path(channel.path, subdir)
                key = _digest(
                    self.global_key, "subdir.html", [channel.path, subdir, metadata[subdir]]
                )
                if not self._up_to_date(relpath, key):
                    self._listing_page(relpath, channel.path, subdir, files, metadata[subdir])
            for task, (key, written, facts) in zip(tasks, results(), strict=True):
                if facts is not None:
                    names[task.name] = facts
                if key is not None:
                    self.pages[task.relpath] = key
                if written is None:
                    self.stats.skipped += 1
                    continue
                self.stats.rendered.append(task.relpath)
                if written:
                    self.stats.written.append(task.relpath)
        rows = [pages.package_row(n, names[n][1:], channeldata.get(n)) for n in sorted(names)]
        self.json(layout.search_index_path(channel.path), pages.search_index(channel.path, rows))
        self.page(
            layout.channel_index_path(channel.path),
            "channel.html",
            pages.channel_model(channel, summary, rows),
        )
        return summary, names

    @contextlib.contextmanager
    def _package_pages(
        self, channel: str, tasks: list[_PackageTask], fingerprints: list[str], known: set[str]
    ) -> Iterator[Callable[[], Iterator[_PackageResult]]]:
        """Render the package pages of ``tasks``; yields a function giving their results in
        order. Many pages are split between forked processes (a page costs about as much CPU to
        write as to render), which render while the body of the with statement runs."""
        processes = min(PAGE_PROCESSES, os.cpu_count() or 1)
        children: list[tuple[int, int]] = []
        if len(tasks) >= PROCESSES_FROM and processes > 1 and sys.platform == "linux":

            def work(part: int) -> list[_PackageResult]:
                # A jinja2 environment of its own: no lock shared with the parent's threads.
                env = make_environment.__wrapped__(self.templates_dir, self._templates_digest)
                mine = _PackagePages(
                    self.site, env, self.config.title, self.global_key, channel, known
                )
                return list(map(mine.run, tasks[part::processes], fingerprints[part::processes]))

            try:
                for part in range(processes):
                    children.append(_forked(functools.partial(work, part)))
            except OSError as exc:  # no more processes: all here, then
                log.debug("rendering package pages in one process: %s", exc)
                for child in children:
                    _kill_forked(*child)
                children.clear()
        if not children:
            here = _PackagePages(
                self.site, self.env, self.config.title, self.global_key, channel, known
            )
            yield lambda: map(here.run, tasks, fingerprints)
            return

        def results() -> Iterator[_PackageResult]:
            parts = []
            while children:
                try:
                    parts.append(_join_forked(*children[0]))
                finally:
                    del children[0]  # reaped, its pipe closed, whatever it gave
            for i in range(len(tasks)):
                yield parts[i % processes][i // processes]

        try:
            yield results
        finally:
            for child in children:
                _kill_forked(*child)

    def _listing_page(
        self,
        relpath: str,
        channel: str,
        subdir: str,
        files: list[pages.PublishedFile],
        stats: dict[str, tuple[int, float]],
    ) -> None:
        """A subdir's listing. Its package rows (all but a few lines of the page) are rendered
        by ``_listing_rows.html`` in chunks, kept in a cache beside the manifest: a chunk whose
        rows did not change is taken from there rather than rendered again. The page (100 MB
        and more) is written from its parts."""
        model = pages.subdir_listing_head(channel, subdir, files, stats)
        with contextlib.closing(
            _ListingCache(self.site, self._listings_dir / channel, subdir)
        ) as cache:
            parts = self._listing_parts(relpath, model, cache)
            self._rendered(relpath, _write_parts(self.site, self._target(relpath), parts))

    def _listing_parts(
        self, relpath: str, model: dict[str, Any], cache: _ListingCache
    ) -> list[Any]:
        rows_template = self.env.get_template("_listing_rows.html")
        chunks: list[tuple[str, Any]] = []
        for chunk in _chunked(model.pop("records")):
            # The key: what the rows show of each file (fn, size, timestamp, sha256), and a bit
            # more (the subdir and the name, which follow from them), as sliced.
            key = _digest(self.global_key, [f[:6] for f in chunk])
            data = cache.get(key)
            if data is None:
                rows = pages.listing_rows(chunk)
                data = rows_template.render(packages=rows).encode("utf-8")
            chunks.append((key, data))
        self.site.ensure_dir(cache.rows_path.parent)
        cache.save(chunks)
        marker = "\x00sitegen-rows\x00"
        page = self.template("subdir.html", relpath, model=model, rows=markupsafe.Markup(marker))
        head, *tail = page.split(marker.encode())
        if len(tail) != 1:  # the marker in the data: render the rows in place
            rows_html = b"".join(data for _key, data in chunks).decode("utf-8")
            return [
                self.template(
                    "subdir.html", relpath, model=model, rows=markupsafe.Markup(rows_html)
                )
            ]
        return [head, *(data for _key, data in chunks), tail[0]]

    # ------------------------------------------------------------------ landing and history

    def _feed_groups(self, reports: list[RunReport]) -> dict[str, list[list[Any]]]:
        """The feed groups of each finished run, kept in the manifest while its record file is
        the same (a first run's record lists every file of the channel)."""
        out = {}
        for report in reports:
            if report.status == RUNNING:
                continue
            try:
                st = self.site.path(layout.run_record_path(report.id)).stat()
            except (OSError, UnsafePathError):
                continue
            stamp = [st.st_size, st.st_mtime_ns, pages.FEED_ENTRIES]
            cached = self.old_feed.get(report.id)
            if isinstance(cached, dict) and cached.get("stamp") == stamp:
                groups = cached.get("groups")
            else:
                groups = pages.feed_groups(report)
            self.feed[report.id] = {"stamp": stamp, "groups": groups}
            out[report.id] = groups
        return out

    def _landing(self, summaries: dict[str, pages.ChannelSummary], reports: list[RunReport]):
        model = pages.landing_model(self.config, summaries, reports, self.scrub)
        self.page("index.html", "landing.html", model)

    def _history(self, reports: list[RunReport], package_pages: dict[str, set[str]]) -> None:
        summaries = [pages.run_summary(r, self.scrub) for r in reports]
        for chunk in pages.history_pages(summaries):
            self.page(chunk["path"], "history.html", chunk)
        for report in reports:
            self.page(
                layout.run_page_path(report.id),
                "run.html",
                pages.run_detail(report, self.scrub, package_pages),
            )
        self.json("history/history.json", pages.history_json(reports, self.scrub))
        entries = pages.feed_entries(reports, package_pages, groups=self._feed_groups(reports))
        feed = {
            "entries": entries,
            "updated": entries[0]["updated"] if entries else "1970-01-01T00:00:00Z",
            "base": f"{self.config.base_url}/history/" if self.config.base_url else None,
        }
        self.page("history/feed.atom", "feed.atom", feed)
