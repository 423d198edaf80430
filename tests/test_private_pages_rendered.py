"""Private channels on the pages: a site with one public and one private channel, mirrored and
rendered. The public pages (landing, history, run pages, history.json, the feed and the
cross-channel search) name no package of the private channel; its own pages and the landing
page's set-up show the token forms with the ``<TOKEN>`` placeholder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sitegen.access.pages import TOKEN_PLACEHOLDER
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import PackageSpec, write_channel
from sitegen.web.private import NEEDED_BY_HIDDEN, landing_private, token_snippet
from sitegen.web.render import render_site
from testkit.private_pages import BASE, PRIVATE, PUBLIC, private_config
from testkit.site import site_config
from testkit.upstream import ExampleUpstream

SECRET_NAMES = ("acme-secret-solver", "acme-licensed-kernel")


# The heading of a private channel's set-up on its own page.
TOKEN_SECTION = "Use this channel (private)"


def write_licensed(folder: Path) -> None:
    write_channel(
        folder,
        [
            PackageSpec(name=SECRET_NAMES[0], version="3.1", build="h0_0", license="Proprietary"),
            PackageSpec(name=SECRET_NAMES[1], version="7.2", build="h1_0", license="Proprietary"),
        ],
    )
    for stray in folder.rglob("repodata.json"):
        stray.unlink()  # a local folder holds package files only


@pytest.fixture
async def private_site(tmp_path: Path, example_upstream: ExampleUpstream) -> Path:
    folder = tmp_path / "licensed"
    write_licensed(folder)
    site = tmp_path / "site"
    config = private_config(site, example_upstream.url, folder)
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert report.status == "completed", report.errors
    assert {c.channel for c in report.channels} == {PUBLIC, PRIVATE}
    render_site(config)
    return site


@pytest.mark.integration
async def test_public_pages_name_no_private_package(private_site: Path) -> None:
    site = private_site
    # The private channel has its pages, under its own path (behind its access).
    own = (site / PRIVATE / "packages" / f"{SECRET_NAMES[0]}.html").read_text()
    assert SECRET_NAMES[0] in own
    assert SECRET_NAMES[0] in (site / PRIVATE / "search.json").read_text()
    public = [
        site / "index.html",
        site / "history" / "index.html",
        site / "history" / "history.json",
        site / "history" / "feed.atom",
        *(site / "history").glob("2*.html"),
    ]
    assert len(public) >= 5
    for path in public:
        text = path.read_text()
        for name in SECRET_NAMES:
            assert name not in text, (path, name)
    landing = (site / "index.html").read_text()
    # The public channel's packages are there (the check above is not vacuous).
    feed = (site / "history" / "feed.atom").read_text()
    assert "numpy" in feed
    # Listed as private, with a link to its page, no counts; not searched from the landing.
    assert f'<a href="{PRIVATE}/index.html">{PRIVATE}</a>' in landing
    assert "badge-private" in landing
    assert f'data-index="{PRIVATE}/search.json"' not in landing
    assert f'data-index="{PUBLIC}/search.json"' in landing
    history = json.loads((site / "history" / "history.json").read_bytes())
    run = history["runs"][0]
    assert {c["channel"] for c in run["channels"]} == {PUBLIC}
    assert {m["channel"] for m in run["mirrors"]} == {PUBLIC}


@pytest.mark.integration
async def test_a_channel_turned_private_leaves_the_feed(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    folder = tmp_path / "licensed"
    write_licensed(folder)
    site = tmp_path / "site"
    config = private_config(site, example_upstream.url, folder, access="public")
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert report.status == "completed", report.errors
    render_site(config)
    assert SECRET_NAMES[0] in (site / "history" / "feed.atom").read_text()
    render_site(private_config(site, example_upstream.url, folder))
    feed = (site / "history" / "feed.atom").read_text()
    assert SECRET_NAMES[0] not in feed and "numpy" in feed


@pytest.mark.integration
async def test_a_dependency_a_private_package_needs_names_it_on_no_public_page(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    """A private channel adding its dependencies finds zlib in the public mirror, which adds
    it: the public run page lists the file, without the private file that needed it."""
    folder = tmp_path / "licensed"
    spec = PackageSpec(
        name=SECRET_NAMES[0], version="3.1", build="h0_0", license="Proprietary", depends=("zlib",)
    )
    write_channel(folder, [spec])
    for stray in folder.rglob("repodata.json"):
        stray.unlink()
    site = tmp_path / "site"
    config = site_config(
        site,
        f"""
        channels:
          {PUBLIC}:
            url: {example_upstream.url}
            subdirs: [linux-64, noarch]
            filters: {{names: {{include: [python]}}}}
          {PRIVATE}:
            access: private
            filters: {{include_dependencies: true}}
            mirrors:
              - name: licensed
                path: {folder}
                subdirs: [linux-64, noarch]
        """,
    )
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert report.status == "completed", report.errors
    (public_mirror,) = [m for m in report.mirrors if m.channel == PUBLIC]
    added = public_mirror.dependencies_added
    assert added and all(row.file.startswith("zlib-") for row in added)
    assert {row.needed_by_channel for row in added} == {PRIVATE}
    assert all(SECRET_NAMES[0] in row.why for row in added)  # the record keeps it
    render_site(config)
    history = site / "history"
    public = [site / "index.html", history / "history.json", history / "feed.atom"]
    public += history.glob("*.html")
    for path in public:
        assert SECRET_NAMES[0] not in path.read_text(), path
    (run_page,) = history.glob("2*.html")
    text = run_page.read_text()
    assert added[0].file in text and NEEDED_BY_HIDDEN in text


@pytest.mark.integration
async def test_a_channel_turning_private_or_public_gets_its_page_rendered_again(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    """Its files unchanged, the channel's page still changes with its access: the token
    set-up appears when it turns private and goes when it turns public again."""
    folder = tmp_path / "licensed"
    write_licensed(folder)
    site = tmp_path / "site"
    page = site / PRIVATE / "index.html"
    public = private_config(site, example_upstream.url, folder, access="public")
    report = await run_mirror(public, MirrorOptions(progress=False))
    assert report.status == "completed", report.errors
    render_site(public)
    assert TOKEN_SECTION not in page.read_text()
    render_site(private_config(site, example_upstream.url, folder))
    assert TOKEN_SECTION in page.read_text()
    render_site(public)
    assert TOKEN_SECTION not in page.read_text()
    assert TOKEN_PLACEHOLDER.strip("<>") not in page.read_text()


@pytest.mark.integration
async def test_the_landing_page_names_no_upstream_of_a_private_channel(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    """A private channel mirroring its upstream unfiltered would be a pixi [mirrors] entry:
    on the public landing page it is shown by its path and token snippet only. With no public
    channel the landing page has the token snippets alone."""
    site = tmp_path / "site"
    config = site_config(
        site,
        f"""
        base_url: {BASE}
        channels:
          {PRIVATE}:
            url: {example_upstream.url}
            subdirs: [linux-64]
            access: private
        """,
    )
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert report.status == "completed", report.errors
    render_site(config)
    landing = (site / "index.html").read_text()
    assert example_upstream.url not in landing
    assert (
        f"{BASE}/t/{TOKEN_PLACEHOLDER}/{PRIVATE}".replace("<", "&lt;").replace(">", "&gt;")
        in landing
    )
    assert "[mirrors]" not in landing and "channel_alias" not in landing
    assert "mirrored_channels" not in landing


@pytest.mark.integration
async def test_private_snippets_carry_the_placeholder_forms(private_site: Path) -> None:
    expected = [
        f"https://mirror.example.org/conda/t/{TOKEN_PLACEHOLDER}/{PRIVATE}",  # path token
        f"pixi auth login mirror.example.org --token {TOKEN_PLACEHOLDER}",  # Bearer
        f'{{"mirror.example.org": {{"BearerToken": "{TOKEN_PLACEHOLDER}"}}}}',
        # libmamba reads ~/.mamba/auth/authentication.json: the type is a field of the entry.
        f'{{"mirror.example.org": {{"type": "BearerToken", "token": "{TOKEN_PLACEHOLDER}"}}}}',
        f"machine mirror.example.org login <NAME> password {TOKEN_PLACEHOLDER}",  # Basic
    ]
    for relpath in ("index.html", f"{PRIVATE}/index.html"):
        text = (private_site / relpath).read_text()
        for form in expected:
            escaped = form.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            assert escaped.replace('"', "&#34;") in text, (relpath, form)
    # A public channel's page has no token set-up.
    assert TOKEN_PLACEHOLDER.strip("<>") not in (private_site / PUBLIC / "index.html").read_text()


@pytest.mark.integration
async def test_on_a_private_site_every_channel_is_set_up_with_a_token(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    """On a site that answers only to a token, a public channel's plain URLs get 401: its page
    and the landing page give it the token set-up, as they give a private channel's."""
    folder = tmp_path / "licensed"
    write_licensed(folder)
    site = tmp_path / "site"
    config = private_config(site, example_upstream.url, folder, site_access="private")
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert report.status == "completed", report.errors
    render_site(config)
    for path in (PUBLIC, PRIVATE):
        assert TOKEN_SECTION in (site / path / "index.html").read_text(), path
    landing = landing_private({"channels": []}, config)
    assert [s["channel"] for s in landing["private_snippets"]] == [PUBLIC, PRIVATE]
    assert landing["private_snippets"][0]["text"] == token_snippet(BASE, PUBLIC)


@pytest.mark.integration
async def test_a_landing_page_of_private_channels_only_has_no_search(tmp_path: Path) -> None:
    """The landing page searches the public channels' indexes only: with every channel
    private it has none, and a search box there could only say that search is unavailable."""
    folder = tmp_path / "licensed"
    write_licensed(folder)
    site = tmp_path / "site"
    config = site_config(
        site,
        f"""
        channels:
          {PRIVATE}:
            access: private
            mirrors:
              - name: licensed
                path: {folder}
                subdirs: [linux-64, noarch]
        """,
    )
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert report.status == "completed", report.errors
    render_site(config)
    landing = (site / "index.html").read_text()
    assert f'<a href="{PRIVATE}/index.html">{PRIVATE}</a>' in landing
    assert "data-search" not in landing and "Search every channel" not in landing
    # The channel's own page (behind its token) still searches its packages.
    assert "data-search" in (site / PRIVATE / "index.html").read_text()
