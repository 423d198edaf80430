"""A served feed in real runs: its URL's secrets unshown, inflated no further than its cap."""

from __future__ import annotations

import base64
import gzip
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

import sitegen
from sitegen.config import DownloadSettings
from sitegen.net import feed as feed_mod
from sitegen.net.activity import Activity
from sitegen.net.failures import UpstreamError
from sitegen.net.feed import open_feed_client
from testkit.advisories import (
    FEED_PATH,
    OLD_ZLIB,
    feed_site,
    write_feed,
    write_zip,
    zlib_advisory,
)
from testkit.faults import inflating
from testkit.site import CHANNEL, channel_config, mirror_unchecked, published
from testkit.upstream import ExampleUpstream, UpstreamServer, respond, serve_bytes

pytestmark = pytest.mark.integration

TOKEN = "tk-" + random.Random(20261205).randbytes(12).hex()

PASSWORD = "pw-" + random.Random(20261206).randbytes(12).hex()


def test_the_secrets_of_a_feed_url_never_reach_logs_pages_or_the_site(
    example_upstream: ExampleUpstream,
    upstream_server_factory: Callable[..., UpstreamServer],
    tmp_path: Path,
) -> None:
    feeds = tmp_path / "feeds"
    write_feed(feeds / "t" / TOKEN / "conda" / "all.zip", [zlib_advisory()])
    server = upstream_server_factory(feeds)
    host = server.url.removeprefix("http://")
    url = f"http://reader:${{FEED_PASSWORD}}@{host}/t/${{FEED_TOKEN}}/conda/all.zip?key=${{FEED_TOKEN}}"
    site, config = feed_site(tmp_path, url, example_upstream.url)
    env = {**os.environ, "FEED_TOKEN": TOKEN, "FEED_PASSWORD": PASSWORD}

    def sitegen(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "sitegen", "-v", *args],
            capture_output=True,
            timeout=120,
            env=env,
            check=False,
        )

    path = f"/t/{TOKEN}/conda/all.zip"
    runs = [sitegen("mirror", "-c", str(config), "--no-progress")]  # fetched
    runs.append(sitegen("mirror", "-c", str(config), "--no-progress"))  # 304
    server.add_fault(path, respond(503, f"no {path} here".encode()))
    runs.append(sitegen("mirror", "-c", str(config), "--no-progress"))  # down
    server.add_fault(path, serve_bytes(b"not a zip " + TOKEN.encode()))
    runs.append(sitegen("mirror", "-c", str(config), "--no-progress"))  # a bad archive
    # Refused by a member whose name echoes the secrets: the warning names it, hiding them.
    echoing = write_zip({f"{TOKEN}-{PASSWORD}.json": b"{not json"})
    server.add_fault(path, serve_bytes(echoing, "application/zip"))
    runs.append(sitegen("mirror", "-c", str(config), "--no-progress"))
    runs.append(sitegen("render", "-c", str(config)))
    assert [r.returncode for r in runs] == [0, 0, 0, 0, 0, 0], runs[0].stderr.decode()
    # The member's name is quoted cut short, and the password's start before the cut hidden.
    assert "cannot be used: member '***-***'... (60 characters)" in runs[4].stderr.decode()

    statuses = [r.status for r in server.requests if r.path == path]
    assert statuses[:2] == [200, 304] and 503 in statuses
    (sent,) = {r.query for r in server.requests if r.path == path}
    assert sent == f"key={TOKEN}"  # the secrets were sent, where they belong
    basic = "Basic " + base64.b64encode(f"reader:{PASSWORD}".encode()).decode()
    assert {r.header("authorization") for r in server.requests} == {basic}
    down = runs[2].stderr.decode()
    assert f"advisory feed http://***@{host}/t/***/conda/all.zip?key=*** could not" in down
    for proc in runs:
        output = proc.stdout + proc.stderr
        for secret in (TOKEN, PASSWORD):
            assert secret.encode() not in output, output.decode(errors="replace")
    files = [p for p in site.rglob("*") if p.is_file()]
    assert len(files) > 10
    for file in files:
        data = file.read_bytes()
        assert TOKEN.encode() not in data and PASSWORD.encode() not in data, file
        assert TOKEN not in str(file) and PASSWORD not in str(file)


@pytest.mark.parametrize(
    ("encoding", "refusal"),
    [
        ("gzip", "more than 1048576 bytes"),
        ("zstd", "compressed in transit as 'zstd', which sitegen does not accept"),
    ],
)
async def test_a_feed_compressed_in_transit_is_inflated_no_further_than_its_cap(
    upstream_server_factory: Callable[..., UpstreamServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    encoding: str,
    refusal: str,
) -> None:
    """A feed is stored as it is decoded, a step at a time: a small body that inflates some
    hundredfold is stopped at the cap, never decoded a whole read at once (tens of MiB), and
    a coding sitegen does not accept is refused. A feed gzip-encoded in transit is kept as
    the archive it is."""
    cap = 1 << 20
    monkeypatch.setattr(feed_mod, "MAX_FEED_BYTES", cap)
    server = upstream_server_factory(tmp_path)
    archive = write_zip({"TEST-ZLIB-1.json": json.dumps(zlib_advisory())})
    server.add_fault(
        "/good.zip", respond(200, gzip.compress(archive), {"Content-Encoding": "gzip"})
    )
    server.add_fault(FEED_PATH, inflating(encoding, 64 << 20))
    into = tmp_path / "feed.zip"
    async with AsyncExitStack() as stack:
        feeds = await open_feed_client(DownloadSettings(retries=0, timeout=20), stack, Activity())
        assert (await feeds.fetch(f"{server.url}/good.zip", "good", None, into)).changed
        assert into.read_bytes() == archive
        tracemalloc.start()
        try:
            with pytest.raises(UpstreamError, match=refusal):
                await feeds.fetch(f"{server.url}{FEED_PATH}", "the feed", None, into)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 8 * cap, f"{peak >> 20} MiB held for a cap of {cap >> 20} MiB"


async def test_a_feeds_allow_ids_match_in_any_case_and_one_matching_nothing_is_warned_of(
    example_upstream: ExampleUpstream,
    upstream_server_factory: Callable[..., UpstreamServer],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    feeds = tmp_path / "feeds"
    write_feed(feeds / "conda" / "all.zip", [zlib_advisory()])
    url = f"{upstream_server_factory(feeds).url}{FEED_PATH}"
    # The zlib advisory's alias, written in lower case, and an id no advisory of the feed has.
    allow = "allow: [cve-2022-37434, GHSA-typo-0000-0000]"
    setting = f"filters: {{advisories: {{feeds: ['{url}'], min_score: 7, {allow}}}}}"
    config = channel_config(tmp_path / "site", example_upstream.url, extra=setting)

    with caplog.at_level(logging.WARNING, logger="sitegen"):
        report = await mirror_unchecked(config)

    assert not report.failed, report.errors
    assert report.mirrors[0].advisories_blocked == []
    assert published(tmp_path / "site", CHANNEL, "linux-64") >= OLD_ZLIB
    warned = [r.getMessage() for r in caplog.records if "allows nothing" in r.getMessage()]
    assert len(warned) == 1 and "'GHSA-typo-0000-0000'" in warned[0], warned


@pytest.mark.parametrize("module", ["osv.py", "osv_severity.py", "purls.py"])
def test_a_change_to_the_code_that_scores_or_names_what_a_copy_holds_renews_its_key(
    tmp_path, module
):
    """The copy keeps each advisory's score and its entries' package keys as read: a sitegen
    whose reading of them differs (its version string unchanged, as between two commits) must
    not take the copy for its own. Each tree is imported by a Python process of its own."""
    source = Path(sitegen.__file__).resolve().parent
    url = "https://osv.example.org/conda/all.zip"

    def key_of(tree: Path) -> str:
        code = "from pathlib import Path; from sitegen.filters.feeds import kept_copy;"
        code += f" print(kept_copy(Path('site'), {url!r}).name)"
        environ = {**os.environ, "PYTHONPATH": str(tree)}
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=tree,  # "-c" puts the working directory first on the path
            env=environ,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    before, after = tmp_path / "before", tmp_path / "after"
    for tree in (before, after):
        shutil.copytree(source, tree / "sitegen", ignore=shutil.ignore_patterns("__pycache__"))
    with (after / "sitegen" / "filters" / module).open("a") as handle:
        handle.write("\n# another release of this module\n")
    assert key_of(before) != key_of(after)
