"""rattler's indexer (py-rattler's ``index_fs``) run on the packages of a local source, and
the rule by which a sitegen record equals the record it writes (see README, Local sources)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

# Fields rattler's indexer writes that sitegen leaves out on purpose.
RATTLER_ONLY = frozenset({"indexed_timestamp", "arch", "platform", "run_exports"})
# Fields sitegen keeps as index.json has them where rattler drops them: empty or null only.
OURS_ONLY = frozenset({"constrains", "features", "depends", "license"})


def read_index_json(path: Path) -> bytes:
    from conda_package_streaming.package_streaming import stream_conda_info

    for tar, member in stream_conda_info(str(path)):
        if member.name == "info/index.json":
            return tar.extractfile(member).read()
    raise AssertionError(f"{path} has no index.json")


def rattler_indexed(folder: Path, copy: Path, *, shards: bool) -> Path:
    """Index a copy of the package files under ``folder`` with rattler's indexer, laid out by
    subdir in ``copy`` (the layout it reads); ``shards``: write its CEP-16 shards too."""
    import rattler.index

    for path in folder.rglob("*"):
        if path.is_file():
            subdir = json.loads(read_index_json(path))["subdir"]
            (copy / subdir).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, copy / subdir / path.name)
    (copy / "noarch").mkdir(parents=True, exist_ok=True)
    asyncio.run(rattler.index.index_fs(copy, write_zst=False, write_shards=shards))
    return copy


def assert_record_as_rattlers(fn: str, record: dict[str, Any], reference: dict[str, Any]) -> None:
    """``record`` (sitegen's) holds every field of rattler's ``reference`` with the same value
    and type, but those left out on purpose; what only it holds is empty or null."""
    for key in set(reference) - RATTLER_ONLY:
        assert key in record, (fn, key)
        ours, theirs = record[key], reference[key]
        assert (type(ours), ours) == (type(theirs), theirs), (fn, key)
    for key in set(record) - set(reference):
        assert key in OURS_ONLY, (fn, key)
        assert record[key] in ([], "", None), (fn, key)
