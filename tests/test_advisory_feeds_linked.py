"""A feed's kept copy behind a link planted in the private state: never followed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sitegen.cli import EXIT_FAILED, EXIT_OK
from sitegen.layout import advisory_feed_dir
from testkit.advisories import FEED_PATH, OLD_ZLIB, feed_site, write_feed, zlib_advisory
from testkit.site import CHANNEL, published, snapshot
from testkit.upstream import ExampleUpstream, UpstreamServer, respond

pytestmark = pytest.mark.integration


def everything(root: Path) -> tuple[list[str], dict[str, tuple[int, str]]]:
    """Every path below ``root`` (folders too), and every file's mtime and digest."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")), snapshot(root)


@pytest.mark.parametrize("which", ["all feeds", "the feed's own"])
def test_a_feed_folder_linked_out_of_the_site_is_neither_read_written_nor_cleaned(
    example_upstream: ExampleUpstream,
    upstream_server_factory: Callable[..., UpstreamServer],
    tmp_path: Path,
    which: str,
) -> None:
    """The feed is then one without a kept copy: fetched whole and applied, nothing kept; down,
    its mirrors are not run. What lies past the link (a copy of the feed, another feed's
    folder, what earlier versions kept) stays as it is."""
    feeds = tmp_path / "feeds"
    write_feed(feeds / "conda" / "all.zip", [zlib_advisory()])
    server = upstream_server_factory(feeds)
    url = f"{server.url}{FEED_PATH}"
    site, config = feed_site(tmp_path, url, example_upstream.url)

    def sitegen() -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "sitegen", "mirror", "-c", str(config), "--no-progress"]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    assert sitegen().returncode == EXIT_OK
    feed_dir = advisory_feed_dir(site, url)
    linked = feed_dir.parent if which == "all feeds" else feed_dir
    outside = tmp_path / "outside"
    linked.rename(outside)
    linked.symlink_to(outside)
    # What another site's state (or anyone's files) past the link holds: the feed's good copy
    # and what a run deletes in a folder of its own (an archive an earlier version kept,
    # another reader's copy, the folder of a feed no filter names).
    mine = outside / feed_dir.name if which == "all feeds" else outside
    (mine / "feed.zip").write_bytes(b"an archive an earlier version kept")
    (mine / f"feed-{'0' * 24}.msgpack").write_bytes(b"another reader's copy")
    (outside / "f00d").mkdir()
    (outside / "f00d" / "feed.zip").write_bytes(b"another feed's")
    before = everything(outside)
    name = linked.relative_to(site).as_posix()

    server.reset()
    up = sitegen()
    assert up.returncode == EXIT_OK, up.stderr
    assert f"{name}: a link out of the site, to {outside}" in up.stderr, up.stderr
    (fetched,) = server.requests  # whole: no validators read past the link
    assert fetched.status == 200 and fetched.header("if-none-match") is None
    assert not published(site, CHANNEL, "linux-64") & OLD_ZLIB
    assert everything(outside) == before

    server.add_fault(FEED_PATH, respond(503))
    down = sitegen()
    assert down.returncode == EXIT_FAILED, down.stderr
    assert "no good copy of it yet" in down.stderr, down.stderr
    assert everything(outside) == before
