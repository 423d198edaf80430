"""An advisory feed that echoes the secrets of its own URL in its advisories: what they say
(an id, an alias, a summary) is shown as an exclusion reason, on package pages, in run
records and in the log, and none of those may show the secret. The advisory still blocks."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sitegen.layout import STATE_DIR
from testkit.advisories import write_feed, zlib_advisory
from testkit.site import published
from testkit.upstream import ExampleUpstream, UpstreamServer

pytestmark = pytest.mark.integration

CHANNEL = "cloud/example"
OLD_ZLIB = {"zlib-1.2.13-h446ffa6_0.conda", "zlib-1.2.13-h446ffa6_0.tar.bz2"}
TOKEN = "tk-" + random.Random(20261207).randbytes(12).hex()


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
    site = tmp_path / "site"
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"""\
output: {site}
filters:
  advisories: {{feeds: ['{host}/t/${{FEED_TOKEN}}/conda/all.zip']}}
channels:
  {CHANNEL}:
    url: {example_upstream.url}
    subdirs: [linux-64]
"""
    )
    env = {**os.environ, "FEED_TOKEN": TOKEN}
    runs = [
        subprocess.run(
            [sys.executable, "-m", "sitegen", "-v", *args, "-c", str(config)],
            capture_output=True,
            timeout=120,
            env=env,
            check=False,
        )
        for args in (["mirror", "--no-progress"], ["status"], ["render"])
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
