"""Local sources under damage: ``sitegen verify --repair`` restores a published file from the
source folder (never over the network), and a file that vanishes while it is being read is
skipped with its reason while the rest publish."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

import sitegen.sync.local_index as local_index
from sitegen.conda.hashing_reader import Pread
from sitegen.conda.index import (
    REASON_CHANGED,
    REASON_TRUNCATED,
    REASON_UNREADABLE,
    index_package,
)
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import PackageSpec
from sitegen.tools.verify import verify_site
from testkit.local import drop, local_config
from testkit.site import assert_channel_consistent, published

pytestmark = pytest.mark.unit

CHANNEL = "internal/own"
SPECS = [
    PackageSpec("foo", "1.0", "h1_0"),
    PackageSpec("bar", "2.0", "h2_0"),
    PackageSpec("baz", "3.0", "h3_0"),
]


def run(config) -> object:
    return trio.run(run_mirror, config, MirrorOptions(progress=False))


def test_repair_restores_a_local_file_from_its_folder(tmp_path: Path) -> None:
    folder, site = tmp_path / "incoming", tmp_path / "site"
    config = local_config(site, folder)
    foo = drop(folder, SPECS[0], "conda")
    bar = drop(folder, SPECS[1], "tar.bz2", by_subdir=True)
    assert not run(config).failed
    directory = site / CHANNEL / "linux-64"
    (directory / foo.name).unlink()
    # Other bytes under the published name: a new file, so the folder's (linked) one is intact.
    corrupt = directory / bar.name
    data = bytes(b ^ 0xFF for b in corrupt.read_bytes())
    corrupt.unlink()
    corrupt.write_bytes(data)
    found = trio.run(verify_site, config)
    assert {(p.path, p.kind) for p in found.problems} == {
        (f"{CHANNEL}/linux-64/{foo.name}", "missing"),
        (f"{CHANNEL}/linux-64/{bar.name}", "corrupt"),
    }
    repaired = trio.run(verify_site, config, True)
    assert repaired.ok, repaired.problems
    for source in (foo, bar):
        assert os.stat(directory / source.name).st_ino == os.stat(source).st_ino
    assert trio.run(verify_site, config).problems == []
    assert_channel_consistent(site, CHANNEL)


def test_repair_refuses_a_folder_file_that_differs_from_the_record(tmp_path: Path) -> None:
    folder, site = tmp_path / "incoming", tmp_path / "site"
    config = local_config(site, folder)
    foo = drop(folder, SPECS[0], "conda")
    assert not run(config).failed
    (site / CHANNEL / "linux-64" / foo.name).unlink()
    # Replaced in the folder since the run: not what the published record describes.
    other = drop(tmp_path / "elsewhere", PackageSpec("foo", "1.0", "h1_0", seed=5), "conda")
    os.replace(other, foo)
    report = trio.run(verify_site, config, True)
    (problem,) = report.problems
    assert not problem.repaired and "repair failed" in problem.detail
    assert not (site / CHANNEL / "linux-64" / foo.name).exists()


@pytest.mark.parametrize("fmt", ["conda", "tar.bz2"])
@pytest.mark.parametrize("damage", ["deleted", "truncated"])
def test_a_file_vanishing_mid_read_is_skipped_and_the_rest_publish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, damage: str
) -> None:
    folder, site = tmp_path / "incoming", tmp_path / "site"
    paths = [drop(folder, spec, fmt) for spec in SPECS]
    victim = paths[1]
    reads: list[int] = []

    def vanishing_pread(fd: int, length: int, offset: int) -> bytes:
        data = os.pread(fd, length, offset)
        reads.append(offset)
        if len(reads) == 1:  # after the first chunk, while the reader holds the file open
            if damage == "deleted":
                victim.unlink()
            else:
                os.truncate(victim, victim.stat().st_size // 2)
        return data

    def indexer(path: Path, fn: str | None = None, pread: Pread = os.pread) -> object:
        return index_package(path, fn, pread=vanishing_pread if path == victim else pread)

    monkeypatch.setattr(local_index, "index_package", indexer)
    report = run(local_config(site, folder))
    assert len(reads) > 1  # the read went on past the damage
    others = {paths[0].name, paths[2].name}
    assert published(site, CHANNEL, "linux-64") == others
    assert not (site / CHANNEL / "linux-64" / victim.name).exists()
    # Its subdir unknown (never read in full), it is reported under noarch: a deleted file as
    # such, a truncated one (read again, as a changed file is) as what is left of it.
    rejected = report.mirrors[0].subdirs["noarch"].rejected_examples
    if damage == "deleted":
        assert rejected == {victim.name: REASON_CHANGED}
    else:
        assert rejected.get(victim.name) in (REASON_TRUNCATED, REASON_UNREADABLE)
    assert_channel_consistent(site, CHANNEL)


def test_repair_never_publishes_a_symlink_from_the_folder(tmp_path: Path) -> None:
    """A symlink in the folder under a published name, pointing at a file with the right
    bytes: the web server would serve whatever its target becomes (any file the server may
    read). Publishing links the folder's name itself, so the check of the bytes passed through
    the symlink and the site held a symlink out of it; it must be refused."""
    folder, site = tmp_path / "incoming", tmp_path / "site"
    config = local_config(site, folder)
    foo = drop(folder, SPECS[0], "conda")
    assert not run(config).failed
    published_file = site / CHANNEL / "linux-64" / foo.name
    published_file.unlink()
    elsewhere = tmp_path / "elsewhere" / foo.name
    elsewhere.parent.mkdir()
    os.replace(foo, elsewhere)
    foo.symlink_to(elsewhere)
    report = trio.run(verify_site, config, True)
    (problem,) = report.problems
    assert not problem.repaired, problem
    assert not published_file.is_symlink()
    assert not published_file.exists()
