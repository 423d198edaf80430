"""Page models: plain data built from published repodata and the run ledger.

Everything here is pure (no disk, no network, no markup): :mod:`sitegen.web.render` reads the site,
hands the data to these builders and renders their output with the jinja2 templates. Paths in
the models are relative to the site root; the templates turn them into links relative to the
page that shows them.

Upstream metadata is untrusted. The templates escape every value; on top of that, the builders
here only let ``http(s)`` URLs through as links and bound the length of free text.
"""

from __future__ import annotations

import heapq
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from operator import attrgetter
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

from sitegen.conda.records import Record
from sitegen.conda.schema import PACKAGE_SUFFIXES
from sitegen.conda.version import InvalidVersionError, parse_version
from sitegen.config import ChannelConfig, SiteConfig
from sitegen.layout import (
    METADATA_FILES,
    channel_index_path,
    history_page_path,
    package_file_path,
    package_page_path,
    run_page_path,
    run_record_path,
    search_index_path,
)
from sitegen.sync.progress import human_bytes
from sitegen.sync.report import (
    COMPLETED,
    FAILED,
    INTERRUPTED,
    RUNNING,
    STOPPED,
    MirrorReport,
    RunReport,
)

SUMMARY_MAX = 300  # characters of an upstream summary shown on a package page
SEARCH_SUMMARY_MAX = 80  # characters of it kept in the search index
LIST_MAX = 2000  # file names listed per change list on a run page; the JSON has them all
DEPENDENCIES_MAX = 500  # rows of a dependency report shown on a run page
FEED_ENTRIES = 100
HISTORY_PAGE_SIZE = 50
# Run ids become page names beside history/index.html: they start with a digit (a date).
RUN_ID_RE = re.compile(r"^[0-9][A-Za-z0-9_.-]{0,99}$")
_DEP_NAME_RE = re.compile(r"^\s*(?:[^\s:]+::)?([A-Za-z0-9_][A-Za-z0-9_.-]*)")
_ABOUT_KEYS = ("summary", "license", "license_family", "home", "doc_url", "dev_url")
_URL_KEYS = ("home", "doc_url", "dev_url")
STATUS_WORDS = {
    RUNNING: "running",
    COMPLETED: "completed",
    FAILED: "failed",
    STOPPED: "stopped",
    INTERRUPTED: "interrupted",
}
SUBDIR_STATUS_WORDS = {
    "published": "published",
    "unchanged": "unchanged",
    "held": "held back",
    "failed": "not updated",
    "dry-run": "dry run",
}

Scrub = Callable[[str], str]


def _same(text: str) -> str:
    return text


_PLAIN_URL = re.compile(r"^[A-Za-z0-9._/-]*$")


@lru_cache(maxsize=1 << 14)
def _directory_step(from_dir: str, to_dir: str) -> str:
    """The relative URL prefix leading from directory ``from_dir`` to ``to_dir`` ('' = same)."""
    source = from_dir.split("/") if from_dir else []
    target = to_dir.split("/") if to_dir else []
    common = 0
    for a, b in zip(source, target, strict=False):
        if a != b:
            break
        common += 1
    rest = target[common:]
    return "../" * (len(source) - common) + "".join(f"{segment}/" for segment in rest)


def relative_href(target: str, page: str) -> str:
    """A URL from the page ``page`` to the site path ``target`` (both relative to the root).

    A pure string operation (no file system), called for every link of every page.
    """
    anchor = ""
    if "#" in target:
        target, anchor = target.split("#", 1)
        anchor = "#" + quote(anchor)
    page_dir, _, page_name = page.rpartition("/")
    if not target:
        return quote(page_name) + anchor
    target_dir, _, name = target.rpartition("/")
    relative = _directory_step(page_dir, target_dir) + name
    return url_quote(relative or "./") + anchor


def url_quote(path: str) -> str:
    """Percent-encode a relative URL path (file names may hold '+', '!' or '=')."""
    return path if _PLAIN_URL.match(path) else quote(path)


def root_prefix(page: str) -> str:
    """The relative path from ``page`` up to the site root: '' at the root, '../..' deeper."""
    depth = page.count("/")
    return "/".join([".."] * depth) if depth else "."


# --------------------------------------------------------------------------- formatting


def format_time(seconds: float | None) -> str:
    """'2024-06-01 12:00 UTC', or '' when unknown."""
    if not seconds:
        return ""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seconds))


def iso_time(seconds: float | None) -> str:
    if not seconds:
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def format_date_ms(ms: int | None) -> str:
    if not ms:
        return ""
    if type(ms) is int and ms > 0:
        return _format_day(ms // 86_400_000)  # the same day as gmtime(ms / 1000)
    return time.strftime("%Y-%m-%d", time.gmtime(ms / 1000))


@lru_cache(maxsize=1 << 16)
def _format_day(day: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(day * 86_400))


def format_duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return ""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def format_bytes(n: int | float | None) -> str:
    return human_bytes(n or 0)


def safe_link(value: Any) -> str | None:
    """An upstream-provided URL, only when it is a plain http(s) URL; None otherwise."""
    if not isinstance(value, str):
        return None
    url = value.strip()
    if len(url) > 2000 or any(ord(ch) < 33 or ch in "<>\"'`\\" for ch in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


def clip(value: Any, limit: int) -> str:
    """Upstream free text as one bounded line ('' when it is not a string)."""
    if not isinstance(value, str):
        return ""
    text = " ".join(value.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def split_filename(fn: str) -> tuple[str, str, str]:
    """'numpy-2.1.0-py312h_0.conda' -> ('numpy', '2.1.0', 'py312h_0')."""
    if fn.endswith(".conda"):  # PACKAGE_SUFFIXES, spelled out: called for every file of a run
        stem = fn[:-6]
    elif fn.endswith(".tar.bz2"):
        stem = fn[:-8]
    else:
        stem = fn
    parts = stem.rsplit("-", 2)
    if len(parts) != 3:
        return stem, "", ""
    return parts[0], parts[1], parts[2]


@lru_cache(maxsize=1 << 18)
def dependency_name(spec: str) -> str | None:
    """The package name a dependency spec starts with (a cheap guess, used only for links)."""
    match = _DEP_NAME_RE.match(spec)
    return match.group(1).lower() if match else None


def _version_sort_key(version: str) -> tuple[int, Any]:
    try:
        return (1, parse_version(version))
    except InvalidVersionError:
        return (0, version)


def newest_version(versions: Iterable[str]) -> str:
    return max(versions, key=_version_sort_key, default="")


# --------------------------------------------------------------------------- channel data


class PublishedFile(NamedTuple):
    """A record of the site's own repodata as every render reads it: what the channel summary
    and the subdir listing show, and its JSON text (``raw``), parsed only for a package page
    that must be rendered again. Has the attributes of a :class:`Record` that those use."""

    fn: str
    subdir: str
    name: str
    size: int
    timestamp_ms: int
    sha256: str | None
    raw: Any  # msgspec.Raw: the record's JSON text


def _values(records: Mapping[str, Any] | Iterable[Any]) -> Iterable[Any]:
    return records.values() if isinstance(records, Mapping) else records


def group_by_name(subdirs: Mapping[str, Mapping[str, Record] | Iterable[Any]]) -> dict[str, list]:
    """One pass over every record of a channel: name -> its records (all subdirs, in order).

    The records of a subdir are a mapping (filename -> :class:`Record`) or a sequence (of
    :class:`PublishedFile`).
    """
    out: dict[str, list] = {}
    for records in subdirs.values():
        for record in _values(records):
            bucket = out.get(record.name)
            if bucket is None:
                out[record.name] = [record]
            else:
                bucket.append(record)
    return out


def about_package(records: list[Record], channeldata_entry: Any) -> dict[str, str | None]:
    """Summary, license and links of a package: channeldata.json first, else the newest record.

    URLs are kept only when http(s); everything else is bounded text.
    """
    entry = channeldata_entry if isinstance(channeldata_entry, dict) else {}
    newest = max(records, key=lambda r: (_version_sort_key(r.version), r.timestamp_ms))
    about: dict[str, str | None] = {}
    for key in _ABOUT_KEYS:
        value = entry.get(key)
        if not isinstance(value, str) or not value.strip():
            value = newest.raw.get(key)
        if key in _URL_KEYS:
            about[key] = safe_link(value)
        else:
            about[key] = clip(value, SUMMARY_MAX) or None
    return about


@dataclass
class SubdirSummary:
    subdir: str
    files: int = 0
    packages: int = 0  # distinct names
    size: int = 0
    conda: int = 0
    tar_bz2: int = 0
    newest_ms: int = 0

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ChannelSummary:
    """Counts of one channel, kept in the render manifest for the landing page."""

    path: str
    files: int = 0
    packages: int = 0
    size: int = 0
    newest_ms: int = 0
    subdirs: list[SubdirSummary] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "subdirs": [s.to_json() for s in self.subdirs]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChannelSummary:
        subdirs = [SubdirSummary(**s) for s in data.get("subdirs", [])]
        return cls(**{**data, "subdirs": subdirs})


def summarize_channel(
    path: str, subdirs: Mapping[str, Mapping[str, Record] | Iterable[Any]]
) -> ChannelSummary:
    """Counts per subdir and for the channel; records as :func:`group_by_name` takes them."""
    summary = ChannelSummary(path=path)
    names: set[str] = set()
    for subdir, records in subdirs.items():
        row = SubdirSummary(subdir=subdir)
        subdir_names: set[str] = set()
        files = size = conda = newest_ms = 0
        for record in _values(records):
            files += 1
            size += record.size
            if record.fn.endswith(".conda"):
                conda += 1
            ms = record.timestamp_ms
            if ms > newest_ms:
                newest_ms = ms
            subdir_names.add(record.name)
        row.files, row.size, row.conda, row.tar_bz2 = files, size, conda, files - conda
        row.newest_ms = newest_ms
        row.packages = len(subdir_names)
        names |= subdir_names
        summary.files += row.files
        summary.size += row.size
        summary.newest_ms = max(summary.newest_ms, row.newest_ms)
        summary.subdirs.append(row)
    summary.packages = len(names)
    return summary


def package_facts(records: list[Record]) -> list[Any]:
    """What the channel page, the search index and the key of the package page need of a
    package's records, as plain JSON (the render keeps it per package between runs):
    [newest version, subdirs, summary of the first record that has one (clipped), names its
    dependencies refer to (sorted)]."""
    summary = next((r.raw.get("summary") for r in records if r.raw.get("summary")), "")
    dependencies = {
        dep
        for r in records
        for spec in _strings(r.raw.get("depends"))
        if (dep := dependency_name(spec)) is not None
    }
    return [
        newest_version({r.version for r in records}),
        sorted({r.subdir for r in records}),
        clip(summary, SEARCH_SUMMARY_MAX),
        sorted(dependencies),
    ]


def package_row(name: str, facts: list[Any], channeldata_entry: Any) -> dict[str, Any]:
    """A row of a channel's package list from the package's :func:`package_facts`."""
    summary = channeldata_entry.get("summary") if isinstance(channeldata_entry, dict) else None
    return {
        "name": name,
        "version": facts[0],
        "subdirs": list(facts[1]),
        "summary": clip(summary, SEARCH_SUMMARY_MAX) if isinstance(summary, str) else facts[2],
    }


def package_list(
    by_name: Mapping[str, list[Record]], channeldata: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Rows of a channel's package list, sorted by name."""
    return [
        package_row(name, package_facts(by_name[name]), channeldata.get(name))
        for name in sorted(by_name)
    ]


def search_index(channel: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The compact JSON the channel page's search filters: one [name, version, summary] each.

    Package pages are at ``packages/<name>.html`` next to the channel's index.html.
    """
    return {
        "v": 1,
        "channel": channel,
        "pages": "packages/{name}.html",
        "packages": [[r["name"], r["version"], r["summary"]] for r in rows],
    }


def channel_model(
    channel: ChannelConfig,
    summary: ChannelSummary,
    rows: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "path": channel.path,
        "summary": summary.to_json(),
        "mirrors": [
            {"name": m.name, "source": m.display_url(), "subdirs": list(m.subdirs)}
            for m in channel.mirrors
        ],
        "packages": [{**row, "page": package_page_path(channel.path, row["name"])} for row in rows],
        "search_index": search_index_path(channel.path),
    }


def _file_entry(channel: str, record: Record) -> dict[str, Any]:
    return {
        "fn": record.fn,
        "format": ".conda" if record.fn.endswith(".conda") else ".tar.bz2",
        "href": package_file_path(channel, record.subdir, record.fn),
        "size": record.size,
        "sha256": record.sha256 or "",
        "md5": record.md5 or "",
    }


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, str)]


def package_model(
    channel: str,
    name: str,
    records: list[Record],
    channeldata_entry: Any = None,
    known_names: set[str] | frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """A package page: about, latest version and versions x subdirs x builds, formats side by side.

    ``known_names`` are the channel's package names: dependencies on them link to their pages.
    """
    builds: dict[tuple[str, str, str], dict[str, Any]] = {}
    for record in records:
        raw = record.raw
        key = (raw["version"], record.subdir, raw["build"])
        row = builds.get(key)
        if row is None:
            row = builds[key] = {
                "version": key[0],
                "subdir": key[1],
                "build": key[2],
                "build_number": raw.get("build_number", 0),
                "timestamp_ms": 0,
                "noarch": clip(raw.get("noarch"), 40),
                "depends": _strings(raw.get("depends")),
                "constrains": _strings(raw.get("constrains")),
                "files": {},
            }
        row["timestamp_ms"] = max(row["timestamp_ms"], record.timestamp_ms)
        entry = _file_entry(channel, record)
        row["files"][entry["format"]] = entry
    versions: dict[str, list[dict[str, Any]]] = {}
    own = name.lower()
    links: dict[str, str | None] = {}  # spec -> the page it links to (the builds share specs)
    for row in builds.values():
        row["date"] = format_date_ms(row["timestamp_ms"])
        row["files"] = [row["files"].get(s) for s in PACKAGE_SUFFIXES]
        row["cells"] = list(zip(PACKAGE_SUFFIXES, row["files"], strict=True))
        dep_links = row["dep_links"] = {}
        for spec in row["depends"]:
            if spec not in links:
                dep = dependency_name(spec)
                linked = dep in known_names and dep != own
                links[spec] = package_page_path(channel, dep) if linked else None
            if links[spec] is not None:
                dep_links[spec] = links[spec]
        versions.setdefault(row["version"], []).append(row)
    ordered = sorted(versions, key=_version_sort_key, reverse=True)
    version_rows = []
    for version in ordered:
        rows = sorted(
            versions[version],
            key=lambda r: (r["subdir"], -int(r["build_number"] or 0), r["build"]),
        )
        version_rows.append(
            {"version": version, "builds": rows, "date": max(r["date"] for r in rows)}
        )
    return {
        "channel": channel,
        "name": name,
        "about": about_package(records, channeldata_entry),
        "latest": ordered[0] if ordered else "",
        "subdirs": sorted({r.subdir for r in records}),
        "files": len(records),
        "size": sum(r.size for r in records),
        "versions": version_rows,
    }


def package_key_data(records: list[Record], known_names: set[str] | frozenset[str]) -> Any:
    """What a package page depends on besides its channeldata entry, cheap to hash."""
    ordered = sorted(records, key=lambda r: (r.subdir, r.fn))
    linked = sorted(
        {
            dep
            for r in ordered
            for spec in _strings(r.raw.get("depends"))
            if (dep := dependency_name(spec)) in known_names
        }
    )
    return [[[r.subdir, r.fn, r.raw] for r in ordered], linked]


def subdir_listing(
    channel: str,
    subdir: str,
    records: Mapping[str, Record] | Iterable[Any],
    metadata: Mapping[str, tuple[int, float]],
) -> dict[str, Any]:
    """A subdir's file listing: metadata files first (size, mtime), then the packages.

    ``metadata`` maps present metadata file names to (size, mtime seconds). Package rows are
    tuples (fn, size, date, sha256) to stay small at 500k records. ``records`` as
    :func:`group_by_name` takes a subdir's.
    """
    model = subdir_listing_head(channel, subdir, records, metadata)
    model["packages"] = listing_rows(model.pop("records"))
    return model


def subdir_listing_head(
    channel: str,
    subdir: str,
    records: Mapping[str, Record] | Iterable[Any],
    metadata: Mapping[str, tuple[int, float]],
) -> dict[str, Any]:
    """:func:`subdir_listing` but for the package rows: ``records`` sorted by file name
    instead, of which :func:`listing_rows` makes rows (sitegen.web.render, in chunks)."""
    meta_rows = [
        {"fn": fn, "size": metadata[fn][0], "modified": format_time(metadata[fn][1])}
        for fn in METADATA_FILES
        if fn in metadata
    ]
    ordered = sorted(_values(records), key=attrgetter("fn"))
    return {
        "channel": channel,
        "subdir": subdir,
        "metadata": meta_rows,
        "files": len(ordered),
        "size": sum(r.size for r in ordered),
        "records": ordered,
    }


def listing_rows(records: Iterable[Any]) -> list[tuple[str, int, str, str]]:
    """Rows of a subdir listing: (fn, size, date, sha256) of each record, in order."""
    return [(r.fn, r.size, format_date_ms(r.timestamp_ms), r.sha256 or "") for r in records]


# --------------------------------------------------------------------------- history


def run_duration(report: RunReport) -> float | None:
    if report.ended is None:
        return None
    return max(0.0, report.ended - report.started)


def _mirror_row(mirror: MirrorReport, scrub: Scrub) -> dict[str, Any]:
    subdirs = mirror.subdirs.values()
    excluded = mirror.excluded_totals()
    return {
        "name": mirror.name,
        "channel": mirror.channel,
        "source": scrub(mirror.source),
        "status": mirror.status,
        "records": sum(s.records for s in subdirs),
        "kept": sum(s.kept for s in subdirs),
        "added_as_dependency": sum(s.added_as_dependency for s in subdirs),
        "excluded": excluded,
        "excluded_total": sum(excluded.values()),
        "upstream": {name: s.upstream for name, s in sorted(mirror.subdirs.items())},
        "unsatisfied": len(mirror.unsatisfied),
        "dependencies_added": len(mirror.dependencies_added),
        "conflicts": len(mirror.conflicts),
        "errors": [scrub(e) for e in mirror.errors],
    }


def run_summary(report: RunReport, scrub: Scrub = _same) -> dict[str, Any]:
    """One run as the history page and history.json show it (counts, not file lists)."""
    channels = [
        {
            "channel": c.channel,
            "subdir": c.subdir,
            "status": c.status,
            "status_words": SUBDIR_STATUS_WORDS.get(c.status, c.status),
            "packages": c.packages,
            "added": len(c.added),
            "updated": len(c.updated),
            "removed": len(c.removed),
            "downloaded_files": c.downloaded_files,
            "downloaded_bytes": c.downloaded_bytes,
            "deleted_files": c.deleted_files,
            "errors": [scrub(e) for e in c.errors],
        }
        for c in report.channels
    ]
    mirrors = [_mirror_row(m, scrub) for m in report.mirrors]
    errors = [scrub(e) for e in report.errors]
    all_errors = (
        errors
        + [f"{m['name']}: {e}" for m in mirrors for e in m["errors"]]
        + [f"{c['channel']}/{c['subdir']}: {e}" for c in channels for e in c["errors"]]
    )
    return {
        "id": report.id,
        "status": report.status,
        "status_words": STATUS_WORDS.get(report.status, report.status),
        "started": report.started,
        "ended": report.ended,
        "started_text": format_time(report.started),
        "ended_text": format_time(report.ended),
        "started_iso": iso_time(report.started),
        "duration": run_duration(report),
        "duration_text": format_duration(run_duration(report)),
        "options": dict(report.options),
        "channels": channels,
        "mirrors": mirrors,
        "errors": errors,
        "all_errors": all_errors,
        "totals": {
            key: sum(c[key] for c in channels)
            for key in ("added", "updated", "removed", "downloaded_files", "downloaded_bytes")
        },
        "page": run_page_path(report.id),
        "record": run_record_path(report.id),
    }


def _capped(items: list[Any], limit: int, convert: Callable[[Any], Any]) -> dict[str, Any]:
    """The first ``limit`` items, converted, and how many more there are."""
    return {"items": [convert(i) for i in items[:limit]], "more": max(0, len(items) - limit)}


def _by_count(*counts: Mapping[str, int]) -> dict[str, int]:
    """Reason -> count (several mappings added up), most frequent first."""
    total: Counter[str] = Counter()
    for mapping in counts:
        total.update(mapping)
    return dict(sorted(total.items(), key=lambda kv: (-kv[1], kv[0])))


def run_detail(
    report: RunReport, scrub: Scrub = _same, package_pages: Mapping[str, set[str]] | None = None
) -> dict[str, Any]:
    """A run's own page: the summary plus what changed, the filters and the dependency report.

    ``package_pages`` (channel -> names with a page now) links changed files to their packages.
    """
    summary = run_summary(report, scrub)
    package_pages = package_pages or {}
    changes = []
    for c in report.channels:
        if not (c.added or c.updated or c.removed or c.errors):
            continue
        names = package_pages.get(c.channel, set())

        def linked(fn: str, channel: str = c.channel, names: set[str] = names) -> dict[str, Any]:
            name = split_filename(fn)[0]
            return {"fn": fn, "page": package_page_path(channel, name) if name in names else None}

        changes.append(
            {
                "channel": c.channel,
                "subdir": c.subdir,
                "added": _capped(c.added, LIST_MAX, linked),
                "updated": _capped(c.updated, LIST_MAX, linked),
                "removed": _capped(c.removed, LIST_MAX, lambda fn: {"fn": fn, "page": None}),
                "errors": [scrub(e) for e in c.errors],
            }
        )

    def scrubbed(row: dict[str, Any]) -> dict[str, str]:
        return {k: scrub(str(v)) for k, v in row.items()}

    mirrors = []
    for m, row in zip(report.mirrors, summary["mirrors"], strict=True):
        mirrors.append(
            {
                **row,
                "subdirs": [
                    {
                        "subdir": name,
                        "upstream": s.upstream,
                        "records": s.records,
                        "kept": s.kept,
                        "added_as_dependency": s.added_as_dependency,
                        "excluded": _by_count(s.excluded, s.rejected),
                    }
                    for name, s in sorted(m.subdirs.items())
                ],
                "unsatisfied_rows": _capped(m.unsatisfied, DEPENDENCIES_MAX, scrubbed),
                "dependencies_added_rows": _capped(
                    m.dependencies_added, DEPENDENCIES_MAX, scrubbed
                ),
                "conflict_rows": _capped(m.conflicts, DEPENDENCIES_MAX, scrub),
                "rejected_examples": [
                    {"fn": scrub(fn), "reason": reason}
                    for _subdir, sub in sorted(m.subdirs.items())
                    for fn, reason in list(sub.rejected_examples.items())[:20]
                ],
            }
        )
    return {**summary, "changes": changes, "mirror_details": mirrors}


def history_json(reports: list[RunReport], scrub: Scrub = _same) -> dict[str, Any]:
    """The machine-readable history: every run, newest first, with counts per subdir/mirror."""
    runs = []
    for report in reports:
        summary = run_summary(report, scrub)
        for key in ("status_words", "started_text", "ended_text", "duration_text", "all_errors"):
            summary.pop(key)
        for channel in summary["channels"]:
            channel.pop("status_words")
        runs.append(summary)
    return {"version": 1, "runs": runs}


def history_pages(summaries: list[dict[str, Any]], size: int = HISTORY_PAGE_SIZE) -> list[dict]:
    """Split run summaries (newest first) into pages: [{number, path, runs, pages}]."""
    chunks = [summaries[i : i + size] for i in range(0, len(summaries), size)] or [[]]
    paths = [history_page_path(n) for n in range(1, len(chunks) + 1)]
    return [
        {"number": n, "path": paths[n - 1], "runs": chunk, "pages": paths}
        for n, chunk in enumerate(chunks, start=1)
    ]


def feed_groups(report: RunReport, limit: int = FEED_ENTRIES) -> list[list[Any]]:
    """The files a run added, grouped by channel, name and version: the first ``limit`` groups
    in that order, as [channel, name, version, files]. (A first run adds every file of the
    channel; the feed shows a few groups.)"""
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for c in report.channels:
        prefix = f"{c.subdir}/"
        for fn in c.added:
            name, version, _build = split_filename(fn)
            key = (c.channel, name, version)
            files = grouped.get(key)
            if files is None:
                grouped[key] = [prefix + fn]
            else:
                files.append(prefix + fn)
    keys = heapq.nsmallest(limit, grouped) if limit < len(grouped) else sorted(grouped)
    return [[*key, grouped[key]] for key in keys]


def feed_entries(
    reports: list[RunReport],
    package_pages: Mapping[str, set[str]],
    limit: int = FEED_ENTRIES,
    groups: Mapping[str, list[list[Any]]] | None = None,
) -> list[dict[str, Any]]:
    """Newly mirrored packages, newest run first: one entry per run, channel, name and version.

    ``groups`` may hold the :func:`feed_groups` of runs by id, computed before with at least
    this ``limit``.
    """
    entries: list[dict[str, Any]] = []
    for report in reports:
        if report.status == RUNNING:
            continue
        wanted = max(limit - len(entries), 1)
        found = groups.get(report.id) if groups is not None else None
        if found is None:
            found = feed_groups(report, wanted)
        updated = iso_time(report.ended or report.started)
        for channel, name, version, files in found[:wanted]:
            page = (
                package_page_path(channel, name)
                if name in package_pages.get(channel, set())
                else run_page_path(report.id)
            )
            entries.append(
                {
                    "id": f"urn:sitegen:{report.id}:{channel}:{name}:{version}",
                    "title": f"{name} {version} in {channel}",
                    "channel": channel,
                    "name": name,
                    "version": version,
                    "updated": updated,
                    "page": page,
                    "files": list(files),
                }
            )
        if len(entries) >= limit:
            return entries
    return entries


# --------------------------------------------------------------------------- landing page


def mirror_state(reports: list[RunReport], mirror: str) -> dict[str, Any]:
    """The last run that involved a mirror, its status there and its last successful sync."""
    state: dict[str, Any] = {
        "last_status": None,
        "last_run": None,
        "last_success": None,
        "last_success_iso": "",
        "last_success_text": "",
        "read": None,  # the newest report of the mirror that read upstream
    }
    for report in reports:  # newest first
        found = next((m for m in report.mirrors if m.name == mirror), None)
        if found is None:
            continue
        if state["last_run"] is None:
            state["last_run"] = report.id
            if report.status in (RUNNING, STOPPED, INTERRUPTED):
                state["last_status"] = report.status
            else:
                state["last_status"] = FAILED if found.errors else found.status
        if state["read"] is None and found.subdirs and report.status != RUNNING:
            state["read"] = found
        if (
            state["last_success"] is None
            and report.status in (COMPLETED, FAILED)
            and found.status == COMPLETED
            and not found.errors
        ):
            state["last_success"] = report.ended
            state["last_success_iso"] = iso_time(report.ended)
            state["last_success_text"] = format_time(report.ended)
        if state["last_success"] is not None and state["read"] is not None:
            break
    return state


def _channel_url(base: str, path: str) -> str:
    return f"{base}/{path}"


def usage_snippets(config: SiteConfig, base: str) -> dict[str, Any]:
    """`.condarc`, pixi and mamba/conda snippets for this site, built from ``base``."""
    paths = [c.path for c in config.channels]
    prefixes: dict[str, list[str]] = {}
    for path in paths:
        prefix, _, name = path.rpartition("/")
        prefixes.setdefault(prefix, []).append(name)
    # channel_alias: the prefix holding most channels (conda resolves bare names under it).
    alias_prefix = max(prefixes, key=lambda p: (len(prefixes[p]), p != ""))
    alias_url = f"{base}/{alias_prefix}" if alias_prefix else base
    alias_lines = [
        "# ~/.condarc: channel names resolve under the mirror",
        f"channel_alias: {alias_url}",
        "channels:",
        *[f"  - {name}" for name in prefixes[alias_prefix]],
    ]
    custom: dict[str, str] = {}
    defaults = []
    for path in paths:
        prefix, _, name = path.rpartition("/")
        if prefix == "pkgs":
            defaults.append(_channel_url(base, path))
        elif name not in custom:
            custom[name] = f"{base}/{prefix}" if prefix else base
    custom_lines = ["# ~/.condarc: map single channels to the mirror"]
    if custom:
        custom_lines.append("custom_channels:")
        custom_lines += [f"  {name}: {url}" for name, url in custom.items()]
    if defaults:
        custom_lines.append("default_channels:")
        custom_lines += [f"  - {url}" for url in defaults]
    pixi_lines = ["# pixi: ~/.pixi/config.toml or the project's .pixi/config.toml", "[mirrors]"]
    sources: dict[str, list[str]] = {}  # upstream -> channels fed by it, tried in this order
    for channel, mirror in config.mirrors:
        source = mirror.display_url()
        if mirror.secret_env or not source.startswith(("http://", "https://")):
            continue  # a token or a local path is no name clients know the channel by
        urls = sources.setdefault(source, [])
        if _channel_url(base, channel.path) not in urls:
            urls.append(_channel_url(base, channel.path))
    for source, urls in sources.items():
        pixi_lines.append(f"{json.dumps(source)} = {json.dumps(urls)}")  # TOML-compatible
    if len(pixi_lines) == 2:
        pixi_lines.append("# (no public upstream URL to map; use the channel URLs directly)")
    first = paths[0]
    commands = []
    for path in paths:
        url = _channel_url(base, path)
        commands.append(
            {
                "channel": path,
                "url": url,
                "conda": f"conda install --override-channels -c {url} <package>",
                "mamba": f"mamba install --override-channels -c {url} <package>",
                "pixi": f"pixi add --channel {url} <package>",
            }
        )
    return {
        "condarc_alias": "\n".join(alias_lines),
        "condarc_custom": "\n".join(custom_lines),
        "pixi": "\n".join(pixi_lines),
        "commands": commands,
        "example": _channel_url(base, first),
    }


BASE_PLACEHOLDER = "http://MIRROR-HOST"


def landing_model(
    config: SiteConfig,
    summaries: Mapping[str, ChannelSummary],
    reports: list[RunReport],
    scrub: Scrub = _same,
) -> dict[str, Any]:
    channels = []
    for channel in config.channels:
        summary = summaries.get(channel.path) or ChannelSummary(path=channel.path)
        mirrors = []
        for mirror in channel.mirrors:
            state = mirror_state(reports, mirror.name)
            read: MirrorReport | None = state.pop("read")
            mirrors.append(
                {
                    "name": mirror.name,
                    "source": scrub(mirror.display_url()),
                    "subdirs": list(mirror.subdirs),
                    "mode": mirror.mode,
                    **state,
                    "last_status_words": STATUS_WORDS.get(state["last_status"] or "", "never run"),
                    "last_run_page": run_page_path(state["last_run"])
                    if state["last_run"]
                    else None,
                    "filtered": _mirror_row(read, scrub) if read is not None else None,
                }
            )
        channels.append(
            {
                "path": channel.path,
                "page": channel_index_path(channel.path),
                "summary": summary.to_json(),
                "mirrors": mirrors,
            }
        )
    last = run_summary(reports[0], scrub) if reports else None
    return {
        "channels": channels,
        "last_run": last,
        "base_url": config.base_url,
        "base_placeholder": None if config.base_url else BASE_PLACEHOLDER,
        "snippets": usage_snippets(config, config.base_url or BASE_PLACEHOLDER),
    }
