"""Site's paths and temporaries: nothing outside the output directory, temporaries named
for their writer and cleaned once it is gone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sitegen.store import site as storage
from sitegen.store.site import TEMP_PREFIX, Site
from testkit.storage import entries, site_of_kind

site = pytest.fixture(params=["unnamed", "named"], name="site")(site_of_kind)


@pytest.mark.unit
@pytest.mark.parametrize(
    "parts",
    [
        ("..", "outside"),
        ("chan", "..", "..", "outside"),
        ("chan/../linux-64",),  # lands inside, but a dot segment is never a published path
        ("chan", "."),
        ("chan//linux-64",),
        ("chan", "a\\b"),
        ("chan", "a\x00b"),
        ("/etc", "passwd"),
    ],
)
def test_a_path_with_an_unsafe_segment_is_refused(tmp_path: Path, parts: tuple[str, ...]) -> None:
    """Nothing is written outside the output directory (README, Guarantees): channel paths,
    subdirs and file names from the configuration or upstream never climb out of the site."""
    site = Site(tmp_path / "site")
    with pytest.raises(storage.UnsafePathError):
        site.path(*parts)
    assert site.path("chan", "linux-64") == site.root / "chan" / "linux-64"


@pytest.mark.unit
def test_a_path_through_a_symlink_leading_out_of_the_site_is_refused(tmp_path: Path) -> None:
    site = Site(tmp_path / "site")
    site.ensure_dir(site.root)
    (tmp_path / "elsewhere").mkdir()
    (site.root / "chan").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(storage.UnsafePathError):
        site.path("chan", "linux-64")
    # A sibling whose name merely starts with the site's is outside it all the same.
    (tmp_path / "site-other").mkdir()
    (site.root / "near").symlink_to(tmp_path / "site-other")
    with pytest.raises(storage.UnsafePathError):
        site.path("near", "linux-64")
    (site.root / "inside").mkdir()
    (site.root / "alias").symlink_to(site.root / "inside")
    assert site.path("alias", "linux-64") == site.root / "alias" / "linux-64"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("looped", "asked"),
    [
        (("chan",), ("chan", "linux-64", "repodata.json")),
        (("chan", "linux-64"), ("chan", "linux-64", "repodata.json")),
        (("chan", "packages", "name.html"), ("chan", "packages", "name.html")),
    ],
)
def test_a_path_through_a_loop_of_symlinks_is_refused_as_unsafe(
    tmp_path: Path, looped: tuple[str, ...], asked: tuple[str, ...]
) -> None:
    """A loop of links is refused as a link out is (Python's resolve raises RuntimeError for
    it before 3.13): every caller that leaves a link out alone leaves a loop alone too."""
    site = Site(tmp_path / "site")
    site.ensure_dir(site.root.joinpath(*looped[:-1]))
    looping = site.root.joinpath(*looped)
    looping.symlink_to(looping.with_name("other"))
    looping.with_name("other").symlink_to(looping)
    with pytest.raises(storage.UnsafePathError, match="a loop of symbolic links"):
        site.path(*asked)


@pytest.mark.unit
def test_temporaries_and_staged_files_are_dot_names_of_their_writer(site: Site) -> None:
    """Every temporary (a staged replacement too) is a dot-name the web server configs deny,
    never a published name, carries its writer's pid, and two are never the same file."""
    target = site.root / "linux-64" / "a-1.0-0.conda"
    temps = {site.temp_for(target), site.temp_for(target), site.staging_for(target)}
    assert len(temps) == 3
    for temp in temps:
        assert temp.parent == target.parent and temp.name != target.name
        assert temp.name.startswith(f"{TEMP_PREFIX}{os.getpid()}-")
        assert storage.temp_writer_alive(temp.name) is False  # this process: nothing in flight


@pytest.mark.integration
def test_cleaning_spares_the_temporaries_of_a_live_writer(tmp_path: Path) -> None:
    """Temporaries of a dead process go; those of another live one (the passive fetcher
    writing a file) stay, whether cleaned per directory or across the site."""
    site = Site(tmp_path / "site")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        directory = site.root / "chan" / "linux-64"
        site.ensure_dir(directory)
        left = directory / f"{TEMP_PREFIX}{dead.pid}-a-1.0-0.conda.0000"
        busy = directory / f"{TEMP_PREFIX}{live.pid}-b-1.0-0.conda.0000"
        for path in (left, busy):
            path.write_bytes(b"x")
        assert site.clean_temp_files(directory) == 1
        assert entries(directory) == [busy.name]
        left.write_bytes(b"x")
        assert site.clean_temp_tree() == 1
        assert entries(directory) == [busy.name]
    finally:
        live.kill()
        live.wait()
    assert site.clean_temp_tree() == 1
    assert entries(directory) == []


@pytest.mark.unit
@pytest.mark.parametrize("pid", ["0", "²", "٣", "99999999999999999999", "-1", ""], ids=repr)
def test_a_temporary_named_for_no_process_is_cleaned(tmp_path: Path, pid: str) -> None:
    """A dot-name no sitegen process wrote (a pid of 0, which kill() reads as the caller's own
    process group, other digits than ASCII, a number no pid reaches) belongs to no live writer:
    cleaned like a dead writer's, not an error that stops the run, and never kept forever."""
    site = Site(tmp_path / "site")
    directory = site.root / "chan" / "linux-64"
    site.ensure_dir(directory)
    (directory / f"{TEMP_PREFIX}{pid}-a-1.0-0.conda.0000").write_bytes(b"x")
    assert storage.temp_writer_alive(f"{TEMP_PREFIX}{pid}-a") is False
    assert site.clean_temp_tree() == 1
    assert entries(directory) == []
