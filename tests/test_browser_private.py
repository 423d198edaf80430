"""Private and approval-gated channels in a real browser: the pending approval page, and
snippets that never show the path token a page was browsed with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sitegen.config import load_config
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.web.render import render_site
from testkit.advisories import write_zlib_advisory
from testkit.apache import require_server, webconf_server
from testkit.axe import axe_source, axe_violations, seo_problems
from testkit.browser import ARTIFACTS, CHANNEL, CHROMIUM, CHROMIUM_ARGS, DESKTOP, PHONE
from testkit.browser import no_horizontal_scroll as _no_horizontal_scroll
from testkit.browser import sync_playwright_or_skip as _playwright
from testkit.private_site import PREFIX, PRIVATE, PUBLIC
from testkit.private_site import private_site as open_private_site
from testkit.upstream import ExampleUpstream


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
                # Credentials are keyed by the host name: rattler never looks up "host:port".
                host = base.split("://", 1)[1].split(":")[0]
                assert f"{base}/t/<TOKEN>/internal/approved" in setup
                assert f"pixi auth login {host} --token <TOKEN>" in setup
                assert f'{{"{host}": {{"BearerToken": "<TOKEN>"}}}}' in setup
                assert f"machine {host} login <NAME> password <TOKEN>" in setup
                # libmamba, though, looks a request's credentials up by "host:port".
                authority = base.split("://", 1)[1]
                mamba = f'{{"{authority}": {{"type": "BearerToken", "token": "<TOKEN>"}}}}'
                assert mamba in setup
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
