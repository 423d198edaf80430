"""Sharded repodata (CEP-16): records built by hand whose checksums differ from record to
record (a shard holds them in binary), and of a mirrored site, the subdirs it publishes and
the check that every shard says exactly what ``repodata.json`` says."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from sitegen.conda.records import Record
from sitegen.conda.shards import SHARD_INDEX, SHARDS_DIR, decode_index, decode_shard
from testkit.site import read_repodata

SUBDIRS = ("linux-64", "noarch")


def raw(name: str, version: str, build: str = "h0_0", **fields: Any) -> dict[str, Any]:
    """The linux-64 repodata entry of ``name-version-build``, its checksums and size derived
    from that name; ``fields`` set any other field (or override these)."""
    seed = f"{name}-{version}-{build}".encode()
    return {
        "name": name,
        "version": version,
        "build": build,
        "build_number": 0,
        "depends": [],
        "md5": hashlib.md5(seed).hexdigest(),
        "sha256": hashlib.sha256(seed).hexdigest(),
        "size": 100 + len(seed),
        "subdir": "linux-64",
        **fields,
    }


def records(*raws: dict[str, Any], suffix: str = ".conda") -> dict[str, Record]:
    """The linux-64 records of ``raws`` by filename, each a ``suffix`` file."""
    out = {}
    for r in raws:
        fn = f"{r['name']}-{r['version']}-{r['build']}{suffix}"
        out[fn] = Record(fn=fn, subdir="linux-64", raw=r)
    return out


def shard_names(directory: Path) -> set[str]:
    """The names of the files in the shards folder of the subdir ``directory``."""
    return {p.name for p in (directory / SHARDS_DIR).iterdir()}


def assert_shards_match_repodata(directory: Path) -> None:
    """Every name of repodata.json has a shard in the index holding exactly its records."""
    repodata = read_repodata(directory)
    by_name: dict[str, dict[str, dict[str, Any]]] = {}
    for key in ("packages", "packages.conda"):
        for fn, record in repodata[key].items():
            by_name.setdefault(record["name"], {"packages": {}, "packages.conda": {}})
            by_name[record["name"]][key][fn] = record
    index = decode_index((directory / SHARD_INDEX).read_bytes())
    assert index.subdir == directory.name
    assert set(index.shards) == set(by_name)
    for name, digest in index.shards.items():
        data = (directory / SHARDS_DIR / f"{digest.hex()}.msgpack.zst").read_bytes()
        assert hashlib.sha256(data).digest() == digest
        assert decode_shard(data) == by_name[name], name
