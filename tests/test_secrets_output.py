"""A token in a mirror URL is in no output: runs, verify, pages, logs, files below the site."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sitegen.cli import main
from sitegen.config import load_config
from sitegen.sync.run import run_mirror
from sitegen.tools.example_channel import PackageSpec, write_channel
from testkit.advisories import write_feed, zlib_advisory
from testkit.faults import corrupt, redirect
from testkit.invariant import assert_site_invariant, make_sandbox
from testkit.secrets import ENV, LINUX, TOKEN
from testkit.small_channel import CHANNEL, small_packages
from testkit.upstream import UpstreamHandler, UpstreamServer, respond

pytestmark = pytest.mark.integration

FAILING = [
    PackageSpec("fail503", "1.0", "h0_0", formats=("conda",)),
    PackageSpec("failloop", "1.0", "h0_0", formats=("conda",)),
    PackageSpec("failbytes", "1.0", "h0_0", formats=("conda",)),
    PackageSpec("fail404", "1.0", "h0_0", formats=("conda",)),
]


class Channel:
    def __init__(self, server: UpstreamServer, tmp_path: Path) -> None:
        self.server = server
        self.prefix = f"/t/{TOKEN}/chan"
        self.site = make_sandbox(tmp_path)
        self.config = tmp_path / "channels.yaml"
        self.config.write_text(
            f"""\
output: {self.site}
base_url: https://mirror.example.org
download: {{concurrency: 4, per_host: 4, retries: 1, timeout: 2}}
channels:
  {CHANNEL}:
    url: {server.url}/t/${{{ENV}}}/chan
    subdirs: [linux-64]
"""
        )

    def path(self, fn: str, subdir: str = LINUX) -> str:
        return f"{self.prefix}/{subdir}/{fn}"


@pytest.fixture
def channel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Channel]:
    root = tmp_path / "upstream"
    write_channel(root / "t" / TOKEN / "chan", [*small_packages(), *FAILING], zst=True)
    monkeypatch.setenv(ENV, TOKEN)
    with UpstreamServer(root) as server:
        chan = Channel(server, tmp_path)
        fail503, failloop, failbytes, fail404 = (s.filename("conda") for s in FAILING)
        leak = f"upstream error at {server.url}{chan.path(fail503)}".encode()
        server.add_fault(chan.path(fail503), respond(503, leak))
        server.add_fault(chan.path(failloop), redirect(server.url + chan.path(failloop)))
        server.add_fault(chan.path(failbytes), corrupt())
        server.add_fault(chan.path(fail404), redirect(chan.path(fail404) + ".gone"))
        yield chan


def _sitegen(*args: str) -> subprocess.CompletedProcess[bytes]:
    """Run the CLI in a child process with debug logging: its real stdout and stderr."""
    return subprocess.run(
        [sys.executable, "-m", "sitegen", "-v", *args],
        capture_output=True,
        timeout=60,
        env={**os.environ, ENV: TOKEN},
        check=False,
    )


def _assert_no_token_in_tree(root: Path) -> int:
    needle = TOKEN.encode()
    files = 0
    for path in root.rglob("*"):
        assert TOKEN not in path.name, path
        if path.is_file():
            files += 1
            assert needle not in path.read_bytes(), f"the token leaked into {path}"
    return files


def test_token_never_leaves_config_and_environment(channel: Channel) -> None:
    # 1. A run where four files fail in four ways, with debug logging.
    first = _sitegen("mirror", "-c", str(channel.config), "--no-progress")
    assert first.returncode == 1, first.stderr.decode()
    assert channel.server.count(f"/t/{TOKEN}/chan/{LINUX}/repodata.json.zst") >= 1
    published = (channel.site / CHANNEL / LINUX / "repodata.json").read_text()
    assert "alpha-1.0-h0_0.conda" in published and "fail503" not in published
    # 2. A run whose repodata fails.
    channel.server.add_fault(f"{channel.prefix}/{LINUX}/repodata.json.zst", respond(500))
    second = _sitegen("mirror", "-c", str(channel.config), "--no-progress")
    assert second.returncode == 1
    assert_site_invariant(channel.site)
    # 3. verify --repair with a file to fetch again, one that cannot be, and the pages.
    (channel.site / CHANNEL / LINUX / "alpha-1.0-h0_0.conda").unlink()
    channel.server.add_fault(channel.path("beta-2.0-h1_0.conda"), respond(503))
    (channel.site / CHANNEL / LINUX / "beta-2.0-h1_0.conda").unlink()
    repair = _sitegen("verify", "-c", str(channel.config), "--repair")
    assert repair.returncode == 1
    assert b"alpha-1.0-h0_0.conda" in repair.stdout and b"repair failed" in repair.stdout
    render = _sitegen("render", "-c", str(channel.config))
    assert render.returncode == 0, render.stderr.decode()
    assert any(channel.site.rglob("*.html")), "no pages were rendered"

    for proc in (first, second, repair, render):
        output = proc.stdout + proc.stderr
        assert TOKEN.encode() not in output, output.decode(errors="replace")
    errors = (first.stderr + second.stderr).decode()
    assert "fail503-1.0-h0_0.conda" in errors and "HTTP 500" in errors
    assert "/t/***/chan" in errors  # the URL is named, redacted
    assert _assert_no_token_in_tree(channel.site) > 10


def test_token_not_in_log_records(channel: Channel, caplog: pytest.LogCaptureFixture) -> None:
    """The same, in process: every log record's message and arguments, at debug level."""
    with caplog.at_level(logging.DEBUG):
        assert main(["-v", "mirror", "-c", str(channel.config), "--no-progress"]) == 1
        channel.server.add_fault(f"{channel.prefix}/{LINUX}/repodata.json.zst", respond(500))
        assert main(["-v", "mirror", "-c", str(channel.config), "--no-progress"]) == 1
    assert caplog.records
    for record in caplog.records:
        text = f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        assert TOKEN not in text, text
    _assert_no_token_in_tree(channel.site)
    assert_site_invariant(channel.site)


def test_a_content_encoding_echoing_the_token_is_not_quoted(channel: Channel) -> None:
    """Upstream answers a package file, then the repodata, with a ``Content-Encoding`` that
    echoes the token of the URL asked for: each is refused, and the refusal says the coding
    is not a registered one instead of quoting it into the log and the run record."""
    echo = f"x-{TOKEN}"

    def echoing(handler: UpstreamHandler) -> None:
        handler.respond(200, b"compressed?", {"Content-Encoding": echo})

    channel.server.add_fault(channel.path("alpha-1.0-h0_0.conda"), echoing)
    first = _sitegen("mirror", "-c", str(channel.config), "--no-progress")
    for variant in ("repodata.json.zst", "repodata.json"):
        channel.server.add_fault(channel.path(variant), echoing)
    second = _sitegen("mirror", "-c", str(channel.config), "--no-progress")
    assert first.returncode == second.returncode == 1
    errors = (first.stderr + second.stderr).decode()
    assert "alpha-1.0-h0_0.conda: the server compressed the file in transit" in errors
    assert "repodata.json.zst: compressed in transit as an unregistered coding" in errors
    assert TOKEN not in errors, errors
    assert _assert_no_token_in_tree(channel.site) > 10


async def test_a_secret_anywhere_in_a_url_stays_out_of_library_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """run_mirror used as a library, a proxy set in the environment: httpx's own client carries
    the requests, and logs each URL at INFO. An API key as a folder of the mirror's URL and of
    an advisory feed's, which no URL pattern tells from any other path segment, is not in
    those lines (nor in any other)."""
    key, feed_key = TOKEN.replace("tk-", "ak-"), TOKEN.replace("tk-", "fk-")
    root = tmp_path / "upstream"
    write_channel(root / "keys" / key / "chan", small_packages(), zst=True)
    write_feed(root / "feeds" / feed_key / "all.zip", [zlib_advisory()])
    monkeypatch.setenv("SITEGEN_TEST_KEY", key)
    monkeypatch.setenv("SITEGEN_FEED_KEY", feed_key)
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    for name in ("httpx", "httpcore"):
        monkeypatch.setattr(logging.getLogger(name), "level", logging.DEBUG)
    site = make_sandbox(tmp_path)
    with UpstreamServer(root) as server:
        monkeypatch.setenv("HTTP_PROXY", server.url)  # the test server plays the proxy
        (tmp_path / "channels.yaml").write_text(
            f"output: {site}\n"
            "filters: {advisories: {feeds: ['http://feeds.invalid/feeds/${SITEGEN_FEED_KEY}"
            "/all.zip']}}\n"
            f"channels:\n  {CHANNEL}:\n"
            "    url: http://upstream.invalid/keys/${SITEGEN_TEST_KEY}/chan\n"
            "    subdirs: [linux-64]\n"
        )
        with caplog.at_level(logging.DEBUG):
            report = await run_mirror(load_config(tmp_path / "channels.yaml"))
    assert not report.failed, report.errors
    assert server.count(f"/keys/{key}/chan/{LINUX}/repodata.json.zst") == 1
    assert server.count(f"/feeds/{feed_key}/all.zip") == 1
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert any("/keys/***/chan/linux-64/repodata.json.zst" in line for line in lines), lines
    assert any("/feeds/***/all.zip" in line for line in lines), lines
    for secret in (key, feed_key):
        assert secret not in caplog.text
