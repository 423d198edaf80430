"""Less work, same pages: the fast template environment, parsing only the packages that
changed, checking metadata not written by sitegen, and rendering in worker processes."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from sitegen.web import package_pages
from sitegen.web.pool import NoWorkers
from sitegen.web.published import PackageRecords
from sitegen.web.render import TEMPLATES_DIR, render_site
from testkit.rendered import FULL, ONE_CHANNEL, demo_config, distinct_run_ids
from testkit.site import mirror_unchecked, rewrite_repodata
from testkit.upstream import ExampleUpstream

pytestmark = pytest.mark.integration


unique_run_ids = pytest.fixture(autouse=True, name="unique_run_ids")(distinct_run_ids)


def site_pages(site: Path) -> dict[str, bytes]:
    return {
        p.relative_to(site).as_posix(): p.read_bytes()
        for p in site.rglob("*")
        if p.is_file() and ".sitegen" not in p.parts and p.suffix in (".html", ".json", ".atom")
    }


def test_fast_escape_and_attribute_lookup_render_what_jinja2_renders(tmp_path: Path) -> None:
    import jinja2
    from markupsafe import Markup

    from sitegen.web.render import make_environment

    class Html:
        def __html__(self) -> str:
            return "<i>own</i>"

    (tmp_path / "t.html").write_text(
        "{{ a }}|{{ n }}|{{ m }}|{{ o }}|{{ d.x }}|{{ d.items is defined }}|{{ d.get('k') }}|"
        "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{{ d.missing is defined }}|"
        "{{ a ~ m }}|{% set s %}<{{ a }}>{% endset %}{{ s }}|{{ [a, n]|join(',') }}\n"
    )
    values = {
        "a": "<script>'&\"",
        "n": 42,
        "m": Markup("<b>ok</b>"),
        "o": Html(),
        "d": {"items": "<shadowed>", "x": "<x>", "k": 1, "get": "no"},
    }
    ours = make_environment(tmp_path, "t").get_template("t.html").render(**values)
    plain = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(tmp_path)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    assert ours == plain.get_template("t.html").render(**values)
    assert ours.startswith(
        "&lt;script&gt;&#39;&amp;&#34;|42|<b>ok</b>|<i>own</i>|&lt;x&gt;|True|1|"
    )
    (tmp_path / "u.html").write_text("{{ d.missing }}")
    with pytest.raises(jinja2.UndefinedError):
        make_environment(tmp_path, "u").get_template("u.html").render(d={})


async def test_render_parses_only_the_packages_that_changed(
    tmp_path: Path, example_upstream: ExampleUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[str] = []
    real = package_pages.parse_records

    def spy(package: PackageRecords) -> Any:
        records = real(package)
        parsed.extend(sorted({r.name for r in records}))
        return records

    monkeypatch.setattr(package_pages, "parse_records", spy)
    site = tmp_path / "site"
    config = demo_config(site, example_upstream.url, body=ONE_CHANNEL)
    await mirror_unchecked(config)
    first = render_site(config)
    names = sorted(p.stem for p in (site / FULL / "packages").glob("*.html"))
    assert sorted(parsed) == names  # once each: the facts and the page from one parse
    assert len(first.written) > len(names)

    def patch(document: dict[str, Any]) -> None:
        for key in ("packages", "packages.conda"):
            for record in document[key].values():
                if record["name"] == "zlib":
                    record["depends"] = ["libzlib-ng >=2"]

    rewrite_repodata(example_upstream.root, "linux-64", patch)
    await mirror_unchecked(config)
    parsed.clear()
    again = render_site(config)
    assert parsed == ["zlib"]
    assert [p for p in again.rendered if "/packages/" in p] == [f"{FULL}/packages/zlib.html"]
    parsed.clear()
    assert render_site(config).rendered == [] and parsed == []


async def test_site_repodata_not_as_sitegen_writes_it_is_checked_again(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    site = tmp_path / "site"
    config = demo_config(site, example_upstream.url, body=ONE_CHANNEL)
    await mirror_unchecked(config)
    render_site(config)
    before = site_pages(site)
    path = site / FULL / "linux-64" / "repodata.json"
    document = json.loads(path.read_bytes())
    numpy = next(r for r in document["packages.conda"].values() if r["name"] == "numpy")
    bogus = {**numpy, "name": "bogus", "version": "1.0", "build": "h_0", "size": 1.5}
    document["packages.conda"]["bogus-1.0-h_0.conda"] = bogus  # a size that is no size
    path.write_text(json.dumps(document))
    render_site(config)
    after = site_pages(site)
    assert f"{FULL}/packages/bogus.html" not in after
    assert "bogus" not in after[f"{FULL}/linux-64/index.html"].decode()
    for name in ("numpy", "zlib", "python"):
        relpath = f"{FULL}/packages/{name}.html"
        assert after[relpath] == before[relpath]


async def test_processes_render_the_same_pages(
    tmp_path: Path, example_upstream: ExampleUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    config = demo_config(site, example_upstream.url)
    await mirror_unchecked(config)
    here = render_site(config)
    expected = site_pages(site)
    for path in site.rglob("*.html"):
        path.unlink()
    (site / ".sitegen" / "render" / "manifest.json").unlink()

    monkeypatch.setattr(package_pages, "PROCESSES_FROM", 1)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    forked = render_site(config)
    assert site_pages(site) == expected
    assert sorted(forked.rendered) == sorted(here.rendered)
    html = sorted(p for p in here.written if p.endswith(".html"))
    assert sorted(p for p in forked.written if p.endswith(".html")) == html
    assert render_site(config).rendered == []

    # A page that fails in a worker (a fresh process: a template, not a patch, breaks it)
    # fails the render.
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, templates)
    package = templates / "package.html"
    text = package.read_text()
    block = text.index("{% block content %}") + len("{% block content %}")
    package.write_text(text[:block] + "{{ model.no_such_field.at_all }}" + text[block:])
    (site / FULL / "packages" / "numpy.html").unlink()
    with pytest.raises(RuntimeError, match=r"a worker process failed: .*no_such_field"):
        render_site(config, templates_dir=templates)


async def test_pages_are_rendered_here_when_no_worker_can_start(
    tmp_path: Path,
    example_upstream: ExampleUpstream,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    site = tmp_path / "site"
    config = demo_config(site, example_upstream.url)
    await mirror_unchecked(config)
    render_site(config)
    expected = site_pages(site)
    for path in site.rglob("*.html"):
        path.unlink()
    (site / ".sitegen" / "render" / "manifest.json").unlink()

    def no_workers(*args: Any) -> Any:
        raise NoWorkers("TypeError: cannot pickle '_thread.lock' object")

    monkeypatch.setattr(package_pages, "PROCESSES_FROM", 1)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(package_pages, "parts_in_processes", no_workers)
    caplog.set_level(logging.WARNING, logger="sitegen")
    assert render_site(config).rendered
    assert site_pages(site) == expected
    assert any("package pages in one process: TypeError" in m for m in caplog.messages)
