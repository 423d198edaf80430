"""Local sources beside rattler's indexer: the records sitegen publishes for a folder of real
packages equal those py-rattler's ``index_fs`` writes for the same files, field by field, but
for the differences README's Local sources names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sitegen.tools.example_channel import PackageSpec
from testkit.local import (
    BUILD_KEYS,
    CHANNEL,
    SPECS,
    drop,
    drop_all,
    index_of,
    info_members,
    local_config,
    run,
    write_conda,
)
from testkit.rattler_index import assert_record_as_rattlers, rattler_indexed
from testkit.site import assert_channel_consistent, read_repodata

# rattler's indexer runs beside sitegen on the same files.
pytestmark = pytest.mark.integration


def rattler_records(folder: Path, tmp_path: Path) -> dict[str, dict[str, dict]]:
    """What rattler's indexer writes for the same packages: subdir -> fn -> record."""
    copy = rattler_indexed(folder, tmp_path / "rattler-copy", shards=False)
    out = {}
    for subdir_dir in copy.iterdir():
        if (subdir_dir / "repodata.json").is_file():
            document = read_repodata(subdir_dir)
            out[subdir_dir.name] = {**document["packages"], **document["packages.conda"]}
    return out


@pytest.mark.parametrize("by_subdir", [False, True], ids=["flat", "by-subdir"])
def test_records_equal_rattlers_indexer_field_by_field(tmp_path: Path, by_subdir: bool) -> None:
    folder = tmp_path / "incoming"
    drop_all(folder, SPECS, by_subdir=by_subdir)
    # What build tools write beside: the build machine's keys, a null license, run_exports.
    drop(folder, PackageSpec("old", "1.0", "0", extra=BUILD_KEYS), "tar.bz2", by_subdir)
    index = index_of("rex", license=None)
    run_exports = ("info/run_exports.json", json.dumps({"weak": ["rex >=1.0"]}).encode())
    paths = ("info/paths.json", json.dumps({"paths": [], "paths_version": 1}).encode())
    rex = folder / "linux-64" if by_subdir else folder
    write_conda(rex / "rex-1.0-0.conda", [*info_members(index), run_exports, paths])
    site = tmp_path / "site"
    report = run(local_config(site, folder))
    assert not report.failed
    assert_channel_consistent(site, CHANNEL)
    expected = rattler_records(folder, tmp_path)
    for subdir in ("linux-64", "noarch"):
        ours = read_repodata(site / CHANNEL / subdir)
        ours = {**ours["packages"], **ours["packages.conda"]}
        theirs = expected[subdir]
        assert set(ours) == set(theirs) and ours
        for fn, record in ours.items():
            assert_record_as_rattlers(fn, record, theirs[fn])
