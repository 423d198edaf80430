"""A render writes only the pages that changed and removes the pages (and temporaries) of
what is gone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sitegen.tools.example_channel import PackageSpec
from sitegen.web.render import render_site
from testkit.local import drop_all, local_config
from testkit.rendered import (
    APPROVED,
    FULL,
    assert_links_resolve,
    demo_config,
    distinct_run_ids,
    html_pages,
    mtimes,
    page_text,
)
from testkit.site import mirror_unchecked, rewrite_repodata
from testkit.upstream import ExampleUpstream

pytestmark = pytest.mark.integration


unique_run_ids = pytest.fixture(autouse=True, name="unique_run_ids")(distinct_run_ids)


async def test_render_is_incremental(tmp_path: Path, example_upstream: ExampleUpstream) -> None:
    site = tmp_path / "site"
    config = demo_config(site, example_upstream.url)
    await mirror_unchecked(config)
    first = render_site(config)
    assert first.written and not first.skipped
    before = mtimes(site)

    again = render_site(config)
    assert again.rendered == [] and again.written == [] and again.removed == []
    assert again.skipped == len(first.rendered)
    assert mtimes(site) == before

    # A repodata patch upstream changes zlib 1.3.1's dependencies (the file stays the same).
    def patch(document: dict[str, Any]) -> None:
        for key in ("packages", "packages.conda"):
            for record in document[key].values():
                if record["name"] == "zlib" and record["version"] == "1.3.1":
                    record["depends"] = ["libzlib-ng >=2"]

    rewrite_repodata(example_upstream.root, "linux-64", patch)
    report = await mirror_unchecked(config)
    assert report.status == "completed", report.errors
    changed = render_site(config)
    package_pages = sorted(p for p in changed.rendered if "/packages/" in p)
    assert f"{FULL}/packages/zlib.html" in package_pages
    assert all(p.endswith("/packages/zlib.html") for p in package_pages), package_pages
    assert f"{FULL}/packages/zlib.html" in changed.written
    assert "libzlib-ng &gt;=2" in page_text(site, f"{FULL}/packages/zlib.html")
    after = mtimes(site)
    for name in ("numpy", "python", "libopenblas", "ghostscript"):
        relpath = f"{FULL}/packages/{name}.html"
        assert after[relpath] == before[relpath], relpath
    assert f"{FULL}/linux-64/index.html" in changed.written  # its repodata changed
    assert f"{FULL}/noarch/index.html" not in changed.rendered

    # A package leaving upstream takes its page with it.
    def remove(document: dict[str, Any]) -> None:
        for key in ("packages", "packages.conda"):
            for fn in [fn for fn, r in document[key].items() if r["name"] == "mystery-tool"]:
                del document[key][fn]

    rewrite_repodata(example_upstream.root, "linux-64", remove)
    await mirror_unchecked(config)
    removed = render_site(config)
    assert removed.removed == [f"{FULL}/packages/mystery-tool.html"]
    assert not (site / FULL / "packages" / "mystery-tool.html").exists()
    assert "mystery-tool" not in page_text(site, f"{FULL}/index.html")
    assert_links_resolve(site)


async def test_pages_of_what_left_channels_yaml_go_also_without_the_last_manifest(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    """A channel taken out of channels.yaml, and a subdir out of a channel's: their pages go
    with the next render, whether or not the last render's manifest is still there (without
    it they are found on disk, in the folders of the subdirs no configured channel names),
    and the same ones; their published metadata and package files stay (that is for
    ``sitegen remove``)."""
    with_manifest = tmp_path / "site"
    await mirror_unchecked(demo_config(with_manifest, example_upstream.url))
    render_site(demo_config(with_manifest, example_upstream.url))
    without = tmp_path / "lost"
    shutil.copytree(with_manifest, without, symlinks=True)
    (without / ".sitegen" / "render" / "manifest.json").unlink()
    fewer = f"channels:\n  {FULL}:\n    url: {{url}}\n    subdirs: [noarch]\n"
    gone = [
        f"{APPROVED}/index.html",
        f"{APPROVED}/search.json",
        f"{APPROVED}/packages/numpy.html",
        f"{APPROVED}/linux-64/index.html",
        f"{APPROVED}/noarch/index.html",
        f"{FULL}/linux-64/index.html",
    ]
    stays = [
        f"{APPROVED}/linux-64/repodata.json",
        f"{APPROVED}/channeldata.json",
        f"{FULL}/linux-64/repodata.json",
        f"{FULL}/noarch/index.html",
        f"{FULL}/index.html",
        f"{APPROVED}/packages/README.txt",  # not pages: never written by a render
        f"{APPROVED}/linux-64/notes.html",
    ]
    removed = {}
    for site in (with_manifest, without):
        for relpath in stays[-2:]:
            (site / relpath).write_bytes(b"not a page")
        assert all((site / relpath).is_file() for relpath in gone + stays)
        removed[site] = render_site(demo_config(site, example_upstream.url, fewer)).removed
        assert [r for r in gone if (site / r).exists()] == [], site
        assert all((site / relpath).is_file() for relpath in stays), site
        assert any(p.name.endswith(".conda") for p in (site / APPROVED / "linux-64").iterdir())
    assert sorted(removed[without]) == sorted(removed[with_manifest])
    assert set(gone) <= set(removed[without])

    def files(site: Path) -> set[str]:
        return {
            p.relative_to(site).as_posix()
            for p in site.rglob("*")
            if p.is_file() and ".sitegen" not in p.parts
        }

    assert files(without) == files(with_manifest)


async def test_dependency_links_reach_pages_of_names_with_capitals(tmp_path: Path) -> None:
    """Pages are written under a package's name as published; dependency specs may spell it
    in another case. A page is rendered again when the page its link goes to is renamed."""
    folder = tmp_path / "folder"
    names = ("Foo", "libX11", "g++", "a!b", "x=y", "c,d")
    # Of the odd names, those a dependency spec can name: a client reads no MatchSpec of
    # "g++", "a!b" or "c,d", and a record depending on one is refused (test_record_specs).
    top = PackageSpec("top", "1.0", "h0_0", depends=("foo >=1", "LibX11", "x=y"))
    drop_all(folder, [PackageSpec(n, "1.0", "h0_0") for n in names] + [top])
    site = tmp_path / "site"
    config = local_config(site, folder)
    assert (await mirror_unchecked(config)).status == "completed"
    render_site(config)
    packages = site / "internal/own/packages"
    assert {p.name for p in packages.iterdir()} >= {f"{n}.html" for n in names}
    assert 'href="Foo.html"' in page_text(site, "internal/own/packages/top.html")
    assert_links_resolve(site)

    # libX11 is published as libx11 now: top's records are the same, its link is not.
    for path in folder.glob("libX11-*"):
        path.unlink()
    drop_all(folder, [PackageSpec("libx11", "1.0", "h0_0")])
    assert (await mirror_unchecked(config)).status == "completed"
    again = render_site(config)
    assert "internal/own/packages/top.html" in again.written
    assert 'href="libx11.html"' in page_text(site, "internal/own/packages/top.html")
    assert_links_resolve(site)


async def test_template_change_renders_everything_again(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    site = tmp_path / "site"
    config = demo_config(site, example_upstream.url)
    await mirror_unchecked(config)
    templates = tmp_path / "templates"
    source = Path(__file__).resolve().parent.parent / "templates"
    for path in source.rglob("*"):
        if path.is_file():
            target = templates / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    first = render_site(config, templates_dir=templates)
    base = templates / "base.html"
    base.write_text(base.read_text().replace("Static pages generated", "Pages generated"))
    second = render_site(config, templates_dir=templates)
    pages_only = sorted(p for p in first.rendered if not p.startswith("assets/"))
    assert sorted(second.rendered) == pages_only  # assets are keyed by their own bytes
    assert all("Pages generated" in p.read_text() for p in html_pages(site))


async def test_render_removes_temporaries_of_a_killed_render(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    site = tmp_path / "site"
    config = demo_config(site, example_upstream.url)
    await mirror_unchecked(config)
    render_site(config)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead_pid, live_pid = int(dead.stdout), os.getppid()  # an exited process; our parent
    stale = [
        site / FULL / "packages" / f".sitegen-tmp-{dead_pid}-numpy.html.0badf00d",
        site / "history" / f".sitegen-tmp-{dead_pid}-index.html.0badf00d",
        site / f".sitegen-tmp-{dead_pid}-index.html.0badf00d",
    ]
    live = site / FULL / "packages" / f".sitegen-tmp-{live_pid}-zlib.html.0badf00d"
    for path in [*stale, live]:
        path.write_bytes(b"half written")
    render_site(config)
    assert not [p for p in stale if p.exists()]
    assert live.exists()  # another process may still be writing it


async def test_run_exports_in_channeldata_render_no_page(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    """No page shows a package's run_exports: their change in channeldata.json renders none
    of its pages again (its summary's change does)."""
    site = tmp_path / "site"
    config = demo_config(site, example_upstream.url)
    await mirror_unchecked(config)
    render_site(config)
    path = site / FULL / "channeldata.json"
    document = json.loads(path.read_bytes())
    numpy = document["packages"]["numpy"]
    numpy["run_exports"] = {numpy["version"]: {"weak": ["numpy >=1"]}}
    path.write_text(json.dumps(document))
    again = render_site(config)
    assert not [p for p in again.rendered if "/packages/" in p]
    numpy["summary"] = "Arrays, and more arrays"
    path.write_text(json.dumps(document))
    changed = render_site(config)
    assert f"{FULL}/packages/numpy.html" in changed.rendered
