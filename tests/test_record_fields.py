"""Record fields of JSON types conda's repodata writers never use, which rattler (pixi,
py-rattler) cannot read: one such record makes rattler fail to load every record of its
package name, so the record is refused and the rest of the name and subdir stay readable."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from rattler import Channel, PackageName, SparseRepoData

from sitegen.conda.record_check import REASON_BAD_FIELDS, check_record
from sitegen.sync.report import COMPLETED
from sitegen.tools.example_channel import write_channel
from testkit.hostile import LINUX, run_config
from testkit.invariant import make_sandbox
from testkit.records import raw_record
from testkit.site import mirror_unchecked
from testkit.small_channel import CHANNEL, filenames, set_repodata, small_packages
from testkit.upstream import UpstreamServer

# (field, value): each makes rattler's SparseRepoData.load_records fail on the record's name
# (measured with py-rattler 0.28), where conda writes an integer, text, a list or a mapping.
UNREADABLE = [
    ("timestamp", 1700000000.5),  # expected i64
    ("timestamp", 1700000000000.0),
    ("timestamp", 253402207200001),  # past rattler's year 9999
    ("timestamp", 253402207201),  # seconds past it
    ("license", ["MIT", "BSD-3-Clause"]),  # expected a string
    ("license", 7),
    ("license_family", 7),
    ("license_family", ["MIT"]),
    ("track_features", None),  # a string or a list of them, not null
    ("constrains", None),  # a list, not null
    ("subdir", None),
    ("legacy_bz2_md5", "zz"),
    ("legacy_bz2_size", 5.0),  # expected u64
    ("python_site_packages_path", ["lib/python3.12/site-packages"]),
    ("purls", "pkg:pypi/foo"),  # a list of them
    ("run_exports", {"weak": "foo"}),  # lists of specs by kind
    ("extra_depends", None),
    ("extra_depends", {"test": [5]}),
    ("indexed_timestamp", 1800000000000.5),  # kept as upstream wrote it: expected i64
]
# ...and what conda writes there, or rattler reads anyway: kept.
READABLE = [
    ("timestamp", 1517521155),  # seconds, as old records have them
    ("timestamp", 253402207200000),
    ("timestamp", None),
    ("license", ""),
    ("license_family", None),
    ("track_features", ""),
    ("track_features", []),
    ("legacy_bz2_md5", "B" * 32),
    ("legacy_bz2_size", 0),
    ("python_site_packages_path", "lib/python3.12/site-packages"),
    ("purls", ["pkg:pypi/foo"]),
    ("run_exports", None),
    ("run_exports", {"weak": ["foo >=1"], "unknown": []}),
    ("extra_depends", {"test": ["pytest"]}),
    ("indexed_timestamp", 1700000000000),
]


def _check(key: str, value: object) -> str | None:
    raw = raw_record("foo", build="h0_0", **{key: value})
    return check_record("foo-1.0-h0_0.conda", raw, "packages.conda", "linux-64")


@pytest.mark.unit
@pytest.mark.parametrize(("key", "value"), UNREADABLE)
def test_a_field_rattler_cannot_read_makes_the_record_malformed(key: str, value: object) -> None:
    assert _check(key, value) == REASON_BAD_FIELDS


@pytest.mark.unit
@pytest.mark.parametrize(("key", "value"), READABLE)
def test_a_field_as_conda_writes_it_is_kept(key: str, value: object) -> None:
    assert _check(key, value) is None


@pytest.mark.integration
async def test_rattler_reads_every_name_the_mirror_publishes(tmp_path: Path) -> None:
    root = tmp_path / "upstream"
    packages = small_packages()
    documents = write_channel(root, packages, zst=True)
    document: dict[str, Any] = copy.deepcopy(documents[LINUX])
    template = document["packages.conda"]["alpha-1.0-h0_0.conda"]
    odd: dict[str, str] = {}
    for i, (key, value) in enumerate(UNREADABLE):
        # A real file, so that only the record's fields keep it out.
        fn = f"odd{i}-1.0-h0_0.conda"
        shutil.copyfile(root / LINUX / "alpha-1.0-h0_0.conda", root / LINUX / fn)
        document["packages.conda"][fn] = {**template, "name": f"odd{i}", key: value}
        odd[fn] = REASON_BAD_FIELDS
    set_repodata(root, LINUX, json.dumps(document).encode())
    site = make_sandbox(tmp_path)
    with UpstreamServer(root) as server:
        report = await mirror_unchecked(run_config(site, server.url))

    assert report.status == COMPLETED and not report.failed, report.errors
    (mirror,) = report.mirrors
    sub = mirror.subdirs[LINUX]
    assert sub.rejected == {REASON_BAD_FIELDS: len(UNREADABLE)}
    assert sub.rejected_examples == odd
    assert sub.records == len(filenames(packages, LINUX))

    path = site / CHANNEL / LINUX / "repodata.json"
    sparse = SparseRepoData(Channel(CHANNEL), LINUX, path)
    names = sparse.package_names()
    assert sorted(names) == ["alpha", "beta", "epsilon", "gamma"]
    for name in names:  # rattler raises on a record it cannot read
        assert sparse.load_records(PackageName(name))
