"""Upstream repodata parsed from a body spilled out of the heap (sitegen.store.spill): the same
records as from its bytes, every record holding a secret still found, and the pages read
dropped from memory as the records are built."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest

from sitegen.conda.record_secrets import SecretSearch
from sitegen.conda.records import RepodataError, parse_repodata
from sitegen.store.spill import spill
from testkit.records import raw_record

pytestmark = pytest.mark.unit

SECRET = "s3cr3t-t0ken-value"


def _document(count: int, **extra: object) -> bytes:
    packages = {
        f"pkg{i}-1.0-h{i}_0.conda": raw_record(f"pkg{i}", build=f"h{i}_0", depends=[f"dep{i % 7}"])
        for i in range(count)
    }
    packages["bad-1.0-0.conda"] = {"name": "bad"}  # refused: the same reason either way
    return msgspec.json.encode(
        {"info": {"subdir": "linux-64"}, "packages.conda": packages, **extra}
    )


def _resident_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_spilled_body_parses_to_the_records_of_its_bytes(tmp_path: Path) -> None:
    data = _document(20_000)  # past the batches after which pages are dropped
    expected = parse_repodata(data, "linux-64", "m")
    spilled = spill(tmp_path, data)
    assert spilled is not None
    released = []

    def release() -> None:
        released.append(True)
        spilled.release()

    got = parse_repodata(spilled.data, "linux-64", "m", release=release)
    spilled.close()  # every view of the map is gone with the parse
    assert {fn: r.raw for fn, r in got.records.items()} == {
        fn: r.raw for fn, r in expected.records.items()
    }
    assert got.rejected == expected.rejected and "bad-1.0-0.conda" in got.rejected
    assert len(released) > 1  # after the first read of the whole, and as records are built
    assert os.listdir(tmp_path) == []  # the file has no name: nothing is left


def test_a_record_holding_a_secret_is_found_in_a_spilled_body(tmp_path: Path) -> None:
    """The search that decides whether any record needs a closer look reads the map as it
    reads bytes: a substring test on a map would look for single bytes only."""
    data = _document(50)
    leaky = raw_record("leaky", summary=f"see https://u:{SECRET}@example.org/")
    document = msgspec.json.decode(data)
    document["packages.conda"]["leaky-1.0-0.conda"] = leaky
    data = msgspec.json.encode(document)
    spilled = spill(tmp_path, data)
    assert spilled is not None
    secrets = SecretSearch([SECRET])
    assert secrets.may_spell(spilled.data)
    got = parse_repodata(spilled.data, "linux-64", "m", secrets, release=spilled.release)
    spilled.close()
    assert "leaky-1.0-0.conda" in got.rejected
    assert "leaky-1.0-0.conda" not in got.records


def test_release_drops_the_pages_read_from_memory(tmp_path: Path) -> None:
    data = b"x" * (64 << 20)
    spilled = spill(tmp_path, data)
    assert spilled is not None
    del data
    before = _resident_kb()
    assert spilled.data.find(b"y") == -1  # reads every page
    read = _resident_kb()
    spilled.release()
    after = _resident_kb()
    spilled.close()
    assert read - before > 32 << 10
    assert read - after > 32 << 10


def test_a_parse_that_fails_reports_its_own_error_once_the_map_is_closed(tmp_path: Path) -> None:
    """The failed parse's traceback still holds views of the map (the records not yet
    decoded): closing it must not raise over the parse's error."""
    data = msgspec.json.encode(
        {"packages.conda": {"a-1.0-0.conda": raw_record("a")}, "packages": 5}
    )
    spilled = spill(tmp_path, data)
    assert spilled is not None
    with pytest.raises(RepodataError, match="'packages' is not an object"):
        try:
            parse_repodata(spilled.data, "linux-64", release=spilled.release)
        finally:
            spilled.close()


def test_nothing_to_spill_or_nowhere_to_spill_it_is_read_from_the_heap(tmp_path: Path) -> None:
    assert spill(tmp_path, b"") is None
    (tmp_path / "file").write_bytes(b"")
    assert spill(tmp_path / "file" / "below", b"{}") is None


def test_without_unnamed_files_the_body_is_spilled_to_a_file_unnamed_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(os, "O_TMPFILE")  # as on a filesystem without it
    data = _document(100)
    spilled = spill(tmp_path, data)
    assert spilled is not None
    assert os.listdir(tmp_path) == []
    got = parse_repodata(spilled.data, "linux-64", release=spilled.release)
    spilled.close()
    assert len(got.records) == 100
