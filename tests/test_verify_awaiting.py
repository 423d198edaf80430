"""``sitegen verify`` after a run stopped before it published: the files it downloaded, or
linked in from a local source's folder, and verified are sound, and the next run reuses them.
verify vouches for them by the record they were verified by (of the copy of upstream's repodata
the run kept, or of the index of the folder), and ``--repair`` leaves them for that run; a file
no such record vouches for is still ``extra`` and removed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from sitegen.cli import main
from sitegen.sync import pipeline
from sitegen.tools.example_channel import PackageSpec, write_channel
from testkit.faults import held_hang
from testkit.invariant import assert_site_invariant
from testkit.local import drop
from testkit.small_channel import CHANNEL, mirrored_small, small_packages
from testkit.upstream import UpstreamServer

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
        held, held_download = held_hang(max_seconds=60)
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


LOCAL = "internal/own"
OWN = PackageSpec("own", "1.0", "h1_0")
# Dropped after the first run, linked into the channel by a run stopped before it published.
LINKED = [PackageSpec("mine", "1.0", "h2_0"), PackageSpec("yours", "2.0", "h3_0")]


@pytest.fixture
def stopped_local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, Path, list[str]]]:
    """(config, site, files linked and not published) of a channel fed by a local folder,
    published once, then a run stopped by SIGTERM once it linked new files into the channel,
    before it published them."""
    folder, site = tmp_path / "incoming", tmp_path / "site"
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {site}\nchannels:\n  {LOCAL}:\n    path: {folder}\n    subdirs: [linux-64]\n"
    )
    drop(folder, OWN, "conda")
    assert main(["mirror", "-c", str(config), "--no-progress"]) == 0
    linked = [drop(folder, LINKED[0], "conda").name]
    linked.append(drop(folder, LINKED[1], "tar.bz2", by_subdir=True).name)
    link_all = pipeline.link_all

    async def link_then_stop(*args: Any) -> None:
        await link_all(*args)
        os.kill(os.getpid(), signal.SIGTERM)  # as `sitegen stop` or a service manager does
        await trio.sleep(60)  # until the stop lands

    with monkeypatch.context() as patched:
        patched.setattr(pipeline, "link_all", link_then_stop)
        assert main(["mirror", "-c", str(config), "--no-progress"]) == 130
    directory = site / LOCAL / LINUX
    listed = (directory / "repodata.json").read_text()
    assert all((directory / fn).is_file() and fn not in listed for fn in linked)
    yield config, site, linked


def test_repair_keeps_the_files_a_stopped_run_linked_from_a_local_source(
    stopped_local: tuple[Path, Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    """A local source's files are linked into the subdir before it is published, each verified
    against the record the folder's index gave it: a stopped run leaves them there as it
    leaves downloaded files, and verify vouches for them by that record."""
    config, site, linked = stopped_local
    directory = site / LOCAL / LINUX
    capsys.readouterr()
    assert main(["verify", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert "extra:" not in out and "(2 awaiting publication)" in out, out
    assert main(["verify", "-c", str(config), "--repair"]) == 0
    out = capsys.readouterr().out
    assert "extra:" not in out and "(repaired)" not in out, out
    assert all((directory / fn).is_file() for fn in linked)
    assert main(["mirror", "-c", str(config), "--no-progress"]) == 0
    listed = (directory / "repodata.json").read_text()
    assert all(fn in listed for fn in linked)
    assert main(["verify", "-c", str(config)]) == 0
    assert_site_invariant(site)


def test_a_linked_file_the_local_index_does_not_vouch_for_is_still_extra(
    stopped_local: tuple[Path, Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    """The folder's index vouches for its own bytes only, of the subdir it names: other bytes
    under a linked name, or a name the folder does not hold, are extra and removed."""
    config, site, linked = stopped_local
    directory = site / LOCAL / LINUX
    damaged, kept = directory / linked[0], directory / linked[1]
    data = bytes(b ^ 0xFF for b in damaged.read_bytes())  # same size
    damaged.unlink()  # (a new file: the folder's, linked, stays intact)
    damaged.write_bytes(data)
    stray = directory / "zeta-9.9-h0_0.conda"
    stray.write_bytes(b"not in the folder")
    capsys.readouterr()
    assert main(["verify", "-c", str(config)]) == 1
    out = capsys.readouterr().out
    assert f"extra: {LOCAL}/{LINUX}/{damaged.name}: " in out, out
    assert f"extra: {LOCAL}/{LINUX}/{stray.name}: " in out, out
    assert kept.name not in out and "(1 awaiting publication)" in out, out
    assert main(["verify", "-c", str(config), "--repair"]) == 0
    assert capsys.readouterr().out.count("(repaired)") == 2
    assert not damaged.exists() and not stray.exists() and kept.is_file()
    assert main(["mirror", "-c", str(config), "--no-progress"]) == 0
    assert main(["verify", "-c", str(config)]) == 0
    assert_site_invariant(site)
