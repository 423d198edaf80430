"""The check of many records at once (plainly_sound), which parse_repodata runs before
check_record: it accepts no record check_record refuses, and passes sound records on, so
that check_record's reasons stay the only ones a refused record is given."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from sitegen.conda.record_check import check_record, plainly_sound
from sitegen.conda.records import parse_repodata
from testkit.records import raw_record

pytestmark = pytest.mark.unit

SHA = "a" * 64
FN = "foo-1.0-h0_0.conda"
KEY = "packages.conda"

# (field, value): a record of foo-1.0-h0_0 with this field set to this value (None: without
# the field, ABSENT: a JSON null), each next to a bound or type a check looks at.
ABSENT = object()
CHANGES: list[tuple[str, Any]] = [
    ("name", ""),
    ("name", 5),
    ("name", None),
    ("version", ""),
    ("version", "2.0"),
    ("version", ["1.0"]),
    ("build", ""),
    ("build", None),
    ("build_number", None),
    ("build_number", ABSENT),
    ("build_number", "1"),
    ("build_number", True),
    ("build_number", 1.0),
    ("build_number", -1),
    ("build_number", (1 << 63) - 1),
    ("build_number", 1 << 63),
    ("build_number", (1 << 64) - 1),
    ("build_number", 1 << 64),
    ("size", 0),
    ("size", -5),
    ("size", 1 << 40),
    ("size", (1 << 40) + 1),
    ("size", 10.0),
    ("size", None),
    ("timestamp", ABSENT),
    ("timestamp", True),
    ("timestamp", "1700000000000"),
    ("timestamp", 1700000000.5),
    ("timestamp", 0),
    ("timestamp", -377_705_023_201),
    ("timestamp", -377_705_023_202),
    ("timestamp", 253402207200),
    ("timestamp", 253402207201),  # between the seconds and the milliseconds rattler reads
    ("timestamp", 253402300799),
    ("timestamp", 253402300800),
    ("timestamp", 253402207200000),
    ("timestamp", 253402207200001),
    ("subdir", ABSENT),
    ("subdir", None),
    ("subdir", "osx-64"),
    ("subdir", 64),
    ("license", ABSENT),
    ("license", ["MIT"]),
    ("license", 7),
    ("license_family", {"x": 1}),
    ("sha256", None),
    ("sha256", ABSENT),
    ("sha256", SHA + "\n"),
    ("sha256", SHA[:62] + " \t"),
    ("sha256", SHA[:31] + " " + SHA[32:] + " "),
    ("sha256", SHA[:63] + "g"),
    ("sha256", SHA[:63] + "\u0663"),
    ("sha256", SHA.upper()),
    ("sha256", 5),
    ("sha256", ""),
    ("md5", "b" * 32 + "\n"),
    ("md5", "b" * 30 + "\u00a0b"),
    ("md5", ""),
    ("depends", ABSENT),
    ("depends", None),
    ("depends", ["ok", 3]),
    ("depends", "python"),
    ("depends", ["numpy >=>= 1"]),
    ("depends", ["((("]),
    ("depends", [""]),
    ("constrains", ABSENT),
    ("constrains", "abc"),
    ("constrains", ["ok", None]),
    ("constrains", ["numpy >=>= 1"]),
    ("platform", {"os": "linux"}),
    ("platform", ABSENT),
    ("arch", 64),
    ("features", ["mkl"]),
    ("python_site_packages_path", ["lib"]),
    ("noarch", [1]),
    ("noarch", "perl"),
    ("noarch", 1),
    ("noarch", True),
    ("noarch", "generic"),
    ("noarch", ABSENT),
    ("track_features", ABSENT),
    ("track_features", 7),
    ("track_features", ["mkl", 1]),
    ("track_features", ["mkl"]),
    ("legacy_bz2_md5", "zz"),
    ("legacy_bz2_md5", "B" * 32),
    ("legacy_bz2_md5", "B" * 32 + "\n"),
    ("legacy_bz2_md5", "B" * 30 + " B"),
    ("legacy_bz2_size", 5.0),
    ("legacy_bz2_size", -1),
    ("legacy_bz2_size", 0),
    ("legacy_bz2_size", 1 << 64),
    ("purls", "pkg:pypi/foo"),
    ("purls", ["pkg:pypi/foo"]),
    ("purls", [1]),
    ("run_exports", {"weak": "foo"}),
    ("run_exports", {"weak": ["foo >=1"], "unknown": []}),
    ("run_exports", ABSENT),
    ("run_exports", []),
    ("extra_depends", ABSENT),
    ("extra_depends", {"test": [5]}),
    ("extra_depends", {"test": ["pytest"]}),
    ("indexed_timestamp", 1800000000000.5),
    ("indexed_timestamp", 1700000000000),
    ("indexed_timestamp", -377_705_023_201_001),
    ("indexed_timestamp", 253402207200001),
]


def _good(version: str = "1.0") -> dict[str, Any]:
    return raw_record("foo", version, "h0_0", md5="b" * 32, constrains=["bar <2"])


def _record(field: str, value: Any) -> dict[str, Any]:
    raw = _good()
    if value is None:
        raw.pop(field, None)
    else:
        raw[field] = None if value is ABSENT else value
    return raw


@pytest.mark.parametrize(("field", "value"), CHANGES)
def test_no_record_check_record_refuses_is_plainly_sound(field: str, value: Any) -> None:
    raw = _record(field, value)
    reason = check_record(FN, raw, KEY, "linux-64")
    if reason is not None:
        assert not plainly_sound([FN], [raw], KEY, "linux-64")
        # Among sound records too.
        fns = [f"foo-1.{i}-h0_0.conda" for i in range(1, 4)]
        goods = [_good(f"1.{i}") for i in range(1, 4)]
        assert not plainly_sound([*fns, FN], [*goods, raw], KEY, "linux-64")


@pytest.mark.parametrize(
    ("fn", "key"),
    [
        ("foo-1.0-h0_0.conda", "packages"),
        ("foo-1.0-h0_0.tar.bz2", "packages.conda"),
        ("foo-1.0-h0_0_1.conda", "packages.conda"),
        ("foo-1.0-h0_0.conda.conda", "packages.conda"),
    ],
)
def test_a_file_name_check_record_refuses_is_not_plainly_sound(fn: str, key: str) -> None:
    raw = _good()
    assert check_record(fn, raw, key, "linux-64") is not None
    assert not plainly_sound([fn], [raw], key, "linux-64")


@pytest.mark.parametrize(
    "name",
    ["/etc", "..", "a..b", ".hidden", "a/b", "a/", "a\\b", "a b", "a\x00", "a\n", "é", "x" * 250],
)
def test_a_name_no_file_may_have_is_not_plainly_sound(name: str) -> None:
    fn = f"{name}-1.0-h0_0.conda"
    raw = {**_good(), "name": name}
    assert check_record(fn, raw, KEY, "linux-64") is not None
    assert not plainly_sound([FN, fn], [_good(), raw], KEY, "linux-64")


def test_sound_records_are_plainly_sound() -> None:
    """Else every record would take check_record's slower path (a speed matter only)."""
    fns = [f"foo-1.{i}-h0_0.conda" for i in range(5)]
    raws = [_good(f"1.{i}") for i in range(5)]
    raws[1]["timestamp"] = 1517521155  # seconds, as old records have them
    raws[2].update(noarch="python", track_features="", run_exports={"weak": ["foo"]})
    del raws[3]["sha256"], raws[4]["md5"]
    assert plainly_sound(fns, raws, KEY, "linux-64")


@pytest.mark.parametrize("count", [1, 9, 100, 300, 1100])
def test_bad_records_among_many_get_check_records_reasons(count: int) -> None:
    """Wherever they are among the records checked together, and however many."""
    section = {f"foo-1.{i}-h0_0.conda": _good(f"1.{i}") for i in range(count)}
    bad = {0, count // 2, count - 1} | set(range(3, count, 97))
    fns = list(section)
    for i in sorted(bad):
        section[fns[i]] = {**section[fns[i]], "size": 0 if i % 2 else "1"}
    document = {"packages.conda": section, "packages": {}}
    repodata = parse_repodata(msgspec.json.encode(document), "linux-64")
    expected = {fns[i]: check_record(fns[i], section[fns[i]], KEY, "linux-64") for i in bad}
    assert repodata.rejected == expected
    assert list(repodata.records) == [fn for i, fn in enumerate(fns) if i not in bad]
    assert all(r.raw == {**section[r.fn], "subdir": "linux-64"} for r in repodata.records.values())
