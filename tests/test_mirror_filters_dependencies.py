"""include_dependencies in one channel: what an allowlist needs comes in, through the other
filters."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from sitegen.layout import run_page_path
from sitegen.tools.example_channel import PackageSpec, write_channel
from sitegen.web.render import render_site
from testkit.mirror_filters import (
    CHANNEL,
    NOT_ALLOWED,
    P,
    check,
    config_at,
    mirror,
    serve_example_channel,
)
from testkit.rendered import page_text
from testkit.site import assert_channel_consistent, fns, published, site_config

pytestmark = pytest.mark.integration

upstream = pytest.fixture(scope="module", name="upstream")(serve_example_channel)


async def test_include_dependencies_adds_what_the_allowlist_needs(
    upstream: str, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    filters = '{specs: {include: ["numpy 2.1.*"]}, include_dependencies: true}'
    report = await mirror(config_at(site, upstream, "mirror", filters))
    assert_channel_consistent(site, CHANNEL)
    # numpy 2.1.0 needs libopenblas >=0.3.27 and python 3.11 / 3.12; libopenblas needs zlib,
    # which nothing asked for: it comes in only as a dependency of a dependency.
    deps = (
        fns(P, "libopenblas", "0.3.27")
        | fns(P, "python", "3.11.9")
        | fns(P, "python", "3.12.3")
        | fns(P, "python", "3.12.4")
        | fns(P, "zlib")
    )
    check(report, site, "linux-64", fns(P, "numpy", "2.1.0") | deps, {NOT_ALLOWED: 42 - 16})
    check(report, site, "noarch", set(), {NOT_ALLOWED: 9})
    mr = report.mirrors[0]
    assert mr.subdirs["linux-64"].added_as_dependency == len(deps) == 12
    assert {d.file for d in mr.dependencies_added} == deps
    zlib_why = {d.why for d in mr.dependencies_added if d.file.startswith("zlib-")}
    assert all(why.startswith("needed by libopenblas-0.3.27") for why in zlib_why)
    assert mr.unsatisfied == []


async def test_noarch_package_pulls_in_a_platform_dependency(upstream: str, tmp_path: Path) -> None:
    site = tmp_path / "site"
    filters = "{names: {include: [pip]}, include_dependencies: true, newest_versions: 1}"
    report = await mirror(config_at(site, upstream, "mirror", filters))
    assert_channel_consistent(site, CHANNEL)
    # pip needs `python >=3.8`: every python matches, newest_versions 1 adds only the newest.
    check(report, site, "noarch", fns(P, "pip", "24.0"), {"older version": 2, NOT_ALLOWED: 5})
    check(report, site, "linux-64", fns(P, "python", "3.12.4"), {NOT_ALLOWED: 40})
    assert report.mirrors[0].subdirs["linux-64"].added_as_dependency == 2


async def test_a_noarch_package_takes_each_platforms_dependency_by_channel_priority(
    tmp_path: Path, upstream_server_factory
) -> None:
    """internal/builds: own builds (a noarch tool, and libx for osx-64 only), then forge
    (libx for linux-64 and osx-64). A linux-64 client of the channel finds no libx among the
    builds for linux-64 or noarch and takes forge's; an osx-64 client takes the own build.
    cloud/win (win-64), later in the file, has libx too: the channel serves no win-64, so
    nothing is pulled from it."""
    tool = PackageSpec("tool", "1.0", "0", subdir="noarch", noarch="generic", depends=("libx",))
    own_libx = PackageSpec("libx", "1.0", "0", subdir="osx-64")
    forge = [PackageSpec("libx", "2.0", "0", subdir=s) for s in ("linux-64", "osx-64")]
    forge.append(PackageSpec("other", "1.0", "0"))
    win = [PackageSpec(name, "1.0", "0", subdir="win-64") for name in ("libx", "w")]
    servers = {}
    for name, specs in (("builds", [tool, own_libx]), ("forge", forge), ("win", win)):
        write_channel(tmp_path / name, specs, zst=True)
        servers[name] = upstream_server_factory(tmp_path / name).url
    site = tmp_path / "site"
    config = site_config(
        site,
        f"""
        channels:
          internal/builds:
            mirrors:
              - name: builds
                url: {servers["builds"]}
                subdirs: [osx-64]
                filters: {{names: {{include: [tool]}}, include_dependencies: true}}
              - name: forge
                url: {servers["forge"]}
                subdirs: [linux-64, osx-64]
                filters: {{names: {{include: [other]}}}}
          cloud/win:
            url: {servers["win"]}
            subdirs: [win-64]
            filters: {{names: {{include: [w]}}}}
        """,
    )
    report = await mirror(config)
    assert_channel_consistent(site, "internal/builds")
    assert published(site, "internal/builds", "noarch") == fns([tool])
    assert published(site, "internal/builds", "linux-64") == fns(forge, subdir="linux-64")
    assert published(site, "internal/builds", "osx-64") == fns([own_libx])
    assert published(site, "cloud/win", "win-64") == fns(win, "w")
    assert [mr.unsatisfied for mr in report.mirrors] == [[], [], []]


async def test_a_dependency_comes_from_the_own_channel_before_an_earlier_one(
    tmp_path: Path, upstream_server_factory
) -> None:
    """internal/builds (own builds, then forge for what they need) comes after cloud/forge in
    the file. A client of internal/builds sees both its mirrors as one channel: libx, which
    the builds lack, is taken from its forge mirror, not pulled into cloud/forge."""
    tool = PackageSpec("tool", "1.0", "0", depends=("libx",))
    forge = [PackageSpec("libx", "2.0", "0"), PackageSpec("other", "1.0", "0")]
    write_channel(tmp_path / "builds", [tool], zst=True)
    write_channel(tmp_path / "forge", forge, zst=True)
    builds = upstream_server_factory(tmp_path / "builds").url
    forge_url = upstream_server_factory(tmp_path / "forge").url
    site = tmp_path / "site"
    config = site_config(
        site,
        f"""
        channels:
          cloud/forge:
            url: {forge_url}
            subdirs: [linux-64]
            filters: {{names: {{include: [other]}}}}
          internal/builds:
            filters: {{include_dependencies: true}}
            mirrors:
              - name: builds
                url: {builds}
                subdirs: [linux-64]
              - name: forge-deps
                url: {forge_url}
                subdirs: [linux-64]
                filters: {{names: {{include: [other]}}}}
        """,
    )
    report = await mirror(config)
    assert_channel_consistent(site, "internal/builds")
    assert published(site, "internal/builds", "linux-64") == fns([tool, *forge])
    assert published(site, "cloud/forge", "linux-64") == fns(forge, "other")
    assert [mr.unsatisfied for mr in report.mirrors] == [[], [], []]


async def test_dependencies_must_pass_the_other_filters(upstream: str, tmp_path: Path) -> None:
    site = tmp_path / "site"
    # ghostscript needs zlib >=1.3.1; zlib is excluded by name, so it cannot be added.
    filters = "{names: {include: [ghostscript], exclude: [zlib]}, include_dependencies: true}"
    report = await mirror(config_at(site, upstream, "mirror", filters))
    check(
        report,
        site,
        "linux-64",
        fns(P, "ghostscript"),
        {"name excluded": 4, NOT_ALLOWED: 42 - 4 - 2},
    )
    rows = report.mirrors[0].unsatisfied
    (missing,) = {(u.spec, u.needed_by.split("-")[0], u.reason) for u in rows}
    assert missing == ("zlib >=1.3.1,<2.0a0", "ghostscript", "name excluded")


async def test_the_run_page_and_the_log_say_why_a_dependency_is_unsatisfied(
    upstream: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    site = tmp_path / "site"
    # ghostscript needs zlib >=1.3.1, which upstream has but the names filter drops.
    filters = "{names: {include: [ghostscript], exclude: [zlib]}, include_dependencies: true}"
    config = config_at(site, upstream, "mirror", filters)
    with caplog.at_level(logging.WARNING, logger="sitegen"):
        report = await mirror(config)
    # Two ghostscript builds need it.
    assert "example: 2 dependencies could not be satisfied (2 name excluded)" in caplog.text
    render_site(config)
    page = page_text(site, run_page_path(report.id))
    row = re.search(r"<td[^>]*><code[^>]*>zlib &gt;=1\.3\.1,&lt;2\.0a0</code>.*?</tr>", page)
    assert row is not None, page
    assert '<td data-label="Why">name excluded</td>' in row.group(0)
