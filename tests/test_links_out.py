"""A channel or subdir folder of the site that is a symbolic link out of it: ``render`` and
``mirror`` (run as the command-line program) leave that channel alone, name the folder, exit 1
and do the rest; nothing is written, read into the site or removed through the link. A page or
a folder of pages that is such a link (or a loop of links) is left as it is by the render,
named, and the rest rendered; a folder of the private state that is such a link is not
followed either."""

from __future__ import annotations

import shutil
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


PAGE = f"{CHANNEL}/packages/alpha.html"
PAGES = f"{CHANNEL}/packages"
# Pages (and folders of pages) that a link out of the site, or a loop of links, replaces.
PLANTED = [PAGE, PAGES, "history/index.html", "history"]


def _plant(site: Path, planted: str, outside: Path, loop: bool) -> str:
    """Put a link out of the site (or a loop of links) in place of the file or folder
    ``planted``, with files past the link that a render would otherwise write over or remove;
    returns what the render's warning says of it."""
    target = site / planted
    is_page = Path(planted).suffix != ""
    if is_page:
        target.unlink()
    else:
        shutil.rmtree(target)
    outside.mkdir()
    (outside / TEMP).write_bytes(b"half a page")
    (outside / "page.html").write_text("not the site's")
    (outside / "index.html").write_text("not the site's")
    if loop:
        target.symlink_to(target.with_name("looped"))
        target.with_name("looped").symlink_to(target)
        return f"{planted}: a loop of symbolic links: "
    end = outside / "page.html" if is_page else outside
    target.symlink_to(end)
    return f"{planted}: a link out of the site, to {end}: "


@pytest.mark.parametrize("loop", [False, True], ids=["out", "loop"])
@pytest.mark.parametrize("planted", PLANTED)
def test_render_leaves_a_page_or_a_folder_of_pages_linked_out_and_renders_the_rest(
    mirrored: tuple[Path, Path, UpstreamServer], tmp_path: Path, planted: str, loop: bool
) -> None:
    config, site, _server = mirrored
    outside = tmp_path / "outside"
    warning = _plant(site, planted, outside, loop)
    others = [f"{CHANNEL}/packages/beta.html", "history/history.json"]
    rest = ["index.html", f"{CHANNEL}/index.html", f"{CHANNEL}/{LINUX}/index.html"]
    rest += [page for page in others if not page.startswith(planted)]
    for page in rest:
        (site / page).unlink()
    before = snapshot(outside)
    done = _sitegen("render", "-c", str(config))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert f"WARNING pages: {warning}" in done.stderr
    assert all((site / page).is_file() for page in rest)  # the rest is rendered
    assert snapshot(outside) == before and (site / planted).is_symlink()


@pytest.mark.parametrize("planted", [PAGES, PAGE])
def test_mirror_publishes_and_fails_its_render_with_pages_linked_out(
    mirrored: tuple[Path, Path, UpstreamServer], tmp_path: Path, planted: str
) -> None:
    config, site, _server = mirrored
    warning = _plant(site, planted, tmp_path / "outside", loop=False)
    (site / "index.html").unlink()
    before = snapshot(tmp_path / "outside")
    done = _sitegen("mirror", "--no-progress", "-c", str(config))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "unexpected error" not in done.stderr
    assert f"WARNING pages: {warning}" in done.stderr
    assert "ERROR rendering the pages left 1 as they were" in done.stderr
    assert (site / "index.html").is_file()
    assert snapshot(tmp_path / "outside") == before and (site / planted).is_symlink()


@pytest.mark.parametrize("loop", [False, True], ids=["out", "loop"])
@pytest.mark.parametrize("planted", [f"{CHANNEL}/{LINUX}/current_repodata.json"])
def test_render_reads_no_metadata_file_linked_out_and_renders_the_rest(
    mirrored: tuple[Path, Path, UpstreamServer], tmp_path: Path, planted: str, loop: bool
) -> None:
    config, site, _server = mirrored
    outside = tmp_path / "outside"
    warning = _plant(site, planted, outside, loop)
    rest = ["index.html", f"{CHANNEL}/index.html", f"{CHANNEL}/{LINUX}/index.html"]
    for page in rest:
        (site / page).unlink()
    before = snapshot(outside)
    done = _sitegen("render", "-c", str(config))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert f"WARNING pages: {warning}not read for the pages" in done.stderr
    assert all((site / page).is_file() for page in rest)
    assert snapshot(outside) == before and (site / planted).is_symlink()


@pytest.mark.parametrize("loop", [False, True], ids=["out", "loop"])
@pytest.mark.parametrize("linked", ["history", "history/runs"])
def test_mirror_keeps_no_record_through_a_ledger_linked_out(
    mirrored: tuple[Path, Path, UpstreamServer], tmp_path: Path, linked: str, loop: bool
) -> None:
    config, site, _server = mirrored
    # A filter that leaves a record out: the run writes its list into history/filtered too.
    config.write_text(config.read_text() + "    filters: {names: {exclude: [gamma]}}\n")
    outside = tmp_path / "outside"
    (site / linked).rename(outside)  # the records of the run before, past the link
    if loop:
        (site / linked).symlink_to(site / f"{linked}.looped")
        (site / f"{linked}.looped").symlink_to(site / linked)
        why = f"{linked}: a loop of symbolic links"
    else:
        (site / linked).symlink_to(outside)
        why = f"{linked}: a link out of the site, to {outside}"
    before = snapshot(outside)
    done = _sitegen("mirror", "--no-progress", "-c", str(config))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "unexpected error" not in done.stderr
    assert "could not record run " in done.stderr and why in done.stderr
    assert (site / CHANNEL / LINUX / "repodata.json").is_file()  # published all the same
    assert snapshot(outside) == before and (site / linked).is_symlink()
    # Nor is the ledger past the link read: no run of it is the mirror's last.
    status = _sitegen("status", "-c", str(config))
    assert status.returncode == 0, status.stderr
    assert all(record.stem not in status.stdout for record in outside.rglob("*.json"))


def test_render_keeps_no_lock_or_manifest_through_a_link_in_the_state(
    mirrored: tuple[Path, Path, UpstreamServer], tmp_path: Path
) -> None:
    """The render's own folder of the state planted as a link: the render stops, naming it,
    before it writes its lock, its manifest or a page; once the link is gone it renders."""
    config, site, _server = mirrored
    outside = tmp_path / "outside"
    (site / ".sitegen/render").rename(outside)
    (site / ".sitegen/render").symlink_to(outside)
    page = site / CHANNEL / LINUX / "index.html"
    listing = page.read_text()
    page.unlink()
    before = snapshot(outside)
    refused = _sitegen("render", "-c", str(config))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
    said = f".sitegen/render: a link out of the site, to {outside}: the render keeps its lock"
    assert said in refused.stderr, refused.stderr
    assert snapshot(outside) == before and not page.exists()
    (site / ".sitegen/render").unlink()
    done = _sitegen("render", "-c", str(config))
    assert done.returncode == 0, done.stderr
    assert page.read_text() == listing and snapshot(outside) == before


@pytest.mark.parametrize("linked", [".sitegen/render/listings", ".sitegen/render/listings/cloud"])
def test_render_neither_deletes_nor_writes_listing_caches_through_a_link_in_the_state(
    mirrored: tuple[Path, Path, UpstreamServer], tmp_path: Path, linked: str
) -> None:
    """What a link planted in the private state leads to is not the site's: the render's
    clean-up of listing caches no subdir uses does not reach past it, nor do its caches."""
    config, site, _server = mirrored
    outside = tmp_path / "outside"
    (site / linked).rename(outside)
    (site / linked).symlink_to(outside)
    (outside / "precious.json").write_text("not the site's")
    (outside / "nested").mkdir()
    (outside / "nested" / "linux-64.rows").write_text("not the site's")
    page = site / CHANNEL / LINUX / "index.html"
    listing = page.read_text()
    page.unlink()  # made again, its cache kept anew
    before = snapshot(outside)
    done = _sitegen("render", "-c", str(config))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    said = f"pages: {linked}: a link out of the site, to {outside}: the listing cache of"
    assert said in done.stderr, done.stderr
    assert snapshot(outside) == before and (site / linked).is_symlink()
    assert page.read_text() == listing
