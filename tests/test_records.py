"""Record parsing: the full checks for upstream input, the light load for sitegen's own output."""

from __future__ import annotations

import msgspec
import pytest

from sitegen.conda import encode as encode_module
from sitegen.conda.encode import PIECE_RECORDS, PieceMap, encode_repodata, repodata_pieces
from sitegen.conda.published_repodata import load_published, load_published_parts
from sitegen.conda.record_check import (
    REASON_BAD_FIELDS,
    REASON_BAD_FILENAME,
    REASON_NAME_MISMATCH,
    REASON_NO_CHECKSUM,
    check_record,
)
from sitegen.conda.records import Record, RepodataError, parse_repodata

pytestmark = pytest.mark.unit

SHA = "a" * 64


def record(**overrides):
    base = {
        "name": "foo",
        "version": "1.0",
        "build": "h0_0",
        "build_number": 0,
        "depends": ["python >=3.8"],
        "size": 10,
        "sha256": SHA,
        "subdir": "linux-64",
    }
    return {**base, **overrides}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (record(), None),
        (record(depends=None), REASON_BAD_FIELDS),
        (record(depends=["ok", 3]), REASON_BAD_FIELDS),
        (record(depends=[]), None),
        (record(build_number="1"), REASON_BAD_FIELDS),
        # Required: conda and rattler refuse a record without one, and mamba reads it as 0
        # from a shard but drops it from repodata.json. Of another type: rattler refuses it.
        ({k: v for k, v in record().items() if k != "build_number"}, REASON_BAD_FIELDS),
        (record(build_number=None), REASON_BAD_FIELDS),
        (record(build_number=True), REASON_BAD_FIELDS),
        (record(build_number=1.0), REASON_BAD_FIELDS),
        # Non-negative and 64-bit, as rattler reads it: it refuses the record otherwise.
        (record(build_number=-1), REASON_BAD_FIELDS),
        (record(build_number=1 << 64), REASON_BAD_FIELDS),
        (record(build_number=(1 << 64) - 1), None),
        (record(version="2.0"), REASON_NAME_MISMATCH),
        # Old channels' records carry md5 only: sound. Neither checksum: not.
        (record(sha256=None, md5="b" * 32), None),
        (record(sha256=None), REASON_NO_CHECKSUM),
        # A line end after the hex digits: no client parses it (rattler refuses the record).
        (record(sha256=SHA + "\n"), REASON_NO_CHECKSUM),
        (record(sha256=None, md5="b" * 32 + "\n"), REASON_NO_CHECKSUM),
        # Of the right length, but blanks between the digits, or a letter past f, or digits
        # of another script: not hex digits.
        (record(sha256=SHA[:31] + " " + SHA[32:] + " "), REASON_NO_CHECKSUM),
        (record(sha256=SHA[:62] + " \t"), REASON_NO_CHECKSUM),
        (record(sha256=SHA[:63] + "g"), REASON_NO_CHECKSUM),
        (record(sha256=SHA[:63] + "\u0663"), REASON_NO_CHECKSUM),
        (record(sha256=SHA.upper()), None),
        (record(sha256=None, md5="b" * 30 + "\u00a0b"), REASON_NO_CHECKSUM),
        # Optional fields of a type no client reads: rattler fails every solve asking for the
        # package's name over one such record, and conda's record model refuses it.
        (record(constrains="abc"), REASON_BAD_FIELDS),
        (record(constrains=["ok", None]), REASON_BAD_FIELDS),
        (record(timestamp="1700000000000"), REASON_BAD_FIELDS),
        (record(timestamp=True), REASON_BAD_FIELDS),
        (record(noarch=[1]), REASON_BAD_FIELDS),
        (record(noarch="perl"), REASON_BAD_FIELDS),
        (record(noarch=1), REASON_BAD_FIELDS),
        (record(platform={"os": "linux"}), REASON_BAD_FIELDS),
        (record(arch=64), REASON_BAD_FIELDS),
        (record(features=["mkl"]), REASON_BAD_FIELDS),
        (record(track_features=7), REASON_BAD_FIELDS),
        (record(track_features=["mkl", 1]), REASON_BAD_FIELDS),
        # ... and what they are in real channels, or were: all read.
        (record(constrains=[], timestamp=1700000000000, noarch="python"), None),
        (record(timestamp=1517521155, noarch="generic", license=None, license_family=None), None),
        (record(noarch=True, platform=None, arch=None, features="", track_features=""), None),
        (record(noarch=False, platform="linux", arch="x86_64", track_features=["mkl"]), None),
        (record(timestamp=None, noarch=None), None),
    ],
)
def test_check_record(raw, reason) -> None:
    assert check_record("foo-1.0-h0_0.conda", raw, "packages.conda", "linux-64") == reason


@pytest.mark.parametrize(
    ("fn", "key", "reason"),
    [
        ("foo-1.0-h0_0.tar.bz2", "packages", None),
        # Each section holds its own format only.
        ("foo-1.0-h0_0.tar.bz2", "packages.conda", REASON_BAD_FILENAME),
        ("foo-1.0-h0_0.conda", "packages", REASON_BAD_FILENAME),
        # The whole name is name-version-build: nothing may follow the build.
        ("foo-1.0-h0_0_1.conda", "packages.conda", REASON_NAME_MISMATCH),
        ("foo-1.0-h0_0.conda.conda", "packages.conda", REASON_NAME_MISMATCH),
    ],
)
def test_check_record_file_name_and_section(fn: str, key: str, reason: str | None) -> None:
    assert check_record(fn, record(), key, "linux-64") == reason


def test_removed_is_not_kept_twice() -> None:
    document = {"packages.conda": {}, "removed": ["old-1.0-0.conda"], "x_vendor": 1}
    parsed = parse_repodata(msgspec.json.encode(document), "linux-64")
    assert parsed.removed == ["old-1.0-0.conda"]
    assert parsed.extra == {"x_vendor": 1}


def _file(**overrides: object) -> Record:
    raw = record(**overrides)
    return Record(
        fn="foo-1.0-h0_0.conda",
        subdir="linux-64",
        raw={k: v for k, v in raw.items() if v is not None},
    )


def test_same_file_compares_size_then_sha256_else_md5_ignoring_case() -> None:
    """same_file decides whether a re-upload is staged, a conflict is reported and a file on
    disk is trusted: sha256 when both have one, md5 otherwise, never a guess."""
    md5 = "b" * 32
    assert _file().same_file(_file())
    assert not _file().same_file(_file(size=11))  # same checksum, other bytes
    assert _file().same_file(_file(sha256=SHA.upper()))
    # sha256 decides where both have one, whatever md5 says.
    assert not _file(md5=md5).same_file(_file(sha256="c" * 64, md5=md5))
    # md5 where one side lacks sha256, and both must have it.
    assert _file(md5=md5).same_file(_file(sha256=None, md5=md5.upper()))
    assert not _file(md5=md5).same_file(_file(sha256=None, md5="d" * 32))
    assert not _file(sha256=None).same_file(_file(sha256=None))  # nothing to compare


def test_load_published_reads_back_what_encode_writes() -> None:
    upstream = {
        "info": {"subdir": "linux-64"},
        "packages": {"foo-1.0-h0_0.tar.bz2": record()},
        "packages.conda": {"foo-1.0-h0_0.conda": record()},
        "removed": ["gone-1.0-0.tar.bz2"],
        "repodata_version": 1,
        "x-unknown": {"kept": True},
    }
    parsed = parse_repodata(msgspec.json.encode(upstream), "linux-64")
    body = encode_repodata("linux-64", parsed.info, parsed.records, parsed.removed, parsed.extra)
    loaded = load_published(body, "linux-64")
    assert set(loaded.records) == set(parsed.records)
    assert all(loaded.records[fn].raw == parsed.records[fn].raw for fn in parsed.records)
    assert loaded.removed == ["gone-1.0-0.tar.bz2"]
    assert loaded.extra == {"repodata_version": 1, "x-unknown": {"kept": True}}
    assert (
        encode_repodata("linux-64", loaded.info, loaded.records, loaded.removed, loaded.extra)
        == body
    )


@pytest.mark.parametrize("body", [b"{", b"[]", b'{"packages": []}', b"\xff"])
def test_load_published_rejects_what_sitegen_never_writes(body: bytes) -> None:
    with pytest.raises(RepodataError):
        load_published(body, "linux-64")


def test_a_published_record_offered_again_unchanged_is_read_as_its_twin() -> None:
    """The previous publication holds no second copy of what a run publishes again."""
    # Names longer than the strings msgspec caches as it decodes keys: each decode its own string.
    long = "-with-a-name-longer-than-msgspec-caches"
    fns = [f"{n}{long}-1.0-h0_0.conda" for n in ("same", "stamped", "changed")]
    published = {
        fns[0]: record(name="same" + long),
        fns[1]: {**record(name="stamped" + long), "indexed_timestamp": 1700000000000},
        fns[2]: {**record(name="changed" + long), "indexed_timestamp": 1700000000000},
    }
    body = msgspec.json.encode({"info": {"subdir": "linux-64"}, "packages.conda": published})
    offered = parse_repodata(
        msgspec.json.encode(
            {
                "packages.conda": {
                    fns[0]: record(name="same" + long),
                    fns[1]: record(name="stamped" + long),
                    fns[2]: record(name="changed" + long, depends=["python >=3.9"]),
                }
            }
        ),
        "linux-64",
    ).records
    previous = load_published(body, "linux-64", offered)
    loaded = previous.records
    assert loaded[fns[0]] is offered[fns[0]]
    # Stamped when published: read as its (unstamped) twin, the stamp kept aside.
    assert loaded[fns[1]] is offered[fns[1]]
    assert "indexed_timestamp" not in offered[fns[1]].raw
    # (the first was published before stamping existed: 0, so its stamp counts as new)
    assert previous.stamps == {fns[0]: 0, fns[1]: 1700000000000}
    # Under the twin's own file name, not a second string of it decoded from the file.
    twins = [fn for fn in loaded if loaded[fn] is offered[fn]]
    assert twins == fns[:2] and all(fn is loaded[fn].fn for fn in twins)
    assert all(fn is offered[fn].fn for fn in previous.stamps)
    # Changed: read on its own, as published, stamp and all; its twin untouched.
    assert loaded[fns[2]] is not offered[fns[2]]
    assert loaded[fns[2]].raw == published[fns[2]]
    assert "indexed_timestamp" not in offered[fns[2]].raw
    # Without twins: every record as published.
    alone = load_published(body, "linux-64")
    assert {fn: r.raw for fn, r in alone.records.items()} == published
    assert alone.stamps == {}


def test_published_repodata_read_a_part_at_a_time_is_read_as_a_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The parts repodata_pieces says it wrote, read one by one, give what reading the whole
    file gives: the same records (twins shared), stamps, info, removed and other keys."""
    monkeypatch.setattr(encode_module, "PIECE_RECORDS", 3)
    records = {}
    for i in range(11):
        for suffix in (".conda", ".tar.bz2"):
            raw = record(name=f"p{i}", version=f"1.{i}")
            if i % 4 == 2:
                raw["indexed_timestamp"] = 1700000000000 + i
            fn = f"p{i}-1.{i}-h0_0{suffix}"
            records[fn] = Record(fn=fn, subdir="linux-64", raw=raw)
    info, extra = {"base_url": "x/"}, {"repodata_version": 2, "other": {"a": [1]}}
    where = PieceMap()
    body = b"".join(repodata_pieces("linux-64", info, records, ["gone.conda"], extra, where))
    assert sum(len(ranges) for ranges in where.sections.values()) == 8  # 11 records a section
    offered = parse_repodata(
        msgspec.json.encode(
            {
                "packages": {fn: record(name=f"p{i}", version=f"1.{i}")
                             for i in range(0, 11, 2) for fn in [f"p{i}-1.{i}-h0_0.tar.bz2"]},
                "packages.conda": {"p3-1.3-h0_0.conda": record(name="p3", version="1.3",
                                                               depends=["other"])},
            }
        ),
        "linux-64",
    ).records  # fmt: skip
    reads: list[tuple[int, int]] = []

    def read(start: int, end: int) -> bytes:
        reads.append((start, end))
        return body[start:end]

    whole = load_published(body, "linux-64", offered)
    parts = load_published_parts(read, where, "linux-64", offered)
    assert len(reads) == 10 and max(end - start for start, end in reads) < len(body) / 4
    assert list(parts.records) == list(whole.records) and len(parts.records) == 22
    for fn, got in parts.records.items():
        assert got.raw == whole.records[fn].raw
        assert (got is offered.get(fn)) == (whole.records[fn] is offered.get(fn))
    assert sum(r is offered.get(fn) for fn, r in parts.records.items()) == 6
    assert parts.stamps == whole.stamps and parts.stamps["p2-1.2-h0_0.tar.bz2"] > 0
    assert (parts.info, parts.removed, parts.extra) == (whole.info, whole.removed, whole.extra)
    assert parts.extra == extra and parts.removed == ["gone.conda"]
    # Ranges that are not where the parts are: refused, never read as something else.
    shifted = PieceMap(where.head, {k: [(s + 1, e) for s, e in v] for k, v in where.sections.items()},
                       where.tail)  # fmt: skip
    with pytest.raises(RepodataError):
        load_published_parts(read, shifted, "linux-64")


def test_a_twin_is_told_apart_exactly_as_its_fields_compare() -> None:
    """Read on the bytes: the same fields, values, types and order make a twin, nothing less."""
    upstream_stamped = {**record(name="up"), "indexed_timestamp": 1600000000000}
    offered_raw = {
        "up-1.0-h0_0.conda": upstream_stamped,
        "typed-1.0-h0_0.conda": record(name="typed", build_number=0),
        "moved-1.0-h0_0.conda": record(name="moved"),
        "spaced-1.0-h0_0.conda": record(name="spaced"),
        "odd-1.0-h0_0.conda": record(name="odd"),
    }
    offered = parse_repodata(
        msgspec.json.encode({"packages.conda": offered_raw}), "linux-64"
    ).records
    moved = dict(reversed(list(record(name="moved").items())))
    spaced = msgspec.json.encode(record(name="spaced"))[:-1] + b', "indexed_timestamp" : 7}'
    published = (
        b'{"info":{},"packages.conda":{'
        + b'"up-1.0-h0_0.conda":'
        + msgspec.json.encode(upstream_stamped)
        + b',"typed-1.0-h0_0.conda":'
        + msgspec.json.encode(record(name="typed", build_number=0.0))
        + b',"moved-1.0-h0_0.conda":'
        + msgspec.json.encode(moved)
        + b',"spaced-1.0-h0_0.conda":'
        + spaced
        + b',"odd-1.0-h0_0.conda":'
        + msgspec.json.encode({**record(name="odd"), "indexed_timestamp": "soon"})
        + b"}}"
    )
    previous = load_published(published, "linux-64", offered)
    twins = {fn for fn, r in previous.records.items() if r is offered[fn]}
    # Upstream's own stamp is part of the record: a twin, with no stamp of sitegen's.
    assert twins == {"up-1.0-h0_0.conda", "spaced-1.0-h0_0.conda", "odd-1.0-h0_0.conda"}
    assert previous.stamps == {"spaced-1.0-h0_0.conda": 7, "odd-1.0-h0_0.conda": "soon"}
    assert previous.records["typed-1.0-h0_0.conda"].raw["build_number"] == 0.0


def test_records_share_one_string_per_distinct_dependency_and_license() -> None:
    """At conda-forge scale dependency specs are most of the records' memory."""
    spec = "python >=3.10,<3.11.0a0"
    upstream = {
        "packages.conda": {
            f"foo-1.{i}-h0_0.conda": record(
                version=f"1.{i}", depends=[spec], license="BSD-3-Clause", constrains=[spec]
            )
            for i in range(2)
        }
        | {"foo-1.9-h0_0.conda": record(version="1.9", constrains="not a list")},
    }
    repodata = parse_repodata(msgspec.json.encode(upstream), "linux-64")
    a, b = (repodata.records[f"foo-1.{i}-h0_0.conda"].raw for i in (0, 1))
    assert a["depends"] == b["depends"] == [spec]
    assert a["depends"][0] is b["depends"][0] is a["constrains"][0]
    assert a["license"] is b["license"]
    # Constraints that are not a list of specs: no client reads the record.
    assert repodata.rejected == {"foo-1.9-h0_0.conda": REASON_BAD_FIELDS}


def test_repodata_in_pieces_is_the_document_encoded_whole() -> None:
    """Streamed repodata.json (publish writes it piece by piece) is byte for byte what one
    encode of the whole document gives, with sections spanning several pieces."""
    records = [
        Record(
            fn=f"p{i}-1-0{'.conda' if i % 3 else '.tar.bz2'}",
            subdir="linux-64",
            raw={"name": f"p{i}", "version": "1", "build": "0", "size": i + 1, "md5": "0" * 32},
        )
        for i in range(2 * PIECE_RECORDS + 5)
    ]
    info, extra = {"base": 1}, {"repodata_version": 1, "other": [1, 2]}
    pieces = list(repodata_pieces("linux-64", info, records, ["x.conda"], extra))
    assert len(pieces) > 6
    whole = msgspec.json.encode(
        {
            "info": {"base": 1, "subdir": "linux-64"},
            "packages": {
                r.fn: r.raw for r in sorted(records, key=lambda r: r.fn) if r.fn.endswith(".bz2")
            },
            "packages.conda": {
                r.fn: r.raw for r in sorted(records, key=lambda r: r.fn) if r.fn.endswith(".conda")
            },
            "removed": ["x.conda"],
            "repodata_version": 1,
            "other": [1, 2],
        }
    )
    assert b"".join(pieces) == whole
    assert encode_repodata("linux-64", info, records, ["x.conda"], extra) == whole
    empty = encode_repodata("noarch", {}, {}, [], {})
    assert msgspec.json.decode(empty) == {
        "info": {"subdir": "noarch"},
        "packages": {},
        "packages.conda": {},
        "removed": [],
        "repodata_version": 1,
    }
