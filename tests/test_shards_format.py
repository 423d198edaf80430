"""CEP-16 shards without a network: the format of shards and their index, what readers would
refuse, records no shard can hold, sections left out (CEP-48 v3), and how shards are built."""

from __future__ import annotations

import errno
import hashlib
from pathlib import Path
from typing import Any

import msgspec
import pytest
import zstandard

from sitegen.conda.record_check import REASON_UNMIRRORED_SECTION
from sitegen.conda.records import parse_repodata
from sitegen.conda.shards import (
    SHARD_INDEX,
    SHARDS_DIR,
    ShardError,
    build_shard,
    decode_index,
    decode_shard,
    digest_of_filename,
    encode_index,
    iter_shards,
    unshardable,
)
from sitegen.layout import metadata_files
from sitegen.store.site import Site
from sitegen.sync import inputs
from sitegen.sync.inputs import InputsDigest
from sitegen.sync.publish_shards import (
    write_shards,
)
from testkit.shards import raw, records
from testkit.site import site_config

pytestmark = pytest.mark.unit


# --------------------------------------------------------------------------- format


def test_a_shard_holds_each_record_with_binary_checksums_and_a_sized_frame() -> None:
    conda = records(raw("zlib", "1.3.1", license="Zlib — ©", timestamp=1700000000000))
    tar = records(raw("zlib", "1.2.13"), suffix=".tar.bz2")
    shard = build_shard("zlib", [*conda.values(), *tar.values()])

    assert shard.digest == hashlib.sha256(shard.data).digest()
    assert shard.filename == f"{shard.digest.hex()}.msgpack.zst"
    plain = zstandard.ZstdDecompressor().decompress(shard.data)
    # A reader that sizes its output from the frame header (as above) needs it there.
    assert zstandard.frame_content_size(shard.data) == len(plain)
    document = msgspec.msgpack.decode(plain)
    assert set(document) == {"packages", "packages.conda"}
    (packed,) = document["packages.conda"].values()
    assert isinstance(packed["sha256"], bytes) and len(packed["sha256"]) == 32
    assert isinstance(packed["md5"], bytes) and len(packed["md5"]) == 16
    decoded = decode_shard(shard.data)
    assert decoded["packages.conda"] == {fn: r.raw for fn, r in conda.items()}
    assert decoded["packages"] == {fn: r.raw for fn, r in tar.items()}


def test_a_shard_has_a_packages_map_even_with_conda_records_only() -> None:
    # rattler requires the "packages" key.
    shard = build_shard("zlib", records(raw("zlib", "1.3.1")).values())
    assert msgspec.msgpack.decode(zstandard.decompress(shard.data))["packages"] == {}


def test_shards_are_deterministic() -> None:
    first = raw("zlib", "1.3.1", license="Zlib", depends=["libc"])
    reordered = dict(reversed(list(first.items())))
    second = raw("zlib", "1.2.13")
    a = list(iter_shards(records(first, second)))
    b = list(iter_shards(records(second, reordered)))
    assert [(s.name, s.data) for s in a] == [(s.name, s.data) for s in b]


def test_one_shard_per_name_in_name_order() -> None:
    shards = list(iter_shards(records(raw("b", "1"), raw("a", "1"), raw("a", "2"))))
    assert [s.name for s in shards] == ["a", "b"]
    assert set(decode_shard(shards[0].data)["packages.conda"]) == {
        "a-1-h0_0.conda",
        "a-2-h0_0.conda",
    }


def test_the_index_names_each_shard_by_raw_sha256_with_a_relative_base() -> None:
    shards = {s.name: s.digest for s in iter_shards(records(raw("zlib", "1"), raw("nul", "1")))}
    data = encode_index("linux-64", shards, "2026-12-05T00:00:00Z")
    plain = zstandard.ZstdDecompressor().decompress(data)
    assert zstandard.frame_content_size(data) == len(plain)
    document = msgspec.msgpack.decode(plain)
    assert document["version"] == 1
    assert document["info"] == {
        "base_url": "",
        "shards_base_url": "./shards/",
        "subdir": "linux-64",
        "created_at": "2026-12-05T00:00:00Z",
    }
    # msgpack bin (0xc4, length 32), never an array of integers.
    assert all(isinstance(v, bytes) and len(v) == 32 for v in document["shards"].values())
    assert plain.count(b"\xc4\x20") >= 2
    assert decode_index(data).shards == shards
    assert encode_index("linux-64", shards, "2026-12-05T00:00:00Z") == data


def _index_document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "version": 1,
        "info": {"subdir": "linux-64", "base_url": "", "shards_base_url": "./shards/"},
        "shards": {"zlib": b"\x01" * 32},
    }
    document.update(changes)
    return document


def _sized(document: Any) -> bytes:
    return zstandard.ZstdCompressor(write_content_size=True).compress(
        msgspec.msgpack.encode(document)
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        # A reader that sizes its output from the frame header cannot read one without it.
        (
            zstandard.ZstdCompressor(write_content_size=False).compress(
                msgspec.msgpack.encode(_index_document())
            ),
            "content size",
        ),
        (_sized(_index_document(version=2)), "version 2"),
        (_sized(_index_document(shards={"zlib": b"\x01" * 31})), "not 32 bytes"),
    ],
)
def test_an_index_readers_would_refuse_is_refused(data: bytes, message: str) -> None:
    assert decode_index(_sized(_index_document())).shards == {"zlib": b"\x01" * 32}
    with pytest.raises(ShardError, match=message):
        decode_index(data)


def test_a_shard_without_a_packages_map_is_refused() -> None:
    # rattler requires the "packages" key, even when every record is a .conda.
    assert decode_shard(_sized({"packages": {}, "packages.conda": {}})) == {
        "packages": {},
        "packages.conda": {},
    }
    with pytest.raises(ShardError, match="'packages'"):
        decode_shard(_sized({"packages.conda": {}}))
    unsized = zstandard.ZstdCompressor(write_content_size=False)
    with pytest.raises(ShardError, match="content size"):
        decode_shard(unsized.compress(msgspec.msgpack.encode({"packages": {}})))


def test_unshardable_names_every_record_beyond_64_bits_and_no_other() -> None:
    """Integers a shard cannot carry, top-level or nested, in any batch of the check; integers
    at the edges of the 64-bit ranges (msgpack's int64 and uint64) fit."""
    many = [raw(f"p{i}", "1", x=i) for i in range(10_000)]
    many[0]["x"] = 2**64
    many[5_000]["extra"] = {"deep": [-(2**63) - 1]}
    many[9_999]["x"] = 10**30
    many[1]["x"], many[2]["x"] = 2**64 - 1, -(2**63)
    found = unshardable(list(records(*many).values()))
    assert [r.raw["name"] for r in found] == ["p0", "p5000", "p9999"]
    assert unshardable(list(records(*many[1:5_000]).values())) == []


@pytest.mark.parametrize(
    "name",
    [
        "a" * 64,  # no suffix
        "a" * 63 + ".msgpack.zst",
        "a" * 65 + ".msgpack.zst",
        "g" * 64 + ".msgpack.zst",  # not hex
        "A" * 64 + ".msgpack.zst",  # shard names are lower-case hex
        "repodata_shards.msgpack.zst",
    ],
)
def test_only_a_sha256_shard_name_stands_for_a_digest(name: str) -> None:
    # Pruning deletes only files named so: anything else in the directory is left alone.
    assert digest_of_filename(name) is None
    assert digest_of_filename("0f" * 32 + ".msgpack.zst") == bytes.fromhex("0f" * 32)


# --------------------------------------------------------------------------- CEP-48 v3


def test_v3_and_other_sections_listing_packages_are_dropped_with_a_reason() -> None:
    record = raw("example", "3.0.0", build="0")
    document = {
        "info": {
            "subdir": "linux-64",
            "repodata_revisions": {"v3": {"n_packages": 1}},
            "x_vendor": "kept",
        },
        "packages": {},
        "packages.conda": {"example-1.0-h0_0.conda": raw("example", "1.0")},
        "v3": {"conda": {"example-3.0.0-0": record}, "tar.bz2": {}},
        "v4": {},
        "packages.whl": {"example-3.0.0-py3-none-any.whl": record},
        "x_future_key": {"shards": False, "list": [1, 2], "nested": {"name": "not a record"}},
        "repodata_version": 1,
    }
    parsed = parse_repodata(msgspec.json.encode(document), "linux-64")
    assert set(parsed.records) == {"example-1.0-h0_0.conda"}
    assert parsed.extra == {"x_future_key": document["x_future_key"], "repodata_version": 1}
    assert parsed.rejected == {
        "[v3]": REASON_UNMIRRORED_SECTION,
        "[v4]": REASON_UNMIRRORED_SECTION,
        "[packages.whl]": REASON_UNMIRRORED_SECTION,
    }
    # No revision is published, so none is announced.
    assert parsed.info == {"subdir": "linux-64", "x_vendor": "kept"}


def test_a_revision_section_is_dropped_even_empty_and_a_v3_shape_under_any_key() -> None:
    record = raw("example", "3.0.0", build="0")
    document = {
        "packages.conda": {},
        "v3": {"conda": {}, "tar.bz2": {}},  # no records yet: still a revision, not published
        "v2": {"note": "not a revision"},  # revisions start at v3 (CEP-48)
        "x_next": {"whl": {"example-3.0.0-py3-none-any": record}},  # v3's shape, another key
    }
    parsed = parse_repodata(msgspec.json.encode(document), "linux-64")
    assert parsed.rejected == {
        "[v3]": REASON_UNMIRRORED_SECTION,
        "[x_next]": REASON_UNMIRRORED_SECTION,
    }
    assert parsed.extra == {"v2": {"note": "not a revision"}}


def test_a_section_listing_packages_as_a_list_is_dropped_too() -> None:
    """Records in a list rather than keyed by file name are listed packages all the same:
    none of them was filtered or downloaded."""
    record = raw("example", "3.0.0", build="0")
    document = {
        "packages.conda": {"example-1.0-h0_0.conda": raw("example", "1.0")},
        "packages.whl": [{"fn": "example-3.0.0-py3-none-any.whl", **record}],
        "x_channels": {"next": [record]},  # a map of such lists
        "x_list": [1, {"name": "not a record"}],
    }
    parsed = parse_repodata(msgspec.json.encode(document), "linux-64")
    assert set(parsed.records) == {"example-1.0-h0_0.conda"}
    assert parsed.rejected == {
        "[packages.whl]": REASON_UNMIRRORED_SECTION,
        "[x_channels]": REASON_UNMIRRORED_SECTION,
    }
    assert parsed.extra == {"x_list": [1, {"name": "not a record"}]}


def test_a_site_built_before_shards_existed_is_rebuilt_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The inputs of a run include what it publishes: a site whose last run wrote no shard
    index is not taken as up to date by an unchanged upstream."""
    body = "channels:\n  c: {url: 'https://example.org/c', subdirs: [noarch]}\n"
    config = site_config(tmp_path, body)
    now = InputsDigest(config, list(config.channels)).hexdigest()

    def before_shards(bz2: bool) -> tuple[str, ...]:
        return tuple(n for n in metadata_files(bz2) if n != SHARD_INDEX)

    monkeypatch.setattr(inputs, "metadata_files", before_shards)
    assert InputsDigest(config, list(config.channels)).hexdigest() != now


def test_a_failed_shard_write_stops_the_building_and_is_raised_as_itself(
    tmp_path: Path,
) -> None:
    class FullDisk(Site):
        calls = 0

        def write_addressed(self, folder: Path, name: str, data: bytes) -> bool:
            FullDisk.calls += 1
            if FullDisk.calls >= 3:
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().write_addressed(folder, name, data)

    site = FullDisk(tmp_path)
    many = records(*(raw(f"pkg{i:04}", "1") for i in range(2000)))
    with pytest.raises(OSError, match="No space"):
        write_shards(site, tmp_path / "linux-64", many)
    # The building stopped at the write that failed.
    assert FullDisk.calls == 3
    assert len(list((tmp_path / "linux-64" / SHARDS_DIR).iterdir())) == 2


def test_every_shard_is_written_whole(tmp_path: Path) -> None:
    many = records(*(raw(f"pkg{i:04}", str(i % 7)) for i in range(1500)))
    result = write_shards(Site(tmp_path), tmp_path / "linux-64", many)
    assert result.written == len(result.shards) == 1500
    for name, digest in result.shards.items():
        data = (tmp_path / "linux-64" / SHARDS_DIR / f"{digest.hex()}.msgpack.zst").read_bytes()
        assert hashlib.sha256(data).digest() == digest, name
