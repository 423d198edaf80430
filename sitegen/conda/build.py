"""Build real conda packages, deterministically: the two archive formats of a conda package.

Used by the example channel (:mod:`sitegen.tools.example_channel`), the tests and the
benchmarks. Every package is a valid archive that a conda client (py-rattler, conda, mamba,
pixi) can install: ``info/index.json``, ``info/paths.json`` (paths_version 1, with each file's
sha256 and size), ``info/files``, ``info/about.json`` and the payload files. Both formats:

* ``.tar.bz2``: one bzip2-compressed tar holding ``info/`` and the payload;
* ``.conda``: an uncompressed (stored) zip holding ``metadata.json``
  (``{"conda_pkg_format_version": 2}``), ``pkg-<stem>.tar.zst`` and ``info-<stem>.tar.zst``.

Archives carry fixed ownership, permissions and times, so the same inputs give the same bytes.
"""

from __future__ import annotations

import bz2
import hashlib
import io
import json
import tarfile
import zipfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import zstandard

from sitegen.conda.schema import CONDA_SUFFIX, PACKAGES, PACKAGES_CONDA, TAR_BZ2_SUFFIX

Format = Literal["tar.bz2", "conda"]
FORMATS: tuple[Format, ...] = ("conda", "tar.bz2")
SUFFIXES: dict[Format, str] = {"conda": CONDA_SUFFIX, "tar.bz2": TAR_BZ2_SUFFIX}
REPODATA_KEYS: dict[Format, str] = {"tar.bz2": PACKAGES, "conda": PACKAGES_CONDA}
ZSTD_LEVEL = 3  # the archives are tiny; higher levels only cost time


def payload_text(key: str, size: int) -> bytes:
    """``size`` bytes of deterministic text, different for every ``key``."""
    header = f"{key}\n".encode()
    out = bytearray(header[:size])
    counter = 0
    while len(out) < size:
        digest = hashlib.sha256(f"{key}:{counter}".encode()).hexdigest()
        out += (digest + "\n").encode()
        counter += 1
    return bytes(out[:size])


def file_digests(path: Path) -> dict[str, Any]:
    """``md5``, ``sha256`` and ``size`` of a file, as repodata records carry them."""
    md5, sha256 = hashlib.md5(), hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            md5.update(chunk)
            sha256.update(chunk)
            size += len(chunk)
    return {"md5": md5.hexdigest(), "sha256": sha256.hexdigest(), "size": size}


def _tar_bytes(members: Iterable[tuple[str, bytes]], mtime: int) -> bytes:
    """An uncompressed tar with fixed ownership, modes and times (members in the given order)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = mtime
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _info_members(index: dict[str, Any], files: dict[str, bytes]) -> list[tuple[str, bytes]]:
    paths = [
        {
            "_path": path,
            "path_type": "hardlink",
            "sha256": hashlib.sha256(data).hexdigest(),
            "size_in_bytes": len(data),
        }
        for path, data in sorted(files.items())
    ]
    about: dict[str, Any] = {"summary": f"{index['name']}, an example package for sitegen"}
    if index.get("license"):
        about["license"] = index["license"]

    def dump(doc: Any) -> bytes:
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()

    return [
        ("info/about.json", dump(about)),
        ("info/files", "".join(f"{path}\n" for path in sorted(files)).encode()),
        ("info/index.json", dump(index)),
        ("info/paths.json", dump({"paths": paths, "paths_version": 1})),
    ]


def build_package(
    path: Path,
    index: dict[str, Any],
    files: dict[str, bytes] | None = None,
    fmt: Format | None = None,
) -> dict[str, Any]:
    """Write a real conda package to ``path`` and return its ``md5``, ``sha256`` and ``size``.

    ``index`` becomes ``info/index.json``; ``files`` maps relative paths to contents (default:
    one small ``share/<name>/<version>.txt``). ``fmt`` defaults to the format ``path`` names.
    """
    path = Path(path)
    if fmt is None:
        fmt = "conda" if path.name.endswith(CONDA_SUFFIX) else "tar.bz2"
    if fmt not in SUFFIXES:
        raise ValueError(f"unknown package format {fmt!r}")
    if files is None:
        stem = f"{index['name']}-{index['version']}-{index['build']}"
        files = {f"share/{index['name']}/{index['version']}.txt": payload_text(stem, 96)}
    for relpath in files:
        if relpath.startswith(("/", "info/")) or ".." in relpath.split("/"):
            raise ValueError(f"invalid payload path {relpath!r}")
    mtime = _seconds(index.get("timestamp", 0))
    info = _info_members(index, files)
    payload = sorted(files.items())
    if fmt == "tar.bz2":
        data = bz2.compress(_tar_bytes(info + payload, mtime), 9)
    else:
        data = _conda_bytes(path.name.removesuffix(CONDA_SUFFIX), info, payload, mtime)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)
    return {
        "md5": hashlib.md5(data).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }


def _conda_bytes(
    stem: str, info: list[tuple[str, bytes]], payload: list[tuple[str, bytes]], mtime: int
) -> bytes:
    """A ``.conda``: a stored zip of the format version and the two zstd tars."""
    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    buffer = io.BytesIO()
    # Zip times start in 1980.
    date_time = datetime.fromtimestamp(max(mtime, 315532800), UTC).timetuple()[:6]
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        members = [
            ("metadata.json", json.dumps({"conda_pkg_format_version": 2}).encode()),
            (f"pkg-{stem}.tar.zst", compressor.compress(_tar_bytes(payload, mtime))),
            (f"info-{stem}.tar.zst", compressor.compress(_tar_bytes(info, mtime))),
        ]
        for name, member in members:
            zinfo = zipfile.ZipInfo(name, date_time=date_time)
            zinfo.compress_type = zipfile.ZIP_STORED
            zinfo.external_attr = 0o644 << 16
            archive.writestr(zinfo, member)
    return buffer.getvalue()


def _seconds(timestamp: int | float) -> int:
    value = int(timestamp or 0)
    return value // 1000 if value > 253402300799 else value
