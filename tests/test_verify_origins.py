"""``sitegen verify`` over a subdir's origins map: which mirror supplied each file
``repodata.json`` lists. The pull-through fetcher and ``verify --repair`` fetch a file from
the mirror it names; one it cannot be read, or that names no mirror of the channel for a listed
file, is reported, and so is a lost one in a channel with one mirror (a run writes it again;
``--repair`` cannot tell which mirror supplied what, but for a channel fed by one local source)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sitegen.cli import main
from sitegen.layout import origins_path
from sitegen.tools.example_channel import PackageSpec
from testkit.faults import CHANNEL, mirrored_by_two, mirrored_small
from testkit.invariant import assert_site_invariant
from testkit.local import drop

pytestmark = pytest.mark.integration

LINUX = "linux-64"
SECOND = "gamma-0.1-h2_0.tar.bz2"  # supplied by the second mirror


@pytest.fixture
def two_mirrors(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(config, site) of a channel fed by two mirrors, mirrored once."""
    with mirrored_by_two(tmp_path) as (config, site, _first, _second):
        yield config, site


def _edit(path: Path, damage: str) -> None:
    if damage == "lost":
        path.unlink()
        return
    if damage == "unreadable":
        path.write_bytes(b'{"files": ')
        return
    document = json.loads(path.read_bytes())
    if damage == "dropped":
        del document["files"][SECOND]
    else:  # a mirror channels.yaml does not give the channel
        document["files"][SECOND] = "gone"
    path.write_text(json.dumps(document))


@pytest.mark.parametrize("damage", ["lost", "unreadable", "dropped", "unknown"])
def test_an_origins_map_that_names_no_mirror_of_a_listed_file_is_reported(
    two_mirrors: tuple[Path, Path], capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    config, site = two_mirrors
    path = origins_path(site, CHANNEL, LINUX)
    relative = path.relative_to(site).as_posix()
    assert main(["verify", "-c", str(config)]) == 0
    _edit(path, damage)
    capsys.readouterr()
    assert main(["verify", "-c", str(config)]) == 1
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if relative in line]
    assert line.startswith(f"metadata: {relative}: "), out
    assert "sitegen mirror --only first" in line, line
    if damage in ("dropped", "unknown"):
        assert f"names no mirror of the channel for {SECOND} " in line, line
    else:
        assert "names no mirror of the channel for 5 files" in line, line
    # --repair cannot tell which mirror supplied what: it leaves the map to the run it names.
    assert main(["verify", "-c", str(config), "--repair"]) == 1
    assert "(repaired)" not in capsys.readouterr().out
    assert main(["mirror", "-c", str(config), "--no-progress"]) == 0
    assert main(["verify", "-c", str(config)]) == 0
    assert_site_invariant(site)


def test_a_channel_with_one_mirror_needs_its_map_not_an_entry_per_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With one mirror every file comes from it, whatever the map says of it: a dropped entry
    leaves nothing without a mirror. A lost map loses where that mirror keeps its packages
    (CEP-15 base_url, which only upstream says), and one that cannot be read fails every fetch
    that reads it: both are reported, and left to the run that writes the map again."""
    with mirrored_small(tmp_path) as (config, site, _server):
        path = origins_path(site, CHANNEL, LINUX)
        relative = path.relative_to(site).as_posix()
        command = f"run sitegen mirror --only {CHANNEL.replace('/', '-')}"
        document = json.loads(path.read_bytes())
        del document["files"][SECOND]
        path.write_text(json.dumps(document))
        assert main(["verify", "-c", str(config)]) == 0
        for damage, said in [(b"", "missing; "), (b"\xff", "cannot be read (")]:
            if damage:
                path.write_bytes(damage)
            else:
                path.unlink()
            capsys.readouterr()
            assert main(["verify", "-c", str(config)]) == 1
            out = capsys.readouterr().out
            (line,) = [line for line in out.splitlines() if relative in line]
            assert line.startswith(f"metadata: {relative}: {said}"), out
            assert "CEP-15 base_url" in line and command in line, line
            assert main(["verify", "-c", str(config), "--repair"]) == 1
            assert "(repaired)" not in capsys.readouterr().out
            assert main(["mirror", "-c", str(config), "--no-progress"]) == 0
            assert main(["verify", "-c", str(config)]) == 0
        assert_site_invariant(site)


def test_repair_writes_the_lost_map_of_a_channel_fed_by_one_local_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder has no base_url and supplies every file of a channel it feeds alone: its lost
    map is known without upstream, and --repair writes it as the run wrote it."""
    folder, site = tmp_path / "incoming", tmp_path / "site"
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {site}\nchannels:\n  internal/own:\n    path: {folder}\n    subdirs: [linux-64]\n"
    )
    drop(folder, PackageSpec("foo", "1.0", "h1_0"), "conda")
    assert main(["mirror", "-c", str(config), "--no-progress"]) == 0
    path = origins_path(site, "internal/own", LINUX)
    written = path.read_bytes()
    path.unlink()
    capsys.readouterr()
    assert main(["verify", "-c", str(config)]) == 1
    relative = path.relative_to(site).as_posix()
    assert f"metadata: {relative}: missing; " in capsys.readouterr().out
    assert main(["verify", "-c", str(config), "--repair"]) == 0
    assert f"metadata: {relative}: missing" in capsys.readouterr().out
    assert path.read_bytes() == written
    assert main(["verify", "-c", str(config)]) == 0
    assert_site_invariant(site)
