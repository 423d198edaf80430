"""The example upstream mirrored and rendered: the channels.yaml of the render tests, and
readers of the pages that land on disk."""

from __future__ import annotations

import html
import itertools
import json
import re
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit
from xml.etree import ElementTree

from sitegen import layout
from sitegen.config import SiteConfig
from sitegen.web.run import RUN_ID_RE
from testkit.site import site_config

if TYPE_CHECKING:  # annotations only: the benchmarks use testkit without pytest
    import pytest

ATOM = "{http://www.w3.org/2005/Atom}"  # the Atom namespace, as ElementTree names tags
FULL = "cloud/example"
APPROVED = "internal/approved"
# The example upstream mirrored whole into FULL, and filtered into APPROVED.
CHANNELS = f"""
channels:
  {FULL}:
    url: {{url}}
    subdirs: [linux-64, noarch]
  {APPROVED}:
    filters:
      licenses: {{{{exclude: ["*GPL*"], allow_missing: false}}}}
      builds: {{{{exclude: ["py2*"]}}}}
    mirrors:
      - name: approved-example
        url: {{url}}
        subdirs: [linux-64, noarch]
        filters:
          specs: {{{{include: ["numpy >=1.26", "pkg-that-does-not-exist"]}}}}
          include_dependencies: true
"""
# The example upstream mirrored whole, the one channel.
ONE_CHANNEL = f"""
channels:
  {FULL}:
    url: {{url}}
    subdirs: [linux-64, noarch]
"""


def demo_config(site: Path, url: str, body: str = CHANNELS, extra: str = "") -> SiteConfig:
    """The config of a site at ``site`` with the channels of ``body`` on the upstream at ``url``
    (``extra`` goes before them)."""
    return site_config(site, extra + body.format(url=url))


class _Links(HTMLParser):
    """The links (href, src) of a page, and the files its script fetches (data-index: a
    search index; data-src: a run's filtered-out list)."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.data_urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in ("href", "src"):
                self.links.append((tag, name, value))
            elif name in ("data-index", "data-src"):
                self.data_urls.append(value)


def parse_links(path: Path) -> _Links:
    """The links of the page at ``path``."""
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def html_pages(site: Path) -> list[Path]:
    """Every HTML page of the site, outside its ``.sitegen`` state."""
    return sorted(p for p in site.rglob("*.html") if ".sitegen" not in p.parts)


def feed_links(feed: Path) -> list[str]:
    """The href of every ``<link>`` of an Atom feed, the feed's own and its entries'."""
    root = ElementTree.parse(feed).getroot()
    return [link.get("href", "") for link in root.iter(f"{ATOM}link")]


def _assert_local(site: Path, source: Path, what: str, value: str) -> None:
    """``value``, a link of the file ``source``, names a file of the site."""
    parts = urlsplit(value)
    assert not parts.scheme and not parts.netloc, f"{source}: {what}={value!r}"
    assert parts.path, f"{source}: {what}={value!r} names no file"
    target = (source.parent / unquote(parts.path)).resolve()
    if value.endswith("/"):
        target = target / "index.html"
    assert target.is_file(), f"{source.relative_to(site)}: broken {what} {value!r}"
    assert site.resolve() in target.parents, f"{source}: {what} leaves the site: {value}"


def assert_links_resolve(site: Path) -> int:
    """Every local href/src of every page, every file a page's script fetches (data-index,
    data-src) and every link of the Atom feed names an existing file of the site; returns how
    many links."""
    checked = 0
    for page in html_pages(site):
        found = parse_links(page)
        for tag, attribute, value in found.links:
            parts = urlsplit(value)
            if parts.scheme in ("http", "https"):
                assert tag == "a", f"{page}: external {tag} {attribute}={value} (must be offline)"
                continue
            if not parts.scheme and not parts.path:
                continue  # "#anchor"
            _assert_local(site, page, f"{tag} {attribute}", value)
            checked += 1
        for value in found.data_urls:
            _assert_local(site, page, "data-index/data-src", value)
            checked += 1
    feed = site / layout.FEED
    if feed.is_file():
        for value in feed_links(feed):
            _assert_local(site, feed, "feed link", value)
            checked += 1
    return checked


def mtimes(site: Path) -> dict[str, int]:
    """The modification time of every file of the site (outside ``.sitegen``), by path."""
    return {
        p.relative_to(site).as_posix(): p.stat().st_mtime_ns
        for p in site.rglob("*")
        if p.is_file() and ".sitegen" not in p.parts
    }


def repodata(site: Path, channel: str, subdir: str) -> dict[str, Any]:
    """The published repodata.json of a channel's subdir."""
    return json.loads((site / channel / subdir / "repodata.json").read_bytes())


def records_of(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The records of both sections of a repodata document, by filename."""
    return {**document["packages"], **document["packages.conda"]}


def page_text(site: Path, relpath: str) -> str:
    """The text of the site's file at ``relpath``."""
    return (site / relpath).read_text(encoding="utf-8")


def snippet_text(page: str, label: str) -> str | None:
    """The text of the snippet labelled ``label`` on ``page`` (HTML), as a reader copies it
    (no JavaScript: placeholders as written), or None when the page has none."""
    pattern = (
        rf'<pre[^>]*aria-label="{re.escape(html.escape(label))}"[^>]*><code>(.*?)</code></pre>'
    )
    found = re.search(pattern, page, re.S)
    return html.unescape(found.group(1)) if found else None


def distinct_run_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gives every run of the test a distinct id, in the order the runs start: a run id is the
    time to the millisecond and the process id, so two runs of one test within a millisecond
    would share one. A module takes it as a fixture of every test,
    ``pytest.fixture(autouse=True, name="unique_run_ids")(distinct_run_ids)``."""
    counter = itertools.count(1)
    real = RUN_ID_RE  # ids must still look like run ids

    def new_run_id() -> str:
        run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{next(counter)}"
        assert real.match(run_id)
        return run_id

    monkeypatch.setattr("sitegen.sync.run.new_run_id", new_run_id)
