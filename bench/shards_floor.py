"""``python -m bench.shards_floor REPODATA OUT_DIR REPORT.json``: the floor of publishing shards.

The least any mirror must do to publish the CEP-16 shards of an upstream ``repodata.json``,
with none of sitegen's pipeline: read the file, decode it (msgspec, into plain dicts), group
the records by name (``md5`` and ``sha256`` turned into raw bytes on the way), encode each
name's shard (msgpack: ``packages`` and ``packages.conda``), compress it with the zstd level
and frame options sitegen uses, write it under its sha256 name, put the shards on disk, then
write the index. The shards workload runs it as its own process, measured as sitegen's run is.

It then reads one shard and the index back with sitegen's readers, which check what rattler
and conda check (a frame that states its size, raw checksums, 32-byte hashes), and asserts
that they hold what was written: a floor whose output no client could read would time less
work than a mirror must do. The stage times and the process's peak RSS after each stage go to
``REPORT.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from bench.meta_phases import Timeline
from sitegen.conda.schema import PACKAGES, PACKAGES_CONDA
from sitegen.conda.shards import (
    CHECKSUM_FIELDS,
    INDEX_VERSION,
    SHARD_INDEX,
    SHARD_SUFFIX,
    SHARDS_BASE_URL,
    SHARDS_DIR,
    decode_index,
    decode_shard,
    decompress,
    shard_compressor,
)

# name -> (its .tar.bz2 records, its .conda records), each fn -> record as a shard holds it
Groups = dict[str, tuple[dict[str, Any], dict[str, Any]]]


def group(document: dict[str, Any]) -> Groups:
    """Records by name, in place: the decoded dicts are reused, their checksums made bytes."""
    groups: Groups = {}
    for slot, key in enumerate((PACKAGES, PACKAGES_CONDA)):
        for fn, record in document.get(key, {}).items():
            for field in CHECKSUM_FIELDS:
                value = record.get(field)
                if isinstance(value, str):
                    record[field] = bytes.fromhex(value)
            name = record["name"]
            sections = groups.get(name)
            if sections is None:
                sections = groups[name] = ({}, {})
            sections[slot][fn] = record
    return groups


def write_shards(groups: Groups, folder: Path) -> dict[str, bytes]:
    """Every name's shard written under its sha256; name -> that sha256."""
    folder.mkdir(parents=True)
    # Maps in the order upstream listed them, not sorted: the same upstream gives the same
    # bytes, which is all a content-addressed shard needs, and sorting is work a floor skips.
    encode = msgspec.msgpack.Encoder().encode
    compress = shard_compressor().compress
    digests: dict[str, bytes] = {}
    for name, (packages, packages_conda) in groups.items():
        data = compress(encode({PACKAGES: packages, PACKAGES_CONDA: packages_conda}))
        digest = hashlib.sha256(data).digest()
        fd = os.open(folder / f"{digest.hex()}{SHARD_SUFFIX}", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        digests[name] = digest
    # On disk before the index names them, as any mirror that survives a power cut must.
    os.sync()
    return digests


def write_index(subdir: str, digests: dict[str, bytes], target: Path) -> None:
    document = {
        "version": INDEX_VERSION,
        "info": {
            "base_url": "",
            "shards_base_url": SHARDS_BASE_URL,
            "subdir": subdir,
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "shards": digests,
    }
    target.write_bytes(shard_compressor().compress(msgspec.msgpack.encode(document)))


def check(out: Path, subdir: str, groups: Groups, digests: dict[str, bytes]) -> str:
    """Read the index and the largest shard back as a client would; the name checked."""
    index = decode_index((out / SHARD_INDEX).read_bytes())
    assert index.subdir == subdir, index.subdir
    assert index.shards == digests, "the index does not list the shards written"
    on_disk = set(os.listdir(out / SHARDS_DIR))
    assert on_disk == {f"{d.hex()}{SHARD_SUFFIX}" for d in digests.values()}, "shard files"
    name = max(groups, key=lambda n: len(groups[n][0]) + len(groups[n][1]))
    data = (out / SHARDS_DIR / f"{digests[name].hex()}{SHARD_SUFFIX}").read_bytes()
    assert hashlib.sha256(data).digest() == digests[name], "a shard not named by its sha256"
    sections = decode_shard(data)  # the reader's checks: frame size, a packages map
    packages, packages_conda = groups[name]
    assert sections[PACKAGES].keys() == packages.keys(), "packages differ"
    assert sections[PACKAGES_CONDA].keys() == packages_conda.keys(), "packages.conda differ"
    raw = msgspec.msgpack.decode(decompress(data))
    assert raw == {PACKAGES: packages, PACKAGES_CONDA: packages_conda}, "records changed"
    for record in (*raw[PACKAGES].values(), *raw[PACKAGES_CONDA].values()):
        assert len(record["md5"]) == 16 and len(record["sha256"]) == 32, "checksums not raw"
    return name


def main() -> int:
    source, out_dir, report = sys.argv[1:4]
    out = Path(out_dir)
    line = Timeline()
    data = line.stage("read", Path(source).read_bytes)
    document = line.stage("decode", msgspec.json.decode, data)
    del data
    subdir = document.get("info", {}).get("subdir", "")
    groups = line.stage("group", group, document)
    del document
    digests = line.stage("shards", write_shards, groups, out / SHARDS_DIR)
    line.stage("index", write_index, subdir, digests, out / SHARD_INDEX)
    checked = line.stage("read back", check, out, subdir, groups, digests)
    records = sum(len(a) + len(b) for a, b in groups.values())
    summary = {"stages": line.stages, "shards": len(digests), "records": records}
    Path(report).write_text(json.dumps({**summary, "checked": checked}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
