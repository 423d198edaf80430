"""A file:// source whose folder does not exist (a typo in the path) fails its mirror, as an
unreachable HTTP upstream does, rather than publishing an empty channel; a folder that lacks
one configured subdir still stands for a subdir upstream does not serve."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sitegen.exit_status import EXIT_FAILED, EXIT_OK
from sitegen.tools.example_channel import PackageSpec, write_channel
from testkit.invariant import assert_site_invariant, make_sandbox
from testkit.site import published

pytestmark = pytest.mark.integration

ZLIB = PackageSpec("zlib", "1.3", "h0_0", subdir="noarch")


def _mirror(config_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sitegen", "mirror", "-c", str(config_path), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_missing_source_folder_fails_its_mirror_and_publishes_nothing(tmp_path: Path) -> None:
    good = tmp_path / "good"
    write_channel(good, [ZLIB])
    typo = tmp_path / "chanel"  # the folder meant is tmp_path / "channel"
    site = make_sandbox(tmp_path)
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {site}\n"
        "channels:\n"
        f"  good: {{url: '{good.as_uri()}', subdirs: [linux-64]}}\n"
        f"  bad: {{url: '{typo.as_uri()}', subdirs: [linux-64]}}\n"
    )
    done = _mirror(config_path)
    assert done.returncode == EXIT_FAILED, done.stderr
    assert f"{typo.as_uri()}: no such folder" in done.stderr, done.stderr
    assert published(site, "good", "noarch") == set(ZLIB.filenames)
    assert not (site / "bad" / "noarch" / "repodata.json").exists()
    assert not (site / "bad" / "linux-64" / "repodata.json").exists()
    assert_site_invariant(site)


def test_a_source_folder_lacking_a_subdir_is_no_failure(tmp_path: Path) -> None:
    source = tmp_path / "channel"
    write_channel(source, [ZLIB])
    site = make_sandbox(tmp_path)
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {site}\nchannels:\n  c: {{url: '{source.as_uri()}', subdirs: [osx-arm64]}}\n"
    )
    done = _mirror(config_path)
    assert done.returncode == EXIT_OK, done.stderr
    assert "c: osx-arm64 is not served upstream" in done.stderr
    assert published(site, "c", "noarch") == set(ZLIB.filenames)


def test_a_source_folder_gone_since_the_last_run_keeps_what_was_published(tmp_path: Path) -> None:
    """A share not mounted at the time of a run: the channel keeps serving its packages."""
    source = tmp_path / "channel"
    write_channel(source, [ZLIB])
    site = make_sandbox(tmp_path)
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {site}\nchannels:\n  c: {{url: '{source.as_uri()}', subdirs: [linux-64]}}\n"
    )
    assert _mirror(config_path).returncode == EXIT_OK
    source.rename(tmp_path / "unmounted")
    done = _mirror(config_path)
    assert done.returncode == EXIT_FAILED, done.stderr
    assert f"{source.as_uri()}: no such folder" in done.stderr, done.stderr
    assert published(site, "c", "noarch") == set(ZLIB.filenames)
    assert_site_invariant(site)
