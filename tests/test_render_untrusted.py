"""Rendered pages of upstream metadata that is not to be trusted: escaped, its links and
bidi controls defused, tokens hidden."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sitegen.layout import run_page_path
from sitegen.store.site import Site
from sitegen.sync.history import History
from sitegen.sync.report import RunReport
from sitegen.tools.example_channel import PackageSpec, write_channel
from sitegen.web.render import render_site
from testkit.rendered import (
    assert_links_resolve,
    demo_config,
    distinct_run_ids,
    html_pages,
    page_text,
    parse_links,
)
from testkit.site import mirror_unchecked, rewrite_repodata

pytestmark = pytest.mark.integration


unique_run_ids = pytest.fixture(autouse=True, name="unique_run_ids")(distinct_run_ids)


async def test_untrusted_metadata_is_escaped_and_tokens_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, upstream_server_factory
) -> None:
    token = "s3cr3t-t0ken-value"
    monkeypatch.setenv("SITEGEN_TEST_TOKEN", token)
    root = tmp_path / "upstream"
    channel_root = root / "t" / token / "hostile"
    evil = PackageSpec(
        name="evil",
        version="1.0",
        build="h0_0",
        license="<script>alert('license')</script>",
        timestamp_ms=1_700_000_000_000,
    )
    plain = PackageSpec(name="plain", version="1.0", build="h0_0", license="MIT")
    write_channel(channel_root, [evil, plain])

    def hostile(document: dict[str, Any]) -> None:
        for key in ("packages", "packages.conda"):
            for record in document[key].values():
                if record["name"] == "evil":
                    record["summary"] = "<script>alert(1)</script> & <b>bold</b>"
                    record["home"] = "javascript:alert(1)"
                    record["dev_url"] = "JAVASCRIPT:alert(2)"
                    record["doc_url"] = "https://docs.example.org/x?a=1&b=2"

    rewrite_repodata(channel_root, "linux-64", hostile)
    server = upstream_server_factory(root)
    site = tmp_path / "site"
    body = """
channels:
  cloud/hostile:
    url: {url}/t/${{SITEGEN_TEST_TOKEN}}/hostile
    subdirs: [linux-64]
"""
    config = demo_config(site, server.url, body=body)
    report = await mirror_unchecked(config)
    assert report.status == "completed", report.errors
    # A run whose error message names the token (as an upstream error might).
    History(Site(site)).save(
        RunReport(
            id="20000101T000000Z-1",
            started=946684800.0,
            ended=946684801.0,
            status="failed",
            errors=[f"GET {server.url}/t/{token}/hostile/linux-64/repodata.json: 401"],
        )
    )
    render_site(config)

    page = page_text(site, "cloud/hostile/packages/evil.html")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    assert "&lt;script&gt;alert(&#39;license&#39;)&lt;/script&gt;" in page
    assert 'href="https://docs.example.org/x?a=1&amp;b=2"' in page
    for path in [*html_pages(site), site / "history/feed.atom"]:
        text = path.read_text(encoding="utf-8")
        assert "<script>alert" not in text, path
        assert "<b>bold" not in text, path
        assert token not in text, path
        for _tag, _attribute, value in parse_links(path).links:
            assert not value.strip().lower().startswith(("javascript:", "data:")), (path, value)
    for path in (site / "history/history.json", site / "cloud/hostile/search.json"):
        assert token not in path.read_text(), path
    index = json.loads(page_text(site, "cloud/hostile/search.json"))
    assert index["packages"][0][2].startswith("<script>")  # data, shown via textContent
    assert "/t/***/hostile" in page_text(site, "index.html")
    assert assert_links_resolve(site)


# The bidi embeddings, overrides and isolates a page must never pass on as they are.
BIDI_CONTROLS = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]


async def test_bidi_controls_in_upstream_text_are_shown_not_obeyed(
    tmp_path: Path, upstream_server_factory
) -> None:
    """A right-to-left override (or another bidi control) in upstream's free text cannot
    reorder the page around it: every page, the feed and the search index show U+FFFD in its
    place, in summaries, descriptions, licenses and dependency specs (on the package page and
    on the run page that reports one as unsatisfied)."""
    rlo, lri, pdi = "\u202e", "\u2066", "\u2069"
    root = tmp_path / "upstream"
    trick = PackageSpec(
        name="trick",
        version="1.0",
        build="h0_0",
        license=f"MIT{rlo} LPG",
        # In the build string: a spec whose version holds one is no MatchSpec, and its record
        # is refused (test_record_specs).
        depends=(f"missing-dep >=1 h{rlo}_2", "zlib"),
        constrains=(f"other <2 {lri}x{pdi}",),
    )
    write_channel(root, [trick, PackageSpec(name="zlib", version="1.3", build="h0_0")])

    def texts(document: dict[str, Any]) -> None:
        for key in ("packages", "packages.conda"):
            for record in document[key].values():
                if record["name"] == "trick":
                    record["summary"] = f"safe {rlo}evil"
                    record["description"] = f"first {lri}para\n\nsecond \u202a\u202b\u202c\u202d"

    rewrite_repodata(root, "linux-64", texts)
    server = upstream_server_factory(root)
    site = tmp_path / "site"
    body = """
channels:
  cloud/bidi:
    url: {url}
    subdirs: [linux-64]
    filters: {{specs: {{include: [trick]}}, include_dependencies: true}}
"""
    config = demo_config(site, server.url, body=body)
    report = await mirror_unchecked(config)
    assert report.status == "completed", report.errors
    assert report.mirrors[0].unsatisfied, report.mirrors[0]
    render_site(config)

    package = page_text(site, "cloud/bidi/packages/trick.html")
    for shown in (
        "safe \ufffdevil",
        "first \ufffdpara",
        "second \ufffd\ufffd\ufffd\ufffd",
        "MIT\ufffd LPG",
        "missing-dep &gt;=1 h\ufffd_2",
        "other &lt;2 \ufffdx\ufffd",
    ):
        assert shown in package, shown
    run_page = page_text(site, run_page_path(report.id))
    assert "missing-dep &gt;=1 h\ufffd_2" in run_page
    for path in [*html_pages(site), site / "history/feed.atom"]:
        text = path.read_text(encoding="utf-8")
        assert not [c for c in BIDI_CONTROLS if c in text], path
    index = json.loads(page_text(site, "cloud/bidi/search.json"))
    (row,) = [r for r in index["packages"] if r[0] == "trick"]
    assert row[2:] == ["safe \ufffdevil", "MIT\ufffd LPG"]
