"""The previous publication read back a part at a time, where the map kept with it still
describes the file, and whole otherwise: the same state either way."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
import trio

from sitegen.conda import encode as encode_module
from sitegen.conda.records import Record
from sitegen.layout import repodata_map_path
from sitegen.store.site import Site
from sitegen.sync import repodata_map
from sitegen.sync.merge import load_previous
from sitegen.sync.publish import publish_subdir
from sitegen.sync.subdir_metadata import SubdirMetadata

pytestmark = pytest.mark.unit


def records(names: list[str], version: str = "1") -> dict[str, Record]:
    out = {}
    for name in names:
        for suffix in (".conda", ".tar.bz2"):
            fn = f"{name}-{version}-h0_0{suffix}"
            raw: dict[str, Any] = {
                "name": name,
                "version": version,
                "build": "h0_0",
                "build_number": 0,
                "depends": ["python >=3.9"],
                "sha256": hashlib.sha256(fn.encode()).hexdigest(),
                "size": 100,
                "subdir": "linux-64",
            }
            out[fn] = Record(fn=fn, subdir="linux-64", raw=raw)
    return out


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Small parts, and which way each read of the previous publication went."""
    monkeypatch.setattr(encode_module, "PIECE_RECORDS", 4)
    calls: list[str] = []
    whole, parts = repodata_map.load_published, repodata_map.load_published_parts

    def spy_whole(*args: Any, **kwargs: Any) -> Any:
        calls.append("whole")
        return whole(*args, **kwargs)

    def spy_parts(*args: Any, **kwargs: Any) -> Any:
        calls.append("parts")
        return parts(*args, **kwargs)

    monkeypatch.setattr(repodata_map, "load_published", spy_whole)
    monkeypatch.setattr(repodata_map, "load_published_parts", spy_parts)
    return calls


def test_the_previous_publication_is_read_in_parts_while_the_map_fits(
    tmp_path: Path, reads: list[str]
) -> None:
    site = Site(tmp_path / "site")
    directory = site.path("chan", "linux-64")
    map_path = repodata_map_path(site.root, "chan", "linux-64")

    def publish(published: dict[str, Record]) -> None:
        meta = SubdirMetadata("linux-64", published, {"x": 1}, ["gone.conda"], {"y": [2]})
        trio.run(publish_subdir, site, "chan", meta)

    def previous() -> dict[str, dict[str, Any]]:
        loaded = load_previous(directory, "linux-64", map_path=map_path)
        assert loaded is not None and loaded.removed == ["gone.conda"]
        assert loaded.extra == {"repodata_version": 1, "y": [2]}
        return {fn: r.raw for fn, r in loaded.records.items()}

    first = records([f"pkg{i:02d}" for i in range(15)])
    publish(first)
    assert map_path.is_file()
    assert previous() == {fn: r.raw for fn, r in first.items()} and reads == ["parts"]

    # Changed by anything but a run (here only its time): read whole, the same state.
    reads.clear()
    os.utime(directory / "repodata.json", ns=(1_600_000_000 * 10**9,) * 2)
    assert previous() == {fn: r.raw for fn, r in first.items()} and reads == ["whole"]

    # The next run publishes other records: their map replaces the last.
    reads.clear()
    second = records([f"pkg{i:02d}" for i in range(3, 20)], version="2")
    publish(second)
    assert previous() == {fn: r.raw for fn, r in second.items()} and reads == ["parts"]

    # Published again unchanged, after the map was lost: kept again for the file as it is.
    map_path.unlink()
    reads.clear()
    assert previous() == {fn: r.raw for fn, r in second.items()} and reads == ["whole"]
    publish(second)
    reads.clear()
    assert previous() == {fn: r.raw for fn, r in second.items()} and reads == ["parts"]

    # A damaged map, or one whose parts are not where it says: read whole.
    text = map_path.read_bytes()
    for damaged in (b"{not json", text.replace(b'"parts":{"head":[1,', b'"parts":{"head":[2,')):
        map_path.write_bytes(damaged)
        reads.clear()
        assert previous() == {fn: r.raw for fn, r in second.items()}
        assert reads[-1] == "whole"


def test_a_map_that_cannot_be_saved_leaves_the_publication_as_it_is(
    tmp_path: Path, reads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk when the map is saved: the subdir is published all the same, and the old
    map (of another file) is not used."""
    site = Site(tmp_path / "site")
    directory = site.path("chan", "linux-64")
    map_path = repodata_map_path(site.root, "chan", "linux-64")
    trio.run(publish_subdir, site, "chan", SubdirMetadata("linux-64", records(["a", "b"])))
    assert map_path.is_file()
    write_bytes = Site.write_bytes

    def full(self: Site, target: Path, data: bytes, **kwargs: Any) -> bool:
        if target == map_path:
            raise OSError(28, "No space left on device")
        return write_bytes(self, target, data, **kwargs)

    monkeypatch.setattr(Site, "write_bytes", full)
    second = records(["a", "b", "c"])
    written = trio.run(publish_subdir, site, "chan", SubdirMetadata("linux-64", second))
    assert "repodata.json" in written
    loaded = load_previous(directory, "linux-64", map_path=map_path)
    assert loaded is not None and set(loaded.records) == set(second) and reads == ["whole"]
