"""Logs that cannot be read for a while (a directory or a link's target without permission for
the user counting): the count fails, the cursors stay, and nothing is counted twice once they
can be read again."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sitegen.cli import EXIT_FAILED, EXIT_OK
from testkit.require import unprivileged

pytestmark = pytest.mark.integration


def _stats(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*unprivileged(), sys.executable, "-m", "sitegen", "stats", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _config(tmp_path: Path, *logs: Path) -> Path:
    """The channels.yaml of a site in ``tmp_path`` counting downloads from ``logs``."""
    config = tmp_path / "channels.yaml"
    config.write_text(
        textwrap.dedent(f"""\
            output: {tmp_path / "site"}
            channels:
              x: {{url: "https://conda.example/x", subdirs: [linux-64]}}
            stats: {{logs: [{", ".join(map(str, logs))}]}}
            """)
    )
    return config


def _downloads(site: Path) -> int:
    return int(json.loads((site / "stats.json").read_bytes())["totals"]["downloads"])


@pytest.mark.parametrize("shut", ["directory", "link"])
def test_a_log_unreadable_for_a_while_fails_the_count_and_is_not_counted_twice(
    tmp_path: Path, shut: str
) -> None:
    """``directory``: the log's directory cannot be listed (Apache's /var/log/apache2 is root's
    and adm's only); ``link``: the log is a link into a directory that cannot be entered."""
    logs, held = tmp_path / "logs", tmp_path / "held"
    logs.mkdir()
    held.mkdir()
    log = logs / "access.log"
    if shut == "link":
        log.symlink_to(held / "access.log")
    stamp = (datetime.now(UTC) - timedelta(days=1)).strftime("%d/%b/%Y:%H:%M:%S +0000")
    log.write_bytes(
        f'192.0.2.1 - - [{stamp}] "GET /x/linux-64/a-1-0.conda HTTP/1.1" 200 10 "-"'
        ' "pixi/0.39.0"\n'.encode()
    )
    config = _config(tmp_path, log)
    counted = _stats(config)
    assert counted.returncode == EXIT_OK, counted.stderr
    assert _downloads(tmp_path / "site") == 1

    shut_dir = logs if shut == "directory" else held
    shut_dir.chmod(0)
    try:
        refused = _stats(config)
    finally:
        shut_dir.chmod(0o755)
    assert refused.returncode == EXIT_FAILED, refused.stdout + refused.stderr
    assert "could not be read" in refused.stderr

    again = _stats(config)
    assert again.returncode == EXIT_OK, again.stderr
    assert _downloads(tmp_path / "site") == 1


def test_a_configured_log_of_which_no_file_is_there_is_named_in_a_warning(
    tmp_path: Path,
) -> None:
    """A typo in stats.logs (or a web server not started yet) reads nothing: the count still
    succeeds, and says which log it found no file of, rotated or not."""
    present, absent = tmp_path / "access.log", tmp_path / "acess.log"
    present.write_bytes(b"")
    config = _config(tmp_path, present, absent)
    counted = _stats(config)
    assert counted.returncode == EXIT_OK, counted.stderr
    warned = [line for line in counted.stderr.splitlines() if "no log at" in line]
    assert len(warned) == 1 and str(absent) in warned[0], counted.stderr


def test_each_log_that_could_not_be_read_is_named_with_its_fault(tmp_path: Path) -> None:
    """A rotated log that does not decompress fails every count until the operator deals with
    it: the warning names each such file and what went wrong, not only how many there were."""
    log = tmp_path / "access.log"
    stamp = datetime.now(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
    log.write_bytes(
        f'192.0.2.1 - - [{stamp}] "GET /x/linux-64/a-1-0.conda HTTP/1.1" 200 10 "-"'
        ' "pixi/0.39.0"\n'.encode()
    )
    broken = [tmp_path / "access.log.2.gz", tmp_path / "access.log.3.xz"]
    for path in broken:
        path.write_bytes(b"not compressed at all\n" * 3)
    refused = _stats(_config(tmp_path, log))
    assert refused.returncode == EXIT_FAILED, refused.stdout + refused.stderr
    assert _downloads(tmp_path / "site") == 1  # the good log counted all the same
    warned = [line for line in refused.stderr.splitlines() if "could not be read" in line]
    for path in broken:
        named = [line for line in warned if str(path) in line]
        assert len(named) == 1, refused.stderr
        assert named[0].split("in full: ", 1)[1].strip(), named[0]  # and why
