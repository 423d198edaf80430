"""What the channel page, the search index and the key of a package page need of a package:
its :class:`PackageFacts`, kept per package in the render manifest between runs."""

from __future__ import annotations

from typing import Any, NamedTuple

import msgspec

from sitegen.conda.records import Record
from sitegen.web.format import clip, dependency_name, newest_version, strings

SEARCH_SUMMARY_MAX = 80  # characters of an upstream summary kept in the search index
SEARCH_LICENSE_MAX = 40  # characters of a license kept in the search index


class _Channeldata(msgspec.Struct):
    # Each entry is decoded on its own, so a malformed one costs only itself.
    packages: dict[str, msgspec.Raw] = {}


_CHANNELDATA = msgspec.json.Decoder(_Channeldata)


def page_entries(data: bytes) -> dict[str, Any]:
    """The ``packages`` of a channeldata.json as the pages use them; raises
    :class:`msgspec.DecodeError` when it is not one. An entry keeps all but its run_exports,
    which no page shows: at a large channel's scale they outweigh the rest of the file, and
    they would make a page's key change with what the page does not hold."""
    entries: dict[str, Any] = {}
    for name, raw in _CHANNELDATA.decode(data).packages.items():
        entry = msgspec.json.decode(raw)
        if isinstance(entry, dict):
            entry.pop("run_exports", None)
        entries[name] = entry
    return entries


class PackageFacts(NamedTuple):
    """Facts of a package's records, as plain JSON (an array in the manifest)."""

    version: str  # the newest
    subdirs: list[str]  # sorted
    summary: str  # of the first record that has one, clipped
    dependencies: list[str]  # the names its dependencies refer to, sorted


def package_facts(records: list[Record]) -> PackageFacts:
    summary = next((r.raw.get("summary") for r in records if r.raw.get("summary")), "")
    # The builds of a package repeat their specs: each is looked at once.
    specs = {spec for r in records for spec in strings(r.raw.get("depends"))}
    dependencies = {dep for spec in specs if (dep := dependency_name(spec)) is not None}
    return PackageFacts(
        version=newest_version({r.version for r in records}),
        subdirs=sorted({r.subdir for r in records}),
        summary=clip(summary, SEARCH_SUMMARY_MAX),
        dependencies=sorted(dependencies),
    )


def package_row(name: str, facts: PackageFacts, channeldata_entry: Any) -> dict[str, Any]:
    """A row of a channel's package list (and of its search index); the license comes from
    the channel's channeldata.json, which sitegen writes for every channel."""
    entry = channeldata_entry if isinstance(channeldata_entry, dict) else {}
    summary = entry.get("summary")
    return {
        "name": name,
        "version": facts.version,
        "subdirs": list(facts.subdirs),
        "summary": clip(summary, SEARCH_SUMMARY_MAX) if isinstance(summary, str) else facts.summary,
        "license": clip(entry.get("license"), SEARCH_LICENSE_MAX) or "",
    }
