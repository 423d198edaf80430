"""The statistics page in a real browser: its charts and the numbers of stats.json, made
from access logs of the site's downloads and of an installer folder's."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sitegen.stats.model import last_days
from sitegen.stats.report import decode_doc
from sitegen.stats.run import run_stats
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.web.format import format_bytes
from sitegen.web.render import render_site
from testkit.axe import axe_source, axe_violations, seo_problems
from testkit.browser import ARTIFACTS, CHANNEL, CHROMIUM, CHROMIUM_ARGS, DESKTOP, PHONE
from testkit.browser import no_horizontal_scroll as _no_horizontal_scroll
from testkit.browser import sync_playwright_or_skip as _playwright
from testkit.installers import serve_index, write_folder
from testkit.site import site_config
from testkit.upstream import ExampleUpstream

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
