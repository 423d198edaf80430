"""An advisory feed that echoes the secrets of its own URL in its advisories: what they say
(an id, an alias, a summary) is shown as an exclusion reason, on package pages, in run
records and in the log, and none of those may show the secret, nor may the copy of the feed
kept in the site's state. The advisory still blocks."""

from __future__ import annotations

import calendar
import hashlib
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sitegen.layout import STATE_DIR, advisory_feed_dir
from testkit.advisories import OLD_ZLIB, feed_site, write_feed, zlib_advisory
from testkit.site import CHANNEL, published
from testkit.upstream import ExampleUpstream, UpstreamServer, respond

pytestmark = pytest.mark.integration

TOKEN = "tk-" + random.Random(20261207).randbytes(12).hex()
# The token as a URL may spell it, every byte percent-encoded.
ENCODED = "".join(f"%{byte:02X}" for byte in TOKEN.encode())


def run_sitegen(config: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """``sitegen -v ARGS -c CONFIG`` with the feed's token in the environment."""
    return subprocess.run(
        [sys.executable, "-m", "sitegen", "-v", *args, "-c", str(config)],
        capture_output=True,
        timeout=120,
        env={**os.environ, "FEED_TOKEN": TOKEN},
        check=False,
    )


def test_an_advisory_echoing_its_feeds_token_blocks_without_showing_it(
    example_upstream: ExampleUpstream,
    upstream_server_factory: Callable[..., UpstreamServer],
    tmp_path: Path,
) -> None:
    feeds = tmp_path / "feeds"
    echoing = {
        **zlib_advisory(),
        "id": f"GHSA-{TOKEN}",
        "aliases": [f"CVE-{TOKEN}"],
        "summary": f"reported through /t/{TOKEN}/",
    }
    write_feed(feeds / "t" / TOKEN / "conda" / "all.zip", [echoing])
    host = upstream_server_factory(feeds).url
    feed_url = f"{host}/t/${{FEED_TOKEN}}/conda/all.zip"
    site, config = feed_site(tmp_path, feed_url, example_upstream.url, retries=0)
    runs = [
        run_sitegen(config, *args) for args in (["mirror", "--no-progress"], ["status"], ["render"])
    ]
    assert [r.returncode for r in runs] == [0, 0, 0], runs[0].stderr.decode()
    assert not published(site, CHANNEL, "linux-64") & OLD_ZLIB
    for proc in runs:
        output = (proc.stdout + proc.stderr).decode(errors="replace")
        assert TOKEN not in output, output
    shown = [p for p in site.rglob("*") if p.is_file() and STATE_DIR not in p.parts]
    assert len(shown) > 10
    holding = [str(p.relative_to(site)) for p in shown if TOKEN.encode() in p.read_bytes()]
    assert holding == []
    pages = "".join(p.read_text() for p in site.rglob("*.html") if STATE_DIR not in p.parts)
    assert "GHSA-***" in pages


def holding_the_token(site: Path) -> list[str]:
    """The files under ``site`` (its state included) that hold the token, as it is or
    percent-encoded."""
    files = [p for p in site.rglob("*") if p.is_file()]
    assert any(STATE_DIR in p.parts for p in files)
    return [
        str(p.relative_to(site))
        for p in files
        if TOKEN.encode() in p.read_bytes() or ENCODED.encode() in p.read_bytes()
    ]


def test_the_copy_kept_of_a_feed_echoing_its_token_holds_no_token(
    example_upstream: ExampleUpstream,
    upstream_server_factory: Callable[..., UpstreamServer],
    tmp_path: Path,
) -> None:
    """The kept copy is what the runs after a 304 and the renders read: the token it would
    hold is written as ``***`` there, so that it stays hidden once the token is rotated. The
    copies an earlier sitegen kept (the archive as served, and its advisories as read) go."""
    feeds = tmp_path / "feeds"
    served = feeds / "t" / TOKEN / "conda" / "all.zip"
    path = f"/t/{TOKEN}/conda/all.zip"

    def echoing(fixed: str) -> dict:
        return {
            **zlib_advisory(fixed),
            "id": f"GHSA-{TOKEN}",
            "aliases": [f"CVE-{ENCODED}"],
            "summary": f"reported through /t/{TOKEN}/ (a ${{jndi:ldap://x}} lookup)",
        }

    write_feed(served, [echoing("1.3.1")])
    server = upstream_server_factory(feeds)
    url = f"{server.url}/t/${{FEED_TOKEN}}/conda/all.zip"
    site, config = feed_site(tmp_path, url, example_upstream.url, retries=0)

    def sitegen(*args: str) -> str:
        proc = run_sitegen(config, *args)
        output = (proc.stdout + proc.stderr).decode(errors="replace")
        assert proc.returncode == 0, output
        assert TOKEN not in output and ENCODED not in output, output
        return output

    def statuses() -> list[int]:
        return [r.status for r in server.requests if r.path == path]

    sitegen("mirror", "--no-progress")  # fetched
    sitegen("mirror", "--no-progress")  # unchanged: answered 304, read from the copy kept
    sitegen("render")
    assert statuses() == [200, 304]
    assert not published(site, CHANNEL, "linux-64") & OLD_ZLIB
    assert holding_the_token(site) == []
    pages = (site / CHANNEL / "packages" / "zlib.html").read_text()
    assert "GHSA-***" in pages and "${jndi:ldap://x}" in pages  # upstream's own ${...} stays

    # The feed changes (1.3.1 affected too): fetched whole, kept the same way.
    write_feed(served, [echoing("1.3.2")])
    sitegen("mirror", "--no-progress")
    assert statuses() == [200, 304, 200]
    assert not published(site, CHANNEL, "linux-64") & {*OLD_ZLIB, "zlib-1.3.1-hecd8fb3_0.conda"}
    assert holding_the_token(site) == []

    # What an earlier sitegen kept: the archive as served and its advisories as read, both
    # holding the token. The next run drops them, even with the feed down (the copy kept
    # by this sitegen is used).
    folder = advisory_feed_dir(site, url)
    (folder / "feed.zip").write_bytes(served.read_bytes())
    (folder / f"advisories-{'0' * 24}.msgpack").write_bytes(TOKEN.encode())
    server.add_fault(path, respond(503))
    assert "last good copy" in sitegen("mirror", "--no-progress")
    assert holding_the_token(site) == []
    assert not published(site, CHANNEL, "linux-64") & OLD_ZLIB


def test_the_archive_an_earlier_sitegen_kept_stands_in_while_the_feed_is_down(
    example_upstream: ExampleUpstream,
    upstream_server_factory: Callable[..., UpstreamServer],
    tmp_path: Path,
) -> None:
    """The first run after an upgrade, with the feed down: the archive the earlier sitegen
    kept is read as a served one is (the token hidden) into the copy, and is the feed's last
    good copy; the archive and its advisories as read go. Once the feed is back it is fetched
    whole, not confirmed by a 304: the archive may echo a value since rotated."""
    feeds = tmp_path / "feeds"
    served = feeds / "t" / TOKEN / "conda" / "all.zip"
    path = f"/t/{TOKEN}/conda/all.zip"
    write_feed(served, [{**zlib_advisory(), "id": f"GHSA-{TOKEN}", "summary": f"/t/{TOKEN}/"}])
    server = upstream_server_factory(feeds)
    server.add_fault(path, respond(503))
    url = f"{server.url}/t/${{FEED_TOKEN}}/conda/all.zip"
    site, config = feed_site(tmp_path, url, example_upstream.url, retries=0)
    # The feed's folder as the earlier sitegen left it.
    folder = advisory_feed_dir(site, url)
    folder.mkdir(parents=True)
    (folder / "feed.zip").write_bytes(served.read_bytes())
    (folder / f"advisories-{'0' * 24}.msgpack").write_bytes(TOKEN.encode())
    etag = '"' + hashlib.sha256(served.read_bytes()).hexdigest() + '"'
    checked = calendar.timegm((2026, 11, 2, 8, 30, 0))
    (folder / "validators.json").write_text(
        json.dumps(
            {
                "url": "…",
                "etag": etag,
                "last_modified": None,
                "checked": checked,
                "secrets_hidden": True,
            }
        )
    )

    def sitegen(*args: str) -> str:
        proc = run_sitegen(config, *args)
        output = (proc.stdout + proc.stderr).decode(errors="replace")
        assert proc.returncode == 0, output
        assert TOKEN not in output, output
        return output

    output = sitegen("mirror", "--no-progress")
    assert "its last good copy, current at 2026-11-02 08:30 UTC, is used" in output
    assert "zlib-1.3.1-hecd8fb3_0.conda" in published(site, CHANNEL, "linux-64")
    assert not published(site, CHANNEL, "linux-64") & OLD_ZLIB
    assert holding_the_token(site) == []
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith("feed-")) == [
        "validators.json"
    ]
    sitegen("render")
    assert "GHSA-***" in (site / CHANNEL / "packages" / "zlib.html").read_text()

    server.clear_faults()
    sitegen("mirror", "--no-progress")
    assert [r.status for r in server.requests if r.path == path] == [503, 200]
    assert not published(site, CHANNEL, "linux-64") & OLD_ZLIB
    assert holding_the_token(site) == []


def test_an_archive_an_earlier_sitegen_kept_that_cannot_be_used_is_only_deleted(
    example_upstream: ExampleUpstream,
    upstream_server_factory: Callable[..., UpstreamServer],
    tmp_path: Path,
) -> None:
    server = upstream_server_factory(tmp_path / "feeds")
    path = f"/t/{TOKEN}/conda/all.zip"
    server.add_fault(path, respond(503))
    url = f"{server.url}/t/${{FEED_TOKEN}}/conda/all.zip"
    site, config = feed_site(tmp_path, url, example_upstream.url, retries=0)
    folder = advisory_feed_dir(site, url)
    folder.mkdir(parents=True)
    (folder / "feed.zip").write_bytes(b"PK\x03\x04 cut short " + TOKEN.encode())
    proc = run_sitegen(config, "mirror", "--no-progress")
    output = (proc.stdout + proc.stderr).decode(errors="replace")
    assert proc.returncode == 1, output  # the mirror it filters is not run
    assert "kept of it cannot be used: not a readable zip archive" in output
    assert "there is no good copy of it yet" in output
    assert TOKEN not in output
    assert list(folder.iterdir()) == []
    assert holding_the_token(site) == []
