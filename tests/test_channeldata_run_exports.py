"""channeldata.json's run_exports: per name and version, as conda-index writes them and
conda-build's ``--use-channeldata`` reads them."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from sitegen.conda.channeldata import build_channeldata
from sitegen.conda.records import Record
from testkit.records import JAN_2024, rec
from testkit.run_exports import conda_build_lookup

pytestmark = pytest.mark.unit

WEAK_A = b'{"weak":["foo >=1.0,<2.0a0"]}'
WEAK_B = b'{"weak":["foo >=1.0.1,<2.0a0"]}'
STRONG = b'{"strong":["foo"]}'


def build(exports: dict[str, dict[str, bytes]], *records: Record) -> dict[str, Any]:
    """channeldata.json as published (its bytes read back), from ``records`` by subdir."""
    subdirs: dict[str, dict[str, Record]] = {}
    for record in records:
        subdirs.setdefault(record.subdir, {})[record.fn] = record
    return json.loads(msgspec.json.encode(build_channeldata(subdirs, exports)))


def test_each_version_takes_its_newest_builds_exports() -> None:
    """Newest by timestamp, as conda-index: a higher build number built earlier loses."""
    old = rec("foo", "1.0", "h1_1", build_number=1, timestamp=JAN_2024)
    new = rec("foo", "1.0", "h2_0", build_number=0, timestamp=JAN_2024 + 1000)
    other = rec("foo", "2.0", "h3_0")
    data = build({"linux-64": {old.fn: WEAK_A, new.fn: WEAK_B, other.fn: STRONG}}, old, new, other)
    assert data["packages"]["foo"]["run_exports"] == {
        "1.0": {"weak": ["foo >=1.0.1,<2.0a0"]},
        "2.0": {"strong": ["foo"]},
    }
    assert conda_build_lookup(data, "foo", "1.0") == {"weak": ["foo >=1.0.1,<2.0a0"]}


def test_versions_without_exports_are_left_out() -> None:
    """A version exporting nothing, or whose newest build's exports are unknown, has no entry
    (conda-build reads that as none); a name with no such version has no run_exports."""
    empty = rec("foo", "1.0")
    unknown_newest = rec("foo", "2.0", "h1", timestamp=JAN_2024 + 1000)
    known_older = rec("foo", "2.0", "h0")
    exporting = rec("foo", "3.0")
    bar = rec("bar", "1.0")
    exports = {"linux-64": {empty.fn: b"{}", known_older.fn: WEAK_A, exporting.fn: STRONG}}
    data = build(exports, empty, unknown_newest, known_older, exporting, bar)
    assert data["packages"]["foo"]["run_exports"] == {"3.0": {"strong": ["foo"]}}
    assert "run_exports" not in data["packages"]["bar"]
    assert conda_build_lookup(data, "foo", "1.0") == {}


def test_the_versions_text_is_the_key() -> None:
    """conda-build looks up the record's version as written: "1.0" and "1.0.0" are keyed
    apart, though conda orders them as one version."""
    short, long = rec("foo", "1.0", "a"), rec("foo", "1.0.0", "b")
    data = build({"linux-64": {short.fn: WEAK_A, long.fn: WEAK_B}}, short, long)
    assert set(data["packages"]["foo"]["run_exports"]) == {"1.0", "1.0.0"}


def test_subdirs_in_name_order_a_later_ones_exports_win() -> None:
    """conda-index's merge of subdirs: those taken later (by name) replace a version's exports,
    unless theirs are empty."""
    linux = rec("foo", "1.0", "a", subdir="linux-64")
    osx = rec("foo", "1.0", "a", subdir="osx-64")
    win = rec("foo", "1.0", "a", subdir="win-64")
    exports = {
        "win-64": {win.fn: b"{}"},
        "osx-64": {osx.fn: STRONG},
        "linux-64": {linux.fn: WEAK_A},
    }
    data = build(exports, win, osx, linux)
    assert data["packages"]["foo"]["run_exports"] == {"1.0": {"strong": ["foo"]}}


def test_a_tar_bz2_twin_is_not_looked_at() -> None:
    conda = rec("foo", "1.0", "a", ext=".conda")
    tar = rec("foo", "1.0", "a", ext=".tar.bz2")
    data = build({"linux-64": {conda.fn: WEAK_A, tar.fn: STRONG}}, tar, conda)
    assert data["packages"]["foo"]["run_exports"] == {"1.0": {"weak": ["foo >=1.0,<2.0a0"]}}


def test_without_run_exports_the_document_is_unchanged() -> None:
    record = rec("foo", "1.0")
    assert build({}, record) == build({"linux-64": {}}, record)
    assert "run_exports" not in build({}, record)["packages"]["foo"]
