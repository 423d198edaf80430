"""Download statistics on rendered pages: the renderer following ``stats.json``, ``sitegen
mirror`` showing the counts of its own run (one in the singular), package pages leaving no
cyclic garbage; descriptions of local packages."""

from __future__ import annotations

import gc
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trio

from sitegen import layout
from sitegen.cli import main
from sitegen.config import parse_config
from sitegen.stats.run import run_stats
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.web.environment import make_environment
from sitegen.web.format import paragraphs
from sitegen.web.package import DESCRIPTION_MAX, about_package, package_model, page_names
from sitegen.web.render import TEMPLATES_DIR, render_site
from sitegen.web.writer import render_page
from testkit.installers import serve_index, write_folder
from testkit.local import index_of, info_members, write_conda
from testkit.records import rec
from testkit.site import site_config
from testkit.stats_pages import PUBLIC, TODAY, line
from testkit.upstream import ExampleUpstream

# --------------------------------------------------------------------------- descriptions


@pytest.mark.unit
def test_descriptions_are_bounded_paragraphs() -> None:
    text = "First  line\r\nsecond line\n\n\n  \n<b>Second</b>   paragraph\n"
    assert paragraphs(text, 100) == ["First line\nsecond line", "<b>Second</b> paragraph"]
    assert paragraphs(text, 15) == ["First line\nsec…"]
    assert paragraphs(["not", "text"], 100) == [] and paragraphs(None, 100) == []
    records = [rec("pkg", "1.0", "0", summary="Short", description="From the record")]
    about = about_package(records, {"description": "Long\n\ntext"})
    assert about["description"] == ["Long", "text"]
    assert about_package(records, None)["description"] == ["From the record"]
    assert about_package(records, {"description": "Short"})["description"] == []  # = summary
    assert len("".join(about_package(records, {"description": "x" * 9000})["description"])) == (
        DESCRIPTION_MAX
    )


@pytest.mark.integration
def test_local_package_page_shows_summary_description_and_links(tmp_path: Path) -> None:
    folder = tmp_path / "incoming"
    about = {
        "summary": "Our <internal> library",
        "description": "Does things.\n\nSee the <script>alert(1)</script> docs\nfor more.",
        "home": "https://lib.example.org",
        "dev_url": "https://git.example.org/lib",
        "doc_url": "javascript:alert(1)",
        "license": "Proprietary",
    }
    write_conda(folder / "ourlib-1.0-0.conda", info_members(index_of("ourlib"), about))
    site = tmp_path / "site"
    config = parse_config(
        f"output: {site}\nchannels:\n  internal/own:\n    path: {folder}\n    subdirs: [linux-64]\n"
    )
    report = trio.run(run_mirror, config, MirrorOptions(progress=False))
    assert not report.failed, report.errors
    render_site(config)
    page = (site / "internal/own/packages/ourlib.html").read_text()
    assert '<p class="lead">Our &lt;internal&gt; library</p>' in page
    assert (
        '<div class="description"><p>Does things.</p><p>See the &lt;script&gt;alert(1)'
        "&lt;/script&gt; docs\nfor more.</p></div>"
    ) in page
    assert '<a href="https://lib.example.org" rel="nofollow noopener noreferrer"' in page
    assert '<a href="https://git.example.org/lib" rel="nofollow noopener noreferrer"' in page
    assert "javascript:" not in page and "<dt>Documentation</dt>" not in page
    assert "<script>alert" not in page


# --------------------------------------------------------------------------- rendering


def write_log(path: Path, lines: list[str]) -> None:
    with path.open("a") as handle:
        handle.writelines(text + "\n" for text in lines)


def files_of(site: Path) -> dict[str, str]:
    repodata = json.loads((site / PUBLIC / "linux-64" / "repodata.json").read_bytes())
    records = {**repodata["packages"], **repodata["packages.conda"]}
    return {r["name"]: fn for fn, r in sorted(records.items()) if fn.endswith(".conda")}


@pytest.mark.integration
async def test_render_follows_stats_json(tmp_path: Path, example_upstream: ExampleUpstream):
    site = tmp_path / "site"
    log = tmp_path / "access.log"
    log.touch()
    config = site_config(
        site,
        f"""
channels:
  {PUBLIC}:
    url: {example_upstream.url}
    subdirs: [linux-64]
stats:
  logs: [{log}]
""",
    )
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert report.status == "completed", report.errors
    render_site(config)
    assert not (site / layout.STATS_PAGE).exists()
    assert "Download statistics" not in (site / "index.html").read_text()
    packages = sorted(p.relative_to(site).as_posix() for p in (site / PUBLIC).glob("packages/*"))
    fn = files_of(site)

    write_log(log, [line(f"/{PUBLIC}/linux-64/{fn['numpy']}", TODAY)])
    run_stats(config, TODAY)
    first = render_site(config)
    # The statistics page, the landing page's link and every package page's downloads.
    assert set(first.written) == {layout.STATS_PAGE, "index.html", *packages}
    assert '<b data-stat="downloads">1</b>' in (site / layout.STATS_PAGE).read_text()
    assert "none counted yet" in (site / PUBLIC / "packages" / "zlib.html").read_text()

    again = render_site(config)
    assert again.rendered == []

    # zlib is downloaded: its page, the statistics and the landing page change, nothing else.
    write_log(log, [line(f"/{PUBLIC}/linux-64/{fn['zlib']}", TODAY)])
    run_stats(config, TODAY)
    changed = render_site(config)
    zlib = f"{PUBLIC}/packages/zlib.html"
    assert sorted(changed.rendered) == sorted([layout.STATS_PAGE, "index.html", zlib])
    assert "<b>1</b> in all" in (site / zlib).read_text()

    # A day later numpy's trend moves on; zlib and numpy pages, nothing else.
    run_stats(config, TODAY + timedelta(days=1))
    later = render_site(config)
    numpy = f"{PUBLIC}/packages/numpy.html"
    assert sorted(p for p in later.rendered if "/packages/" in p) == [numpy, zlib]

    # Without stats.json the statistics page goes, and the package pages lose their block.
    (site / layout.STATS_JSON).unlink()
    gone = render_site(config)
    assert gone.removed == [layout.STATS_PAGE]
    assert "<dt>Downloads</dt>" not in (site / zlib).read_text()
    assert "Download statistics" not in (site / "index.html").read_text()


def _one_download_counted(tmp_path: Path, url: str, more: str = "") -> Path:
    """channels.yaml of the example upstream at ``url`` as PUBLIC (linux-64), its statistics
    read from an access log of one download of zlib today; ``more``: further settings."""
    log = tmp_path / "access.log"
    log.write_text(
        line(f"/{PUBLIC}/linux-64/zlib-1.3.1-h0_0.conda", datetime.now(UTC).date()) + "\n"
    )
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {tmp_path / 'site'}\n"
        "download: {retries: 0}\n"
        f"channels:\n  {PUBLIC}:\n    url: {url}\n    subdirs: [linux-64]\n"
        f"{more}"
        f"stats:\n  logs: [{log}]\n"
    )
    return config_path


@pytest.mark.integration
def test_mirror_pages_show_the_downloads_counted_in_the_same_run(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    config_path = _one_download_counted(tmp_path, example_upstream.url)
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 0
    site = tmp_path / "site"
    assert '<b data-stat="downloads">1</b>' in (site / layout.STATS_PAGE).read_text()
    assert "<b>1</b> in all" in (site / PUBLIC / "packages" / "zlib.html").read_text()
    landing = (site / "index.html").read_text()
    assert '<a href="stats.html">Download statistics</a>' in landing


@pytest.mark.integration
def test_one_installer_and_one_download_are_counted_in_the_singular(
    tmp_path: Path, example_upstream: ExampleUpstream, upstream_server_factory
) -> None:
    folder = tmp_path / "upstream" / "miniconda"
    write_folder(folder, {"Miniconda3-latest-Linux-x86_64.sh": b"#!/bin/sh\n" * 100})
    installers = upstream_server_factory(folder.parent)
    serve_index(installers, "/miniconda/")
    config_path = _one_download_counted(
        tmp_path,
        example_upstream.url,
        f"installers:\n  miniconda:\n    url: {installers.url}/miniconda/\n",
    )
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 0
    site = tmp_path / "site"
    stats = (site / layout.STATS_PAGE).read_text()
    assert '<b data-stat="downloads-30d">1</b> download in the last 30 days' in stats
    landing = (site / "index.html").read_text()
    assert "<b>1</b> download in the last 30 days" in landing
    assert "<b>1</b> installer</span>" in landing
    page = (site / "miniconda" / "index.html").read_text()
    assert "<b>1</b> installer</span>" in page
    assert ": 1 file with sizes" in page  # the description
    for text in (stats, landing, page):
        found = re.search(r"\b1(</b>)? (installer|file|download)s\b", text)
        assert found is None, found


@pytest.mark.unit
def test_a_package_page_leaves_no_cyclic_garbage() -> None:
    """Package pages are rendered with the cyclic GC paused: garbage in cycles would keep each
    page's model (every build of the package) alive until the render ends. A macro module
    imported ``with context`` makes such a cycle on every render."""
    env = make_environment(TEMPLATES_DIR)
    records = [rec("numpy", "2.1.0", "py312_0", depends=["python >=3.12"])]
    relpath = layout.package_page_path(PUBLIC, "numpy")
    model = package_model(PUBLIC, "numpy", records, known_names=page_names(["numpy", "python"]))
    model["advisories"] = []
    render_page(env, "t", "package.html", relpath, model=model)  # templates compiled
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        render_page(env, "t", "package.html", relpath, model=model)
        gc.collect()
        left = [type(o).__name__ for o in gc.garbage]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert left == []
