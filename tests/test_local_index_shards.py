"""The CEP-16 shards of a local source beside those rattler's indexer writes for the same
package files: the same index, the same names, the same records field by field (checksums in
binary on both sides), but for the differences README's Local sources names."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest
import zstandard

from sitegen.conda.shards import SHARD_INDEX, SHARDS_DIR
from testkit.local import (
    CHANNEL,
    SPECS,
    drop_all,
    index_of,
    info_members,
    local_config,
    run,
    write_conda,
)
from testkit.rattler_index import assert_record_as_rattlers, rattler_indexed
from testkit.shards import SUBDIRS, assert_shards_match_repodata

pytestmark = pytest.mark.integration

# RFC 3339 in UTC: sitegen writes whole seconds, rattler nanoseconds.
CREATED_AT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def plain(data: bytes) -> Any:
    """The msgpack document of one zstd frame as written (checksums as msgpack holds them),
    read whether or not the frame carries its content size (rattler's do not)."""
    return msgspec.msgpack.decode(zstandard.ZstdDecompressor().decompressobj().decompress(data))


def assert_sized(data: bytes) -> None:
    """The frame carries its content size: a reader that decompresses without a bound of its
    own (``zstandard.decompress``) needs it."""
    size = zstandard.frame_content_size(data)
    assert size == len(zstandard.ZstdDecompressor().decompressobj().decompress(data))


def test_shards_equal_rattlers_indexer_field_by_field(tmp_path: Path) -> None:
    folder = tmp_path / "incoming"
    drop_all(folder, SPECS, by_subdir=True)
    # A null license and a run_exports.json: fields one side keeps and the other drops.
    run_exports = ("info/run_exports.json", json.dumps({"weak": ["rex >=1.0"]}).encode())
    members = [*info_members(index_of("rex", license=None)), run_exports]
    write_conda(folder / "linux-64" / "rex-1.0-0.conda", members)
    site = tmp_path / "site"
    assert not run(local_config(site, folder)).failed
    copy = rattler_indexed(folder, tmp_path / "rattler-copy", shards=True)
    for subdir in SUBDIRS:
        ours_dir, theirs_dir = site / CHANNEL / subdir, copy / subdir
        assert_shards_match_repodata(ours_dir)
        ours_data = (ours_dir / SHARD_INDEX).read_bytes()
        assert_sized(ours_data)
        ours, theirs = plain(ours_data), plain((theirs_dir / SHARD_INDEX).read_bytes())
        # CEP-16's index carries "version": 1; rattler's leaves it out.
        assert ours["version"] == theirs.get("version", 1) == 1
        assert set(ours) == set(theirs) | {"version"} == {"version", "info", "shards"}
        assert set(ours["info"]) == set(theirs["info"])
        for key in ("subdir", "base_url", "shards_base_url"):
            assert ours["info"][key] == theirs["info"][key], (subdir, key)
        assert CREATED_AT.fullmatch(ours["info"]["created_at"])
        assert CREATED_AT.fullmatch(theirs["info"]["created_at"])
        assert set(ours["shards"]) == set(theirs["shards"]) and ours["shards"]
        for name, digest in ours["shards"].items():
            reference = theirs["shards"][name]
            assert isinstance(digest, bytes) and isinstance(reference, bytes), name
            assert len(digest) == len(reference) == 32, name
            ours_data = (ours_dir / SHARDS_DIR / f"{digest.hex()}.msgpack.zst").read_bytes()
            assert_sized(ours_data)
            shard = plain(ours_data)
            expected = plain(
                (theirs_dir / SHARDS_DIR / f"{reference.hex()}.msgpack.zst").read_bytes()
            )
            # rattler writes an empty list of removed files; sitegen leaves the key out.
            assert expected.pop("removed", []) == [], name
            assert set(shard) == set(expected) == {"packages", "packages.conda"}, name
            for section, records in shard.items():
                assert set(records) == set(expected[section]), (name, section)
                for fn, record in records.items():
                    assert_record_as_rattlers(fn, record, expected[section][fn])
