"""An installer folder's page in a real browser: its files download with the listed sha256,
and its pages pass the audits and fit a phone."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import trio

from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.web.render import render_site
from testkit.axe import axe_source, axe_violations, seo_problems
from testkit.browser import CHROMIUM, CHROMIUM_ARGS, DESKTOP, PHONE
from testkit.browser import no_horizontal_scroll as _no_horizontal_scroll
from testkit.browser import sync_playwright_or_skip as _playwright
from testkit.installers import Row, serve_index, write_folder
from testkit.site import sha256_of, site_config


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
                assert sha256_of(Path(info.value.path())) == hashlib.sha256(data).hexdigest()
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
