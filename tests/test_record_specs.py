"""Dependency specs no client reads keep their record out; every spec real channels publish
is read (rattler's lenient MatchSpec parser is the judge)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from sitegen.conda.index import BadPackage, index_package
from sitegen.conda.record_check import REASON_BAD_SPEC, check_record
from sitegen.conda.records import parse_repodata
from testkit.local import index_of, info_members, write_tar_bz2
from testkit.records import raw_record

pytestmark = pytest.mark.unit

PYTORCH = Path("/work/shared/data/pytorch-linux-64-repodata.json")

# No MatchSpec at all: mamba 2.x fails to load the subdir (or shard) holding one, rattler
# fails the solve, conda fails on the record.
UNREADABLE = ["numpy >=>= 1", "(((", "foo[version=", "", "   ", "numpy >>>1 <<"]
# What conda, conda-forge and others publish: virtual packages, build strings, channels,
# brackets, the bare version conda reads as an exact one.
READABLE = [
    "__glibc >=2.17",
    "python >=3.8,<3.9.0a0",
    "python_abi 3.12.* *_cp312",
    "mkl >=2021 *_intel",
    "numpy 1.2 py3*_0",
    "foo 1.0 0",
    "openssl !=1.1.1a",
    "conda-forge::numpy",
    "numpy[version='>=1']",
    'numpy[version=">=1,<2", build="py*"]',
    "pytorch-cuda 11.8.*",
]


def check(**fields: object) -> str | None:
    raw = raw_record("foo", "1.0", "h0_0", **fields)
    return check_record("foo-1.0-h0_0.conda", raw, "packages.conda", "linux-64")


@pytest.mark.parametrize("key", ["depends", "constrains"])
@pytest.mark.parametrize("spec", UNREADABLE)
def test_a_record_with_an_unreadable_spec_is_refused(key: str, spec: str) -> None:
    assert check(**{key: ["python >=3.8", spec]}) == REASON_BAD_SPEC
    # Met again (specs are judged once per string): refused again.
    assert check(**{key: [spec]}) == REASON_BAD_SPEC


@pytest.mark.parametrize("key", ["depends", "constrains"])
@pytest.mark.parametrize("spec", READABLE)
def test_a_record_with_readable_specs_is_kept(key: str, spec: str) -> None:
    assert check(**{key: [spec]}) is None
    assert check(**{key: ["python >=3.8", spec]}) is None


def test_a_spec_refused_in_one_record_costs_only_the_records_holding_it() -> None:
    document = {
        "packages.conda": {
            f"{name}-1.0-h0_0.conda": raw_record(name, "1.0", "h0_0", depends=depends)
            for name, depends in [("a", ["numpy >=>= 1"]), ("b", ["numpy >=1"]), ("c", [])]
        }
    }
    parsed = parse_repodata(json.dumps(document).encode(), "linux-64")
    assert parsed.rejected == {"a-1.0-h0_0.conda": REASON_BAD_SPEC}
    assert set(parsed.records) == {"b-1.0-h0_0.conda", "c-1.0-h0_0.conda"}


def test_no_record_of_real_upstream_repodata_is_refused_for_its_specs() -> None:
    if not PYTORCH.is_file():
        pytest.skip(f"reference data {PYTORCH} not available")
    parsed = parse_repodata(PYTORCH.read_bytes(), "linux-64")
    assert Counter(parsed.rejected.values())[REASON_BAD_SPEC] == 0
    assert len(parsed.records) == 2181  # all of them (see the data's README)


def test_a_local_package_with_an_unreadable_spec_is_refused(tmp_path: Path) -> None:
    for key in ("depends", "constrains"):
        index = index_of("bad", **{key: ["python", "numpy >=>= 1"]})
        path = write_tar_bz2(tmp_path / f"bad-{key}" / "bad-1.0-0.tar.bz2", info_members(index))
        with pytest.raises(BadPackage) as caught:
            index_package(path)
        assert caught.value.reason == REASON_BAD_SPEC
    fine = index_of("fine", depends=READABLE, constrains=READABLE)
    path = write_tar_bz2(tmp_path / "fine-1.0-0.tar.bz2", info_members(fine))
    assert index_package(path).record["depends"] == READABLE
