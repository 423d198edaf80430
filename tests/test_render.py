"""Rendered pages of a real mirrored site: structure, links, counts, escaping, incrementality.

Each test mirrors the example upstream (real packages over HTTP on 127.0.0.1) with
``run_mirror`` and renders with ``render_site``; the checks read the HTML that lands on disk.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from sitegen.access.tokens import new_token
from sitegen.cli import main
from sitegen.config import SiteConfig
from sitegen.layout import METADATA_FILES, run_page_path
from sitegen.store.site import Site
from sitegen.sync.history import History
from sitegen.sync.report import RUNNING, RunReport
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import PackageSpec, write_channel
from sitegen.tools.serve import make_server, watch_and_render
from sitegen.web import listing as listing_module
from sitegen.web import listing_pages, package_pages
from sitegen.web.format import iso_time
from sitegen.web.landing import BASE_PLACEHOLDER
from sitegen.web.private import ledger_hides
from sitegen.web.published import PublishedFile
from sitegen.web.render import render_site
from sitegen.web.run import RUN_ID_RE
from sitegen.web.writer import PageFiles
from testkit.burst import burst
from testkit.local import drop_all, local_config
from testkit.site import rewrite_repodata, site_config
from testkit.upstream import ExampleUpstream

pytestmark = pytest.mark.integration

FULL = "cloud/example"
APPROVED = "internal/approved"
CHANNELS = f"""
channels:
  {FULL}:
    url: {{url}}
    subdirs: [linux-64, noarch]
  {APPROVED}:
    filters:
      licenses: {{{{exclude: ["*GPL*"], allow_missing: false}}}}
      builds: {{{{exclude: ["py2*"]}}}}
    mirrors:
      - name: approved-example
        url: {{url}}
        subdirs: [linux-64, noarch]
        filters:
          specs: {{{{include: ["numpy >=1.26", "pkg-that-does-not-exist"]}}}}
          include_dependencies: true
"""


# --------------------------------------------------------------------------- helpers


def demo_config(site: Path, url: str, body: str = CHANNELS, extra: str = "") -> SiteConfig:
    return site_config(site, extra + body.format(url=url))


async def mirror(config: SiteConfig) -> RunReport:
    return await run_mirror(config, MirrorOptions(progress=False))


@pytest.fixture(autouse=True)
def unique_run_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run ids have one-second resolution per process; tests run several runs a second."""
    counter = itertools.count(1)
    real = RUN_ID_RE  # ids must still look like run ids

    def new_run_id() -> str:
        run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{next(counter)}"
        assert real.match(run_id)
        return run_id

    monkeypatch.setattr("sitegen.sync.run.new_run_id", new_run_id)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.data_urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in ("href", "src"):
                self.links.append((tag, name, value))
            elif name == "data-index":
                self.data_urls.append(value)


def parse_links(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def html_pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if ".sitegen" not in p.parts)


def assert_links_resolve(site: Path) -> int:
    """Every local href/src of every page names an existing file; returns how many links."""
    checked = 0
    for page in html_pages(site):
        found = parse_links(page)
        for tag, attribute, value in found.links:
            parts = urlsplit(value)
            if parts.scheme in ("http", "https"):
                assert tag == "a", f"{page}: external {tag} {attribute}={value} (must be offline)"
                continue
            assert not parts.scheme, f"{page}: {attribute}={value!r}"
            if not parts.path:
                continue  # "#anchor"
            target = (page.parent / unquote(parts.path)).resolve()
            if value.endswith("/"):
                target = target / "index.html"
            assert target.is_file(), f"{page.relative_to(site)}: broken link {value!r}"
            assert site.resolve() in target.parents, f"{page}: link leaves the site: {value}"
            checked += 1
        for value in found.data_urls:
            assert (page.parent / unquote(value)).is_file(), f"{page}: data-index {value!r}"
    return checked


def mtimes(site: Path) -> dict[str, int]:
    return {
        p.relative_to(site).as_posix(): p.stat().st_mtime_ns
        for p in site.rglob("*")
        if p.is_file() and ".sitegen" not in p.parts
    }


def repodata(site: Path, channel: str, subdir: str) -> dict[str, Any]:
    return json.loads((site / channel / subdir / "repodata.json").read_bytes())


def records_of(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {**document["packages"], **document["packages.conda"]}


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens once the socket is closed


def page_text(site: Path, relpath: str) -> str:
    return (site / relpath).read_text(encoding="utf-8")


@pytest.fixture
async def mirrored(tmp_path: Path, example_upstream: ExampleUpstream) -> tuple[SiteConfig, Path]:
    """The example upstream mirrored into two channels and rendered."""
    site = tmp_path / "site"
    config = demo_config(site, example_upstream.url)
    report = await mirror(config)
    assert report.status == "completed", report.errors
    render_site(config)
    return config, site


# --------------------------------------------------------------------------- structure


async def test_every_page_kind_exists_and_links_resolve(mirrored: tuple[SiteConfig, Path]):
    _config, site = mirrored
    for relpath in (
        "index.html",
        "assets/style.css",
        "assets/site.js",
        "history/index.html",
        "history/history.json",
        "history/feed.atom",
        f"{FULL}/index.html",
        f"{FULL}/search.json",
        f"{FULL}/linux-64/index.html",
        f"{FULL}/noarch/index.html",
        f"{APPROVED}/index.html",
        f"{APPROVED}/linux-64/index.html",
    ):
        assert (site / relpath).is_file(), relpath
    (run_id,) = [r["id"] for r in json.loads(page_text(site, "history/history.json"))["runs"]]
    assert (site / "history" / f"{run_id}.html").is_file()
    assert assert_links_resolve(site) > 100
    for page in html_pages(site):
        text = page.read_text(encoding="utf-8")
        assert text.startswith("<!doctype html>"), page
        assert '<meta name="viewport"' in text, page


async def test_counts_on_pages_match_repodata(mirrored: tuple[SiteConfig, Path]) -> None:
    _config, site = mirrored
    for channel in (FULL, APPROVED):
        docs = {s: repodata(site, channel, s) for s in ("linux-64", "noarch")}
        names = {r["name"] for d in docs.values() for r in records_of(d).values()}
        files = sum(len(records_of(d)) for d in docs.values())
        pages_on_disk = {p.stem for p in (site / channel / "packages").glob("*.html")}
        assert pages_on_disk == names
        index = json.loads(page_text(site, f"{channel}/search.json"))
        assert [row[0] for row in index["packages"]] == sorted(names)
        channel_page = page_text(site, f"{channel}/index.html")
        assert f"<b>{len(names)}</b> packages" in channel_page
        assert f"<b>{files}</b> files" in channel_page
        assert channel_page.count('<li><a href="packages/') == len(names)
        for subdir, document in docs.items():
            listing = page_text(site, f"{channel}/{subdir}/index.html")
            for fn, record in records_of(document).items():
                assert f'<a href="{fn}">{fn}</a>' in listing
                assert record["sha256"] in listing
            rows = listing.count("<tr>") + listing.count('<tr class="meta-file">')
            assert rows == len(records_of(document)) + len(METADATA_FILES) + 1  # + header
            assert listing.index("repodata.json") < listing.index("current_repodata.json")
        landing = page_text(site, "index.html")
        assert f'<a href="{channel}/index.html">{channel}</a>' in landing
    assert "<b>12</b> packages" in page_text(site, "index.html")


async def test_run_keeps_the_filtered_out_records_and_its_page_searches_them(
    mirrored: tuple[SiteConfig, Path],
) -> None:
    _config, site = mirrored
    (run,) = json.loads(page_text(site, "history/history.json"))["runs"]
    record = json.loads(page_text(site, f"history/runs/{run['id']}.json"))
    (approved,) = [m for m in record["mirrors"] if m["name"] == "approved-example"]
    assert approved["filtered_run"] == run["id"]
    assert all(m["filtered_run"] == "" for m in record["mirrors"] if m is not approved)
    document = json.loads(page_text(site, f"history/filtered/{run['id']}.json"))
    (listed,) = document["mirrors"]
    assert listed["mirror"] == "approved-example"
    why = {
        (name, version, build, subdir): document["reasons"][reason]
        for subdir, rows in listed["subdirs"].items()
        for name, version, build, reason in rows
    }
    excluded = sum(n for sub in approved["subdirs"].values() for n in sub["excluded"].values())
    # Every record left out is there, once per build (not per format).
    assert 0 < len(why) <= excluded
    builds = {
        (r["name"], r["version"], r["build"], subdir)
        for subdir in ("linux-64", "noarch")
        for r in records_of(repodata(site, FULL, subdir)).values()
    }
    kept = {
        (r["name"], r["version"], r["build"], subdir)
        for subdir in ("linux-64", "noarch")
        for r in records_of(repodata(site, APPROVED, subdir)).values()
    }
    assert set(why) == builds - kept
    assert why[("ghostscript", "10.03.1", "hec78ab0_0", "linux-64")] == "license excluded"
    assert why[("futures", "3.3.0", "py27_0", "linux-64")] == "build excluded"
    run_page = page_text(site, run["page"])
    assert f'data-src="filtered/{run["id"]}.json"' in run_page
    assert f'href="filtered/{run["id"]}.json" download' in run_page


async def test_package_lists_show_subdirs_and_the_landing_searches_every_channel(
    mirrored: tuple[SiteConfig, Path],
) -> None:
    _config, site = mirrored
    channel_page = page_text(site, f"{FULL}/index.html")
    numpy = channel_page[channel_page.index('<li><a href="packages/numpy.html">') :]
    numpy = numpy[: numpy.index("</li>")]
    assert '<span class="subdirs">linux-64</span>' in numpy
    index = json.loads(page_text(site, f"{FULL}/search.json"))
    licenses = {row[0]: row[3] for row in index["packages"] if len(row) > 3}
    assert licenses["numpy"] == "BSD-3-Clause"  # searched by license too
    landing = page_text(site, "index.html")
    for channel in (FULL, APPROVED):
        # One index per channel, loaded by the landing page's search when it is used.
        assert f'data-index="{channel}/search.json"' in landing
        assert f'data-pages="{channel}/packages/"' in landing


async def test_package_page_lists_every_build_with_links_and_checksums(
    mirrored: tuple[SiteConfig, Path],
) -> None:
    _config, site = mirrored
    page = page_text(site, f"{FULL}/packages/numpy.html")
    numpy = {
        fn: r
        for fn, r in records_of(repodata(site, FULL, "linux-64")).items()
        if r["name"] == "numpy"
    }
    assert len(numpy) == 16
    for fn, record in numpy.items():
        assert f'href="../linux-64/{fn}"' in page
        assert record["sha256"] in page
    assert '<span class="ver">2.1.0</span>' in page  # the latest version in the title
    assert page.index(">2.1.0 <small") < page.index(">2.0.1 <small") < page.index(">1.26.4 <small")
    # Formats side by side: a .conda and a .tar.bz2 cell in the same row.
    assert page.count("download>.conda</a>") == page.count("download>.tar.bz2</a>") == 8
    # Dependencies on packages of the channel link to their pages.
    assert '<a href="libopenblas.html"><code>libopenblas &gt;=0.3.27,&lt;1.0a0</code></a>' in page
    assert "BSD-3-Clause" in page


async def test_landing_history_and_feed(mirrored: tuple[SiteConfig, Path], example_upstream):
    _config, site = mirrored
    landing = page_text(site, "index.html")
    assert example_upstream.url in landing  # the token-free source
    assert "linux-64, noarch" in landing
    assert "not in allowlist" in landing  # why records were filtered
    assert "badge-completed" in landing
    assert "Use this mirror" in landing and "channel_alias:" in landing
    assert BASE_PLACEHOLDER in landing  # no base_url configured
    history = json.loads(page_text(site, "history/history.json"))
    (run,) = history["runs"]
    assert run["status"] == "completed"
    assert {(c["channel"], c["subdir"]) for c in run["channels"]} >= {(FULL, "linux-64")}
    run_page = page_text(site, run["page"])
    assert "Dependency report" in run_page
    assert "pkg-that-does-not-exist" not in run_page or "could not be satisfied" in run_page
    feed = ET.fromstring((site / "history/feed.atom").read_bytes())
    ns = {"a": "http://www.w3.org/2005/Atom"}
    titles = [e.findtext("a:title", namespaces=ns) for e in feed.findall("a:entry", ns)]
    assert f"numpy 2.1.0 in {FULL}" in titles
    link = feed.find("a:entry/a:link", ns).get("href")
    assert (site / "history" / unquote(link)).resolve().is_file()


async def test_passive_channel_pages_tell_stored_from_fetched_on_request(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    site = tmp_path / "site"
    body = f"""
channels:
  {FULL}:
    url: {{url}}
    subdirs: [linux-64]
    mode: passive
"""
    config = demo_config(site, example_upstream.url, body=body)
    await mirror(config)
    render_site(config)
    linux = records_of(repodata(site, FULL, "linux-64"))
    numpy = sorted(fn for fn, r in linux.items() if r["name"] == "numpy")
    files = len(linux) + len(records_of(repodata(site, FULL, "noarch")))
    channel_page = page_text(site, f"{FULL}/index.html")
    assert f"<b>{files}</b> files" in channel_page
    assert "<b>0</b> stored, the rest fetched from upstream when first requested" in channel_page
    package = page_text(site, f"{FULL}/packages/numpy.html")
    assert f"0 stored here, {len(numpy)} fetched from upstream when first requested" in package
    assert package.count(">on request</span>") == len(numpy)
    # The fetcher stores a file someone asked for: the next render says so.
    (site / FULL / "linux-64" / numpy[0]).write_bytes(b"fetched")
    render_site(config)
    channel_page = page_text(site, f"{FULL}/index.html")
    assert "<b>1</b> stored, the rest fetched" in channel_page
    package = page_text(site, f"{FULL}/packages/numpy.html")
    assert f"1 stored here, {len(numpy) - 1} fetched from upstream" in package
    assert package.count(">on request</span>") == len(numpy) - 1
    assert "<b>1</b> stored" in page_text(site, f"{FULL}/linux-64/index.html")
    assert "<b>1</b> stored" in page_text(site, "index.html")


async def test_base_url_makes_snippets_absolute(tmp_path: Path, example_upstream) -> None:
    site = tmp_path / "site"
    config = demo_config(site, example_upstream.url, extra="base_url: https://conda.example.org\n")
    await mirror(config)
    render_site(config)
    landing = page_text(site, "index.html")
    assert "channel_alias: https://conda.example.org/cloud" in landing
    assert BASE_PLACEHOLDER not in landing
    feed = ET.fromstring((site / "history/feed.atom").read_bytes())
    assert feed.get("{http://www.w3.org/XML/1998/namespace}base") == (
        "https://conda.example.org/history/"
    )
    # A package page's install lines are the landing page's, for that package.
    package = page_text(site, f"{FULL}/packages/numpy.html")
    url = f"https://conda.example.org/{FULL}"
    for line in (
        f"conda install --override-channels -c {url} numpy",
        f"mamba install --override-channels -c {url} numpy",
        f"pixi add --channel {url} numpy",
    ):
        assert line.replace("numpy", "&lt;package&gt;") in landing
        assert line in package
    assert "data-copy" in package  # a copy button, shown by the page's script


# --------------------------------------------------------------------------- untrusted input


async def test_untrusted_metadata_is_escaped_and_tokens_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, upstream_server_factory
) -> None:
    token = "s3cr3t-t0ken-value"
    monkeypatch.setenv("SITEGEN_TEST_TOKEN", token)
    root = tmp_path / "upstream"
    channel_root = root / "t" / token / "hostile"
    evil = PackageSpec(
        name="evil",
        version="1.0",
        build="h0_0",
        license="<script>alert('license')</script>",
        timestamp_ms=1_700_000_000_000,
    )
    plain = PackageSpec(name="plain", version="1.0", build="h0_0", license="MIT")
    write_channel(channel_root, [evil, plain])

    def hostile(document: dict[str, Any]) -> None:
        for key in ("packages", "packages.conda"):
            for record in document[key].values():
                if record["name"] == "evil":
                    record["summary"] = "<script>alert(1)</script> & <b>bold</b>"
                    record["home"] = "javascript:alert(1)"
                    record["dev_url"] = "JAVASCRIPT:alert(2)"
                    record["doc_url"] = "https://docs.example.org/x?a=1&b=2"

    rewrite_repodata(channel_root, "linux-64", hostile)
    server = upstream_server_factory(root)
    site = tmp_path / "site"
    body = """
channels:
  cloud/hostile:
    url: {url}/t/${{SITEGEN_TEST_TOKEN}}/hostile
    subdirs: [linux-64]
"""
    config = demo_config(site, server.url, body=body)
    report = await mirror(config)
    assert report.status == "completed", report.errors
    # A run whose error message names the token (as an upstream error might).
    History(Site(site)).save(
        RunReport(
            id="20000101T000000Z-1",
            started=946684800.0,
            ended=946684801.0,
            status="failed",
            errors=[f"GET {server.url}/t/{token}/hostile/linux-64/repodata.json: 401"],
        )
    )
    render_site(config)

    page = page_text(site, "cloud/hostile/packages/evil.html")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    assert "&lt;script&gt;alert(&#39;license&#39;)&lt;/script&gt;" in page
    assert 'href="https://docs.example.org/x?a=1&amp;b=2"' in page
    for path in [*html_pages(site), site / "history/feed.atom"]:
        text = path.read_text(encoding="utf-8")
        assert "<script>alert" not in text, path
        assert "<b>bold" not in text, path
        assert token not in text, path
        for _tag, _attribute, value in parse_links(path).links:
            assert not value.strip().lower().startswith(("javascript:", "data:")), (path, value)
    for path in (site / "history/history.json", site / "cloud/hostile/search.json"):
        assert token not in path.read_text(), path
    index = json.loads(page_text(site, "cloud/hostile/search.json"))
    assert index["packages"][0][2].startswith("<script>")  # data, shown via textContent
    assert "/t/***/hostile" in page_text(site, "index.html")
    assert assert_links_resolve(site)


# The bidi embeddings, overrides and isolates a page must never pass on as they are.
BIDI_CONTROLS = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]


async def test_bidi_controls_in_upstream_text_are_shown_not_obeyed(
    tmp_path: Path, upstream_server_factory
) -> None:
    """A right-to-left override (or another bidi control) in upstream's free text cannot
    reorder the page around it: every page, the feed and the search index show U+FFFD in its
    place, in summaries, descriptions, licenses and dependency specs (on the package page and
    on the run page that reports one as unsatisfied)."""
    rlo, lri, pdi = "\u202e", "\u2066", "\u2069"
    root = tmp_path / "upstream"
    trick = PackageSpec(
        name="trick",
        version="1.0",
        build="h0_0",
        license=f"MIT{rlo} LPG",
        depends=(f"missing-dep >=1{rlo}.2", "zlib"),
        constrains=(f"other {lri}<2{pdi}",),
    )
    write_channel(root, [trick, PackageSpec(name="zlib", version="1.3", build="h0_0")])

    def texts(document: dict[str, Any]) -> None:
        for key in ("packages", "packages.conda"):
            for record in document[key].values():
                if record["name"] == "trick":
                    record["summary"] = f"safe {rlo}evil"
                    record["description"] = f"first {lri}para\n\nsecond \u202a\u202b\u202c\u202d"

    rewrite_repodata(root, "linux-64", texts)
    server = upstream_server_factory(root)
    site = tmp_path / "site"
    body = """
channels:
  cloud/bidi:
    url: {url}
    subdirs: [linux-64]
    filters: {{specs: {{include: [trick]}}, include_dependencies: true}}
"""
    config = demo_config(site, server.url, body=body)
    report = await mirror(config)
    assert report.status == "completed", report.errors
    assert report.mirrors[0].unsatisfied, report.mirrors[0]
    render_site(config)

    package = page_text(site, "cloud/bidi/packages/trick.html")
    for shown in (
        "safe \ufffdevil",
        "first \ufffdpara",
        "second \ufffd\ufffd\ufffd\ufffd",
        "MIT\ufffd LPG",
        "missing-dep &gt;=1\ufffd.2",
        "other \ufffd&lt;2\ufffd",
    ):
        assert shown in package, shown
    run_page = page_text(site, run_page_path(report.id))
    assert "missing-dep &gt;=1\ufffd.2" in run_page
    for path in [*html_pages(site), site / "history/feed.atom"]:
        text = path.read_text(encoding="utf-8")
        assert not [c for c in BIDI_CONTROLS if c in text], path
    index = json.loads(page_text(site, "cloud/bidi/search.json"))
    (row,) = [r for r in index["packages"] if r[0] == "trick"]
    assert row[2:] == ["safe \ufffdevil", "MIT\ufffd LPG"]


# --------------------------------------------------------------------------- incremental


async def test_render_is_incremental(tmp_path: Path, example_upstream: ExampleUpstream) -> None:
    site = tmp_path / "site"
    config = demo_config(site, example_upstream.url)
    await mirror(config)
    first = render_site(config)
    assert first.written and not first.skipped
    before = mtimes(site)

    again = render_site(config)
    assert again.rendered == [] and again.written == [] and again.removed == []
    assert again.skipped == len(first.rendered)
    assert mtimes(site) == before

    # A repodata patch upstream changes zlib 1.3.1's dependencies (the file stays the same).
    def patch(document: dict[str, Any]) -> None:
        for key in ("packages", "packages.conda"):
            for record in document[key].values():
                if record["name"] == "zlib" and record["version"] == "1.3.1":
                    record["depends"] = ["libzlib-ng >=2"]

    rewrite_repodata(example_upstream.root, "linux-64", patch)
    report = await mirror(config)
    assert report.status == "completed", report.errors
    changed = render_site(config)
    package_pages = sorted(p for p in changed.rendered if "/packages/" in p)
    assert f"{FULL}/packages/zlib.html" in package_pages
    assert all(p.endswith("/packages/zlib.html") for p in package_pages), package_pages
    assert f"{FULL}/packages/zlib.html" in changed.written
    assert "libzlib-ng &gt;=2" in page_text(site, f"{FULL}/packages/zlib.html")
    after = mtimes(site)
    for name in ("numpy", "python", "libopenblas", "ghostscript"):
        relpath = f"{FULL}/packages/{name}.html"
        assert after[relpath] == before[relpath], relpath
    assert f"{FULL}/linux-64/index.html" in changed.written  # its repodata changed
    assert f"{FULL}/noarch/index.html" not in changed.rendered

    # A package leaving upstream takes its page with it.
    def remove(document: dict[str, Any]) -> None:
        for key in ("packages", "packages.conda"):
            for fn in [fn for fn, r in document[key].items() if r["name"] == "mystery-tool"]:
                del document[key][fn]

    rewrite_repodata(example_upstream.root, "linux-64", remove)
    await mirror(config)
    removed = render_site(config)
    assert removed.removed == [f"{FULL}/packages/mystery-tool.html"]
    assert not (site / FULL / "packages" / "mystery-tool.html").exists()
    assert "mystery-tool" not in page_text(site, f"{FULL}/index.html")
    assert_links_resolve(site)


async def test_pages_of_what_left_channels_yaml_go_also_without_the_last_manifest(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    """A channel taken out of channels.yaml, and a subdir out of a channel's: their pages go
    with the next render, whether or not the last render's manifest is still there (without
    it they are found on disk, in the folders of the subdirs no configured channel names),
    and the same ones; their published metadata and package files stay (that is for
    ``sitegen remove``)."""
    with_manifest = tmp_path / "site"
    await mirror(demo_config(with_manifest, example_upstream.url))
    render_site(demo_config(with_manifest, example_upstream.url))
    without = tmp_path / "lost"
    shutil.copytree(with_manifest, without, symlinks=True)
    (without / ".sitegen" / "render" / "manifest.json").unlink()
    fewer = f"channels:\n  {FULL}:\n    url: {{url}}\n    subdirs: [noarch]\n"
    gone = [
        f"{APPROVED}/index.html",
        f"{APPROVED}/search.json",
        f"{APPROVED}/packages/numpy.html",
        f"{APPROVED}/linux-64/index.html",
        f"{APPROVED}/noarch/index.html",
        f"{FULL}/linux-64/index.html",
    ]
    stays = [
        f"{APPROVED}/linux-64/repodata.json",
        f"{APPROVED}/channeldata.json",
        f"{FULL}/linux-64/repodata.json",
        f"{FULL}/noarch/index.html",
        f"{FULL}/index.html",
        f"{APPROVED}/packages/README.txt",  # not pages: never written by a render
        f"{APPROVED}/linux-64/notes.html",
    ]
    removed = {}
    for site in (with_manifest, without):
        for relpath in stays[-2:]:
            (site / relpath).write_bytes(b"not a page")
        assert all((site / relpath).is_file() for relpath in gone + stays)
        removed[site] = render_site(demo_config(site, example_upstream.url, fewer)).removed
        assert [r for r in gone if (site / r).exists()] == [], site
        assert all((site / relpath).is_file() for relpath in stays), site
        assert any(p.name.endswith(".conda") for p in (site / APPROVED / "linux-64").iterdir())
    assert sorted(removed[without]) == sorted(removed[with_manifest])
    assert set(gone) <= set(removed[without])

    def files(site: Path) -> set[str]:
        return {
            p.relative_to(site).as_posix()
            for p in site.rglob("*")
            if p.is_file() and ".sitegen" not in p.parts
        }

    assert files(without) == files(with_manifest)


async def test_dependency_links_reach_pages_of_names_with_capitals(tmp_path: Path) -> None:
    """Pages are written under a package's name as published; dependency specs may spell it
    in another case. A page is rendered again when the page its link goes to is renamed."""
    folder = tmp_path / "folder"
    names = ("Foo", "libX11", "g++", "a!b", "x=y", "c,d")
    top = PackageSpec("top", "1.0", "h0_0", depends=("foo >=1", "LibX11", *names[2:]))
    drop_all(folder, [PackageSpec(n, "1.0", "h0_0") for n in names] + [top])
    site = tmp_path / "site"
    config = local_config(site, folder)
    assert (await mirror(config)).status == "completed"
    render_site(config)
    packages = site / "internal/own/packages"
    assert {p.name for p in packages.iterdir()} >= {f"{n}.html" for n in names}
    assert 'href="Foo.html"' in page_text(site, "internal/own/packages/top.html")
    assert_links_resolve(site)

    # libX11 is published as libx11 now: top's records are the same, its link is not.
    for path in folder.glob("libX11-*"):
        path.unlink()
    drop_all(folder, [PackageSpec("libx11", "1.0", "h0_0")])
    assert (await mirror(config)).status == "completed"
    again = render_site(config)
    assert "internal/own/packages/top.html" in again.written
    assert 'href="libx11.html"' in page_text(site, "internal/own/packages/top.html")
    assert_links_resolve(site)


async def test_template_change_renders_everything_again(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    site = tmp_path / "site"
    config = demo_config(site, example_upstream.url)
    await mirror(config)
    templates = tmp_path / "templates"
    source = Path(__file__).resolve().parent.parent / "templates"
    for path in source.rglob("*"):
        if path.is_file():
            target = templates / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    first = render_site(config, templates_dir=templates)
    base = templates / "base.html"
    base.write_text(base.read_text().replace("Static pages generated", "Pages generated"))
    second = render_site(config, templates_dir=templates)
    pages_only = sorted(p for p in first.rendered if not p.startswith("assets/"))
    assert sorted(second.rendered) == pages_only  # assets are keyed by their own bytes
    assert all("Pages generated" in p.read_text() for p in html_pages(site))


# --------------------------------------------------------------------------- history


async def test_history_shows_completed_failed_running_and_interrupted_runs(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    site = tmp_path / "site"
    good = demo_config(site, example_upstream.url)
    completed = await mirror(good)
    assert completed.status == "completed"

    # A run killed outright leaves its record 'running'.
    history = History(Site(site))
    killed = RunReport(id="20990101T000000Z-99", started=time.time(), status=RUNNING, pid=99)
    history.save(killed)
    render_site(good)
    runs = json.loads(page_text(site, "history/history.json"))["runs"]
    assert [r["status"] for r in runs] == ["running", "completed"]
    assert "badge-running" in page_text(site, "history/index.html")

    # The next run cannot reach upstream: it fails and marks the killed run interrupted.
    bad = demo_config(site, closed_port_url())
    failed = await mirror(bad)
    assert failed.status == "failed"
    render_site(bad)
    runs = json.loads(page_text(site, "history/history.json"))["runs"]
    assert [r["status"] for r in runs] == ["failed", "interrupted", "completed"]
    assert [r["id"] for r in runs] == [failed.id, killed.id, completed.id]
    page = page_text(site, "history/index.html")
    positions = [page.index(f'id="run-{r["id"]}"') for r in runs]
    assert positions == sorted(positions)  # newest first
    for status in ("failed", "interrupted", "completed"):
        assert f"badge-{status}" in page
    failed_page = page_text(site, f"history/{failed.id}.html")
    assert "could not be read" in failed_page  # the subdir kept its previous state
    # One vocabulary: a subdir's count on the run page counts files, and says so.
    assert '<th class="n">Files</th>' in failed_page and ">Packages<" not in failed_page
    assert failed_page.count('class="errors"') >= 1
    interrupted_page = page_text(site, f"history/{killed.id}.html")
    assert "interrupted before it finished" in interrupted_page
    assert "not recorded" in interrupted_page  # no end time
    completed_run = runs[2]
    assert completed_run["totals"]["added"] == sum(c["added"] for c in completed_run["channels"])
    assert completed_run["totals"]["added"] > 0
    assert completed_run["mirrors"][1]["excluded"]["not in allowlist"] > 0
    # The landing page: last status failed, last successful sync is the completed run.
    landing = page_text(site, "index.html")
    assert "badge-failed" in landing
    assert iso_time(completed.ended) in landing
    assert_links_resolve(site)


DAMAGED_ROWS = {
    "approval without spec": {"approvals": [{"action": "approve", "channel": "internal/own"}]},
    "dependency row without keys": {"unsatisfied": [{"subdir": "linux-64"}]},
    "advisory row without file": {"advisories_blocked": [{"subdir": "linux-64"}]},
}


@pytest.mark.parametrize("what", sorted(DAMAGED_ROWS))
async def test_a_run_record_with_a_damaged_row_is_left_out_and_its_records_unserved(
    tmp_path: Path, what: str
) -> None:
    """A record whose types fit but whose row lacks a field the pages read is passed over
    like any unreadable record (the pages render without it), and, as it may name anything,
    the web server configuration keeps the records from everyone."""
    folder = tmp_path / "folder"
    drop_all(folder, [PackageSpec("zlib", "1.0", "h0_0")])
    site = tmp_path / "site"
    config = local_config(site, folder)
    good = await mirror(config)
    assert not ledger_hides(config)
    damaged = {"id": "20990101T000000Z", "started": good.started + 1, "status": "completed"}
    row = DAMAGED_ROWS[what]
    if "approvals" in row:
        damaged.update(row)
    else:
        damaged["mirrors"] = [
            {"name": "internal-own", "channel": "internal/own", "source": str(folder), **row}
        ]
    (site / "history/runs/20990101T000000Z.json").write_text(json.dumps(damaged))
    render_site(config)
    runs = json.loads(page_text(site, "history/history.json"))["runs"]
    assert [r["id"] for r in runs] == [good.id]
    assert not (site / run_page_path("20990101T000000Z")).exists()
    assert ledger_hides(config)


def test_cli_mirror_renders_and_render_needs_no_network(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    site = tmp_path / "site"
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {site}\n" + textwrap.dedent(CHANNELS.format(url=example_upstream.url))
    )
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 0
    assert (site / "index.html").is_file() and (site / FULL / "packages/numpy.html").is_file()
    before = mtimes(site)
    example_upstream.server.stop()  # render reads only what is on disk
    example_upstream.server.reset()
    (site / "index.html").unlink()
    assert main(["render", "-c", str(config_path)]) == 0
    assert (site / "index.html").is_file()
    assert example_upstream.server.requests == []
    after = mtimes(site)
    assert {k: v for k, v in after.items() if k != "index.html"} == {
        k: v for k, v in before.items() if k != "index.html"
    }
    # A failed run renders too: its page shows the failure.
    config_path.write_text(
        f"output: {site}\n" + textwrap.dedent(CHANNELS.format(url=closed_port_url()))
    )
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 1
    runs = json.loads(page_text(site, "history/history.json"))["runs"]
    assert runs[0]["status"] == "failed"
    assert (site / runs[0]["page"]).is_file()


# --------------------------------------------------------------------------- serve


@pytest.fixture
def preview(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    site = tmp_path / "site"
    (site / ".sitegen").mkdir(parents=True)
    (site / ".sitegen" / "secret.json").write_text("{}")
    (site / "index.html").write_text("<!doctype html><p>hello</p>")
    (site / "history" / "runs").mkdir(parents=True)
    (site / "history" / "runs" / "x.json").write_text("{}")
    (site / "pkg.conda").write_bytes(b"PK")
    server = make_server(site, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", site
    server.shutdown()
    server.server_close()


def get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, b"", ""


def test_preview_server_takes_a_burst_of_connections_at_once(preview: tuple[str, Path]) -> None:
    """conda, mamba and pixi open many connections at once; none waits on a short backlog."""
    port = int(preview[0].rpartition(":")[2])
    with burst(port, 64) as (_sockets, waiting):
        assert waiting == 0


def test_preview_server_serves_pages_but_not_private_state(preview: tuple[str, Path]) -> None:
    url, _site = preview
    status, body, ctype = get(url + "/")
    assert status == 200 and b"hello" in body and ctype.startswith("text/html")
    assert get(url + "/history/runs/x.json")[0] == 200
    assert get(url + "/pkg.conda")[2] == "application/octet-stream"
    assert get(url + "/.sitegen/secret.json")[0] == 404
    assert get(url + "/%2Esitegen/secret.json")[0] == 404
    # A path token taken out of the path leaves "//" before the rest, which is checked all the
    # same: any token-shaped string would do.
    assert get(url + f"/t/{new_token()}//.sitegen/secret.json")[0] == 404
    assert get(url + "/history/runs/")[0] == 404  # no directory listings


def test_watch_renders_again_when_the_config_changes(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    site = tmp_path / "site"
    config_path = tmp_path / "channels.yaml"
    text = f"output: {site}\ntitle: First title\n" + textwrap.dedent(
        CHANNELS.format(url=example_upstream.url)
    )
    config_path.write_text(text)
    assert main(["render", "-c", str(config_path)]) == 0
    assert "First title" in page_text(site, "index.html")

    from sitegen.config import load_config

    stop = threading.Event()
    rendered = threading.Event()
    thread = threading.Thread(
        target=watch_and_render,
        args=(lambda: load_config(config_path), config_path),
        kwargs={"stop_event": stop, "on_render": rendered.set},
        daemon=True,
    )
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not rendered.is_set() and time.monotonic() < deadline:
            config_path.write_text(text.replace("First title", "Second title"))
            rendered.wait(2)  # the watcher may start a moment after the thread; renders once quiet
        assert rendered.is_set(), "no render after channels.yaml changed"
        assert "Second title" in page_text(site, "index.html")
    finally:
        stop.set()
        thread.join(10)


async def test_render_removes_temporaries_of_a_killed_render(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    site = tmp_path / "site"
    config = demo_config(site, example_upstream.url)
    await mirror(config)
    render_site(config)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead_pid, live_pid = int(dead.stdout), os.getppid()  # an exited process; our parent
    stale = [
        site / FULL / "packages" / f".sitegen-tmp-{dead_pid}-numpy.html.0badf00d",
        site / "history" / f".sitegen-tmp-{dead_pid}-index.html.0badf00d",
        site / f".sitegen-tmp-{dead_pid}-index.html.0badf00d",
    ]
    live = site / FULL / "packages" / f".sitegen-tmp-{live_pid}-zlib.html.0badf00d"
    for path in [*stale, live]:
        path.write_bytes(b"half written")
    render_site(config)
    assert not [p for p in stale if p.exists()]
    assert live.exists()  # another process may still be writing it


# --------------------------------------------------------------------------- less work, same pages

ONE_CHANNEL = f"""
channels:
  {FULL}:
    url: {{url}}
    subdirs: [linux-64, noarch]
"""


def site_pages(site: Path) -> dict[str, bytes]:
    return {
        p.relative_to(site).as_posix(): p.read_bytes()
        for p in site.rglob("*")
        if p.is_file() and ".sitegen" not in p.parts and p.suffix in (".html", ".json", ".atom")
    }


def test_fast_escape_and_attribute_lookup_render_what_jinja2_renders(tmp_path: Path) -> None:
    import jinja2
    from markupsafe import Markup

    from sitegen.web.render import make_environment

    class Html:
        def __html__(self) -> str:
            return "<i>own</i>"

    (tmp_path / "t.html").write_text(
        "{{ a }}|{{ n }}|{{ m }}|{{ o }}|{{ d.x }}|{{ d.items is defined }}|{{ d.get('k') }}|"
        "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{{ d.missing is defined }}|"
        "{{ a ~ m }}|{% set s %}<{{ a }}>{% endset %}{{ s }}|{{ [a, n]|join(',') }}\n"
    )
    values = {
        "a": "<script>'&\"",
        "n": 42,
        "m": Markup("<b>ok</b>"),
        "o": Html(),
        "d": {"items": "<shadowed>", "x": "<x>", "k": 1, "get": "no"},
    }
    ours = make_environment(tmp_path, "t").get_template("t.html").render(**values)
    plain = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(tmp_path)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    assert ours == plain.get_template("t.html").render(**values)
    assert ours.startswith(
        "&lt;script&gt;&#39;&amp;&#34;|42|<b>ok</b>|<i>own</i>|&lt;x&gt;|True|1|"
    )
    (tmp_path / "u.html").write_text("{{ d.missing }}")
    with pytest.raises(jinja2.UndefinedError):
        make_environment(tmp_path, "u").get_template("u.html").render(d={})


async def test_render_parses_only_the_packages_that_changed(
    tmp_path: Path, example_upstream: ExampleUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[str] = []
    real = package_pages.parse_records

    def spy(files: list[PublishedFile]) -> Any:
        parsed.extend(sorted({f.name for f in files}))
        return real(files)

    monkeypatch.setattr(package_pages, "parse_records", spy)
    site = tmp_path / "site"
    config = demo_config(site, example_upstream.url, body=ONE_CHANNEL)
    await mirror(config)
    first = render_site(config)
    names = sorted(p.stem for p in (site / FULL / "packages").glob("*.html"))
    assert sorted(parsed) == names  # once each: the facts and the page from one parse
    assert len(first.written) > len(names)

    def patch(document: dict[str, Any]) -> None:
        for key in ("packages", "packages.conda"):
            for record in document[key].values():
                if record["name"] == "zlib":
                    record["depends"] = ["libzlib-ng >=2"]

    rewrite_repodata(example_upstream.root, "linux-64", patch)
    await mirror(config)
    parsed.clear()
    again = render_site(config)
    assert parsed == ["zlib"]
    assert [p for p in again.rendered if "/packages/" in p] == [f"{FULL}/packages/zlib.html"]
    parsed.clear()
    assert render_site(config).rendered == [] and parsed == []


async def test_site_repodata_not_as_sitegen_writes_it_is_checked_again(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    site = tmp_path / "site"
    config = demo_config(site, example_upstream.url, body=ONE_CHANNEL)
    await mirror(config)
    render_site(config)
    before = site_pages(site)
    path = site / FULL / "linux-64" / "repodata.json"
    document = json.loads(path.read_bytes())
    numpy = next(r for r in document["packages.conda"].values() if r["name"] == "numpy")
    bogus = {**numpy, "name": "bogus", "version": "1.0", "build": "h_0", "size": 1.5}
    document["packages.conda"]["bogus-1.0-h_0.conda"] = bogus  # a size that is no size
    path.write_text(json.dumps(document))
    render_site(config)
    after = site_pages(site)
    assert f"{FULL}/packages/bogus.html" not in after
    assert "bogus" not in after[f"{FULL}/linux-64/index.html"].decode()
    for name in ("numpy", "zlib", "python"):
        relpath = f"{FULL}/packages/{name}.html"
        assert after[relpath] == before[relpath]


async def test_listing_rows_come_from_a_checked_cache(
    tmp_path: Path, example_upstream: ExampleUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing_module, "CHUNK_ROWS", 2)  # chunks of a few rows
    monkeypatch.setattr(listing_module, "PAGE_CHUNKS", 1 << 40)  # on one page
    rows_made: list[int] = []
    real = listing_module.listing_rows

    def spy(records: Any) -> Any:
        rows = real(records)
        rows_made.append(len(rows))
        return rows

    monkeypatch.setattr(listing_pages, "listing_rows", spy)
    site = tmp_path / "site"
    config = demo_config(site, example_upstream.url, body=ONE_CHANNEL)
    await mirror(config)
    render_site(config)
    listing = f"{FULL}/linux-64/index.html"
    files = len(records_of(repodata(site, FULL, "linux-64")))
    noarch = len(records_of(repodata(site, FULL, "noarch")))
    assert sum(rows_made) == files + noarch and len(rows_made) > 2
    repodata_path = site / FULL / "linux-64" / "repodata.json"
    cache = site / ".sitegen" / "render" / "listings" / FULL / "linux-64.rows"
    assert cache.is_file()

    # New metadata times: the page is rendered again, its rows come from the cache.
    os.utime(repodata_path, ns=(1_600_000_000 * 10**9,) * 2)
    rows_made.clear()
    stats = render_site(config)
    assert listing in stats.written and rows_made == []
    assert "2020-09-13 12:26 UTC" in page_text(site, listing)
    cached = (site / listing).read_bytes()

    # A cache that does not check out is not used.
    cache.write_bytes(cache.read_bytes().replace(b"<tr>", b"<td>"))
    os.utime(repodata_path, ns=(1_500_000_000 * 10**9,) * 2)
    render_site(config)
    assert sum(rows_made) == files
    os.utime(repodata_path, ns=(1_600_000_000 * 10**9,) * 2)
    render_site(config)
    assert (site / listing).read_bytes() == cached
    assert page_text(site, listing).count("<tr>") == files + 1  # and the header
    (site / ".sitegen" / "render" / "manifest.json").unlink()
    again = render_site(config)  # the same page again: left alone
    assert listing in again.rendered and listing not in again.written

    # The caches of subdirs that are no longer configured go.
    gone = [cache.with_name("osx-arm64.rows"), cache.parent.parent / "old" / "linux-64.json"]
    for path in gone:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"stale")
    render_site(config)
    assert cache.is_file() and cache.with_suffix(".json").is_file()
    assert not any(path.exists() for path in gone)


async def test_a_listing_cache_that_is_a_symlink_is_replaced_not_written_through(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    """The rows of a listing cache are appended to in place: never through a symlink out of
    the site (written through the store, as every other file of it)."""
    site = tmp_path / "site"
    config = demo_config(site, example_upstream.url, body=ONE_CHANNEL)
    await mirror(config)
    render_site(config)
    listing = f"{FULL}/linux-64/index.html"
    before = (site / listing).read_bytes()
    cache = site / ".sitegen" / "render" / "listings" / FULL / "linux-64.rows"
    outside = tmp_path / "elsewhere.rows"
    outside.write_bytes(b"not rows")
    cache.unlink()
    cache.symlink_to(outside)
    repodata_path = site / FULL / "linux-64" / "repodata.json"
    os.utime(repodata_path, ns=(1_600_000_000 * 10**9,) * 2)  # the listing is made again
    assert listing in render_site(config).written
    assert outside.read_bytes() == b"not rows"
    assert not cache.is_symlink() and cache.is_file()
    assert page_text(site, listing).count("<tr>") == before.decode().count("<tr>")


async def test_processes_render_the_same_pages(
    tmp_path: Path, example_upstream: ExampleUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    config = demo_config(site, example_upstream.url)
    await mirror(config)
    here = render_site(config)
    expected = site_pages(site)
    for path in site.rglob("*.html"):
        path.unlink()
    (site / ".sitegen" / "render" / "manifest.json").unlink()

    monkeypatch.setattr(package_pages, "PROCESSES_FROM", 1)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    forked = render_site(config)
    assert site_pages(site) == expected
    assert sorted(forked.rendered) == sorted(here.rendered)
    html = sorted(p for p in here.written if p.endswith(".html"))
    assert sorted(p for p in forked.written if p.endswith(".html")) == html
    assert render_site(config).rendered == []

    def broken(channel: str, name: str, *args: Any, **kwargs: Any) -> Any:
        raise ValueError(f"no model for {name}")

    monkeypatch.setattr(package_pages, "package_model", broken)
    (site / FULL / "packages" / "numpy.html").unlink()
    with pytest.raises(RuntimeError, match="no model for numpy"):
        render_site(config)


def test_listing_chunks_end_where_the_names_say() -> None:
    def files(names: list[str]) -> list[PublishedFile]:
        return [PublishedFile(n, "linux-64", n, 1, 0, None, None) for n in sorted(names)]

    names = [f"pkg{i:05d}-1.0-h_0.conda" for i in range(20_000)]
    before = [tuple(f.fn for f in c) for c in listing_module.chunked(files(names))]
    after = [
        tuple(f.fn for f in c) for c in listing_module.chunked(files([*names, "pkg10000x.conda"]))
    ]
    assert 20 < len(before) < 120
    assert max(len(c) for c in before) <= listing_module.CHUNK_ROWS_MAX
    assert len(set(after) - set(before)) == 1  # the chunk the new file went into


def test_listing_pages_start_where_the_names_say() -> None:
    def pages(names: list[str]) -> list[tuple[str, ...]]:
        files = [PublishedFile(n, "linux-64", n, 1, 0, None, None) for n in sorted(names)]
        paged = listing_module.paged(listing_module.chunked(files))
        return [tuple(f.fn for chunk in page for f in chunk) for page in paged]

    names = [f"pkg{i:06d}-1.0-h_0.conda" for i in range(200_000)]
    before = pages(names)
    assert [fn for page in before for fn in page] == sorted(names)  # every row once, in order
    assert 8 < len(before) < 60  # ~8,000 rows a page
    assert max(len(page) for page in before) <= listing_module.PAGE_ROWS_MAX
    # A file added or removed changes the one page it is on; the others stay as they were.
    assert len(set(pages([*names, "pkg100000x.conda"])) - set(before)) == 1
    assert len(set(pages(names[:5000] + names[5001:])) - set(before)) == 1
    # Names that never start a page still get pages of bounded size.
    same = pages([f"{'a' * 9}-{i}" for i in range(100_000)])
    assert all(len(page) <= listing_module.PAGE_ROWS_MAX for page in same)
    assert pages([]) == [()]


async def test_a_large_listing_is_split_into_pages(
    tmp_path: Path, example_upstream: ExampleUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pages of a few rows, to have several from the example channel.
    monkeypatch.setattr(listing_module, "CHUNK_ROWS", 2)
    monkeypatch.setattr(listing_module, "PAGE_CHUNKS", 2)
    monkeypatch.setattr(listing_module, "PAGE_ROWS_MAX", 4)
    site = tmp_path / "site"
    config = demo_config(site, example_upstream.url, body=ONE_CHANNEL)
    await mirror(config)
    first = render_site(config)
    directory = site / FULL / "linux-64"
    fns = sorted(records_of(repodata(site, FULL, "linux-64")))
    numbered = sorted(directory.glob("page-*.html"), key=lambda p: int(p.stem.split("-")[1]))
    paths = [directory / "index.html", *numbered]
    assert len(paths) >= 4
    assert all(f"{FULL}/linux-64/{p.name}" in first.written for p in paths)
    shown: list[str] = []
    for number, path in enumerate(paths, start=1):
        text = path.read_text()
        rows = re.findall(r'<tr><td><a href="([^"]+)">', text)
        assert rows
        shown += rows
        # Every page links every other page, by number and the package it starts with, above
        # and below its rows.
        links = re.findall(r'<a href="([^"]+)" title="from ([^"]+)">(\d+) ', text)
        others = [n for n in range(1, len(paths) + 1) if n != number]
        assert [int(n) for _href, _fn, n in links] == others * 2
        for href, starts_with, n in links:
            target = (path.parent / href).resolve()
            assert target == paths[int(n) - 1].resolve()
            assert re.search(rf'<tr><td><a href="{re.escape(starts_with)}">', target.read_text())
        # The pages after the first lead back to it.
        assert ('<a href="index.html">linux-64</a>' in text) == (number > 1)
        # The totals and the metadata files are on the first page only.
        assert ('class="meta-file"' in text) == (number == 1)
        assert (f"<b>{len(fns)}</b> package files" in text) == (number == 1)
    assert shown == fns

    # Nothing changed: nothing rendered. New metadata times: only the first page changes, and
    # the others, made of the same parts as last written, are not even read back.
    assert not any("linux-64/" in p for p in render_site(config).rendered)
    compared: list[str] = []
    write_parts = PageFiles.write_parts

    def spy(self: PageFiles, relpath: str, parts: list[Any]) -> bool:
        compared.append(relpath)
        return write_parts(self, relpath, parts)

    monkeypatch.setattr(PageFiles, "write_parts", spy)
    os.utime(directory / "repodata.json", ns=(1_600_000_000 * 10**9,) * 2)
    again = render_site(config)
    listing = sorted(p for p in again.rendered if p.startswith(f"{FULL}/linux-64/"))
    assert listing == sorted(f"{FULL}/linux-64/{p.name}" for p in paths)
    first_page = f"{FULL}/linux-64/index.html"
    assert [p for p in again.written if p.startswith(f"{FULL}/linux-64/")] == [first_page]
    assert [p for p in compared if p.startswith(f"{FULL}/linux-64/")] == [first_page]
    # A page changed by hand is written again, also when its size stayed the same.
    third = paths[2].read_bytes()
    fourth = paths[3].read_bytes()
    paths[2].write_bytes(third[:100])
    paths[3].write_bytes(fourth.replace(b"<tr>", b"<TR>", 1))
    compared.clear()
    os.utime(directory / "repodata.json", ns=(1_550_000_000 * 10**9,) * 2)
    render_site(config)
    assert paths[2].read_bytes() == third and paths[3].read_bytes() == fourth
    assert [p for p in compared if p.startswith(f"{FULL}/linux-64/")] == [
        first_page,
        f"{FULL}/linux-64/{paths[2].name}",
        f"{FULL}/linux-64/{paths[3].name}",
    ]

    # Fewer pages: the pages no longer produced go, also when the last render's manifest is
    # lost (then with the package pages of packages gone since, and nothing but pages).
    monkeypatch.setattr(listing_module, "PAGE_ROWS_MAX", 1000)
    monkeypatch.setattr(listing_module, "PAGE_CHUNKS", 1 << 40)
    os.utime(directory / "repodata.json", ns=(1_500_000_000 * 10**9,) * 2)
    (site / ".sitegen" / "render" / "manifest.json").unlink()
    gone_package = site / FULL / "packages" / "gone-away.html"
    gone_package.write_bytes(b"<p>a package no longer mirrored")
    kept = [directory / "notes.html", site / FULL / "packages" / "README.txt"]
    for path in kept:
        path.write_bytes(b"not a page")
    noarch = sorted((site / FULL / "noarch").glob("page-*.html"))
    assert noarch  # (every listing is rendered again without a manifest)
    fewer = render_site(config)
    assert sorted(fewer.removed) == sorted(
        [f"{FULL}/{p.parent.name}/{p.name}" for p in paths[1:] + noarch]
        + [f"{FULL}/packages/gone-away.html"]
    )
    assert not list(site.rglob("page-*.html")) and not gone_package.exists()
    assert all(path.exists() for path in kept)
    assert re.findall(r'<tr><td><a href="([^"]+)">', (directory / "index.html").read_text()) == fns
    assert 'class="pager"' not in (directory / "index.html").read_text()
