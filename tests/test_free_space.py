"""The free-space guard: a run whose new files (downloads, local files copied in) would not
fit, or would leave less than ``min_free_space`` free, stops before downloading and publishes
nothing."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sitegen.cli import EXIT_FAILED, EXIT_OK, main
from sitegen.config import ConfigError, parse_config
from sitegen.sync.space import (
    Filesystem,
    arrivals,
    filesystems,
    space_problem,
    space_problems,
)
from sitegen.tools.example_channel import PackageSpec
from testkit.local import CHANNEL, drop
from testkit.require import missing
from testkit.site import published, snapshot
from testkit.upstream import ExampleUpstream

CHANNELS = "channels:\n  c/x:\n    url: http://127.0.0.1:1/c\n    subdirs: [linux-64]\n"
GB = 1000**3


# --------------------------------------------------------------------------- pure check


@pytest.mark.unit
def test_downloads_that_fit_and_leave_the_minimum_pass() -> None:
    assert space_problem(Filesystem(Path("/s"), needed=2 * GB, free=10 * GB), 0) is None
    assert space_problem(Filesystem(Path("/s"), needed=2 * GB, free=10 * GB), 8 * GB) is None


@pytest.mark.unit
def test_downloads_that_do_not_fit_name_needed_and_free() -> None:
    problem = space_problem(Filesystem(Path("/srv/site"), needed=12 * GB, free=10 * GB), 0)
    assert problem is not None
    assert "/srv/site" in problem
    assert "need 12.0 GB (12000000000 bytes)" in problem
    assert "10.0 GB (10000000000 bytes) are free" in problem
    assert "would not fit" in problem


@pytest.mark.unit
def test_downloads_that_would_leave_less_than_the_minimum_stop() -> None:
    problem = space_problem(Filesystem(Path("/s"), needed=3 * GB, free=10 * GB), 8 * GB)
    assert problem is not None
    assert "would leave 7.0 GB, less than min_free_space 8.0 GB" in problem


def _job(target: Path, size: int) -> Any:
    return SimpleNamespace(target=target, record=SimpleNamespace(size=size))


@pytest.mark.unit
def test_downloads_arrive_at_their_targets_with_their_sizes(tmp_path: Path) -> None:
    jobs = [_job(tmp_path / "a.conda", 100), _job(tmp_path / "b.conda", 20)]
    assert arrivals(jobs) == [(tmp_path / "a.conda", 100), (tmp_path / "b.conda", 20)]


@pytest.mark.unit
def test_needed_bytes_are_summed_per_filesystem_of_new_subdirs(tmp_path: Path) -> None:
    # Subdirs that do not exist yet count on the filesystem of the directory above them.
    files = [
        (tmp_path / "c/x/linux-64/a.conda", 100),
        (tmp_path / "c/x/linux-64/b.conda", 20),
        (tmp_path / "c/x/noarch/c.conda", 3),
    ]
    [fs] = filesystems(files)
    assert fs.where in (tmp_path, *tmp_path.parents)
    assert fs.where.stat().st_dev == tmp_path.stat().st_dev
    assert fs.needed == 123
    assert fs.free > 0


@pytest.mark.unit
def test_the_filesystem_is_named_by_its_mount_point_not_a_channel(tmp_path: Path) -> None:
    """The message names where the filesystem is mounted (what `df` shows), not the first
    channel subdir with downloads: a private channel's path in a run error keeps the error
    off the public run pages, which then showed a failed run without its reason."""
    (tmp_path / "internal/licensed/linux-64").mkdir(parents=True)
    files = [(tmp_path / "internal/licensed/linux-64/a.conda", 100)]
    [fs] = filesystems(files)
    assert "internal" not in fs.where.parts
    assert fs.where.parent == fs.where or fs.where.parent.stat().st_dev != fs.where.stat().st_dev
    [problem] = space_problems(files, 1000**6)
    assert f"on the filesystem mounted at {fs.where}:" in problem
    assert "licensed" not in problem


@pytest.mark.unit
def test_space_problems_name_the_shortage(tmp_path: Path) -> None:
    files = [(tmp_path / "c/x/linux-64/a.conda", 10)]
    assert space_problems(files, 0) == []
    [problem] = space_problems(files, 1000**6)  # an exabyte must stay free
    assert "not enough free space" in problem


# --------------------------------------------------------------------------- configuration


@pytest.mark.unit
def test_min_free_space_is_a_size() -> None:
    assert parse_config(f"output: s\n{CHANNELS}").min_free_space == 0
    assert parse_config(f"output: s\nmin_free_space: 10GB\n{CHANNELS}").min_free_space == 10 * GB
    assert parse_config(f"output: s\nmin_free_space: 1GiB\n{CHANNELS}").min_free_space == 1 << 30


@pytest.mark.unit
def test_a_bad_min_free_space_names_line_and_key() -> None:
    with pytest.raises(ConfigError, match=r"channels.yaml:2: min_free_space: expected a size"):
        parse_config(f"output: s\nmin_free_space: lots\n{CHANNELS}")


# --------------------------------------------------------------------------- a real run


def _write_config(tmp_path: Path, url: str, names: str, extra: str = "") -> Path:
    path = tmp_path / "channels.yaml"
    path.write_text(
        f"output: {tmp_path / 'site'}\n{extra}"
        "download: {concurrency: 4, retries: 0, timeout: 10}\n"
        f"channels:\n  c/x:\n    url: {url}\n    subdirs: [linux-64]\n"
        f"    filters: {{names: {{include: [{names}]}}}}\n"
    )
    return path


@pytest.mark.integration
def test_a_run_without_room_downloads_and_publishes_nothing(
    tmp_path: Path, example_upstream: ExampleUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    site = tmp_path / "site"
    config = _write_config(tmp_path, example_upstream.url, "python")
    assert main(["mirror", "-c", str(config), "--no-progress"]) == EXIT_OK
    before = published(site, "c/x", "linux-64")
    channel_before = snapshot(site / "c")

    # Now numpy too, but the site must keep more free space than any disk has.
    config = _write_config(
        tmp_path, example_upstream.url, "python, numpy", extra="min_free_space: 1000000TB\n"
    )
    example_upstream.server.reset()
    caplog.set_level(logging.ERROR, logger="sitegen")
    assert main(["mirror", "-c", str(config), "--no-progress"]) == EXIT_FAILED
    assert snapshot(site / "c") == channel_before  # nothing published, nothing downloaded
    assert not any(
        r.path.endswith((".conda", ".tar.bz2")) for r in example_upstream.server.requests
    )
    message = next(m for m in caplog.messages if "not enough free space" in m)
    assert "the run's new files need" in message and "are free" in message
    assert "less than min_free_space" in message

    # The same run with the default guard goes ahead: it was the guard that stopped it.
    config = _write_config(tmp_path, example_upstream.url, "python, numpy")
    assert main(["mirror", "-c", str(config), "--no-progress"]) == EXIT_OK
    assert published(site, "c/x", "linux-64") > before


# --------------------------------------------------------------------------- local sources


def _local_config(tmp_path: Path, folder: Path, extra: str = "") -> Path:
    path = tmp_path / "channels.yaml"
    path.write_text(
        f"output: {tmp_path / 'site'}\n{extra}"
        f"channels:\n  {CHANNEL}: {{path: {folder}, subdirs: [linux-64]}}\n"
    )
    return path


def _mirror_local(tmp_path: Path, folder: Path) -> tuple[int, int]:
    """The exit status of a run that must keep more free space than any disk has, then of
    one with the default guard."""
    tight = _local_config(tmp_path, folder, extra="min_free_space: 1000000TB\n")
    first = main(["mirror", "-c", str(tight), "--no-progress"])
    return first, main(["mirror", "-c", str(_local_config(tmp_path, folder)), "--no-progress"])


@pytest.mark.integration
def test_local_files_copied_in_count_and_hard_links_do_not(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A local source's file on the site's filesystem is published by hard link and takes no
    room; one the web server could not read as it is (no read bit for others) is copied,
    and the guard weighs it as a download."""
    folder = tmp_path / "incoming"
    linked = drop(folder, PackageSpec("linked", "1.0", "0"), "conda")
    site = tmp_path / "site"
    assert _mirror_local(tmp_path, folder) == (EXIT_OK, EXIT_OK)
    assert published(site, CHANNEL, "linux-64") == {linked.name}

    copied = drop(folder, PackageSpec("copied", "1.0", "0"), "conda")
    copied.chmod(0o640)
    caplog.set_level(logging.ERROR, logger="sitegen")
    assert _mirror_local(tmp_path, folder) == (EXIT_FAILED, EXIT_OK)
    message = next(m for m in caplog.messages if "not enough free space" in m)
    assert f"({copied.stat().st_size} bytes), " in message
    assert published(site, CHANNEL, "linux-64") == {linked.name, copied.name}


@pytest.mark.integration
def test_local_files_from_another_filesystem_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        missing("/dev/shm is not a filesystem of its own (a tmpfs) beside the test's folder")
    with tempfile.TemporaryDirectory(dir=shm) as elsewhere:
        folder = Path(elsewhere)
        package = drop(folder, PackageSpec("elsewhere", "1.0", "0"), "conda")
        caplog.set_level(logging.ERROR, logger="sitegen")
        assert _mirror_local(tmp_path, folder) == (EXIT_FAILED, EXIT_OK)
        assert any("not enough free space" in m for m in caplog.messages)
        assert published(tmp_path / "site", CHANNEL, "linux-64") == {package.name}
