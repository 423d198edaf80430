"""A real browser on the rendered site: headless Chromium (Debian's) against real nginx.

The site is the example upstream mirrored into two channels and rendered. The browser opens
the landing page, searches a channel's packages by typing, opens a package page, downloads a
package through its link and checks the bytes against repodata's sha256, and reads the history.
Screenshots (desktop and phone) land in ``test-artifacts/`` for people to look at. Every
page kind passes axe-core's accessibility rules (those of Lighthouse's audits, touch targets
included) on a desktop and a phone, and has what search engines read (title, description).
Long names, dependency specs and licenses wrap on a phone instead of pushing pages sideways.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import PackageSpec, write_channel
from sitegen.web import listing as listing_module
from sitegen.web.render import render_site
from testkit.axe import LAYOUT_SHIFT_MAX, axe_source, axe_violations, layout_shift, seo_problems
from testkit.browser import ARTIFACTS, CHANNEL, CHROMIUM, CHROMIUM_ARGS, DESKTOP, PHONE
from testkit.browser import no_horizontal_scroll as _no_horizontal_scroll
from testkit.browser import sync_playwright_or_skip as _playwright
from testkit.site import rewrite_repodata, sha256_of, site_config
from testkit.upstream import ExampleUpstream


def _late(route: Any) -> None:
    time.sleep(1.0)  # long enough for a first paint without the script
    route.continue_()


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
                assert sha256_of(Path(download.path())) == records[fn]["sha256"], fn
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
async def test_long_specs_licenses_versions_and_builds_wrap_on_a_phone(
    tmp_path: Path, nginx_server_factory
) -> None:
    """A dependency spec whose versions leave no place to break (a noarch Python package's
    ``python >=2.7,!=3.0.*,!=3.1.*...``), on the package page and in a run's report of the
    dependencies it could not satisfy, a license that is one long word, and versions and
    build strings with no place to break (upstream's to choose, in file names of up to 255
    characters), on the package page, in a run's report of the dependencies it added and
    among its filtered-out records, wrap inside the page on a phone instead of making it
    scroll sideways."""
    sync_playwright = _playwright()
    excluded = ",".join(f"!=1.2.{n}" for n in range(14, 30))
    python = "python >=2.7,!=3.0.*,!=3.1.*,!=3.2.*,!=3.3.*,!=3.4.*,!=3.5.*"
    upstream = tmp_path / "upstream"
    package = PackageSpec(
        "wordy",
        "1.0.dev" + "0" * 30,
        "py312h" + "0" * 44 + "_0",
        depends=(f"zlib >=1.2.13,{excluded}", python),
        license="LicenseRef-" + "Proprietary" * 8,
        license_family="Other" * 20,
    )
    zlib = PackageSpec("zlib", "1.2.13", "h" + "0" * 44 + "_0")
    unwanted = PackageSpec("unwanted", "2.0.dev" + "0" * 30, "h" + "0" * 44 + "_0")
    write_channel(upstream, [package, zlib, unwanted])
    site = tmp_path / "site"
    config = site_config(
        site,
        f"channels:\n  {CHANNEL}:\n    url: {upstream.as_uri()}\n    subdirs: [linux-64]\n"
        "    filters: {specs: {include: [wordy]}, include_dependencies: true}\n",
    )
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert [u.spec for u in report.mirrors[0].unsatisfied] == [python, python]
    render_site(config)
    base = nginx_server_factory(site).url
    (run,) = json.loads((site / "history" / "history.json").read_bytes())["runs"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport=PHONE).new_page()
            wide = []
            for relpath in (f"{CHANNEL}/packages/wordy.html", run["page"]):
                page.goto(f"{base}/{relpath}")
                page.locator("details").evaluate_all("ds => ds.forEach(d => { d.open = true; })")
                assert python in page.locator("main").inner_text()
                if not _no_horizontal_scroll(page):
                    wide.append(relpath)
            # The run page's script lists the filtered-out records searched for.
            page.locator("[data-filtered] input").press_sequentially("unwanted")
            page.wait_for_selector("[data-filtered][data-ready]", state="attached")
            assert len(page.locator("[data-filtered] .search-results tbody tr").all()) == 1
            if not _no_horizontal_scroll(page):
                wide.append("filtered-out records")
            assert wide == []
        finally:
            browser.close()
