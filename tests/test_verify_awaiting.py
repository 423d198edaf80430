"""``sitegen verify`` after a run stopped mid-download: the files it downloaded and verified
but did not publish yet are sound, and the next run reuses them. verify vouches for them by
upstream's record (the copy of upstream's repodata the run kept), and ``--repair`` leaves them
for that run; a file upstream's record does not vouch for is still ``extra`` and removed."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sitegen.cli import main
from sitegen.tools.example_channel import PackageSpec, write_channel
from testkit.faults import CHANNEL, hang, mirrored_small, small_packages
from testkit.invariant import assert_site_invariant
from testkit.upstream import UpstreamHandler, UpstreamServer

pytestmark = pytest.mark.integration

LINUX = "linux-64"
# New upstream after the first run: three that land, one whose download hangs.
LANDING = [
    PackageSpec(f"new{i}", "1.0", f"h{i}_0", license="MIT", formats=("conda",)) for i in range(3)
]
HELD = PackageSpec("held", "1.0", "h9_0", license="MIT", formats=("conda",))


@pytest.fixture
def stopped(tmp_path: Path) -> Iterator[tuple[Path, Path, UpstreamServer]]:
    """A site mirrored once, then a second run (through the CLI) stopped by SIGTERM while one
    download hangs and the others have landed."""
    with mirrored_small(tmp_path) as (config, site, server):
        write_channel(tmp_path / "upstream", small_packages(extra=(*LANDING, HELD)), zst=True)
        held = threading.Event()
        hold = hang(max_seconds=60)

        def held_download(handler: UpstreamHandler) -> None:
            held.set()
            hold(handler)

        (held_fn,) = HELD.filenames
        server.add_fault(f"/{LINUX}/{held_fn}", held_download)
        directory = site / CHANNEL / LINUX
        proc = subprocess.Popen(
            [sys.executable, "-m", "sitegen", "mirror", "-c", str(config), "--no-progress"],
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            landed = [directory / fn for spec in LANDING for fn in spec.filenames]
            while time.monotonic() < deadline and not (
                held.is_set() and all(path.is_file() for path in landed)
            ):
                time.sleep(0.05)  # polling for the downloads, not a timed assertion
            assert held.is_set() and all(path.is_file() for path in landed)
            proc.terminate()
            _out, err = proc.communicate(timeout=60)
            assert proc.returncode == 130, err
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        server.clear_faults()
        yield config, site, server


def _landed() -> set[str]:
    return {fn for spec in LANDING for fn in spec.filenames}


def test_repair_keeps_the_files_a_stopped_run_downloaded_for_the_next_run(
    stopped: tuple[Path, Path, UpstreamServer], capsys: pytest.CaptureFixture[str]
) -> None:
    config, site, server = stopped
    directory = site / CHANNEL / LINUX
    assert not _landed() & set((directory / "repodata.json").read_text().split('"'))
    capsys.readouterr()
    assert main(["verify", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert "extra:" not in out, out
    assert "(3 awaiting publication)" in out, out
    assert main(["verify", "-c", str(config), "--repair"]) == 0
    out = capsys.readouterr().out
    assert "extra:" not in out and "(repaired)" not in out, out
    assert all((directory / fn).is_file() for fn in _landed())
    assert_site_invariant(site)

    # The next run reuses them: it fetches only the file the stopped run did not finish.
    server.reset()
    assert main(["mirror", "-c", str(config), "--no-progress"]) == 0
    fetched = {r.path.rsplit("/", 1)[-1] for r in server.requests if r.status == 200}
    assert not fetched & _landed(), fetched
    assert set(HELD.filenames) <= fetched
    assert main(["verify", "-c", str(config)]) == 0
    assert_site_invariant(site)


def test_a_file_upstream_lists_with_other_bytes_is_still_extra_and_removed(
    stopped: tuple[Path, Path, UpstreamServer], capsys: pytest.CaptureFixture[str]
) -> None:
    """Upstream's record vouches for its own bytes only: a file of that name with others (a
    corrupt download left, a file dropped there) is extra, and --repair removes it; so is a
    file no mirror of the channel lists at all."""
    config, site, _server = stopped
    directory = site / CHANNEL / LINUX
    damaged, kept = sorted(_landed())[:2]
    path = directory / damaged
    path.write_bytes(bytes(b ^ 0xFF for b in path.read_bytes()))  # same size
    stray = directory / "zeta-9.9-h0_0.conda"
    stray.write_bytes(b"not listed anywhere")
    capsys.readouterr()
    assert main(["verify", "-c", str(config)]) == 1
    out = capsys.readouterr().out
    assert f"extra: {CHANNEL}/{LINUX}/{damaged}: " in out, out
    assert f"extra: {CHANNEL}/{LINUX}/{stray.name}: " in out, out
    assert f"{CHANNEL}/{LINUX}/{kept}" not in out, out
    assert "2 problems" in out and "(2 awaiting publication)" in out, out
    assert main(["verify", "-c", str(config), "--repair"]) == 0
    assert capsys.readouterr().out.count("(repaired)") == 2
    assert not path.exists() and not stray.exists() and (directory / kept).is_file()
    assert main(["verify", "-c", str(config)]) == 0
