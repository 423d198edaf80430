"""Rendered pages of a real mirrored site: structure, links, counts, the landing page,
history and feed, passive channels and absolute snippets."""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml

from sitegen.config import SiteConfig
from sitegen.layout import METADATA_FILES
from sitegen.web.landing import BASE_PLACEHOLDER
from sitegen.web.render import render_site
from testkit.rendered import (
    APPROVED,
    FULL,
    assert_links_resolve,
    demo_config,
    distinct_run_ids,
    html_pages,
    page_text,
    records_of,
    repodata,
    snippet_text,
)
from testkit.site import mirror_unchecked
from testkit.upstream import ExampleUpstream

MAMBA_SNIPPET = "mamba, micromamba: mirrored_channels"

pytestmark = pytest.mark.integration


unique_run_ids = pytest.fixture(autouse=True, name="unique_run_ids")(distinct_run_ids)


@pytest.fixture
async def mirrored(tmp_path: Path, example_upstream: ExampleUpstream) -> tuple[SiteConfig, Path]:
    """The example upstream mirrored into two channels and rendered."""
    site = tmp_path / "site"
    config = demo_config(site, example_upstream.url)
    report = await mirror_unchecked(config)
    assert report.status == "completed", report.errors
    render_site(config)
    return config, site


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


async def test_the_link_check_reaches_what_scripts_fetch_and_the_feed(
    mirrored: tuple[SiteConfig, Path],
) -> None:
    """A run page's data-src (its filtered-out list, fetched by the page's script) and the
    Atom feed's links name files of the site too: one that names none is a broken link."""
    _config, site = mirrored
    (run_id,) = [r["id"] for r in json.loads(page_text(site, "history/history.json"))["runs"]]
    run_page = site / "history" / f"{run_id}.html"
    feed = site / "history" / "feed.atom"
    for path, attribute in ((run_page, "data-src"), (feed, "href")):
        text = path.read_text(encoding="utf-8")
        start = text.index(f'{attribute}="', text.index("<entry>") if path == feed else 0)
        end = text.index('"', start + len(attribute) + 2)
        path.write_text(f'{text[:start]}{attribute}="gone-file{text[end:]}', encoding="utf-8")
        with pytest.raises(AssertionError, match=r"broken .*gone-file"):
            assert_links_resolve(site)
        path.write_text(text, encoding="utf-8")
    assert_links_resolve(site)


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
    # mamba reads the unfiltered channel in place of its upstream, known by its URL; the
    # filtered one holds less than its upstream and is no mirror of it.
    mamba = yaml.safe_load(snippet_text(landing, MAMBA_SNIPPET) or "")
    assert mamba == {"mirrored_channels": {example_upstream.url: [f"{BASE_PLACEHOLDER}/{FULL}"]}}
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
    await mirror_unchecked(config)
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
    await mirror_unchecked(config)
    render_site(config)
    landing = page_text(site, "index.html")
    assert "channel_alias: https://conda.example.org/cloud" in landing
    assert BASE_PLACEHOLDER not in landing
    mamba = yaml.safe_load(snippet_text(landing, MAMBA_SNIPPET) or "")
    assert mamba == {
        "mirrored_channels": {example_upstream.url: [f"https://conda.example.org/{FULL}"]}
    }
    feed = ET.fromstring((site / "history/feed.atom").read_bytes())
    assert feed.get("{http://www.w3.org/XML/1998/namespace}base") == (
        "https://conda.example.org/history/"
    )
    # A package page's install lines are the landing page's, for that package. `pixi add`
    # has no channel option (it refuses --channel): the channel joins the workspace first.
    package = page_text(site, f"{FULL}/packages/numpy.html")
    url = f"https://conda.example.org/{FULL}"
    for line in (
        f"conda install --override-channels -c {url} numpy",
        f"mamba install --override-channels -c {url} numpy",
        f"pixi workspace channel add {url} && pixi add numpy",
    ):
        assert html.escape(line.replace("numpy", "<package>"), quote=False) in landing
        assert html.escape(line, quote=False) in package
    assert "data-copy" in package  # a copy button, shown by the page's script


async def test_a_channel_of_one_package_and_one_file_counts_them_in_the_singular(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    site = tmp_path / "site"
    one = "channels:\n  single/one:\n    url: {url}\n    subdirs: [linux-64]\n"
    only_futures = "    filters: {{names: {{include: [futures]}}}}\n"  # one .tar.bz2 file
    config = demo_config(site, example_upstream.url, body=one + only_futures)
    report = await mirror_unchecked(config)
    assert report.status == "completed", report.errors
    render_site(config)
    landing, channel = page_text(site, "index.html"), page_text(site, "single/one/index.html")
    for text in (landing, channel):
        assert "<b>1</b> package</span>" in text and "<b>1</b> file</span>" in text
    assert "packages, 1 files" not in channel  # the description
    assert 'placeholder="Search 1 package by name or summary"' in channel
    listing = page_text(site, "single/one/linux-64/index.html")
    assert "<b>1</b> package file</span>" in listing and ": 1 file with" in listing
    for text in (landing, channel, listing):
        found = re.search(r"\b1(</b>)? (package|file)s\b", text)
        assert found is None, found


async def test_metadata_nested_too_deeply_costs_only_what_it_describes(
    mirrored: tuple[SiteConfig, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """A channeldata.json or repodata.json edited into JSON nested deeper than a decoder goes
    is read as no file: the render goes on, and the other subdirs keep their pages."""
    config, site = mirrored
    deep = b"[" * 100_000 + b"]" * 100_000
    (site / FULL / "channeldata.json").write_bytes(b'{"packages": {"zlib": ' + deep + b"}}")
    (site / FULL / "noarch" / "repodata.json").write_bytes(
        b'{"packages": {"a-1-0.tar.bz2": {"name": "a", "size": 1, "x": ' + deep + b"}}}"
    )
    render_site(config)
    assert "cannot read repodata.json for pages" in caplog.text
    listing = page_text(site, f"{FULL}/linux-64/index.html")
    assert all(fn in listing for fn in records_of(repodata(site, FULL, "linux-64")))
    assert "zlib" in page_text(site, f"{FULL}/index.html")
