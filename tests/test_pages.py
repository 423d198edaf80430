"""Page models: pure functions over records and run reports (no disk, no network)."""

from __future__ import annotations

import re
import time
import tomllib

import msgspec
import pytest
import yaml

from sitegen.conda.records import Record
from sitegen.config import ConfigError, parse_config
from sitegen.layout import package_page_path, run_page_path
from sitegen.sync.report import (
    COMPLETED,
    FAILED,
    INTERRUPTED,
    RUNNING,
    AddedDependency,
    ChannelSubdirReport,
    MirrorReport,
    MirrorSubdirReport,
    RunReport,
    UnsatisfiedDependency,
)
from sitegen.web.channel import ChannelSummary, summarize_channel
from sitegen.web.environment import TEMPLATES_DIR, make_environment
from sitegen.web.facts import SEARCH_SUMMARY_MAX, PackageFacts, package_facts, package_row
from sitegen.web.format import (
    clip,
    dependency_name,
    format_date_ms,
    format_duration,
    format_time,
    iso_time,
    relative_href,
    root_prefix,
    safe_link,
    split_filename,
)
from sitegen.web.history import feed_entries, feed_groups, history_json, history_pages
from sitegen.web.landing import BASE_PLACEHOLDER, landing_model, mirror_state
from sitegen.web.listing import listing_rows, subdir_listing_head
from sitegen.web.manifest import KnownPackage, package_key
from sitegen.web.package import about_package, package_model, page_names
from sitegen.web.published import PublishedFile, fingerprint, group_by_name
from sitegen.web.run import run_detail, run_summary
from sitegen.web.search import search_index
from sitegen.web.snippets import usage_snippets
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


@pytest.mark.parametrize(
    "url",
    [
        "https://numpy.org",
        "http://example.org/a?b=1&c=2",
        "  https://example.org/with-space-around  ",
    ],
)
def test_safe_link_keeps_http_urls(url: str) -> None:
    assert safe_link(url) == url.strip()


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "java\nscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "//evil.example/x",
        "http://",
        'https://example.org/"onmouseover="alert(1)',
        "https://example.org/<script>",
        "ftp://example.org/file",
        "vbscript:msgbox",
        None,
        42,
        ["https://example.org"],
    ],
)
def test_safe_link_rejects_everything_else(url: object) -> None:
    assert safe_link(url) is None


def test_relative_href_and_root_prefix() -> None:
    page = "cloud/conda-forge/packages/numpy.html"
    assert relative_href("index.html", page) == "../../../index.html"
    assert relative_href("cloud/conda-forge/linux-64/a-1-0.conda", page) == (
        "../linux-64/a-1-0.conda"
    )
    assert relative_href("cloud/conda-forge/packages/six.html", page) == "six.html"
    assert relative_href("history/x.html#deps-a b", "index.html") == "history/x.html#deps-a%20b"
    assert relative_href("c/x/linux-64/a-1!2-0.conda", "c/x/index.html") == (
        "linux-64/a-1%212-0.conda"
    )
    assert root_prefix("index.html") == "."
    assert root_prefix(page) == "../../.."


def test_formatting() -> None:
    assert format_time(0) == ""
    assert format_time(1_700_000_000) == "2023-11-14 22:13 UTC"
    assert iso_time(1_700_000_000) == "2023-11-14T22:13:20Z"
    assert format_date_ms(1_700_000_000_000) == "2023-11-14"
    assert format_duration(None) == ""
    assert format_duration(5.4) == "5 s"
    assert format_duration(65) == "1 min 5 s"
    assert format_duration(3 * 3600 + 120) == "3 h 2 min"
    assert clip("  a\n b  ", 10) == "a b"
    assert clip("x" * 20, 10) == "x" * 9 + "…"
    assert clip(None, 10) == ""


def test_split_filename_and_dependency_name() -> None:
    assert split_filename("numpy-2.1.0-py312h_0.conda") == ("numpy", "2.1.0", "py312h_0")
    assert split_filename("ca-certificates-2024.2.2-hbcca054_0.tar.bz2") == (
        "ca-certificates",
        "2024.2.2",
        "hbcca054_0",
    )
    assert dependency_name("python >=3.8,<3.9.0a0") == "python"
    assert dependency_name("conda-forge::NumPy 1.*") == "numpy"
    assert dependency_name("__glibc >=2.17") == "__glibc"
    assert dependency_name(">=1") is None
    assert dependency_name("g++ >=12") == "g++"
    assert dependency_name("libstdcxx-ng>=12") == "libstdcxx-ng"
    assert dependency_name("foo!=1.0") == "foo"


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
    assert [v["version"] for v in model["versions"]] == ["1.0.post1", "1.0", "1.0a1"]
    one = model["versions"][1]["builds"]
    # subdir first, then the highest build number
    assert [(b["subdir"], b["build"]) for b in one] == [
        ("linux-64", "h_1"),
        ("linux-64", "h_0"),
        ("osx-arm64", "h_0"),
    ]
    conda, bz2 = one[1]["files"]
    assert conda["href"] == "../linux-64/pkg-1.0-h_0.conda"  # from the page, c/x/packages/
    assert bz2["format"] == ".tar.bz2" and bz2["sha256"] == "b" * 64
    assert one[2]["files"][1] is None  # no .tar.bz2 twin
    assert model["versions"][0]["builds"][0]["files"][0] is None  # .tar.bz2 only
    depends, constrains = one[0]["requirements"]
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
    assert model["versions"][0]["builds"][0]["requirements"][0] == (
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
    assert [row[0] for row in listing["packages"]] == sorted(records)
    assert listing["packages"][0][3] == ""  # no sha256
    assert listing["files"] == 3 and listing["size"] == 2005
    head = subdir_listing_head("c/x", "linux-64", published, metadata)
    assert listing_rows(head.pop("records")) == listing.pop("packages")
    assert head == listing
    grouped = group_by_name({"linux-64": published})
    assert {k: len(v) for k, v in grouped.items()} == {"b": 1, "a": 2}
    assert summarize_channel("c/x", {"linux-64": published}) == summarize_channel(
        "c/x", {"linux-64": records}
    )


def test_format_date_ms_agrees_with_gmtime() -> None:
    for ms in (1, 999, 86_399_999, 86_400_000, 1_700_000_000_000, 1_700_006_399_999, 2**45 + 7):
        assert format_date_ms(ms) == time.strftime("%Y-%m-%d", time.gmtime(ms / 1000))
    assert format_date_ms(1_700_000_000_000.5) == "2023-11-14"
    assert format_date_ms(0) == format_date_ms(None) == ""


def test_subdir_listing_puts_metadata_first() -> None:
    records = by_fn(rec("b", "1", "h_0"), rec("a", "1", "h_0"))
    listing = subdir_listing(
        "c/x",
        "linux-64",
        records,
        {"current_repodata.json": (10, 0.0), "repodata.json": (20, 1_700_000_000.0)},
    )
    assert [m["fn"] for m in listing["metadata"]] == ["repodata.json", "current_repodata.json"]
    assert [row[0] for row in listing["packages"]] == ["a-1-h_0.conda", "b-1-h_0.conda"]
    assert listing["packages"][0][3] == SHA


# --------------------------------------------------------------------------- history


def run(
    run_id: str,
    started: float,
    status: str,
    *,
    mirror_status: str = COMPLETED,
    added: tuple[str, ...] = (),
    errors: tuple[str, ...] = (),
) -> RunReport:
    mirror = MirrorReport(
        name="m",
        channel="c/x",
        source="https://up.example/ch",
        status=mirror_status,
        subdirs={
            "linux-64": MirrorSubdirReport(
                upstream="fetched",
                records=10,
                kept=7,
                excluded={"license excluded": 2},
                rejected={"invalid size": 1},
            )
        },
        errors=list(errors),
    )
    channel = ChannelSubdirReport(
        channel="c/x",
        subdir="linux-64",
        status="published",
        packages=7,
        added=list(added),
        downloaded_files=len(added),
        downloaded_bytes=100 * len(added),
    )
    ended = None if status in (RUNNING, INTERRUPTED) else started + 65
    return RunReport(
        id=run_id,
        started=started,
        ended=ended,
        status=status,
        mirrors=[mirror],
        channels=[channel],
    )


def test_run_summary_counts_and_reasons() -> None:
    report = run("r1", 1_700_000_000, FAILED, added=("a-1-h_0.conda",), errors=("boom",))
    summary = run_summary(report)
    assert summary["duration_text"] == "1 min 5 s"
    assert summary["totals"]["added"] == 1 and summary["totals"]["downloaded_bytes"] == 100
    (mirror,) = summary["mirrors"]
    assert mirror["excluded"] == {"license excluded": 2, "invalid size": 1}
    assert (mirror["records"], mirror["kept"], mirror["excluded_total"]) == (10, 7, 3)
    assert summary["all_errors"] == ["m: boom"]
    assert summary["page"] == "history/r1.html"


def test_scrub_is_applied_to_error_text() -> None:
    report = run("r1", 1, FAILED, errors=("GET https://h/t/SECRET/x failed",))
    summary = run_summary(report, lambda s: s.replace("SECRET", "***"))
    assert summary["mirrors"][0]["errors"] == ["GET https://h/t/***/x failed"]


def test_mirror_state_last_status_and_last_success() -> None:
    reports = [
        run("r4", 400, RUNNING),
        run("r3", 300, FAILED, mirror_status=FAILED, errors=("unreachable",)),
        run("r2", 200, INTERRUPTED),
        run("r1", 100, COMPLETED),
    ]
    state = mirror_state(reports, "m")
    assert state["last_status"] == RUNNING and state["last_run"] == "r4"
    assert state["last_success"] == 165  # r1 ended
    assert state["read"] is reports[1].mirrors[0]
    state = mirror_state(reports[1:], "m")
    assert state["last_status"] == FAILED
    assert mirror_state(reports, "unknown")["last_status"] is None
    # A run that could not read upstream at all counts nothing: the counts shown are those of
    # the newest run that could, beside the failed status of the last.
    unreadable = run("r5", 500, FAILED, mirror_status=FAILED, errors=("HTTP 503",))
    unreadable.mirrors[0].subdirs["linux-64"] = MirrorSubdirReport(upstream="error")
    state = mirror_state([unreadable, *reports[1:]], "m")
    assert state["last_status"] == FAILED and state["last_run"] == "r5"
    assert state["read"] is reports[1].mirrors[0] and state["read_run"] == "r3"


def test_history_pages_and_json() -> None:
    reports = [run(f"r{i}", 1000 - i, COMPLETED) for i in range(5)]
    chunks = history_pages([run_summary(r) for r in reports], size=2)
    assert [c["path"] for c in chunks] == [
        "history/index.html",
        "history/page-2.html",
        "history/page-3.html",
    ]
    assert [len(c["runs"]) for c in chunks] == [2, 2, 1]
    assert history_pages([])[0]["runs"] == []
    document = history_json(reports)
    assert [r["id"] for r in document["runs"]] == [f"r{i}" for i in range(5)]
    assert document["runs"][0]["record"] == "history/runs/r0.json"


def test_feed_entries_group_files_by_version() -> None:
    reports = [
        run("r3", 300, RUNNING, added=("x-1-h_0.conda",)),  # not finished: not in the feed
        run("r2", 200, COMPLETED, added=("a-1-h_0.conda", "a-1-h_0.tar.bz2", "b-2-h_0.conda")),
        run("r1", 100, COMPLETED, added=("a-0.9-h_0.conda",)),
    ]
    entries = feed_entries(reports, {"c/x": {"a"}})
    assert [e["title"] for e in entries] == ["a 1 in c/x", "b 2 in c/x", "a 0.9 in c/x"]
    assert entries[0]["files"] == ["linux-64/a-1-h_0.conda", "linux-64/a-1-h_0.tar.bz2"]
    assert entries[0]["page"] == "c/x/packages/a.html"
    assert entries[1]["page"] == "history/r2.html"  # b has no page (any more)
    assert len({e["id"] for e in entries}) == 3
    assert len(feed_entries(reports, {}, limit=2)) == 2
    # Groups computed before (kept by the render between runs) give the same entries.
    groups = {r.id: feed_groups(r) for r in reports}
    assert groups["r2"][0] == [
        "c/x",
        "a",
        "1",
        ["linux-64/a-1-h_0.conda", "linux-64/a-1-h_0.tar.bz2"],
    ]
    for limit in (1, 2, 3, 100):
        assert feed_entries(reports, {"c/x": {"a"}}, limit, groups=groups) == (
            feed_entries(reports, {"c/x": {"a"}}, limit)
        )


def test_run_detail_lists_changes_and_dependency_report() -> None:
    report = run("r1", 100, COMPLETED, added=("a-1-h_0.conda", "gone-1-h_0.conda"))
    report.mirrors[0].unsatisfied = [UnsatisfiedDependency("linux-64", "q >=2", "a")]
    report.mirrors[0].dependencies_added = [AddedDependency("linux-64", "z.conda", "a")]
    detail = run_detail(report, package_pages={"c/x": {"a"}})
    (change,) = detail["changes"]
    assert change["added"]["items"] == [
        {"fn": "a-1-h_0.conda", "page": "c/x/packages/a.html"},
        {"fn": "gone-1-h_0.conda", "page": None},
    ]
    (mirror,) = detail["mirror_details"]
    assert mirror["unsatisfied_rows"]["items"][0]["spec"] == "q >=2"
    assert mirror["dependencies_added_rows"]["items"][0]["file"] == "z.conda"
    assert mirror["subdirs"][0]["excluded"] == {"license excluded": 2, "invalid size": 1}


# --------------------------------------------------------------------------- landing


def config(base_url: str | None = None):
    text = """
output: /tmp/site
channels:
  cloud/conda-forge:
    url: https://conda.anaconda.org/conda-forge
    subdirs: [linux-64]
  cloud/bioconda:
    url: https://conda.anaconda.org/bioconda
    subdirs: [linux-64]
  pkgs/main:
    url: https://repo.anaconda.com/pkgs/main
    subdirs: [linux-64]
  internal/private:
    url: https://conda.anaconda.org/t/${PRIVATE_TOKEN}/my-org
    subdirs: [linux-64]
"""
    if base_url:
        text = f"base_url: {base_url}\n" + text
    return parse_config(text)


def test_usage_snippets_use_the_base_url() -> None:
    snippets = usage_snippets(config(), "https://mirror.example")
    assert "channel_alias: https://mirror.example/cloud" in snippets["condarc_alias"]
    assert "  - conda-forge\n  - bioconda" in snippets["condarc_alias"]
    assert "  conda-forge: https://mirror.example/cloud" in snippets["condarc_custom"]
    assert "  private: https://mirror.example/internal" in snippets["condarc_custom"]
    assert "default_channels:\n  - https://mirror.example/pkgs/main" in snippets["condarc_custom"]
    assert (
        '"https://conda.anaconda.org/conda-forge" = ["https://mirror.example/cloud/conda-forge"]'
        in snippets["pixi"]
    )
    assert "my-org" not in snippets["pixi"]  # a token-bearing upstream is no public name
    for key in ("condarc_alias", "condarc_custom"):
        assert isinstance(yaml.safe_load(snippets[key]), dict), key
    assert snippets["commands"][0]["conda"] == (
        "conda install --override-channels -c https://mirror.example/cloud/conda-forge <package>"
    )


def test_landing_model_without_base_url_uses_a_placeholder() -> None:
    model = landing_model(config(), {}, [])
    assert model["base_placeholder"] == BASE_PLACEHOLDER
    assert BASE_PLACEHOLDER in model["snippets"]["condarc_alias"]
    private = model["channels"][3]["mirrors"][0]
    assert private["source"] == "https://conda.anaconda.org/t/***/my-org"
    assert private["last_status"] is None and private["last_status_words"] == "never run"
    assert model["sources"] == "upstream"  # the opening line says "mirrored from upstream"
    model = landing_model(config("https://m.example"), {}, [])
    assert model["base_placeholder"] is None


def test_pixi_mirrors_group_channels_of_one_upstream() -> None:
    text = """
output: /tmp/site
channels:
  cloud/conda-forge:
    url: https://conda.anaconda.org/conda-forge
    subdirs: [linux-64]
  internal/approved:
    url: https://conda.anaconda.org/conda-forge
    subdirs: [linux-64]
"""
    snippets = usage_snippets(parse_config(text), "https://m.example")
    assert snippets["pixi"].splitlines()[2:] == [
        '"https://conda.anaconda.org/conda-forge" = ["https://m.example/cloud/conda-forge",'
        ' "https://m.example/internal/approved"]'
    ]
    tomllib.loads(snippets["pixi"])  # valid TOML: no key twice


def test_pixi_mirrors_only_unfiltered_channels_or_mirror_of() -> None:
    text = """
output: /tmp/site
channels:
  cloud/conda-forge:
    url: https://conda.anaconda.org/conda-forge
    subdirs: [linux-64]
  internal/approved:
    url: https://conda.anaconda.org/conda-forge
    subdirs: [linux-64]
    filters:
      names: {include: [numpy]}
  internal/two:
    mirrors:
      - url: https://conda.anaconda.org/conda-forge
        subdirs: [linux-64]
      - url: https://example.org/extra
        name: extra
        subdirs: [linux-64]
  internal/declared:
    mirror_of: https://conda.anaconda.org/bioconda
    filters:
      names: {exclude: [huge]}
    mirrors:
      - url: https://conda.anaconda.org/bioconda
        subdirs: [linux-64]
"""
    snippets = usage_snippets(parse_config(text), "https://m.example")
    mirrors = tomllib.loads(snippets["pixi"])["mirrors"]
    assert mirrors == {
        "https://conda.anaconda.org/conda-forge": ["https://m.example/cloud/conda-forge"],
        "https://conda.anaconda.org/bioconda": ["https://m.example/internal/declared"],
    }
    channels = tomllib.loads(snippets["pixi_channels"])["project"]["channels"]
    assert channels == ["https://m.example/internal/approved", "https://m.example/internal/two"]


def test_usage_snippets_leave_private_channels_out() -> None:
    """A private channel is set up with its token snippet: the public snippets name neither
    its upstream (it mirrors one unfiltered) nor its token-less URL."""
    text = """
output: /tmp/site
channels:
  cloud/conda-forge:
    url: https://conda.anaconda.org/conda-forge
    subdirs: [linux-64]
  internal/licensed:
    url: https://conda.example.com/licensed
    subdirs: [linux-64]
    access: private
"""
    snippets = usage_snippets(parse_config(text), "https://m.example")
    assert snippets is not None
    assert tomllib.loads(snippets["pixi"])["mirrors"] == {
        "https://conda.anaconda.org/conda-forge": ["https://m.example/cloud/conda-forge"]
    }
    assert [c["channel"] for c in snippets["commands"]] == ["cloud/conda-forge"]
    assert not any("licensed" in str(value) for value in snippets.values())
    only_private = text.replace(
        "  cloud/conda-forge:\n", "  cloud/conda-forge:\n    access: private\n"
    )
    assert usage_snippets(parse_config(only_private), "https://m.example") is None


def test_site_filters_make_every_channel_curated() -> None:
    text = """
output: /tmp/site
filters:
  licenses: {exclude: [GPL-3.0]}
channels:
  cloud/conda-forge:
    url: https://conda.anaconda.org/conda-forge
    subdirs: [linux-64]
"""
    snippets = usage_snippets(parse_config(text), "https://m.example")
    assert tomllib.loads(snippets["pixi"])["mirrors"] == {}
    assert "https://m.example/cloud/conda-forge" in snippets["pixi_channels"]


def test_custom_channels_do_not_collide_on_the_last_segment() -> None:
    text = """
output: /tmp/site
channels:
  cloud/conda-forge:
    url: https://conda.anaconda.org/conda-forge
    subdirs: [linux-64]
  internal/conda-forge:
    url: https://conda.anaconda.org/conda-forge
    subdirs: [linux-64]
  conda-forge:
    url: https://conda.anaconda.org/conda-forge
    subdirs: [linux-64]
"""
    snippets = usage_snippets(parse_config(text), "https://m.example")
    custom = yaml.safe_load(snippets["condarc_custom"])["custom_channels"]
    # conda: a name resolves to <URL of its longest matching key>/<name>.
    resolved = {name: f"{url}/{name}" for name, url in custom.items()}
    assert sorted(resolved.values()) == [
        "https://m.example/cloud/conda-forge",
        "https://m.example/conda-forge",
        "https://m.example/internal/conda-forge",
    ]


def test_search_index_rows_carry_the_license() -> None:
    facts = PackageFacts("1.0", ["linux-64", "noarch"], "S", [])
    rows = [package_row("a", facts, {"license": "MIT"}), package_row("b", facts, None)]
    assert rows[0]["subdirs"] == ["linux-64", "noarch"]
    assert search_index("c/x", rows)["packages"] == [["a", "1.0", "S", "MIT"], ["b", "1.0", "S"]]


SHORT_FORM = """
output: /tmp/site
channels:
  c/x:
    mirror_of: ftp://example.org/c
    url: https://example.org/c
    subdirs: [linux-64]
"""
ON_A_MIRROR = """
output: /tmp/site
channels:
  c/x:
    mirrors:
      - url: https://example.org/c
        subdirs: [linux-64]
        mirror_of: https://example.org/c
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (SHORT_FORM, "channels.c/x.mirror_of: mirror_of must be an http(s) URL"),
        (ON_A_MIRROR, "mirror_of"),  # a channel's key, not a mirror's
    ],
)
def test_mirror_of_is_a_channel_url(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(text)


def test_landing_links_the_dependency_report_of_the_run_it_counts() -> None:
    """The landing page counts a mirror's unsatisfied dependencies from its newest run that
    read upstream; their "report" link leads to that run's page, not to a later run still
    going (whose page has no report yet)."""
    reports = [run("r2", 200, RUNNING), run("r1", 100, COMPLETED)]
    for report in reports:
        report.mirrors[0].name = "cloud-conda-forge"
    reports[0].mirrors[0].subdirs = {}
    reports[1].mirrors[0].unsatisfied = [UnsatisfiedDependency("linux-64", "libzz", "a")]
    (mirror,) = landing_model(config(), {}, reports)["channels"][0]["mirrors"]
    assert mirror["last_run_page"] == run_page_path("r2")
    assert mirror["filtered"]["unsatisfied"] == 1
    assert mirror["filtered_page"] == run_page_path("r1")
