"""The page of a package: about, latest version and versions x subdirs x builds, the two
formats side by side.

Upstream metadata is untrusted. The templates escape every value; on top of that, only
``http(s)`` URLs are let through as links and free text is bounded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sitegen.conda.records import Record
from sitegen.conda.schema import PACKAGE_SUFFIXES
from sitegen.conda.version import timestamp_ms
from sitegen.layout import package_page_path, subdir_path
from sitegen.web.format import (
    clip,
    dependency_name,
    directory_href,
    format_date_ms,
    paragraphs,
    relative_href,
    safe_link,
    strings,
    url_quote,
    version_sort_key,
)
from sitegen.web.snippets import BASE_PLACEHOLDER, install_commands

SUMMARY_MAX = 300  # characters of an upstream summary shown on a package page
DESCRIPTION_MAX = 5000  # characters of an upstream description (about.json's, local sources')
_ABOUT_KEYS = ("summary", "license", "license_family", "home", "doc_url", "dev_url")
_URL_KEYS = ("home", "doc_url", "dev_url")


def about_package(records: list[Record], channeldata_entry: Any) -> dict[str, Any]:
    """Summary, description, license and links of a package: channeldata.json first (where
    a local source's about.json fields are), else the newest record.

    URLs are kept only when http(s); everything else is bounded text. The description is a
    list of paragraphs (none when it only repeats the summary).
    """
    entry = channeldata_entry if isinstance(channeldata_entry, dict) else {}
    newest = max(records, key=lambda r: (version_sort_key(r.version), r.timestamp_ms))

    def field(key: str) -> Any:
        value = entry.get(key)
        return value if isinstance(value, str) and value.strip() else newest.raw.get(key)

    about: dict[str, Any] = {}
    for key in _ABOUT_KEYS:
        if key in _URL_KEYS:
            about[key] = safe_link(field(key))
        else:
            about[key] = clip(field(key), SUMMARY_MAX) or None
    description = paragraphs(field("description"), DESCRIPTION_MAX)
    about["description"] = [] if description == [about["summary"]] else description
    return about


def page_names(names: Iterable[str]) -> dict[str, str]:
    """The lower-case form of each package name -> the name its page is written under.

    Dependency specs name packages in any case (conda compares names in lower case), so their
    links look the name up here. Should two names of a channel differ only in case, the
    lower-case one wins, else the first in code point order, whatever order they come in.
    """
    pages: dict[str, str] = {}
    for name in names:
        low = name.lower()
        have = pages.get(low)
        if have is None or (have != low and (name == low or name < have)):
            pages[low] = name
    return pages


def _file_entry(record: Record, folder_href: str, stored: bool | None) -> dict[str, Any]:
    raw = record.raw
    return {
        "fn": record.fn,
        "format": ".conda" if record.fn.endswith(".conda") else ".tar.bz2",
        "href": url_quote(folder_href + record.fn),  # from the package's page
        "size": raw["size"],
        "sha256": raw.get("sha256") or "",
        "md5": raw.get("md5") or "",
        "stored": stored,  # None: every file is stored (an active channel)
    }


def _counted(items: tuple[str, ...], one: str, many: str) -> str:
    return f"{len(items)} {one if len(items) == 1 else many}"


def package_model(
    channel: str,
    name: str,
    records: list[Record],
    channeldata_entry: Any = None,
    known_names: Mapping[str, str] | None = None,
    base_url: str | None = None,
    stored: list[str] | None = None,
    downloads: Any = None,
) -> dict[str, Any]:
    """A package page: about, latest version and versions x subdirs x builds, formats side by side.

    ``known_names`` (:func:`page_names`) maps the channel's package names, in lower case, to
    the names their pages are written under: dependencies on them link to those pages.
    Its install lines are the landing page's, under ``base_url`` (else a placeholder the
    page's script replaces with the address it is browsed at). ``stored`` (``subdir/fn``) are
    the files stored in a channel a passive mirror feeds (None elsewhere): the others are
    fetched from upstream when first requested. ``downloads`` (a
    :class:`~sitegen.web.downloads.PackageDownloads`) while the site has download statistics.
    """
    builds: dict[tuple[str, str, str], dict[str, Any]] = {}
    stored_set = None if stored is None else set(stored)
    # Links are made here, relative to the page, once per subdir folder and per dependency
    # spec: not per link in the template (a page has a few per build, of 800,000 builds).
    page = package_page_path(channel, name)
    folder_hrefs: dict[str, str] = {}
    own = name.lower()
    page_of = known_names or {}
    links: dict[str, str | None] = {}  # spec -> the page it links to (the builds share specs)
    # Of each distinct dependencies and constraints (builds repeat them): each dependency with
    # its link (or None), and the constraints, as one hashable value, which the template's
    # ``requirements`` filter renders once; and what the build's details hold, as one value.
    requirements: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[Any, str]] = {}

    def link(spec: str) -> str | None:
        if spec not in links:
            dep = dependency_name(spec)
            target = page_of.get(dep) if dep is not None and dep != own else None
            links[spec] = (
                None if target is None else relative_href(package_page_path(channel, target), page)
            )
        return links[spec]

    for record in records:
        raw = record.raw
        key = (raw["version"], record.subdir, raw["build"])
        ms = timestamp_ms(raw)
        row = builds.get(key)
        if row is None:
            lists = (tuple(strings(raw.get("depends"))), tuple(strings(raw.get("constrains"))))
            shown = requirements.get(lists)
            if shown is None:
                depends, constrains = lists
                summary = _counted(depends, "dependency", "dependencies")
                if constrains:
                    summary += ", " + _counted(constrains, "constraint", "constraints")
                linked = tuple((spec, link(spec)) for spec in depends)
                shown = requirements[lists] = ((linked, constrains), summary)
            row = builds[key] = {
                "version": key[0],
                "subdir": key[1],
                "build": key[2],
                "build_number": raw.get("build_number", 0),
                "timestamp_ms": ms,
                "noarch": clip(raw.get("noarch"), 40),
                "requirements": shown[0],
                "detail_summary": shown[1],
                "files": [None] * len(PACKAGE_SUFFIXES),  # one per format, in their order
            }
        elif ms > row["timestamp_ms"]:
            row["timestamp_ms"] = ms
        stored_here = None if stored_set is None else f"{key[1]}/{record.fn}" in stored_set
        folder_href = folder_hrefs.get(record.subdir)
        if folder_href is None:
            folder_href = folder_hrefs[record.subdir] = directory_href(
                subdir_path(channel, record.subdir), page
            )
        entry = _file_entry(record, folder_href, stored_here)
        row["files"][PACKAGE_SUFFIXES.index(entry["format"])] = entry
    versions: dict[str, list[dict[str, Any]]] = {}
    for row in builds.values():
        row["date"] = format_date_ms(row["timestamp_ms"])
        versions.setdefault(row["version"], []).append(row)
    ordered = sorted(versions, key=version_sort_key, reverse=True)
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
        "stored": None if stored_set is None else len(stored_set),
        "versions": version_rows,
        "install": "\n".join(
            install_commands(f"{base_url or BASE_PLACEHOLDER}/{channel}", name).values()
        ),
        "base_placeholder": None if base_url else BASE_PLACEHOLDER,
        "downloads": downloads,
    }
