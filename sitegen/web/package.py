"""The page of a package: about, latest version and versions x subdirs x builds, the two
formats side by side.

Upstream metadata is untrusted. The templates escape every value; on top of that, only
``http(s)`` URLs are let through as links and free text is bounded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sitegen.conda.records import Record
from sitegen.conda.schema import CONDA_SUFFIX
from sitegen.conda.version import MAX_SECONDS, milliseconds
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
from sitegen.web.forms import BuildRow, VersionRow
from sitegen.web.snippets import BASE_PLACEHOLDER, install_commands
from sitegen.wording import human_bytes

SUMMARY_MAX = 300  # characters of an upstream summary shown on a package page
DESCRIPTION_MAX = 5000  # characters of an upstream description (about.json's, local sources')
_ABOUT_KEYS = ("summary", "license", "license_family", "home", "doc_url", "dev_url")
_URL_KEYS = ("home", "doc_url", "dev_url")
_NO_FILE = ("",) * 7  # the values of a build row for a format it has no file of


def about_package(records: list[Record], channeldata_entry: Any) -> dict[str, Any]:
    """Summary, description, license and links of a package: channeldata.json first (where
    a local source's about.json fields are), else the newest record.

    URLs are kept only when http(s); everything else is bounded text. The description is a
    list of paragraphs (none when it only repeats the summary).
    """
    entry = channeldata_entry if isinstance(channeldata_entry, dict) else {}
    # The newest record: of the newest version (each distinct version ordered once), the
    # latest.
    order = {version: version_sort_key(version) for version in {r.version for r in records}}
    top = max(order.values())
    newest_versions = {version for version, key in order.items() if key == top}
    newest = max((r for r in records if r.version in newest_versions), key=lambda r: r.timestamp_ms)

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
    requirements: dict[tuple[tuple[Any, ...], tuple[Any, ...]], tuple[Any, str]] = {}

    def link(spec: str) -> str | None:
        if spec not in links:
            dep = dependency_name(spec)
            target = page_of.get(dep) if dep is not None and dep != own else None
            links[spec] = (
                None if target is None else relative_href(package_page_path(channel, target), page)
            )
        return links[spec]

    def shown(raw: dict[str, Any]) -> tuple[Any, str]:
        depends, constrains = raw.get("depends"), raw.get("constrains")
        # Keyed by the lists as they are (strings, in the site's own repodata): what is shown
        # of them follows from them. An entry that is no string is left out of what is shown.
        key = (
            tuple(depends) if type(depends) is list else (),
            tuple(constrains) if type(constrains) is list else (),
        )
        try:
            found = requirements.get(key)
        except TypeError:  # an entry that cannot be a key (a list, a map): the strings only
            key = (tuple(strings(depends)), tuple(strings(constrains)))
            found = requirements.get(key)
        if found is None:
            depends, constrains = tuple(strings(depends)), tuple(strings(constrains))
            summary = _counted(depends, "dependency", "dependencies")
            if constrains:
                summary += ", " + _counted(constrains, "constraint", "constraints")
            linked = tuple((spec, link(spec)) for spec in depends)
            found = requirements[key] = ((linked, constrains), summary)
        return found

    def file_cells(record: Record | None) -> tuple[Any, ...]:
        """A format's values of a build row: file name, link, size, size as shown, sha256,
        md5, whether fetched on request; all "" when the build has no file of that format."""
        if record is None:
            return _NO_FILE
        raw = record.raw
        folder_href = folder_hrefs.get(record.subdir)
        if folder_href is None:
            folder_href = folder_hrefs[record.subdir] = directory_href(
                subdir_path(channel, record.subdir), page
            )
        size = raw["size"]
        return (
            record.fn,
            url_quote(folder_href + record.fn),  # from the package's page
            str(size),
            human_bytes(size),
            raw.get("sha256") or "",
            raw.get("md5") or "",
            # Not stored yet in a channel a passive mirror feeds (in others, every file is).
            "" if stored_set is None or f"{record.subdir}/{record.fn}" in stored_set else "yes",
        )

    # (version, subdir, build) -> [newest time, its record of each format, its first record]
    builds: dict[tuple[str, str, str], list[Any]] = {}
    found = builds.get
    for record in records:
        raw = record.raw
        stamp = raw.get("timestamp")
        ms = stamp if type(stamp) is int and stamp > MAX_SECONDS else milliseconds(stamp)
        key = (raw["version"], record.subdir, raw["build"])
        slot = found(key)
        if slot is None:
            slot = builds[key] = [ms, None, None, raw]
        elif ms > slot[0]:
            slot[0] = ms
        slot[1 if record.fn.endswith(CONDA_SUFFIX) else 2] = record
    versions: dict[str, list[tuple[str, int, str, tuple[str, str, str]]]] = {}
    for key, slot in builds.items():
        # Subdir first, then the highest build number, then the build string.
        number = slot[3].get("build_number", 0)
        versions.setdefault(key[0], []).append((key[1], -int(number or 0), key[2], key))
    ordered = sorted(versions, key=version_sort_key, reverse=True)
    make = tuple.__new__  # the named tuples without their keyword-argument constructors
    version_rows = []
    for version in ordered:
        rows = []
        for *_, key in sorted(versions[version]):
            ms, conda, bz2, first = builds[key]
            shown_requirements, summary = shown(first)
            noarch = first.get("noarch")
            rows.append(
                make(
                    BuildRow,
                    (
                        key[2],
                        clip(noarch, 40) if noarch else "",
                        key[1],
                        format_date_ms(ms),
                        summary,
                        *file_cells(conda),
                        *file_cells(bz2),
                        shown_requirements,
                    ),
                )
            )
        date = max([row.date for row in rows])
        version_rows.append(make(VersionRow, (f"v{len(version_rows) + 1}", version, date, rows)))
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
