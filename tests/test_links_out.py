"""A channel or subdir folder of the site that is a symbolic link out of it: ``render`` and
``mirror`` (run as the command-line program) leave that channel alone, name the folder, exit 1
and do the rest; nothing is written, read into the site or removed through the link."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from testkit.site import snapshot
from testkit.small_channel import CHANNEL, keep_mirrored_small
from testkit.upstream import UpstreamServer
from testkit.verify import TEMP

pytestmark = pytest.mark.integration

LINUX = "linux-64"
OTHER = "cloud/other"

mirrored = pytest.fixture(name="mirrored")(keep_mirrored_small)


def _sitegen(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "sitegen", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _link_out(site: Path, linked: str, outside: Path) -> None:
    """Move the folder ``linked`` out of the site, a link to it left in its place, with
    files in it that a run or a render would otherwise write over or remove."""
    (site / linked).rename(outside)
    (site / linked).symlink_to(outside)
    subdir = outside if linked.endswith(LINUX) else outside / LINUX
    (subdir / TEMP).write_bytes(b"half a download")
    (subdir / "index.html").write_text("not the site's")


@pytest.mark.parametrize("linked", [CHANNEL, f"{CHANNEL}/{LINUX}"])
def test_render_leaves_the_pages_of_a_channel_linked_out_and_renders_the_rest(
    mirrored: tuple[Path, Path, UpstreamServer], tmp_path: Path, linked: str
) -> None:
    config, site, _server = mirrored
    outside = tmp_path / "outside"
    _link_out(site, linked, outside)
    (site / "index.html").unlink()
    before = snapshot(outside)
    done = _sitegen("render", "-c", str(config))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert f"WARNING pages: {linked}: a link out of the site, to {outside}: " in done.stderr
    assert (site / "index.html").is_file()  # the rest is rendered
    assert snapshot(outside) == before and (site / linked).is_symlink()


@pytest.mark.parametrize("linked", [CHANNEL, f"{CHANNEL}/{LINUX}"])
def test_mirror_fails_a_channel_linked_out_and_publishes_the_others(
    mirrored: tuple[Path, Path, UpstreamServer], tmp_path: Path, linked: str
) -> None:
    config, site, server = mirrored
    with config.open("a") as out:
        out.write(f"  {OTHER}:\n    url: {server.url}\n    subdirs: [{LINUX}]\n")
    outside = tmp_path / "outside"
    _link_out(site, linked, outside)
    before = snapshot(outside)
    done = _sitegen("mirror", "--no-progress", "-c", str(config))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "unexpected error" not in done.stderr
    assert f"ERROR cloud-example: {linked}: a link out of the site, to {outside}: " in done.stderr
    assert (site / OTHER / LINUX / "repodata.json").is_file()
    assert (site / OTHER / "noarch" / "repodata.json").is_file()
    assert snapshot(outside) == before and (site / linked).is_symlink()
    status = _sitegen("status", "-c", str(config))
    assert f"error: {linked}: a link out of the site" in status.stdout, status.stdout
