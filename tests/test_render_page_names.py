"""Package pages of packages named like the other pages of a site (``index``, ``page-2``,
``search``, ``assets``...), or like each other but for case: each keeps a page of its own, and
every link to it and the search index lead there."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from sitegen.tools.example_channel import PackageSpec, write_channel
from sitegen.web.render import render_site
from testkit.rendered import assert_links_resolve, page_text
from testkit.site import mirror_unchecked
from testkit.small_channel import CHANNEL, site_config, small_packages
from testkit.upstream import UpstreamServer

pytestmark = pytest.mark.integration

# Names of pages and folders a channel or its package folder holds besides package pages, two
# names that differ only in case, and Windows device names (plain files on Linux).
NAMES = (
    "index",
    "page-2",
    "search",
    "assets",
    "packages",
    "approvals",
    "channeldata",
    "history",
    "Foo",
    "foo",
    "con",
    "nul",
)


def specs(names: tuple[str, ...]) -> list[PackageSpec]:
    return small_packages(
        extra=tuple(PackageSpec(name, "1.0", "h0_0", formats=("conda",)) for name in names)
    )


def package_pages(site: Path) -> set[str]:
    return {p.name for p in (site / CHANNEL / "packages").iterdir()}


def assert_own_pages(site: Path, names: tuple[str, ...]) -> None:
    """Every name's page is its own (its files, none of another's) and is linked to."""
    every = {s.name for s in specs(NAMES)}
    channel_page = page_text(site, f"{CHANNEL}/index.html")
    assert f"<b>{len(every) - len(NAMES) + len(names)}</b> packages" in channel_page
    for name in names:
        page = page_text(site, f"{CHANNEL}/packages/{name}.html")
        assert f'<h1 class="pkg-title">{name} <span class="ver">1.0</span></h1>' in page, name
        assert f'href="../linux-64/{name}-1.0-h0_0.conda"' in page, name
        others = [f"/{other}-1.0-h0_0.conda" for other in NAMES if other != name]
        assert not [other for other in others if other in page], name
        assert f'<li><a href="packages/{name}.html">{name}</a>' in channel_page, name
    index = json.loads(page_text(site, f"{CHANNEL}/search.json"))
    assert index["pages"] == "packages/{name}.html"
    assert {row[0] for row in index["packages"]} >= set(names)
    assert_links_resolve(site)


async def test_packages_named_like_other_pages_keep_pages_of_their_own(
    tmp_path: Path, upstream_server_factory: Callable[..., UpstreamServer]
) -> None:
    root = tmp_path / "upstream"
    write_channel(root, specs(NAMES), zst=True)
    site = tmp_path / "site"
    config = site_config(site, upstream_server_factory(root).url, subdirs="[linux-64, noarch]")
    report = await mirror_unchecked(config)
    assert report.status == "completed", report.errors
    render_site(config)
    everything = {f"{s.name}.html" for s in specs(NAMES)}
    assert package_pages(site) == everything
    assert_own_pages(site, NAMES)
    # The channel's own pages stay where they are, none taken by a package's.
    assert (site / CHANNEL / "linux-64" / "index.html").is_file()
    assert (site / "assets" / "site.js").is_file()

    # Gone upstream, ``Foo`` and ``index`` lose their pages; ``foo``, which differs from ``Foo``
    # only in case, keeps its own.
    kept = tuple(name for name in NAMES if name not in ("Foo", "index"))
    write_channel(root, specs(kept), zst=True)
    report = await mirror_unchecked(config)
    assert report.status == "completed", report.errors
    stats = render_site(config)
    assert package_pages(site) == everything - {"Foo.html", "index.html"}
    assert sorted(stats.removed) == [
        f"{CHANNEL}/packages/Foo.html",
        f"{CHANNEL}/packages/index.html",
    ]
    assert_own_pages(site, kept)
