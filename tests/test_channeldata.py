"""channeldata.json: newest version per name, .conda preferred, seconds, subdirs."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from sitegen.conda.channeldata import build_channeldata
from sitegen.conda.records import Record, parse_repodata
from sitegen.conda.version import parse_version

pytestmark = pytest.mark.unit

PYTORCH = Path("/work/shared/data/pytorch-linux-64-repodata.json")


def rec(
    name: str,
    version: str,
    build: str = "0",
    *,
    subdir: str = "linux-64",
    ext: str = ".conda",
    build_number: int = 0,
    timestamp: int | None = 1_700_000_000_000,
    **extra: Any,
) -> Record:
    raw: dict[str, Any] = {
        "name": name,
        "version": version,
        "build": build,
        "build_number": build_number,
        "depends": [],
        "subdir": subdir,
        "size": 10,
        "md5": "0" * 32,
        **extra,
    }
    if timestamp is not None:
        raw["timestamp"] = timestamp
    return Record(fn=f"{name}-{version}-{build}{ext}", subdir=subdir, raw=raw)


def channel(*records: Record, subdirs: tuple[str, ...] = ()) -> dict[str, dict[str, Record]]:
    out: dict[str, dict[str, Record]] = {s: {} for s in subdirs}
    for r in records:
        out.setdefault(r.subdir, {})[r.fn] = r
    return out


def test_document_shape() -> None:
    data = build_channeldata(channel(rec("foo", "1.0"), subdirs=("noarch", "linux-64")))
    assert data == {
        "channeldata_version": 1,
        "packages": {
            "foo": {"subdirs": ["linux-64"], "timestamp": 1_700_000_000, "version": "1.0"},
        },
        "subdirs": ["linux-64", "noarch"],
    }


@pytest.mark.parametrize(
    ("versions", "newest"),
    [
        (["1.9", "1.10"], "1.10"),
        (["1.0", "1.0.post1"], "1.0.post1"),
        (["1.0a1", "1.0"], "1.0"),
        (["1.0rc1", "0.9"], "1.0rc1"),
    ],
)
def test_newest_version_by_conda_ordering(versions: list[str], newest: str) -> None:
    # Give the older version the later timestamp: the version decides, not the time.
    records = [
        rec("foo", v, timestamp=1_700_000_000_000 - i * 1000)
        for i, v in enumerate(reversed(versions))
    ]
    data = build_channeldata(channel(*records))
    assert data["packages"]["foo"]["version"] == newest


def test_about_fields_from_newest_record_that_has_them() -> None:
    data = build_channeldata(
        channel(
            rec("foo", "2.0", summary="new summary", license="MIT"),
            rec("foo", "1.0", summary="old summary", home="https://old.example", license="BSD"),
            rec("foo", "0.5", dev_url=["not", "a", "string"], doc_url="   "),
        )
    )
    entry = data["packages"]["foo"]
    assert entry["summary"] == "new summary"
    assert entry["license"] == "MIT"
    assert entry["home"] == "https://old.example"
    assert "dev_url" not in entry and "doc_url" not in entry
    assert "description" not in entry


def test_higher_build_number_wins_within_a_version() -> None:
    data = build_channeldata(
        channel(
            rec("foo", "1.0", "h_1", build_number=1, summary="build 1"),
            rec(
                "foo", "1.0", "h_0", build_number=0, summary="build 0", timestamp=1_800_000_000_000
            ),
        )
    )
    assert data["packages"]["foo"]["summary"] == "build 1"


def test_within_a_build_number_the_newer_build_wins_then_the_conda_format() -> None:
    newer = rec("foo", "1.0", "a", subdir="osx-64", summary="newer", timestamp=1_700_000_001_000)
    older = rec("foo", "1.0", "a", subdir="win-64", summary="older")
    assert build_channeldata(channel(older, newer))["packages"]["foo"]["summary"] == "newer"
    # Same build number and time, no twin in its own subdir: the .conda speaks first.
    conda = rec("foo", "1.0", "a", subdir="linux-64", summary="conda")
    bz2 = rec("foo", "1.0", "a", subdir="osx-64", ext=".tar.bz2", summary="bz2")
    assert build_channeldata(channel(bz2, conda))["packages"]["foo"]["summary"] == "conda"


def test_builds_of_one_version_spelled_differently_are_ordered_together() -> None:
    # "1.0" and "1.0.0" are one version: the higher build number wins whichever the spelling.
    data = build_channeldata(
        channel(
            rec("foo", "1.0", "h_0", summary="build 0"),
            rec("foo", "1.0.0", "h_1", build_number=1, summary="build 1"),
        )
    )
    assert data["packages"]["foo"]["summary"] == "build 1"
    assert data["packages"]["foo"]["version"] == "1.0.0"


def test_about_json_fields_fill_in_behind_the_records_own() -> None:
    # A package indexed here brings info/about.json; the record's own fields come first.
    indexed = rec("foo", "1.0", summary="from the record")
    indexed.about = {"summary": "from about.json", "home": "https://foo.example"}
    entry = build_channeldata(channel(indexed))["packages"]["foo"]
    assert entry["summary"] == "from the record"
    assert entry["home"] == "https://foo.example"


def test_conda_preferred_over_its_tar_bz2_twin() -> None:
    conda = rec("foo", "1.0", ext=".conda", summary="from conda")
    bz2 = rec("foo", "1.0", ext=".tar.bz2", summary="from bz2", timestamp=1_700_000_001_000)
    data = build_channeldata(channel(bz2, conda))
    assert data["packages"]["foo"]["summary"] == "from conda"


def test_lone_tar_bz2_is_used() -> None:
    data = build_channeldata(
        channel(rec("foo", "1.0", ext=".tar.bz2", summary="bz2 only"), rec("foo", "0.9"))
    )
    assert data["packages"]["foo"] == {
        "subdirs": ["linux-64"],
        "summary": "bz2 only",
        "timestamp": 1_700_000_000,
        "version": "1.0",
    }


def test_timestamps_become_seconds() -> None:
    data = build_channeldata(
        channel(
            rec("ms", "1.0", timestamp=1_700_000_000_999),
            rec("secs", "1.0", timestamp=1_400_000_000),  # old second-based record
            rec("mixed", "1.0", timestamp=1_400_000_000),
            rec("mixed", "0.9", timestamp=1_500_000_000_000),  # older version, newer time
            rec("none", "1.0", timestamp=None),
        )
    )
    packages = data["packages"]
    assert packages["ms"]["timestamp"] == 1_700_000_000
    assert packages["secs"]["timestamp"] == 1_400_000_000
    assert packages["mixed"]["timestamp"] == 1_500_000_000
    assert "timestamp" not in packages["none"]


def test_subdirs_per_name_and_channel() -> None:
    data = build_channeldata(
        channel(
            rec("foo", "1.0", subdir="osx-64"),
            rec("foo", "1.1", subdir="linux-64"),
            rec("bar", "1.0", subdir="noarch"),
            subdirs=("win-64",),
        )
    )
    assert data["subdirs"] == ["linux-64", "noarch", "osx-64", "win-64"]
    assert data["packages"]["foo"]["subdirs"] == ["linux-64", "osx-64"]
    assert data["packages"]["foo"]["version"] == "1.1"
    assert data["packages"]["bar"]["subdirs"] == ["noarch"]
    assert list(data["packages"]) == ["bar", "foo"]


def test_empty_channel() -> None:
    assert build_channeldata({"noarch": {}}) == {
        "channeldata_version": 1,
        "packages": {},
        "subdirs": ["noarch"],
    }


def test_output_independent_of_input_order() -> None:
    records = [
        rec("foo", "1.0", "a", subdir="linux-64", summary="linux"),
        rec("foo", "1.0", "a", subdir="osx-64", summary="osx"),
        rec("foo", "1.0", "a", subdir="osx-64", ext=".tar.bz2", summary="osx bz2"),
        rec("bar", "2.0", "b", home="https://bar.example"),
        rec("bar", "1.0", "b", description="bar"),
    ]
    expected = json.dumps(build_channeldata(channel(*records)))
    shuffled = records[:]
    for seed in range(5):
        random.Random(seed).shuffle(shuffled)
        assert json.dumps(build_channeldata(channel(*shuffled))) == expected
    data = json.loads(expected)
    for entry in data["packages"].values():
        assert list(entry) == sorted(entry)


@pytest.fixture(scope="module")
def pytorch() -> dict[str, Record]:
    if not PYTORCH.is_file():
        pytest.skip(f"reference data {PYTORCH} not available")
    return parse_repodata(PYTORCH.read_bytes(), "linux-64").records


def test_pytorch_channeldata(pytorch: dict[str, Record]) -> None:
    data = build_channeldata({"linux-64": pytorch, "noarch": {}})
    names = {r.name for r in pytorch.values()}
    assert set(data["packages"]) == names
    for name, entry in data["packages"].items():
        versions = [parse_version(r.version) for r in pytorch.values() if r.name == name]
        assert parse_version(entry["version"]) == max(versions)
        assert entry["subdirs"] == ["linux-64"]
        # Seconds, and in a plausible range (2015..2100).
        assert 1_420_000_000 < entry["timestamp"] < 4_102_444_800
    json.dumps(data)  # serialisable as is
