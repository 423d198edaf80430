"""Local sources: a package file the run may not read is refused with what the OS said, not
taken for one that changed while it was read."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sitegen.cli import EXIT_FAILED, EXIT_OK
from sitegen.tools.example_channel import PackageSpec
from testkit.local import CHANNEL, drop
from testkit.require import unprivileged
from testkit.site import published

pytestmark = pytest.mark.integration


def _sitegen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*unprivileged(), sys.executable, "-m", "sitegen", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_package_file_the_run_may_not_read_is_refused_as_unreadable(tmp_path: Path) -> None:
    """A build dropped as 0600 by another user (or 0000): the run cannot open it. It was
    reported as 'changed or vanished while being read', read again and again, and the
    'Permission denied' that says what to do about it was dropped."""
    folder = tmp_path / "incoming"
    good = drop(folder, PackageSpec("good", "1.0", "0"), "conda")
    shut = drop(folder, PackageSpec("shut", "1.0", "0"), "conda")
    elsewhere = drop(tmp_path / "build", PackageSpec("other", "1.0", "0"), "conda")
    config = tmp_path / "channels.yaml"
    config.write_text(
        textwrap.dedent(f"""\
            output: {tmp_path / "site"}
            channels:
              {CHANNEL}: {{path: {folder}, subdirs: [linux-64]}}
            """)
    )
    shut.chmod(0)
    elsewhere.chmod(0)
    mirrored = _sitegen("mirror", "-c", str(config))
    added = _sitegen("add", CHANNEL, str(elsewhere), "-c", str(config))

    assert mirrored.returncode == EXIT_OK, mirrored.stderr
    assert published(tmp_path / "site", CHANNEL, "linux-64") == {good.name}
    assert f"skipped {shut.name}: cannot be read: Permission denied" in mirrored.stderr
    assert "vanished" not in mirrored.stderr
    assert added.returncode == EXIT_FAILED
    assert f"{elsewhere}: cannot be read: Permission denied" in added.stderr
