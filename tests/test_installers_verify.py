"""``sitegen verify [--repair]`` over the installer folders, mirrored over real HTTP on
127.0.0.1: each file against the size and sha256 the folder's state keeps, a missing, changed
or extra file a problem; ``--repair`` downloads again what it can and removes what no run
verified."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from sitegen.cli import main
from sitegen.layout import installer_state_path
from testkit.installers import serve_index, write_folder
from testkit.site import snapshot
from testkit.upstream import ExampleUpstream, UpstreamServer

pytestmark = pytest.mark.integration

LATEST = "Miniconda3-latest-Linux-x86_64.sh"
OLD = "Miniconda3-py311_23.1.0-1-Linux-x86_64.sh"
MAC = "Miniconda3-latest-MacOSX-arm64.pkg"
FILES = {
    OLD: b"#!/bin/sh\n# old\n" * 150,
    MAC: b"xar!" * 1000,
    LATEST: b"#!/bin/sh\n# latest\n" * 160,
}


class Folder:
    """A site whose installer folder ``miniconda`` a real run mirrored."""

    def __init__(self, tmp_path: Path, server: UpstreamServer, upstream: Path) -> None:
        self.site = tmp_path / "site"
        self.config = tmp_path / "channels.yaml"
        self.server = server
        self.upstream = upstream
        self.write()

    def write(self, channels: str = "channels: {}\n") -> None:
        self.config.write_text(
            f"output: {self.site}\n"
            "download: {concurrency: 4, per_host: 4, retries: 1, timeout: 10}\n"
            f"{channels}installers:\n  miniconda:\n    url: {self.server.url}/miniconda/\n"
        )

    def run(self, *args: str) -> int:
        return main([*args, "-c", str(self.config)])

    @property
    def folder(self) -> Path:
        return self.site / "miniconda"

    def downloads(self) -> list[str]:
        return sorted(
            r.path.rsplit("/", 1)[1]
            for r in self.server.requests
            if r.path.startswith("/miniconda/") and r.path != "/miniconda/"
        )


@pytest.fixture
def mirrored(tmp_path: Path, upstream_server_factory) -> Folder:
    upstream = tmp_path / "upstream" / "miniconda"
    write_folder(upstream, FILES)
    server = upstream_server_factory(upstream.parent)
    serve_index(server, "/miniconda/")
    m = Folder(tmp_path, server, upstream)
    assert m.run("mirror", "--no-progress") == 0
    assert sorted(p.name for p in m.folder.iterdir()) == sorted([*FILES, "index.html"])
    return m


def problems(out: str) -> dict[str, str]:
    """path -> kind from verify's lines ``kind: path: detail``."""
    found = {}
    for line in out.splitlines():
        kind, sep, rest = line.partition(": ")
        if sep and kind in ("corrupt", "missing", "extra", "metadata", "temporary"):
            found[rest.split(": ", 1)[0]] = kind
    return found


def damage(m: Folder) -> dict[str, str]:
    """A file changed (same size, its mtime put back), one gone, a file and a link dropped
    in; returns what verify must say, path -> kind."""
    changed = m.folder / LATEST
    st = changed.stat()
    changed.write_bytes(bytes(b ^ 0xFF for b in changed.read_bytes()))
    os.utime(changed, ns=(st.st_atime_ns, st.st_mtime_ns))
    (m.folder / OLD).unlink()
    (m.folder / "Miniconda3-dropped.sh").write_bytes(b"#!/bin/sh\necho unverified\n")
    (m.folder / "passwd.sh").symlink_to("/etc/passwd")
    return {
        f"miniconda/{LATEST}": "corrupt",
        f"miniconda/{OLD}": "missing",
        "miniconda/Miniconda3-dropped.sh": "extra",
        "miniconda/passwd.sh": "extra",
    }


def test_a_sound_folder_verifies_and_counts_its_files(
    mirrored: Folder, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert mirrored.run("verify") == 0
    out = capsys.readouterr().out
    assert problems(out) == {}
    assert "checked 3 files, " in out and "; 0 problems" in out
    # With a sample, files outside it are checked by size: still counted.
    assert mirrored.run("verify", "--sample", "0") == 0
    assert "checked 3 files, " in capsys.readouterr().out


def test_damage_is_reported_and_repaired_then_a_run_trusts_the_files_again(
    mirrored: Folder, capsys: pytest.CaptureFixture[str]
) -> None:
    m = mirrored
    expected = damage(m)
    before = snapshot(m.site, exclude=[".sitegen/lock"])
    capsys.readouterr()
    assert m.run("verify") == 1
    out = capsys.readouterr().out
    assert problems(out) == expected, out
    assert snapshot(m.site, exclude=[".sitegen/lock"]) == before, (
        "verify without --repair changed the site"
    )

    m.server.reset()
    assert m.run("verify", "--repair") == 0
    out = capsys.readouterr().out
    assert problems(out) == expected and out.count("(repaired)") == 4, out
    assert m.downloads() == sorted([LATEST, OLD])  # from the folder's upstream
    assert {p.name: p.read_bytes() for p in m.folder.iterdir() if p.name != "index.html"} == FILES
    assert m.run("verify") == 0
    assert problems(capsys.readouterr().out) == {}
    # The state took the new files' mtimes: the next run trusts them and fetches nothing.
    state = json.loads(installer_state_path(m.site, "miniconda").read_bytes())
    assert state["files"][LATEST]["mtime_ns"] == (m.folder / LATEST).stat().st_mtime_ns
    m.server.reset()
    assert m.run("mirror", "--no-progress") == 0
    assert [r.path for r in m.server.requests] == ["/miniconda/"]


def test_a_file_changed_upstream_fails_its_repair_and_nothing_unverified_is_published(
    mirrored: Folder, capsys: pytest.CaptureFixture[str]
) -> None:
    m = mirrored
    (m.folder / LATEST).unlink()
    # A new "latest" under the same name upstream: not the bytes the state knows.
    write_folder(m.upstream, {**FILES, LATEST: b"#!/bin/sh\n# newer\n" * 160})
    capsys.readouterr()
    assert m.run("verify", "--repair") == 1
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if line.startswith("missing: ")]
    assert f"miniconda/{LATEST}: file is missing; repair failed:" in line
    assert "checksum mismatch" in line and "(repaired)" not in line
    assert not (m.folder / LATEST).exists()
    assert not [p for p in m.folder.iterdir() if p.name.startswith(".")]
    # The next run reads the index and fetches the new one.
    assert m.run("mirror", "--no-progress") == 0
    assert (m.folder / LATEST).read_bytes() == b"#!/bin/sh\n# newer\n" * 160
    assert m.run("verify") == 0


@pytest.mark.parametrize("how", ["deleted", "damaged"])
def test_a_folder_whose_state_is_lost_is_reported_and_never_emptied(
    mirrored: Folder, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    m = mirrored
    state = installer_state_path(m.site, "miniconda")
    if how == "deleted":
        state.unlink()
    else:
        state.write_bytes(state.read_bytes()[:20])
    before = snapshot(m.site, exclude=[".sitegen/lock"])
    capsys.readouterr()
    assert m.run("verify", "--repair") == 1
    out = capsys.readouterr().out
    assert problems(out) == {".sitegen/installers/miniconda.json": "metadata"}, out
    assert "the next run checks them against the upstream index" in out
    assert snapshot(m.site, exclude=[".sitegen/lock"]) == before
    m.server.reset()
    assert m.run("mirror", "--no-progress") == 0  # hashes them, writes the state again
    assert m.downloads() == []
    assert m.run("verify") == 0


def test_a_site_of_installer_folders_only_that_never_ran_has_nothing_to_verify(
    tmp_path: Path, upstream_server_factory, capsys: pytest.CaptureFixture[str]
) -> None:
    upstream = tmp_path / "upstream" / "miniconda"
    write_folder(upstream, FILES)
    m = Folder(tmp_path, upstream_server_factory(upstream.parent), upstream)
    assert m.run("verify") == 1
    assert capsys.readouterr().out == (
        f"nothing to verify: no channel or installer folder {m.config} configures is"
        f" published in {m.site}\n"
    )


def test_a_folder_that_is_a_loop_of_links_and_never_ran_has_nothing_to_verify(
    tmp_path: Path, upstream_server_factory, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder that is a loop of links leads nowhere, as a dangling link does: it holds
    nothing to verify, which verify says, rather than failing on the loop."""
    upstream = tmp_path / "upstream" / "miniconda"
    write_folder(upstream, FILES)
    m = Folder(tmp_path, upstream_server_factory(upstream.parent), upstream)
    m.site.mkdir()
    m.folder.symlink_to(m.folder)
    assert m.run("verify") == 1
    assert capsys.readouterr().out.startswith("nothing to verify: ")


def test_a_folder_made_a_link_to_a_channel_is_left_alone(
    mirrored: Folder, example_upstream: ExampleUpstream, capsys: pytest.CaptureFixture[str]
) -> None:
    m = mirrored
    m.write(f"channels:\n  c/x:\n    url: {example_upstream.url}\n    subdirs: [linux-64]\n")
    assert m.run("mirror", "--no-progress", "--only", "c-x") == 0
    shutil.rmtree(m.folder)
    m.folder.symlink_to(m.site / "c/x/linux-64")
    before = snapshot(m.site, exclude=[".sitegen/lock"])
    capsys.readouterr()
    assert m.run("verify", "--repair") == 1
    out = capsys.readouterr().out
    assert problems(out) == {"miniconda": "metadata"}, out
    assert "a link to channel c/x's directory" in out
    assert (
        snapshot(m.site, exclude=[".sitegen/lock"]) == before
    )  # none of the channel's files taken for extras
