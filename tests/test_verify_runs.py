"""``sitegen verify [--repair]`` and the runs of a site: what a killed run left is debris,
what a live writer is writing is not, and a site a run holds is neither repaired nor judged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sitegen.cli import main
from sitegen.config import SiteConfig
from sitegen.store.lock import SiteLock
from sitegen.store.site import Site
from sitegen.tools import verify as verify_mod
from sitegen.tools.verify_channel import Found
from testkit.small_channel import CHANNEL, keep_mirrored_small
from testkit.upstream import UpstreamServer
from testkit.verify import MISSING, TEMP, verify_problems

pytestmark = pytest.mark.integration

LINUX = "linux-64"

mirrored = pytest.fixture(name="mirrored")(keep_mirrored_small)


def test_verify_of_a_site_nothing_was_published_in_still_reports_left_over_temporaries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A first run killed before it published anything leaves its temporaries: verify names
    them as on a published site, beside saying there is nothing to verify (exit 1)."""
    site = tmp_path / "site"
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {site}\nchannels:\n  c/x:\n    url: http://127.0.0.1:1/c\n"
        "    subdirs: [linux-64]\n"
    )
    (site / "c" / "x" / LINUX).mkdir(parents=True)
    (site / "c" / "x" / LINUX / TEMP).write_bytes(b"half a download")
    (site / ".sitegen").mkdir()
    (site / ".sitegen" / TEMP).write_bytes(b"half a state file")
    for args in ([], ["--sample", "5%"]):
        capsys.readouterr()
        assert main(["verify", "-c", str(config), *args]) == 1, args
        out = capsys.readouterr().out
        assert verify_problems(out) == {
            f"c/x/{LINUX}/{TEMP}": "temporary",
            f".sitegen/{TEMP}": "temporary",
        }
        assert f"nothing to verify: no channel {config} configures is published in {site}" in out
    assert (site / "c" / "x" / LINUX / TEMP).exists()


def test_repair_does_not_touch_a_site_a_run_is_writing(
    mirrored: tuple[Path, Path, UpstreamServer], capsys: pytest.CaptureFixture[str]
) -> None:
    """A temporary file may belong to a live run: --repair waits for no one and removes
    nothing while another process holds the site lock."""
    config, site, _server = mirrored
    (site / CHANNEL / LINUX / TEMP).write_bytes(b"a live download")
    with SiteLock(site / ".sitegen"):
        code = main(["verify", "-c", str(config), "--repair"])
    assert code != 0
    assert (site / CHANNEL / LINUX / TEMP).exists()


def test_verify_while_a_run_works_on_the_site_says_so_instead_of_reporting_its_files(
    mirrored: tuple[Path, Path, UpstreamServer],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run replacing files makes them read as missing or corrupt: a check made meanwhile
    exits 3 saying a run held the site, whether it held it at the start or took it during
    the check, rather than reporting the run's work as damage."""
    config, site, _server = mirrored
    (site / CHANNEL / LINUX / MISSING).unlink()  # as a run replacing it would leave it
    capsys.readouterr()
    with SiteLock(site / ".sitegen"):
        assert main(["verify", "-c", str(config)]) == 3
    out = capsys.readouterr().out
    assert "locked: .sitegen/lock: a run (pid" in out and verify_problems(out) == {}

    reading_freezes = verify_mod.frozen_by_command

    def run_starts_meanwhile(site_: Site, config_: SiteConfig) -> tuple[set[str], list[Found]]:
        # The check's first step: a run takes the site and lets it go as the check begins.
        with SiteLock(site / ".sitegen"):
            pass
        return reading_freezes(site_, config_)

    monkeypatch.setattr(verify_mod, "frozen_by_command", run_starts_meanwhile)
    assert main(["verify", "-c", str(config)]) == 3
    out = capsys.readouterr().out
    assert "a run worked on the site during the check" in out
    monkeypatch.undo()
    assert main(["verify", "-c", str(config)]) == 1  # at rest: the file is missing
    assert verify_problems(capsys.readouterr().out) == {f"{CHANNEL}/{LINUX}/{MISSING}": "missing"}


def test_temporary_of_a_live_writer_is_not_debris(
    mirrored: tuple[Path, Path, UpstreamServer], capsys: pytest.CaptureFixture[str]
) -> None:
    """A temporary named by a running process (a mirror run, the pull-through fetcher) is
    neither reported nor removed."""
    config, site, _server = mirrored
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = site / CHANNEL / LINUX / f".sitegen-tmp-{writer.pid}-beta-2.0-h1_0.conda.0123abcd"
        live.write_bytes(b"being written")
        capsys.readouterr()
        assert main(["verify", "-c", str(config), "--repair"]) == 0
        assert verify_problems(capsys.readouterr().out) == {}
        assert live.exists()
    finally:
        writer.kill()
        writer.wait()


def test_temporaries_a_killed_run_left_outside_subdirs_are_found_and_removed(
    mirrored: tuple[Path, Path, UpstreamServer], capsys: pytest.CaptureFixture[str]
) -> None:
    """A killed run may leave a temporary beside any file it writes: channeldata.json at the
    channel root, a shard, a page, its run record, its state. verify names each; --repair
    removes them."""
    config, site, _server = mirrored
    places = [
        CHANNEL,
        f"{CHANNEL}/{LINUX}/shards",
        "history/runs",
        ".sitegen",
    ]
    names = [f"{place}/.sitegen-tmp-dead-{index}.deadbeef" for index, place in enumerate(places)]
    for name in names:
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_bytes(b"half written")
    capsys.readouterr()
    assert main(["verify", "-c", str(config)]) == 1
    assert verify_problems(capsys.readouterr().out) == dict.fromkeys(names, "temporary")
    assert main(["verify", "-c", str(config), "--repair"]) == 0
    assert not [name for name in names if (site / name).exists()]
    assert main(["verify", "-c", str(config)]) == 0
