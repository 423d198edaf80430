"""Read back a subdir's published ``repodata.json`` a part at a time.

When a run publishes ``repodata.json`` it also keeps where the file's parts lie in it
(:class:`sitegen.conda.encode.PieceMap`), with the file's identity (size, modification time,
inode) once it is in place. The next run reads its previous state range by range, a few MB at
a time, instead of the whole file (400 MB at conda-forge scale, beside the new records). A map
that does not describe the file there now (a run stopped before saving it, a file changed by
anything else) is not used: the file is then read whole, as it is without any map.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

import msgspec

from sitegen.conda.encode import PieceMap
from sitegen.conda.published_repodata import load_published, load_published_parts
from sitegen.conda.records import Record, Repodata, RepodataError
from sitegen.conda.schema import RECORD_SECTIONS
from sitegen.layout import REPODATA, repodata_map_path
from sitegen.store.site import Site


class _SavedMap(msgspec.Struct):
    file: tuple[int, int, int]  # size, mtime_ns, inode of the repodata.json it describes
    parts: PieceMap


def _identity(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def save_map(site: Site, path: Path, target: Path, where: PieceMap) -> None:
    """Keep ``where`` for the file now at ``target`` (just published from those pieces).

    Best effort: the file is published already, and a map that could not be saved (a full
    disk) leaves the last one, which describes another file and is not used."""
    with contextlib.suppress(OSError):
        saved = _SavedMap(file=_identity(os.stat(target)), parts=where)
        site.ensure_dir(path.parent)
        site.write_bytes(path, msgspec.json.encode(saved), durable=False)


def _usable_map(path: Path | None, st: os.stat_result) -> PieceMap | None:
    """The map saved for the file whose status is ``st``; None when there is none for it, or
    when its ranges are not those of a file sitegen wrote (in order, inside the file)."""
    if path is None:
        return None
    try:
        saved = msgspec.json.decode(path.read_bytes(), type=_SavedMap)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None
    where = saved.parts
    if saved.file != _identity(st) or set(where.sections) != set(RECORD_SECTIONS):
        return None
    ranges = [where.head, *(r for key in RECORD_SECTIONS for r in where.sections[key]), where.tail]
    bounds = [0, *(bound for r in ranges for bound in r), st.st_size]
    return where if bounds == sorted(bounds) else None


def read_published(
    path: Path, subdir: str, known: Mapping[str, Record], map_path: Path | None = None
) -> Repodata:
    """The repodata sitegen published at ``path`` (see load_published), a part at a time
    where the map at ``map_path`` describes the file. Raises OSError or RepodataError."""
    with open(path, "rb") as handle:
        fd = handle.fileno()
        where = _usable_map(map_path, os.fstat(fd))
        if where is not None:
            try:
                return load_published_parts(
                    lambda start, end: os.pread(fd, end - start, start), where, subdir, known
                )
            except RepodataError:
                pass  # the map does not fit this file after all: read it whole
        return load_published(handle.read(), subdir, known)


def published_records(site_root: Path, channel: str, subdir: str) -> dict[str, Record]:
    """What a channel subdir publishes now, by file name; empty when nothing readable is there
    (a subdir never published, a damaged file: ``sitegen verify`` reports it)."""
    path = site_root / channel / subdir / REPODATA
    try:
        map_path = repodata_map_path(site_root, channel, subdir)
        return dict(read_published(path, subdir, {}, map_path).records)
    except (OSError, RepodataError):
        return {}
