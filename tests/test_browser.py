"""A real browser on the rendered site: headless Chromium (Debian's) against real nginx.

The site is the example upstream mirrored into two channels and rendered. The browser opens
the landing page, searches a channel's packages by typing, opens a package page, downloads a
package through its link and checks the bytes against repodata's sha256, and reads the history.
Screenshots (desktop and phone) land in ``test-artifacts/`` for people to look at. Every
page kind passes axe-core's accessibility rules (those of Lighthouse's audits, touch targets
included) on a desktop and a phone, and has what search engines read (title, description).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trio

from sitegen.config import load_config
from sitegen.stats.model import last_days
from sitegen.stats.report import decode_doc
from sitegen.stats.run import run_stats
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import PackageSpec, write_channel
from sitegen.web import listing as listing_module
from sitegen.web.format import format_bytes
from sitegen.web.render import render_site
from testkit.advisories import write_zlib_advisory
from testkit.apache import require_server, webconf_server
from testkit.axe import (
    LAYOUT_SHIFT_MAX,
    axe_source,
    axe_violations,
    layout_shift,
    seo_problems,
)
from testkit.installers import Row, serve_index, write_folder
from testkit.private_site import PREFIX, PRIVATE, PUBLIC
from testkit.private_site import private_site as open_private_site
from testkit.require import in_ci, require_tool
from testkit.site import rewrite_repodata, site_config
from testkit.upstream import ExampleUpstream

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
CHANNEL = "cloud/example"


def _playwright(chromium: str = CHROMIUM) -> Any:
    """playwright's ``sync_playwright``; skips naming what is missing (fails when ``CI=true``)."""
    require_tool(os.access(chromium, os.X_OK), "chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        message = "the playwright Python package is missing (pip install -e '.[test]')"
        if in_ci():
            pytest.fail(f"CI=true: {message}", pytrace=False)
        pytest.skip(message)
    return sync_playwright


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _late(route: Any) -> None:
    time.sleep(1.0)  # long enough for a first paint without the script
    route.continue_()


def _no_horizontal_scroll(page: Any) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.mark.unit
@pytest.mark.parametrize("ci", [False, True])
def test_a_missing_browser_or_playwright_is_named(
    ci: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true" if ci else "")
    outcome = pytest.fail.Exception if ci else pytest.skip.Exception
    with pytest.raises(outcome, match="chromium is not installed"):
        _playwright(str(tmp_path / "chromium"))
    monkeypatch.setitem(sys.modules, "playwright.sync_api", None)  # import fails
    with pytest.raises(outcome, match="the playwright Python package is missing"):
        _playwright(sys.executable)


@pytest.mark.unit
@pytest.mark.parametrize("ci", [False, True])
def test_missing_axe_core_is_named(
    ci: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true" if ci else "")
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm to install it with
    outcome = pytest.fail.Exception if ci else pytest.skip.Exception
    with pytest.raises(outcome, match=r"axe-core .* \(npm\) is not installed \(npm is missing\)"):
        axe_source(tmp_path / "cache")


@pytest.mark.integration
async def test_browse_search_download_and_history(
    tmp_path: Path,
    example_upstream: ExampleUpstream,
    nginx_server_factory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sync_playwright = _playwright()
    axe = axe_source()
    # Listing pages of a few rows: the example channel's linux-64 listing gets several.
    monkeypatch.setattr(listing_module, "CHUNK_ROWS", 2)
    monkeypatch.setattr(listing_module, "PAGE_CHUNKS", 2)
    monkeypatch.setattr(listing_module, "PAGE_ROWS_MAX", 4)
    site = tmp_path / "site"
    config = site_config(
        site,
        f"""
channels:
  {CHANNEL}:
    url: {example_upstream.url}
    subdirs: [linux-64, noarch]
  internal/approved:
    url: {example_upstream.url}
    subdirs: [linux-64, noarch]
    filters:
      specs: {{include: ["numpy >=2"]}}
      include_dependencies: true
""",
    )
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert report.status == "completed", report.errors
    render_site(config)
    nginx = nginx_server_factory(site)
    base = nginx.url
    repodata = json.loads((site / CHANNEL / "linux-64" / "repodata.json").read_bytes())
    records = {**repodata["packages"], **repodata["packages.conda"]}
    ARTIFACTS.mkdir(exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
            page = context.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.on(
                "console",
                lambda msg: (
                    problems.append(f"console: {msg.text}") if msg.type == "error" else None
                ),
            )
            page.on(
                "response",
                lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
            )
            page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))

            # Landing page: both channels, and snippets built from the address in use.
            page.goto(base + "/")
            assert page.title() == config.title
            assert page.locator("article.channel").count() == 2
            snippet = page.locator("#use pre").first.inner_text()
            assert f"channel_alias: {base}/cloud" in snippet
            assert not [t for t in page.locator("#use pre").all_inner_texts() if "MIRROR-HOST" in t]
            assert page.locator("time[data-age] + span").count() >= 2  # "(… ago)"
            assert _no_horizontal_scroll(page)
            page.screenshot(path=str(ARTIFACTS / "landing.png"), full_page=True)

            # Landing page: one search over every channel, by name, summary or license.
            everywhere = page.locator("#all-search")
            everywhere.press_sequentially("BSD-3")
            page.wait_for_selector(".search-all[data-ready]", state="attached")
            found = page.locator(".search-all .search-results li")
            found.first.wait_for()
            texts = found.all_inner_texts()
            assert any(t.startswith("numpy 2.1.0 cloud/example") for t in texts), texts
            assert any(t.startswith("numpy 2.1.0 internal/approved") for t in texts), texts
            everywhere.fill("")

            # Channel page: type into the search, open the package.
            page.get_by_role("link", name=CHANNEL, exact=True).first.click()
            page.wait_for_url(f"{base}/{CHANNEL}/index.html")
            page.wait_for_selector("[data-search][data-ready]", state="attached")
            search = page.locator("#pkg-search")
            search.press_sequentially("nump")
            results = page.locator(".search-results li")
            results.first.wait_for()
            assert results.all_inner_texts() == ["numpy 2.1.0"]
            assert page.locator("#pkg-list").is_hidden()
            search.fill("no-such-package-anywhere")
            page.get_by_text("No package matches.").wait_for()
            search.fill("")
            assert page.locator("#pkg-list").is_visible()
            search.press_sequentially("numpy")
            page.locator(".search-results a", has_text="numpy").click()
            page.wait_for_url(f"{base}/{CHANNEL}/packages/numpy.html")

            # Package page: download both formats through their links and check the bytes.
            assert page.locator("h1").inner_text() == "numpy 2.1.0"
            # The landing page's install lines, for this package, and a copy button.
            install = page.locator(".snippet pre").first.inner_text()
            assert f"conda install --override-channels -c {base}/{CHANNEL} numpy" in install
            context.grant_permissions(["clipboard-read", "clipboard-write"])
            page.locator(".snippet button[data-copy]").first.click()
            assert page.evaluate("navigator.clipboard.readText()") == install
            page.screenshot(path=str(ARTIFACTS / "package.png"), full_page=True)
            for fmt in (".conda", ".tar.bz2"):
                link = page.locator(f"a[download]:text-is('{fmt}')").first
                fn = link.get_attribute("href").rsplit("/", 1)[1]
                with page.expect_download() as info:
                    link.click()
                download = info.value
                assert download.suggested_filename == fn
                assert _sha256(Path(download.path())) == records[fn]["sha256"], fn
            page.locator("details summary").first.click()  # dependencies and checksums
            first_sha = page.locator("code.hash").first.inner_text()
            assert first_sha in {r["sha256"] for r in records.values()}
            page.screenshot(path=str(ARTIFACTS / "package-details.png"), full_page=True)

            # History page and the run's own page.
            page.get_by_role("link", name="History", exact=True).click()
            page.wait_for_url(f"{base}/history/index.html")
            assert page.locator(".run h2 .badge-completed").count() == 1
            page.screenshot(path=str(ARTIFACTS / "history.png"), full_page=True)
            page.locator(".run h2 a").first.click()
            page.wait_for_selector("text=What changed")
            page.screenshot(path=str(ARTIFACTS / "run.png"), full_page=True)
            # Why is a package not in the curated channel? The run's filtered-out records.
            why = page.locator("[data-filtered] input")
            why.press_sequentially("numpy 1.26")
            page.wait_for_selector("[data-filtered][data-ready]", state="attached")
            rows = page.locator("[data-filtered] .search-results tbody tr")
            rows.first.wait_for()
            found = [row.split("\t") for row in rows.all_inner_texts()]
            assert found and all(r[:2] == ["numpy", "1.26.4"] for r in found), found
            assert {r[4] for r in found} == {"not in allowlist"}

            # A subdir listing, metadata first; its pages are linked by the package each
            # starts with.
            page.goto(f"{base}/{CHANNEL}/linux-64/index.html")
            first_row = page.locator("table.listing tbody tr").first.inner_text()
            assert first_row.startswith("repodata.json")
            pager = page.locator("nav.pager").first
            second = pager.locator("a").first
            starts_with = second.get_attribute("title").removeprefix("from ")
            second.click()
            page.wait_for_url(f"{base}/{CHANNEL}/linux-64/page-2.html")
            assert page.locator("nav.pager .current").first.inner_text().startswith("2 ")
            rows = page.locator("table.listing tbody tr")
            assert rows.first.inner_text().startswith(starts_with)
            assert "repodata.json" not in page.locator("table.listing").inner_text()
            assert problems == [], problems

            # Phone: nothing wider than the screen.
            phone = browser.new_context(viewport=PHONE, is_mobile=True, device_scale_factor=2)
            small = phone.new_page()
            for relpath, name in (
                ("index.html", "landing"),
                (f"{CHANNEL}/index.html", "channel"),
                (f"{CHANNEL}/packages/numpy.html", "package"),
                ("history/index.html", "history"),
                (f"{CHANNEL}/linux-64/page-2.html", "listing-page-2"),
            ):
                small.goto(f"{base}/{relpath}")
                assert _no_horizontal_scroll(small), relpath
                small.screenshot(path=str(ARTIFACTS / f"phone-{name}.png"), full_page=True)

            # Without JavaScript the channel page is a plain list, and the search is hidden.
            plain = browser.new_context(viewport=DESKTOP, java_script_enabled=False).new_page()
            plain.goto(f"{base}/{CHANNEL}/index.html")
            assert plain.locator("[data-search]").is_hidden()
            names = {r["name"] for r in records.values()}
            assert plain.locator("#pkg-list li").count() >= len(names)
            plain.locator("#pkg-list a", has_text="zlib").click()
            plain.wait_for_url(f"{base}/{CHANNEL}/packages/zlib.html")
            # Without JavaScript the install lines are selectable text; no copy button shows.
            assert "numpy" not in plain.locator(".snippet pre").first.inner_text()
            assert plain.locator(".snippet pre").first.inner_text().startswith("conda install")
            assert plain.locator("button[data-copy]").first.is_hidden()

            # Page quality: every page kind, on a desktop and on a phone.
            run_page = json.loads((site / "history" / "history.json").read_bytes())["runs"][0]
            kinds = {
                "landing": "index.html",
                "channel": f"{CHANNEL}/index.html",
                "package": f"{CHANNEL}/packages/numpy.html",
                "subdir listing": f"{CHANNEL}/linux-64/index.html",
                "subdir listing, page 2": f"{CHANNEL}/linux-64/page-2.html",
                "run": run_page["page"],
                "history": "history/index.html",
            }
            quality: list[str] = []
            # On the phone the script arrives late, as on a slow network: what it changes
            # after the first paint must not move the page (Lighthouse's layout shift).
            small.route("**/assets/site.js", _late)
            for viewer in (page, small):
                for kind, relpath in kinds.items():
                    viewer.goto(f"{base}/{relpath}")
                    viewer.wait_for_load_state("networkidle")
                    shift = layout_shift(viewer)  # before axe adds its own script
                    if shift > LAYOUT_SHIFT_MAX:
                        quality.append(f"{kind}: layout shift {shift:.3f} > {LAYOUT_SHIFT_MAX}")
                    for problem in axe_violations(viewer, axe) + seo_problems(viewer):
                        quality.append(f"{kind} ({viewer.viewport_size['width']}px): {problem}")
            assert quality == [], "\n".join(quality)
        finally:
            browser.close()


# --------------------------------------------------------------------------- statistics

CONDA_AGENT = "conda/24.1.2 requests/2.31.0 CPython/3.12.4 Linux/6.5.0 debian/12 glibc/2.36"


def _access_line(path: str, when: datetime, *, status: int = 200, size: int = 1000,
                 ip: str = "192.0.2.1", agent: str = CONDA_AGENT) -> str:  # fmt: skip
    """One line of nginx's and Apache's ``combined`` format."""
    stamp = when.strftime("%d/%b/%Y:%H:%M:%S +0000")
    return f'{ip} - - [{stamp}] "GET {path} HTTP/1.1" {status} {size} "-" "{agent}"\n'


def _access_log(path: Path, files: dict[str, dict[str, Any]]) -> None:
    """Downloads over some 40 days by several clients and tools, a repodata refresh, 404s of
    files that are not there, and a hostile line (skipped)."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=1, microsecond=0)
    numpy = sorted(fn for fn, r in files.items() if r["name"] == "numpy")[-1]
    zlib = sorted(fn for fn, r in files.items() if r["name"] == "zlib")[-1]
    lines = []
    for back, count in ((0, 3), (1, 2), (5, 4), (12, 1), (29, 2), (40, 5)):
        for client in range(count):
            agent = CONDA_AGENT if client % 2 else "pixi/0.39.0"
            when = today - timedelta(days=back)
            lines.append(_access_line(f"/{CHANNEL}/linux-64/{numpy}", when,
                                      size=files[numpy]["size"], ip=f"192.0.2.{client + 1}",
                                      agent=agent))  # fmt: skip
    lines.append(_access_line(f"/{CHANNEL}/linux-64/{zlib}", today - timedelta(days=3), size=77))
    lines.append(_access_line(f"/{CHANNEL}/linux-64/repodata.json", today, size=50))
    for ip in ("192.0.2.7", "192.0.2.8"):
        lines.append(_access_line(f"/{CHANNEL}/linux-64/pandas-2.2.3-py312_0.conda", today,
                                  status=404, size=150, ip=ip))  # fmt: skip
    lines.append(_access_line(f"/{CHANNEL}/linux-64/<img src=x onerror=alert(1)>-1-0.conda",
                              today, status=404))  # fmt: skip
    lines.append(_access_line(f"/{CHANNEL}/linux-64/{zlib}", today, size=77,
                              agent='<script>alert("ua")</script>'))  # fmt: skip
    path.write_text("".join(lines))


INSTALLERS = {
    "Miniconda3-latest-Linux-x86_64.sh": b"#!/bin/sh\n" * 400,
    "Miniconda3-latest-MacOSX-arm64.pkg": b"xar!" * 900,
}


def _installer_log(path: Path) -> None:
    """Downloads of the installer folder's files: today, and 40 days ago (all time only)."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=1, microsecond=0)
    linux, mac = INSTALLERS
    lines = [
        _access_line(f"/miniconda/{linux}", today, size=4000, ip="192.0.2.1"),
        _access_line(f"/miniconda/{linux}", today, size=4000, ip="192.0.2.2"),
        _access_line(f"/miniconda/{linux}", today - timedelta(days=40), size=4000),
        _access_line(f"/miniconda/{mac}", today, size=3600),
    ]
    with path.open("a") as handle:
        handle.writelines(lines)


def _number(text: str) -> int:
    return int(text.strip().replace(",", ""))


@pytest.mark.integration
async def test_statistics_page_shows_charts_and_the_numbers_of_stats_json(
    tmp_path: Path, example_upstream: ExampleUpstream, upstream_server_factory, nginx_server_factory
) -> None:
    sync_playwright = _playwright()
    axe = axe_source()
    site = tmp_path / "site"
    log = tmp_path / "logs" / "access.log"
    log.parent.mkdir()
    installers = tmp_path / "installers"
    write_folder(installers / "miniconda", INSTALLERS)
    installer_upstream = upstream_server_factory(installers)
    serve_index(installer_upstream, "/miniconda/")
    config = site_config(
        site,
        f"""
channels:
  {CHANNEL}:
    url: {example_upstream.url}
    subdirs: [linux-64, noarch]
installers:
  miniconda:
    url: {installer_upstream.url}/miniconda/
stats:
  logs: [{log}]
""",
    )
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert report.status == "completed", report.errors
    repodata = json.loads((site / CHANNEL / "linux-64" / "repodata.json").read_bytes())
    _access_log(log, {**repodata["packages"], **repodata["packages.conda"]})
    _installer_log(log)
    run_stats(config)
    render_site(config)
    doc = decode_doc((site / "stats.json").read_bytes())
    days = last_days(doc.today)
    by_day = {row.period: row for row in doc.periods}
    per_day = [by_day[d].downloads if d in by_day else 0 for d in days]
    assert doc.totals.downloads > sum(per_day) > 0  # older days count in all time only
    tools: dict[str, int] = {}
    for row in doc.tools:
        tools[row.tool] = tools.get(row.tool, 0) + row.client_days_30d
    nginx = nginx_server_factory(site)
    base = nginx.url

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport=DESKTOP).new_page()
            problems: list[str] = []
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.on("dialog", lambda dialog: problems.append(f"dialog: {dialog.message}"))
            page.on(
                "response",
                lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
            )
            page.goto(base + "/")
            page.get_by_role("link", name="Download statistics").click()
            page.wait_for_url(f"{base}/stats.html")

            # The charts: inline SVG, a bar per day of the last 30, a bar per tool.
            bars = page.locator("svg.chart-bars")
            assert bars.is_visible() and bars.get_attribute("role") == "img"
            assert page.locator("svg.chart-bars rect").count() == len(days)
            heights = [
                float(h)
                for h in page.locator("svg.chart-bars rect").evaluate_all(
                    "rects => rects.map(r => r.getAttribute('height'))"
                )
            ]
            assert [h > 0 for h in heights] == [n > 0 for n in per_day]
            assert page.locator("svg.chart-hbars rect").count() == len(tools)

            # The numbers are those of stats.json.
            def stat(name: str) -> str:
                return page.locator(f"[data-stat='{name}']").inner_text()

            assert _number(stat("downloads")) == doc.totals.downloads
            assert _number(stat("downloads-30d")) == sum(per_day)
            assert stat("bytes") == format_bytes(doc.totals.bytes)
            assert _number(stat("refreshes")) == doc.totals.refreshes
            page.get_by_text("Downloads per day as a table").click()
            table = page.locator("#per-day-table tbody tr").all_inner_texts()
            assert [row.split("\t") for row in table] == [
                [day, str(count)] for day, count in reversed(list(zip(days, per_day, strict=True)))
            ]
            top_all = page.locator("#top-all li").all_inner_texts()
            expected = [p for p in doc.packages if p.downloads]
            assert len(top_all) == len(expected)
            for text, row in zip(top_all, expected, strict=True):
                assert text.split()[0] == row.name and _number(text.split()[-1]) == row.downloads
            top_7d = [t.split()[0] for t in page.locator("#top-7d li").all_inner_texts()]
            assert top_7d == [p.name for p in doc.packages if p.downloads_7d]
            assert [row.split("\t") for row in page.locator("#tools-table tbody tr").all_inner_texts()] == [
                [tool, str(count)] for tool, count in sorted(tools.items(), key=lambda t: (-t[1], t[0]))
            ]  # fmt: skip
            missing = page.locator("#missing-table tbody tr").all_inner_texts()
            assert [m.split("\t")[0] for m in missing] == [m.file for m in doc.missing]
            assert _number(missing[0].split("\t")[-1]) == doc.missing[0].requests
            (channel,) = page.locator("#channels-table tbody tr").all_inner_texts()
            cells = channel.split("\t")
            (row,) = doc.channels
            assert cells[0] == CHANNEL and _number(cells[1]) == row.downloads
            assert cells[2] == format_bytes(row.bytes) and _number(cells[3]) == row.refreshes
            # The installer folder's downloads, counted apart from the channel's.
            (folder,) = doc.installers
            assert (folder.downloads, folder.downloads_30d) == (4, 3)
            installer_row = page.locator("#installers-table tbody tr")
            cells = installer_row.locator("td").all_inner_texts()
            assert cells[:4] == [
                "miniconda",
                str(folder.downloads),
                str(folder.downloads_30d),
                format_bytes(folder.bytes),
            ]
            ranked = installer_row.locator("li").all_inner_texts()
            assert [(t.split()[0], _number(t.split()[-1])) for t in ranked] == [
                (f.file, f.downloads) for f in sorted(folder.files, key=lambda f: -f.downloads)
            ]
            assert installer_row.get_by_role("link", name="miniconda").get_attribute("href") == (
                "miniconda/index.html"
            )
            # Hostile paths and user agents were counted as skipped or "other": never markup.
            assert page.locator("img").count() == 0 and "alert(" not in page.content()
            page.screenshot(path=str(ARTIFACTS / "stats.png"), full_page=True)

            # The package page: its downloads and a small trend chart.
            page.locator("#top-all a", has_text="numpy").click()
            page.wait_for_url(f"{base}/{CHANNEL}/packages/numpy.html")
            (numpy,) = [p for p in doc.packages if p.name == "numpy"]
            downloads = page.locator("dd.downloads").inner_text()
            assert (
                f"{numpy.downloads} in all, {numpy.downloads_30d} in the last 30 days" in downloads
            )
            spark = page.locator("dd.downloads svg.chart-spark")
            assert spark.is_visible() and spark.locator("polyline").count() == 1
            page.screenshot(path=str(ARTIFACTS / "package-downloads.png"), full_page=True)
            assert problems == [], problems

            # Light and dark: bars in the accent colour, text in the page's text colour.
            colours = """() => {
              const css = getComputedStyle(document.documentElement);
              const probe = document.createElement("div");
              document.body.append(probe);
              probe.style.color = css.getPropertyValue("--accent");
              const accent = getComputedStyle(probe).color;
              probe.remove();
              const text = getComputedStyle(document.body).color;
              const bar = getComputedStyle(document.querySelector("svg.chart-bars rect")).fill;
              const label = getComputedStyle(document.querySelector("svg.chart-bars text")).fill;
              return {accent, text, bar, label, bg: getComputedStyle(document.body).backgroundColor};
            }"""
            seen = []
            for scheme in ("light", "dark"):
                themed = browser.new_context(viewport=DESKTOP, color_scheme=scheme).new_page()
                themed.goto(f"{base}/stats.html")
                found = themed.evaluate(colours)
                assert found["bar"] == found["accent"] and found["label"] == found["text"], found
                seen.append(found["bg"])
                themed.screenshot(path=str(ARTIFACTS / f"stats-{scheme}.png"), full_page=True)
            assert seen[0] != seen[1]

            # Without JavaScript the charts are there all the same.
            plain = browser.new_context(viewport=DESKTOP, java_script_enabled=False).new_page()
            plain.goto(f"{base}/stats.html")
            assert plain.locator("svg.chart-bars rect").count() == len(days)

            # Phone: nothing wider than the screen; page quality on desktop, phone and dark.
            phone = browser.new_context(viewport=PHONE, is_mobile=True, device_scale_factor=2)
            small = phone.new_page()
            dark = browser.new_context(viewport=DESKTOP, color_scheme="dark").new_page()
            kinds = {
                "landing": "index.html",
                "statistics": "stats.html",
                "package": f"{CHANNEL}/packages/numpy.html",
            }
            quality: list[str] = []
            for viewer, label in ((page, "desktop"), (small, "phone"), (dark, "dark")):
                for kind, relpath in kinds.items():
                    viewer.goto(f"{base}/{relpath}")
                    viewer.wait_for_load_state("networkidle")
                    if viewer is small:
                        assert _no_horizontal_scroll(small), relpath
                        small.screenshot(path=str(ARTIFACTS / f"phone-{kind}-stats.png"), full_page=True)  # fmt: skip
                    for problem in axe_violations(viewer, axe) + seo_problems(viewer):
                        quality.append(f"{kind} ({label}): {problem}")
            assert quality == [], "\n".join(quality)
        finally:
            browser.close()


@pytest.mark.integration
async def test_pending_approval_page(
    tmp_path: Path, example_upstream: ExampleUpstream, nginx_server_factory
) -> None:
    """An approval-gated, private channel in the browser: the landing page names it with a
    lock and shows its token set-up for the address in use; its pending page lists the waiting
    candidates and what approving one would pull in, and leads to the approved list; a package
    page lists its advisories and the first run's page what they blocked. axe-core finds
    nothing on these pages. (nginx serves the site here without the token check: the
    pages are under test, not the access.)"""
    sync_playwright = _playwright()
    axe = axe_source()
    site = tmp_path / "site"
    (tmp_path / "approvals.yaml").write_text(
        '- channel: "internal/approved"\n  spec: "python"\n  by: "alice"\n'
        '  when: "2026-12-01T10:00:00Z"\n  why: "the interpreter"\n'
    )
    (tmp_path / "channels.yaml").write_text(
        f"output: {site}\n"
        "download: {concurrency: 4, per_host: 4, retries: 1, timeout: 10}\n"
        "channels:\n"
        f"  {CHANNEL}:\n    url: {example_upstream.url}\n    subdirs: [linux-64, noarch]\n"
        "    filters: {advisories: {files: [zlib.json], min_score: 7}}\n"
        f"  internal/approved:\n    approval: {{from: {CHANNEL}}}\n    access: private\n"
    )
    write_zlib_advisory(tmp_path / "zlib.json")
    config = load_config(tmp_path / "channels.yaml")
    for _ in range(2):  # the gated channel reads its source as published when a run starts
        report = await run_mirror(config, MirrorOptions(progress=False))
        assert report.status == "completed", report.errors
    render_site(config)
    base = nginx_server_factory(site).url
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            quality: list[str] = []
            for viewport in (DESKTOP, PHONE):
                page = browser.new_context(viewport=viewport).new_page()
                problems: list[str] = []
                page.on("pageerror", lambda exc, p=problems: p.append(f"page error: {exc}"))
                page.on(
                    "response",
                    lambda r, p=problems: (
                        p.append(f"{r.status} {r.url}") if r.status >= 400 else None
                    ),
                )
                page.goto(f"{base}/")
                card = page.locator("article.channel.private")
                assert card.locator("h3").inner_text() == "internal/approved private"
                setup = page.locator("#use pre", has_text="<TOKEN>").inner_text()
                host = base.split("://", 1)[1]
                assert f"{base}/t/<TOKEN>/internal/approved" in setup
                assert f"pixi auth login {host} --token <TOKEN>" in setup
                assert f"machine {host.split(':')[0]} login <NAME> password <TOKEN>" in setup
                assert "MIRROR-HOST" not in setup
                for problem in axe_violations(page, axe) + seo_problems(page):
                    quality.append(f"landing ({viewport['width']}px): {problem}")
                card.locator("h3 a").click()
                page.wait_for_url(f"{base}/internal/approved/index.html")
                for problem in axe_violations(page, axe) + seo_problems(page):
                    quality.append(f"private channel ({viewport['width']}px): {problem}")
                page.get_by_role("link", name="pending approval").click()
                page.wait_for_url(f"{base}/internal/approved/approvals/pending.html")
                assert page.locator("h1").inner_text().startswith("Pending approval")
                row = page.locator("table.pending tbody tr", has_text="numpy").first
                assert "BSD-3-Clause" in row.inner_text()
                row.locator("summary").click()
                assert "libopenblas-0.3.27" in row.locator("ul.files").inner_text()
                assert page.locator("table.pending tbody tr", has_text="python 3").count() == 0
                assert _no_horizontal_scroll(page)
                page.screenshot(
                    path=str(ARTIFACTS / f"pending-{viewport['width']}.png"), full_page=True
                )
                for problem in axe_violations(page, axe) + seo_problems(page):
                    quality.append(f"pending ({viewport['width']}px): {problem}")
                page.get_by_role("link", name="Approved", exact=True).click()
                page.wait_for_url(f"{base}/internal/approved/approvals/index.html")
                assert "alice" in page.locator("table.approvals").inner_text()
                for problem in axe_violations(page, axe) + seo_problems(page):
                    quality.append(f"approved ({viewport['width']}px): {problem}")
                # Advisories on a package page and, on the first run's page, what they blocked.
                first_run = json.loads((site / "history" / "history.json").read_bytes())
                for kind, relpath in (
                    ("advisories", f"{CHANNEL}/packages/zlib.html"),
                    ("run with advisories", first_run["runs"][-1]["page"]),
                ):
                    page.goto(f"{base}/{relpath}")
                    assert "TEST-ZLIB-1" in page.locator("main").inner_text(), relpath
                    for problem in axe_violations(page, axe) + seo_problems(page):
                        quality.append(f"{kind} ({viewport['width']}px): {problem}")
                assert problems == [], problems
            assert quality == [], "\n".join(quality)
        finally:
            browser.close()


@pytest.mark.integration
async def test_long_unbreakable_names_do_not_push_pages_sideways(
    tmp_path: Path, nginx_server_factory
) -> None:
    """Names with no place to break (conda-forge's backports.functools_lru_cache is one),
    a summary that is one long word and an upstream file name rejected on the run page wrap
    inside the page on a phone instead of making it scroll sideways."""
    sync_playwright = _playwright()
    name = "backports.functools_lru_cache"
    upstream = tmp_path / "upstream"
    write_channel(upstream, [PackageSpec(name, "2.0.0", "pyhd8ed1ab_0", subdir="noarch")])

    def hostile(document: dict[str, Any]) -> None:
        ((_fn, record),) = document["packages.conda"].items()
        record["summary"] = "x" * 120
        document["packages.conda"]["y" * 120 + "-2.0.0-pyhd8ed1ab_0.conda"] = dict(record)

    rewrite_repodata(upstream, "noarch", hostile)
    site = tmp_path / "site"
    config = site_config(
        site, f"channels:\n  {CHANNEL}:\n    url: {upstream.as_uri()}\n    subdirs: [noarch]\n"
    )
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert report.status == "completed", report.errors
    render_site(config)
    base = nginx_server_factory(site).url
    (run,) = json.loads((site / "history" / "history.json").read_bytes())["runs"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport=PHONE).new_page()
            wide = []
            for relpath in (f"{CHANNEL}/packages/{name}.html", run["page"]):
                page.goto(f"{base}/{relpath}")
                assert name in page.locator("main").inner_text()
                if not _no_horizontal_scroll(page):
                    wide.append(relpath)
            assert wide == []
        finally:
            browser.close()


@pytest.mark.integration
def test_installer_pages_list_the_files_to_download_and_pass_the_audits(
    tmp_path: Path, upstream_server_factory, nginx_server_factory
) -> None:
    """An installer folder's page, reached from the landing page: each installer downloads
    through its link with the listed sha256; the folder's page and the run page (with an
    upstream row skipped for its long name) pass the audits and fit a phone."""
    sync_playwright = _playwright()
    axe = axe_source()
    folder = tmp_path / "upstream" / "miniconda"
    files = {
        "Miniconda3-latest-Linux-x86_64.sh": b"#!/bin/sh\n" * 400,
        "Miniconda3-latest-MacOSX-arm64.pkg": b"xar!" * 900,
    }
    write_folder(folder, files, extra=[Row("z" * 240 + ".sh", "1.0K", "2025-01-01 00:00", "0")])
    server = upstream_server_factory(folder.parent)
    serve_index(server, "/miniconda/")
    site = tmp_path / "site"
    config = site_config(
        site, f"channels: {{}}\ninstallers:\n  miniconda:\n    url: {server.url}/miniconda/\n"
    )
    report = trio.run(run_mirror, config, MirrorOptions(progress=False))
    assert report.status == "completed", report.errors
    render_site(config)
    base = nginx_server_factory(site).url
    (run,) = json.loads((site / "history" / "history.json").read_bytes())["runs"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport=DESKTOP, accept_downloads=True).new_page()
            page.goto(f"{base}/")
            page.get_by_role("link", name="miniconda", exact=True).click()
            page.wait_for_url(f"{base}/miniconda/index.html")
            rows = page.locator("table.listing tbody tr")
            assert rows.count() == 2
            for name, data in files.items():
                row = rows.filter(has_text=name)
                assert row.locator("code.hash").inner_text() == hashlib.sha256(data).hexdigest()
                with page.expect_download() as info:
                    row.get_by_role("link", name=name).click(modifiers=["Alt"])
                assert _sha256(Path(info.value.path())) == hashlib.sha256(data).hexdigest()
            quality = []
            phone = browser.new_context(viewport=PHONE, is_mobile=True).new_page()
            for viewer in (page, phone):
                for relpath in ("index.html", "miniconda/index.html", run["page"]):
                    viewer.goto(f"{base}/{relpath}")
                    viewer.wait_for_load_state("networkidle")
                    if not _no_horizontal_scroll(viewer):
                        quality.append(f"{relpath}: wider than the screen")
                    for problem in axe_violations(viewer, axe) + seo_problems(viewer):
                        quality.append(f"{relpath} ({viewer.viewport_size['width']}px): {problem}")
            assert quality == [], "\n".join(quality)
        finally:
            browser.close()


@pytest.mark.integration
def test_snippets_browsed_with_a_path_token_show_no_token(
    example_upstream: ExampleUpstream,
) -> None:
    """Pages browsed under /t/<token>/ (after the prefix, as conda writes it, or after the host)
    behind the real nginx check: the "Use this mirror" snippets, which people copy and share,
    name the site's plain address and <TOKEN>, never the token the page was opened with."""
    require_server("nginx")
    sync_playwright = _playwright()
    with open_private_site(example_upstream) as private:
        token = private.tokens["ci"]
        state = private.root / "state"
        running = webconf_server("nginx", private.config, state, prefix=PREFIX)
        with running, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                site = f"{running.url}{PREFIX}"
                for path, public in (
                    (f"{PREFIX}/t/{token}/index.html", True),
                    (f"/t/{token}{PREFIX}/index.html", True),
                    (f"{PREFIX}/t/{token}/{PRIVATE}/index.html", False),
                ):
                    assert page.goto(f"{running.url}{path}").status == 200
                    snippets = "\n".join(page.locator("pre").all_inner_texts())
                    assert token[13:] not in snippets, path
                    assert f"{site}/t/<TOKEN>/{PRIVATE}" in snippets
                    if public:
                        assert f"-c {site}/{PUBLIC} <package>" in snippets
            finally:
                browser.close()
