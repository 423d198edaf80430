"""``sitegen verify [--repair]``: damage on disk is found, reported, and repaired.

A mirrored site is damaged the ways disks and people damage it: a package with other bytes of
the same size, a package gone, a ``.zst`` that no longer holds ``repodata.json``, a temporary
file left behind, a package file no record lists, a ``current_repodata.json`` that disagrees.
``verify`` names each and exits 1; ``--repair`` fixes them (downloading again, verified as
always, and rebuilding metadata from ``repodata.json``), and a second ``verify`` exits 0.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard

from sitegen.cli import main
from sitegen.conda.shards import SHARD_INDEX, decode_index
from sitegen.layout import shard_path
from testkit.invariant import assert_site_invariant, site_digest
from testkit.site import record_fdatasync
from testkit.small_channel import CHANNEL, keep_mirrored_small
from testkit.upstream import UpstreamServer, respond
from testkit.verify import MISSING, TEMP, verify_problems

pytestmark = pytest.mark.integration

LINUX = "linux-64"
CORRUPT = "alpha-1.0-h0_0.conda"

mirrored = pytest.fixture(name="mirrored")(keep_mirrored_small)


def _damage(site: Path) -> dict[str, str]:
    """Damage the site four ways; returns what verify must say, path -> kind."""
    directory = site / CHANNEL / LINUX
    corrupt = directory / CORRUPT
    corrupt.write_bytes(bytes(b ^ 0xFF for b in corrupt.read_bytes()))  # same size
    (directory / MISSING).unlink()
    document = json.loads((directory / "repodata.json").read_bytes())
    document["packages.conda"].pop(CORRUPT)
    stale = zstandard.ZstdCompressor().compress(json.dumps(document).encode())
    (directory / "repodata.json.zst").write_bytes(stale)
    (directory / TEMP).write_bytes(b"half a download")
    prefix = f"{CHANNEL}/{LINUX}"
    return {
        f"{prefix}/{CORRUPT}": "corrupt",
        f"{prefix}/{MISSING}": "missing",
        f"{prefix}/repodata.json.zst": "metadata",
        f"{prefix}/{TEMP}": "temporary",
    }


def test_verify_of_a_sound_site_exits_0(
    mirrored: tuple[Path, Path, UpstreamServer], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _site, _server = mirrored
    capsys.readouterr()
    assert main(["verify", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert verify_problems(out) == {}
    (summary,) = [line for line in out.splitlines() if line.startswith("checked ")]
    assert re.fullmatch(r"checked 6 files, [0-9.]+ KB; 0 problems", summary)  # sizes for people


def test_verify_of_a_site_that_never_ran_says_nothing_is_published_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing checked is nothing vouched for (a first run still to come, or --out naming
    the wrong directory): said plainly, exit 1; --repair creates no site either."""
    site = tmp_path / "site"
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {site}\nchannels:\n  c/x:\n    url: http://127.0.0.1:1/c\n"
        "    subdirs: [linux-64]\n"
    )
    for args in ([], ["--repair"], ["--sample", "5%"]):
        capsys.readouterr()
        assert main(["verify", "-c", str(config), *args]) == 1, args
        out = capsys.readouterr().out
        assert out == f"nothing to verify: no channel {config} configures is published in {site}\n"
        assert not site.exists()


def test_verify_reports_each_kind_of_damage(
    mirrored: tuple[Path, Path, UpstreamServer], capsys: pytest.CaptureFixture[str]
) -> None:
    config, site, _server = mirrored
    expected = _damage(site)
    before = site_digest(site)
    capsys.readouterr()
    assert main(["verify", "-c", str(config)]) == 1
    out = capsys.readouterr().out
    assert verify_problems(out) == expected
    assert "4 problems" in out
    assert site_digest(site) == before, "verify without --repair changed the site"
    assert (site / CHANNEL / LINUX / TEMP).exists()


def test_repair_fixes_the_damage_and_verify_passes_again(
    mirrored: tuple[Path, Path, UpstreamServer],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config, site, server = mirrored
    pristine = site_digest(site)
    expected = _damage(site)
    server.reset()
    capsys.readouterr()
    # Sizes of the files flushed to disk before they were named.
    synced = record_fdatasync(monkeypatch, lambda fd: os.fstat(fd).st_size)
    assert main(["verify", "-c", str(config), "--repair"]) == 0
    out = capsys.readouterr().out
    assert verify_problems(out) == expected
    assert out.count("(repaired)") == 4, out
    repaired = [(site / CHANNEL / LINUX / fn).stat().st_size for fn in (CORRUPT, MISSING)]
    assert sorted(synced) == sorted(repaired)
    # Only the two damaged packages were fetched again.
    gets = sorted(r.path for r in server.requests)
    assert gets == sorted([f"/{LINUX}/{CORRUPT}", f"/{LINUX}/{MISSING}"])
    assert site_digest(site) == pristine
    assert_site_invariant(site)
    capsys.readouterr()
    assert main(["verify", "-c", str(config)]) == 0
    assert "0 problems" in capsys.readouterr().out


@pytest.mark.parametrize("damaged", [b"[]", b'{"packages": 5}', b'{"packages.conda": "x"}'])
def test_a_current_repodata_of_another_shape_is_reported_and_repaired(
    mirrored: tuple[Path, Path, UpstreamServer], capsys: pytest.CaptureFixture[str], damaged: bytes
) -> None:
    config, site, _server = mirrored
    current = site / CHANNEL / LINUX / "current_repodata.json"
    pristine = current.read_bytes()
    current.write_bytes(damaged)
    capsys.readouterr()
    assert main(["verify", "-c", str(config)]) == 1
    assert verify_problems(capsys.readouterr().out) == {
        f"{CHANNEL}/{LINUX}/current_repodata.json": "metadata"
    }
    assert main(["verify", "-c", str(config), "--repair"]) == 0
    assert current.read_bytes() == pristine
    capsys.readouterr()
    assert main(["verify", "-c", str(config)]) == 0


def test_failed_repair_leaves_no_unverified_file_and_exits_1(
    mirrored: tuple[Path, Path, UpstreamServer], capsys: pytest.CaptureFixture[str]
) -> None:
    config, site, server = mirrored
    directory = site / CHANNEL / LINUX
    (directory / MISSING).unlink()
    server.add_fault(f"/{LINUX}/{MISSING}", respond(200, b"not the package"))
    capsys.readouterr()
    assert main(["verify", "-c", str(config), "--repair"]) == 1
    out = capsys.readouterr().out
    assert f"missing: {CHANNEL}/{LINUX}/{MISSING}" in out and "repair failed" in out
    assert not (directory / MISSING).exists()
    assert not [p for p in directory.iterdir() if p.name.startswith(".sitegen-tmp-")]


def test_a_package_file_no_record_lists_is_reported_and_repair_removes_it(
    mirrored: tuple[Path, Path, UpstreamServer], capsys: pytest.CaptureFixture[str]
) -> None:
    """A package file in a subdir that neither repodata.json nor the kept records name is served
    by the web server all the same (a run prunes it): verify names it, --repair removes it."""
    config, site, _server = mirrored
    directory = site / CHANNEL / LINUX
    stray = directory / "zeta-9.9-h0_0.conda"
    stray.write_bytes(b"not listed anywhere")
    (directory / "eta-1.0-h0_0.tar.bz2").symlink_to(directory / CORRUPT)
    capsys.readouterr()
    assert main(["verify", "-c", str(config)]) == 1
    out = capsys.readouterr().out
    assert f"extra: {CHANNEL}/{LINUX}/zeta-9.9-h0_0.conda: " in out, out
    assert f"extra: {CHANNEL}/{LINUX}/eta-1.0-h0_0.tar.bz2: " in out, out
    assert "2 problems" in out
    assert main(["verify", "-c", str(config), "--repair"]) == 0
    assert out.count("(repaired)") == 0 and capsys.readouterr().out.count("(repaired)") == 2
    assert not stray.exists() and not (directory / "eta-1.0-h0_0.tar.bz2").is_symlink()
    assert (directory / CORRUPT).is_file()
    assert main(["verify", "-c", str(config)]) == 0


@pytest.mark.parametrize("damage", ["changed", "dropped"])
def test_a_current_repodata_whose_records_differ_from_repodata_is_reported_and_repaired(
    mirrored: tuple[Path, Path, UpstreamServer], capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    """conda reads current_repodata.json first: a record there with other dependencies than
    repodata.json's, or the newest build left out, is the site disagreeing with itself."""
    config, site, _server = mirrored
    current = site / CHANNEL / LINUX / "current_repodata.json"
    pristine = current.read_bytes()
    document = json.loads(pristine)
    if damage == "changed":
        document["packages.conda"][CORRUPT]["depends"] = ["evil"]
    else:
        del document["packages.conda"][CORRUPT]
    current.write_text(json.dumps(document))
    capsys.readouterr()
    assert main(["verify", "-c", str(config)]) == 1
    out = capsys.readouterr().out
    assert verify_problems(out) == {f"{CHANNEL}/{LINUX}/current_repodata.json": "metadata"}, out
    assert CORRUPT in out
    assert main(["verify", "-c", str(config), "--repair"]) == 0
    assert current.read_bytes() == pristine
    capsys.readouterr()
    assert main(["verify", "-c", str(config)]) == 0


@pytest.mark.parametrize("linked", [CHANNEL, f"{CHANNEL}/{LINUX}"])
def test_a_channel_folder_that_is_a_link_out_of_the_site_is_reported_and_left_alone(
    mirrored: tuple[Path, Path, UpstreamServer],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    linked: str,
) -> None:
    """A channel or subdir folder made a link to a directory out of the site: nothing is read,
    written or removed through it, not even with --repair and damage there to repair; the
    link is named and the command exits 1."""
    config, site, _server = mirrored
    outside = tmp_path / "outside"
    (site / linked).rename(outside)
    (site / linked).symlink_to(outside)
    subdir = outside if linked.endswith(LINUX) else outside / LINUX
    (subdir / "repodata.json.zst").write_bytes(b"not zstd")
    (subdir / "zeta-9.9-h0_0.conda").write_bytes(b"not listed anywhere")
    (subdir / TEMP).write_bytes(b"half a download")
    before = site_digest(outside)
    for args in ([], ["--repair"]):
        capsys.readouterr()
        assert main(["verify", "-c", str(config), *args]) == 1, args
        out = capsys.readouterr().out
        assert verify_problems(out) == {linked: "metadata"}, out
        assert f"metadata: {linked}: " in out and "left alone" in out, out
        assert site_digest(outside) == before and (subdir / TEMP).exists()
        assert (site / linked).is_symlink()


def test_a_channel_folder_that_is_a_loop_of_links_is_reported(
    mirrored: tuple[Path, Path, UpstreamServer], capsys: pytest.CaptureFixture[str]
) -> None:
    config, site, _server = mirrored
    shutil.rmtree(site / CHANNEL)
    (site / CHANNEL).symlink_to(site / CHANNEL)
    for args in ([], ["--repair"]):
        capsys.readouterr()
        assert main(["verify", "-c", str(config), *args]) == 1, args
        out = capsys.readouterr().out
        assert f"metadata: {CHANNEL}: a loop of symbolic links: left alone\n" in out, out
        assert (site / CHANNEL).is_symlink()


def _verify(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "sitegen", "verify", "-c", str(config), *args]
    # A hang guard: a named pipe read would block the command for good.
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(
    "name",
    [
        f"{LINUX}/current_repodata.json",
        f"{LINUX}/repodata.json.zst",
        f"{LINUX}/repodata_shards.msgpack.zst",
        "channeldata.json",
        "notices.json",
    ],
)
@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_a_metadata_file_that_is_a_directory_or_a_named_pipe_is_reported_and_the_rest_repaired(
    mirrored: tuple[Path, Path, UpstreamServer], name: str, kind: str
) -> None:
    """Never read (a named pipe would hold verify forever), named, and the rest repaired: a
    named pipe is written over; a directory is left with what it holds, not the site's, and
    --repair exits 1 naming it."""
    config, site, _server = mirrored
    place = site / CHANNEL / name
    place.unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(place)
    else:
        place.mkdir()
        (place / "notes.txt").write_text("someone's")
    (site / CHANNEL / LINUX / TEMP).write_bytes(b"half a download")
    relative = f"{CHANNEL}/{name}"
    done = _verify(config)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert verify_problems(done.stdout) == {
        relative: "metadata",
        f"{CHANNEL}/{LINUX}/{TEMP}": "temporary",
    }, done.stdout
    repaired = _verify(config, "--repair")
    assert "Traceback" not in repaired.stderr, repaired.stderr
    assert not (site / CHANNEL / LINUX / TEMP).exists()  # the rest repaired
    after = _verify(config)
    if kind == "fifo":
        assert repaired.returncode == 0, repaired.stdout + repaired.stderr
        # No notice is configured: a notices.json goes; the others are published again.
        published = name != "notices.json"
        assert place.is_file() if published else not os.path.lexists(place)
        assert after.returncode == 0, after.stdout
    else:
        assert repaired.returncode == 1, repaired.stdout + repaired.stderr
        assert f"metadata: {relative}: " in repaired.stdout
        assert "repair failed" in repaired.stdout, repaired.stdout
        assert (place / "notes.txt").read_text() == "someone's"
        assert verify_problems(after.stdout) == {relative: "metadata"}, after.stdout


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_a_shard_that_is_a_directory_or_a_named_pipe_is_reported_and_the_rest_checked(
    mirrored: tuple[Path, Path, UpstreamServer], kind: str
) -> None:
    """A shard the index names is read to hash it: a named pipe in its place would hold
    verify (and its --repair) forever, a directory would end the check on its first shard.
    Named instead, the other files still checked; a named pipe is written over by --repair,
    a directory (what it holds is not the site's) is left and the repair fails."""
    config, site, _server = mirrored
    directory = site / CHANNEL / LINUX
    index = decode_index((directory / SHARD_INDEX).read_bytes())
    shard = directory / shard_path(index.shards["alpha"])
    shard.unlink()
    if kind == "fifo":
        os.mkfifo(shard)
    else:
        shard.mkdir()
        (shard / "notes.txt").write_text("someone's")
    (directory / MISSING).unlink()
    relative = f"{CHANNEL}/{LINUX}/{shard_path(index.shards['alpha'])}"
    damage = {relative: "metadata", f"{CHANNEL}/{LINUX}/{MISSING}": "missing"}
    done = _verify(config)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert verify_problems(done.stdout) == damage, done.stdout + done.stderr
    assert "shard of 'alpha'" in done.stdout
    repaired = _verify(config, "--repair")
    assert "Traceback" not in repaired.stderr, repaired.stderr
    assert verify_problems(repaired.stdout) == damage, repaired.stdout + repaired.stderr
    assert (directory / MISSING).is_file()  # the rest repaired
    after = _verify(config)
    if kind == "fifo":
        assert repaired.returncode == 0, repaired.stdout + repaired.stderr
        assert after.returncode == 0, after.stdout
        assert_site_invariant(site)
    else:
        assert repaired.returncode == 1, repaired.stdout + repaired.stderr
        assert "repair failed" in repaired.stdout, repaired.stdout
        assert (shard / "notes.txt").read_text() == "someone's"
        assert verify_problems(after.stdout) == {relative: "metadata"}, after.stdout
