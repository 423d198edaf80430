"""Private channels on the pages: a site with one public and one private channel, mirrored and
rendered. The public pages (landing, history, run pages, history.json, the feed and the
cross-channel search) name no package of the private channel; its own pages and the landing
page's set-up show the token forms with the ``<TOKEN>`` placeholder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sitegen.access.pages import TOKEN_PLACEHOLDER
from sitegen.config import SiteConfig
from sitegen.sync.report import (
    FAILED,
    AddedDependency,
    ApprovalChange,
    ChannelSubdirReport,
    MirrorReport,
    RunAccess,
    RunReport,
)
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import PackageSpec, write_channel
from sitegen.web.private import (
    CONSTRAINED_BY_HIDDEN,
    NEEDED_BY_HIDDEN,
    PRIVATE_ERRORS_ONLY,
    landing_private,
    public_report,
    token_snippet,
)
from sitegen.web.render import render_site
from sitegen.web.run import run_detail, run_summary
from testkit.site import site_config
from testkit.upstream import ExampleUpstream

PUBLIC, PRIVATE = "cloud/example", "internal/licensed"
SECRET_NAMES = ("acme-secret-solver", "acme-licensed-kernel")
BASE = "https://mirror.example.org/conda"
# The heading of a private channel's set-up on its own page.
TOKEN_SECTION = "Use this channel (private)"
# The configuration's access, as the pages are rendered: one private and one public channel.
NOW = RunAccess(
    channels={PRIVATE: "private", PUBLIC: "public"}, mirrors={"licensed": "private", "ex": "public"}
)


def private_config(
    site: Path,
    upstream: str,
    folder: Path,
    base_url: str = BASE,
    access: str = "private",
    site_access: str = "public",
) -> SiteConfig:
    return site_config(
        site,
        f"""
        base_url: {base_url}
        access: {{site: {site_access}}}
        channels:
          {PUBLIC}:
            url: {upstream}
            subdirs: [linux-64, noarch]
          {PRIVATE}:
            access: {access}
            mirrors:
              - name: licensed
                path: {folder}
                subdirs: [linux-64, noarch]
        """,
    )


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


@pytest.mark.integration
async def test_private_snippets_carry_the_placeholder_forms(private_site: Path) -> None:
    expected = [
        f"https://mirror.example.org/conda/t/{TOKEN_PLACEHOLDER}/{PRIVATE}",  # path token
        f"pixi auth login mirror.example.org --token {TOKEN_PLACEHOLDER}",  # Bearer
        f'{{"mirror.example.org": {{"BearerToken": "{TOKEN_PLACEHOLDER}"}}}}',
        f"machine mirror.example.org login <NAME> password {TOKEN_PLACEHOLDER}",  # Basic
    ]
    for relpath in ("index.html", f"{PRIVATE}/index.html"):
        text = (private_site / relpath).read_text()
        for form in expected:
            escaped = form.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            assert escaped.replace('"', "&#34;") in text, (relpath, form)
    # A public channel's page has no token set-up.
    assert TOKEN_PLACEHOLDER.strip("<>") not in (private_site / PUBLIC / "index.html").read_text()


@pytest.mark.unit
def test_public_report_drops_private_channels_mirrors_approvals_and_errors() -> None:
    report = RunReport(
        id="20261205T000000Z",
        started=1.0,
        mirrors=[MirrorReport("licensed", PRIVATE, "/srv"), MirrorReport("ex", PUBLIC, "u")],
        channels=[
            ChannelSubdirReport(channel=PRIVATE, subdir="linux-64", added=["acme-1-0.conda"]),
            ChannelSubdirReport(channel=PUBLIC, subdir="linux-64", added=["zlib-1-0.conda"]),
        ],
        errors=["licensed: upstream broke", f"{PRIVATE}: disk full", "ex: slow"],
        approvals=[ApprovalChange("approve", PRIVATE, "acme", "a", "w")],
    )
    public = public_report(report, NOW)
    assert [m.name for m in public.mirrors] == ["ex"]
    assert [c.channel for c in public.channels] == [PUBLIC]
    assert public.errors == ["ex: slow"] and public.approvals == []
    assert len(report.mirrors) == 2 and len(report.errors) == 3  # the original is left as is


@pytest.mark.unit
def test_public_report_names_no_hidden_file_a_dependency_was_added_for() -> None:
    """Rows of a shown mirror's added dependencies keep their reason when a shown channel's
    file needed them; otherwise the reason names no file. A row from a record written before
    rows noted the channel (no needed_by_channel) is told apart from neither: it keeps its
    reason only when the page hides no channel."""

    def row(fn: str, why: str, channel: str | None) -> AddedDependency:
        return AddedDependency("linux-64", fn, why, channel)

    rows = [
        row("zlib-1-0.conda", "needed by acme-1-0.conda (zlib)", PRIVATE),
        row("xz-1-0.conda", "needed by numpy-2-0.conda (xz)", PUBLIC),
        row("bz2-1-0.conda", "needed by acme-1-0.conda (bz2)", None),
        row("zstd-1-0.conda", "for a constraint of acme-1-0.conda (zstd <2)", PRIVATE),
    ]
    data = RunReport(
        id="20261205T000000Z",
        started=1.0,
        mirrors=[
            MirrorReport("licensed", PRIVATE, "/srv"),
            MirrorReport("ex", PUBLIC, "u", dependencies_added=rows),
        ],
    ).to_json()
    assert "needed_by_channel" not in data["mirrors"][1]["dependencies_added"][2]
    report = RunReport.from_json(data)  # needed_by_channel is optional in a record
    (ex,) = public_report(report, NOW).mirrors
    assert [(r.file, r.why) for r in ex.dependencies_added] == [
        ("zlib-1-0.conda", NEEDED_BY_HIDDEN),
        ("xz-1-0.conda", "needed by numpy-2-0.conda (xz)"),
        ("bz2-1-0.conda", NEEDED_BY_HIDDEN),
        ("zstd-1-0.conda", CONSTRAINED_BY_HIDDEN),
    ]
    model = run_detail(public_report(report, NOW))
    assert "acme" not in str(model) and PRIVATE not in str(model)
    (shown_rows,) = [m["dependencies_added_rows"]["items"] for m in model["mirror_details"]]
    # A row with no channel noted has none in the page model either, not the text "None".
    assert [r["needed_by_channel"] for r in shown_rows] == [None, PUBLIC, None, None]
    assert report.mirrors[1].dependencies_added == rows  # the original is left as is
    # With nothing hidden, every reason stays.
    everyone = RunAccess(channels={PUBLIC: "public"}, mirrors={"ex": "public"})
    shown = RunReport(id="r", started=1.0, mirrors=[MirrorReport("ex", PUBLIC, "u")])
    shown.mirrors[0].dependencies_added = rows
    assert public_report(shown, everyone).mirrors[0].dependencies_added == rows


@pytest.mark.unit
def test_public_report_leaves_out_the_only_names_and_removals_of_hidden_channels() -> None:
    gone = "internal/gone"  # configured no more, and the record is too old to say its access
    report = RunReport(
        id="20261205T000000Z",
        started=1.0,
        options={"only": ["licensed", "ex", "gone-source"], "remove": f"{gone}/linux-64"},
        mirrors=[MirrorReport("gone-source", gone, "u"), MirrorReport("ex", PUBLIC, "u")],
        errors=["ex: slow", "gone-source: HTTP 500"],
        approvals=[ApprovalChange("approve", "", "zlib", "a", "w")],  # no channel: hides nothing
    )
    public = public_report(report, NOW)
    assert public.options == {"only": ["ex"], "remove": ""} and public.removal
    assert [m.name for m in public.mirrors] == ["ex"]
    assert public.errors == ["ex: slow"] and len(public.approvals) == 1
    # A removal in a channel shown keeps its path.
    report.options = {"remove": f"{PUBLIC}/osx-64"}
    assert public_report(report, NOW).options == {"remove": f"{PUBLIC}/osx-64"}


@pytest.mark.unit
def test_a_run_failed_only_in_private_channels_says_so_publicly_without_naming_them() -> None:
    licensed = MirrorReport("licensed", PRIVATE, "/srv", errors=["linux-64: HTTP 500"])
    report = RunReport(
        id="20261205T000000Z",
        started=1.0,
        status=FAILED,
        mirrors=[licensed, MirrorReport("ex", PUBLIC, "u")],
        channels=[ChannelSubdirReport(channel=PRIVATE, subdir="linux-64", errors=["disk full"])],
        errors=[f"{PRIVATE}/linux-64: no space left"],
    )
    public = public_report(report, NOW)
    assert public.errors == [PRIVATE_ERRORS_ONLY] and public.status == FAILED
    summary = run_summary(public)
    assert summary["all_errors"] == [PRIVATE_ERRORS_ONLY]
    assert not any(word in str(summary) for word in (PRIVATE, "licensed", "HTTP 500", "disk"))
    # A run that failed in a public channel too shows only its public errors, no note.
    report.errors.append("ex: slow")
    assert public_report(report, NOW).errors == ["ex: slow"]


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


@pytest.mark.unit
def test_landing_lists_private_channels_by_path_and_label_only(tmp_path: Path) -> None:
    config = private_config(tmp_path / "site", "https://example.org/up", tmp_path / "folder")
    model = {
        "channels": [
            {"path": PUBLIC, "page": f"{PUBLIC}/index.html", "summary": {"packages": 3}},
            {"path": PRIVATE, "page": f"{PRIVATE}/index.html", "summary": {"packages": 2}},
        ]
    }
    out = landing_private(model, config)
    assert out["channels"][1] == {
        "path": PRIVATE,
        "page": f"{PRIVATE}/index.html",
        "private": "private",
    }
    assert (
        out["channels"][0]["summary"] == {"packages": 3} and out["channels"][0]["private"] is None
    )
    (snippet,) = out["private_snippets"]
    assert snippet["channel"] == PRIVATE
    assert snippet["text"] == token_snippet(BASE, PRIVATE)
    assert f"{BASE.replace('/conda', '')}/conda/t/{TOKEN_PLACEHOLDER}/{PRIVATE}" in snippet["text"]


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
