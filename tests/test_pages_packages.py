"""Page models of packages: channel summaries, package pages, package lists, search indexes
and subdir listings, from records (no disk, no network)."""

from __future__ import annotations

import msgspec
import pytest

from sitegen.conda.records import Record
from sitegen.layout import package_page_path
from sitegen.web.channel import ChannelSummary, summarize_channel
from sitegen.web.environment import TEMPLATES_DIR, make_environment
from sitegen.web.facts import SEARCH_SUMMARY_MAX, PackageFacts, package_facts, package_row
from sitegen.web.listing import listing_rows, subdir_listing_head
from sitegen.web.manifest import KnownPackage, package_key
from sitegen.web.package import about_package, package_model, page_names
from sitegen.web.published import PublishedFile, fingerprint, group_by_name
from sitegen.web.search import search_index
from sitegen.web.writer import render_page

pytestmark = pytest.mark.unit


SHA = "a" * 64


def rec(name: str, version: str, build: str, subdir: str = "linux-64", fmt: str = ".conda", **raw):
    fn = f"{name}-{version}-{build}{fmt}"
    body = {
        "name": name,
        "version": version,
        "build": build,
        "build_number": raw.pop("build_number", 0),
        "subdir": subdir,
        "size": raw.pop("size", 1000),
        "sha256": raw.pop("sha256", SHA),
        "depends": raw.pop("depends", []),
        "timestamp": raw.pop("timestamp", 1_700_000_000_000),
        **raw,
    }
    return Record(fn=fn, subdir=subdir, raw=body)


def by_fn(*records: Record) -> dict[str, Record]:
    return {r.fn: r for r in records}


def published(r: Record) -> PublishedFile:
    raw = msgspec.Raw(msgspec.json.encode(r.raw))
    return PublishedFile(r.fn, r.subdir, r.name, r.size, r.timestamp_ms, r.sha256, raw)


def package_key_data(records: list[Record], channel_names: set[str]) -> str:
    """The input key of the page of the package of ``records`` in a channel of
    ``channel_names``, as a render computes it."""
    files = [published(r) for r in records]
    known = KnownPackage(fingerprint(files), package_facts(records))
    return package_key("", "c/x", records[0].name, known, None, page_names(channel_names))


def package_list(by_name: dict[str, list[Record]], channeldata: dict) -> list[dict]:
    """Rows of a channel's package list, sorted by name, as a render makes them."""
    return [
        package_row(name, package_facts(by_name[name]), channeldata.get(name))
        for name in sorted(by_name)
    ]


def subdir_listing(channel: str, subdir: str, records, metadata) -> dict:
    """A subdir's listing with all its rows (a render makes them in chunks)."""
    model = subdir_listing_head(channel, subdir, records, metadata)
    model["packages"] = listing_rows(model.pop("records"))
    return model


def test_group_and_summarize_channel() -> None:
    linux = by_fn(
        rec("numpy", "1.26.4", "py311_0", size=10),
        rec("numpy", "1.26.4", "py311_0", fmt=".tar.bz2", size=20),
        rec("zlib", "1.3.1", "h_0", size=5, timestamp=1_800_000_000_000),
    )
    noarch = by_fn(rec("pip", "24.0", "pyh_0", subdir="noarch", size=7))
    grouped = group_by_name({"linux-64": linux, "noarch": noarch})
    assert {k: len(v) for k, v in grouped.items()} == {"numpy": 2, "zlib": 1, "pip": 1}
    summary = summarize_channel("c/x", {"linux-64": linux, "noarch": noarch})
    assert (summary.packages, summary.files, summary.size) == (3, 4, 42)
    row = summary.subdirs[0]
    assert (row.subdir, row.files, row.packages, row.conda, row.tar_bz2) == ("linux-64", 3, 2, 2, 1)
    assert row.newest_ms == 1_800_000_000_000
    again = ChannelSummary.from_json(summary.to_json())
    assert again == summary


def test_package_model_orders_versions_and_pairs_formats() -> None:
    records = [
        rec("pkg", "1.0", "h_0"),
        rec("pkg", "1.0", "h_0", fmt=".tar.bz2", sha256="b" * 64),
        rec("pkg", "1.0a1", "h_0"),
        rec("pkg", "1.0.post1", "h_0", fmt=".tar.bz2"),
        rec("pkg", "1.0", "h_0", subdir="osx-arm64"),
        rec("pkg", "1.0", "h_1", build_number=1, depends=["zlib >=1", "python >=3.8", "pkg-data"]),
    ]
    model = package_model("c/x", "pkg", records, known_names=page_names({"zlib", "pkg"}))
    assert model["latest"] == "1.0.post1"
    assert [v.version for v in model["versions"]] == ["1.0.post1", "1.0", "1.0a1"]
    one = model["versions"][1].builds
    # subdir first, then the highest build number
    assert [(b.subdir, b.build) for b in one] == [
        ("linux-64", "h_1"),
        ("linux-64", "h_0"),
        ("osx-arm64", "h_0"),
    ]
    both = one[1]
    assert both.conda_href == "../linux-64/pkg-1.0-h_0.conda"  # from the page, c/x/packages/
    assert both.bz2_fn == "pkg-1.0-h_0.tar.bz2" and both.bz2_sha256 == "b" * 64
    assert one[2].bz2_fn == "" and one[2].conda_fn  # no .tar.bz2 twin
    only_bz2 = model["versions"][0].builds[0]
    assert only_bz2.conda_fn == "" and only_bz2.bz2_fn  # .tar.bz2 only
    depends, constrains = one[0].requirements
    assert depends == (("zlib >=1", "zlib.html"), ("python >=3.8", None), ("pkg-data", None))
    assert constrains == ()
    assert model["files"] == 6 and model["subdirs"] == ["linux-64", "osx-arm64"]


def test_about_package_prefers_channeldata_and_drops_unsafe_links() -> None:
    records = [
        rec("pkg", "1.0", "h_0", license="MIT", home="https://old.example", summary="old"),
        rec("pkg", "2.0", "h_0", license="BSD", home="javascript:alert(1)", summary=" x\ny "),
    ]
    about = about_package(records, None)
    assert about["license"] == "BSD"
    assert about["home"] is None  # the newest record's home is not an http(s) URL
    assert about["summary"] == "x y"
    entry = {"summary": "From channeldata", "home": "https://pkg.example", "dev_url": "file:///x"}
    about = about_package(records, entry)
    assert about["summary"] == "From channeldata"
    assert about["home"] == "https://pkg.example"
    assert about["dev_url"] is None
    assert about_package(records, "not a dict")["license"] == "BSD"


def test_package_key_changes_only_with_the_package() -> None:
    a = [rec("a", "1.0", "h_0", depends=["zlib"])]
    key = package_key_data(a, {"zlib"})
    assert package_key_data(list(reversed(a)), {"zlib", "other"}) == key
    assert package_key_data(a, set()) != key  # the dependency link disappears
    patched = [rec("a", "1.0", "h_0", depends=["zlib >=1.3"])]
    assert package_key_data(patched, {"zlib"}) != key
    # The page linked to is published under another name: the link changes.
    assert package_key_data(a, {"Zlib"}) != key


def test_dependencies_link_to_the_page_of_the_name_as_published() -> None:
    """Specs name packages in any case; pages are written under the name as published."""
    assert page_names(["Foo", "bar", "BAR", "Bar", "ZZ"]) == {
        "foo": "Foo",
        "bar": "bar",
        "zz": "ZZ",
    }
    assert page_names(["Bar", "BAR"]) == page_names(["BAR", "Bar"]) == {"bar": "BAR"}
    records = [rec("top", "1.0", "h_0", depends=["foo >=1", "Foo", "TOP", "libX11", "missing"])]
    names = page_names(["Foo", "top", "libx11"])
    model = package_model("c/x", "top", records, known_names=names)
    assert model["versions"][0].builds[0].requirements[0] == (
        ("foo >=1", "Foo.html"),
        ("Foo", "Foo.html"),
        ("TOP", None),
        ("libX11", "libx11.html"),
        ("missing", None),
    )


def test_upstream_text_of_every_build_is_escaped_on_the_package_page() -> None:
    """The versions table prints part of each build (dates, links, sizes, requirements) with
    no escape of its own: upstream text must reach the page escaped all the same, in every
    field of a build, its file names and links included."""
    evil = '<b>"x"&'
    records = [
        rec(
            "pkg",
            "1.0",
            f"h{evil}_0",
            subdir=f"linux{evil}",
            depends=[f"dep {evil}", f"pkg {evil}"],
            constrains=[f"other {evil}"],
            noarch=evil,
            sha256=evil,
            md5=evil,
        )
    ]
    model = package_model("c/x", "pkg", records, known_names=page_names({"dep", "pkg"}))
    env = make_environment(TEMPLATES_DIR)
    page = render_page(env, "t", "package.html", package_page_path("c/x", "pkg"), model=model)
    html = page.decode()
    assert "<b>" not in html and '"x"' not in html
    shown = "&lt;b&gt;&#34;x&#34;&amp;"
    for text in (f"h{shown}_0", f"linux{shown}", f"dep {shown}", f"other {shown}"):
        assert text in html, text
    assert html.count(f"noarch: {shown}") == 1
    assert html.count(f'<code class="hash">{shown}</code>') == 2  # sha256 and md5
    quoted = "%3Cb%3E%22x%22%26"
    link = f"../linux{quoted}/pkg-1.0-h{quoted}_0.conda"
    assert html.count(f'<a href="{link}"') == 2  # its cell, and its checksums
    assert '<a href="dep.html"><code>' in html


def test_package_list_and_search_index() -> None:
    grouped = group_by_name(
        {
            "linux-64": by_fn(
                rec("b", "1.0", "h_0"), rec("b", "1.10", "h_0"), rec("a", "2", "h_0", summary="S")
            )
        }
    )
    rows = package_list(grouped, {"b": {"summary": "Bee " * 40}})
    assert [(r["name"], r["version"]) for r in rows] == [("a", "2"), ("b", "1.10")]
    assert rows[0]["summary"] == "S"
    assert len(rows[1]["summary"]) <= SEARCH_SUMMARY_MAX
    index = search_index("c/x", rows)
    assert index["packages"][0] == ["a", "2", "S"]


def test_package_facts_make_the_rows_of_the_package_list() -> None:
    records = [
        rec("b", "1.0", "h_0", depends=["zlib >=1", "conda-forge::Python 3.*"]),
        rec("b", "1.10", "h_0", subdir="noarch", summary="Bee", depends=["zlib"]),
        rec("b", "1.2", "h_0", depends=[">=1", 42]),
    ]
    facts = list(package_facts(records))
    assert facts == ["1.10", ["linux-64", "noarch"], "Bee", ["python", "zlib"]]
    for entry in (None, {"summary": "From channeldata"}, {"summary": 3}):
        (row,) = package_list({"b": records}, {"b": entry} if entry else {})
        assert package_row("b", PackageFacts(*facts), entry) == row
    assert package_row("b", PackageFacts(*facts), {"summary": "x " * 100})["summary"].endswith("…")


def test_subdir_listing_of_published_files_is_the_listing_of_records() -> None:
    records = by_fn(
        rec("b", "1", "h_0", timestamp=1_700_000_000),  # seconds
        rec("a", "1", "h_0", fmt=".tar.bz2", size=5),
        rec("a", "1", "h_0", sha256=None, md5="b" * 32),
    )
    published = [
        PublishedFile(r.fn, r.subdir, r.name, r.size, r.timestamp_ms, r.sha256, None)
        for r in reversed(records.values())
    ]
    metadata = {"repodata.json": (20, 1_700_000_000.0)}
    listing = subdir_listing("c/x", "linux-64", records, metadata)
    assert subdir_listing("c/x", "linux-64", published, metadata) == listing
    assert [row.fn for row in listing["packages"]] == sorted(records)
    assert listing["packages"][0].sha256 == ""  # no sha256
    assert listing["files"] == 3 and listing["size"] == 2005
    head = subdir_listing_head("c/x", "linux-64", published, metadata)
    assert listing_rows(head.pop("records")) == listing.pop("packages")
    assert head == listing
    grouped = group_by_name({"linux-64": published})
    assert {k: len(v) for k, v in grouped.items()} == {"b": 1, "a": 2}
    assert summarize_channel("c/x", {"linux-64": published}) == summarize_channel(
        "c/x", {"linux-64": records}
    )


def test_subdir_listing_puts_metadata_first() -> None:
    records = by_fn(rec("b", "1", "h_0"), rec("a", "1", "h_0"))
    listing = subdir_listing(
        "c/x",
        "linux-64",
        records,
        {"current_repodata.json": (10, 0.0), "repodata.json": (20, 1_700_000_000.0)},
    )
    assert [m["fn"] for m in listing["metadata"]] == ["repodata.json", "current_repodata.json"]
    assert [row.fn for row in listing["packages"]] == ["a-1-h_0.conda", "b-1-h_0.conda"]
    assert listing["packages"][0].sha256 == SHA


def test_requirements_show_only_the_strings_of_the_lists() -> None:
    """What is no string in a record's depends or constrains (which sitegen never publishes,
    but a site's repodata may hold by hand) is left out of its page, hashable or not."""
    records = [
        rec("a", "1.0", "h_0", depends=["zlib", {"x": 1}, 42], constrains=[["y"], "b <2"]),
        rec("a", "1.0", "h_1", depends=["zlib", 42], constrains="b <2"),
        rec("a", "1.0", "h_2", depends=["zlib"], constrains=["b <2"]),
    ]
    model = package_model("c/x", "a", records, known_names=page_names({"zlib"}))
    shown = {b.build: (b.requirements, b.detail_summary) for b in model["versions"][0].builds}
    linked = (("zlib", "zlib.html"),)
    assert shown == {
        "h_0": ((linked, ("b <2",)), "1 dependency, 1 constraint"),
        "h_1": ((linked, ()), "1 dependency"),
        "h_2": ((linked, ("b <2",)), "1 dependency, 1 constraint"),
    }
