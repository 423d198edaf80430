"""The private state of local sources: each kind in a folder of its own, so that no two valid
mirror names share a file, and caches kept where earlier versions kept them are adopted."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import trio

from sitegen.cli import EXIT_OK, main
from sitegen.layout import (
    local_index_path,
    local_store_folder_path,
    local_store_index_path,
    local_store_path,
    old_local_cache_paths,
)
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import PackageSpec
from testkit.local import drop, local_config

pytestmark = pytest.mark.unit

# Valid mirror names made of one another and the suffixes the state once used.
NAMES = ("x", "x.moved", "x.json", "x.moved.json")


def test_no_two_mirror_names_share_a_state_path(tmp_path: Path) -> None:
    kinds = (local_index_path, local_store_index_path, local_store_path, local_store_folder_path)
    paths = [(kind.__name__, name, kind(tmp_path, name)) for kind in kinds for name in NAMES]
    for (k1, n1, p1), (k2, n2, p2) in itertools.combinations(paths, 2):
        assert p1 != p2, (k1, n1, k2, n2)
        # A file of one is never a folder of another either.
        assert (p1 not in p2.parents and p2 not in p1.parents) or {k1, k2} == {
            "local_store_path",
            "local_store_folder_path",
        }, (k1, n1, k2, n2)


def test_mirrors_whose_names_once_collided_keep_their_own_state(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    site = tmp_path / "site"
    channels = []
    for n, name in enumerate(NAMES):
        drop(tmp_path / f"in{n}", PackageSpec(f"p{n}", "1.0", "h0"), "conda")
        channels.append(
            f"  ch/c{n}:\n    mirrors:\n      - name: {name}\n        path: {tmp_path / f'in{n}'}\n"
            f"        subdirs: [linux-64]\n        move: {str(n % 2 == 0).lower()}\n"
        )
    config = tmp_path / "channels.yaml"
    config.write_text(f"output: {site}\nchannels:\n" + "".join(channels))
    for _ in range(2):
        assert main(["mirror", "-c", str(config)]) == EXIT_OK
    for n, name in enumerate(NAMES):
        fn = f"p{n}-1.0-h0.conda"
        assert (site / f"ch/c{n}/linux-64/{fn}").is_file()
        if n % 2 == 0:
            assert (local_store_path(site, name) / "linux-64" / fn).is_file()
            assert not (tmp_path / f"in{n}" / fn).exists()
    # Every cache holds its own mirror's files: a third run reads nothing again.
    caplog.clear()
    with caplog.at_level("INFO", logger="sitegen"):
        assert main(["mirror", "-c", str(config)]) == EXIT_OK
    assert [m for m in caplog.messages if "new or changed files" in m] == []


@pytest.mark.parametrize("move", [False, True])
def test_caches_where_earlier_versions_kept_them_are_adopted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, move: bool
) -> None:
    folder, site = tmp_path / "incoming", tmp_path / "site"
    config = local_config(site, folder, extra=f"move: {str(move).lower()}\n")
    drop(folder, PackageSpec("foo", "1.0", "h1_0"), "conda")
    drop(folder, PackageSpec("bar", "2.0", "h2_0"), "conda")

    def run() -> None:
        assert not trio.run(run_mirror, config, MirrorOptions(progress=False)).failed

    run()
    moved = []
    for old, new in old_local_cache_paths(site, "internal-own"):  # as earlier versions kept it
        if new.is_file():
            old.parent.mkdir(parents=True, exist_ok=True)
            new.rename(old)
            moved.append((old, new))
    assert len(moved) == (2 if move else 1)
    caplog.clear()
    with caplog.at_level("INFO", logger="sitegen"):
        run()
    assert [m for m in caplog.messages if "new or changed files" in m] == []
    for old, new in moved:
        assert new.is_file() and not old.exists()
