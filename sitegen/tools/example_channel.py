"""Build real conda packages and a small upstream channel, deterministically, offline.

Used by ``make demo``, the tests and the benchmarks. Every package is a valid archive that a
conda client (py-rattler, conda, mamba, pixi) can install: ``info/index.json``,
``info/paths.json`` (paths_version 1, with the payload's sha256 and size), ``info/files`` and a
tiny payload file ``share/<name>/<version>.txt``. Both formats are produced:

* ``.tar.bz2``: one bzip2-compressed tar holding ``info/`` and the payload;
* ``.conda``: an uncompressed (stored) zip holding ``metadata.json``
  (``{"conda_pkg_format_version": 2}``), ``pkg-<stem>.tar.zst`` and ``info-<stem>.tar.zst``.

Archives carry fixed ownership, permissions and times, so the same inputs give the same bytes.
"""

from __future__ import annotations

import bz2
import copy
import hashlib
import io
import json
import random
import tarfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import zstandard

Format = Literal["tar.bz2", "conda"]
FORMATS: tuple[Format, ...] = ("conda", "tar.bz2")
SUFFIXES: dict[str, str] = {"conda": ".conda", "tar.bz2": ".tar.bz2"}
REPODATA_KEYS: dict[str, str] = {"tar.bz2": "packages", "conda": "packages.conda"}
ZSTD_LEVEL = 3  # the archives are tiny; higher levels only cost time
_ARCH_OF_SUBDIR: dict[str, tuple[str, str]] = {
    "linux-64": ("x86_64", "linux"),
    "linux-aarch64": ("aarch64", "linux"),
    "osx-64": ("x86_64", "osx"),
    "osx-arm64": ("arm64", "osx"),
    "win-64": ("x86_64", "win"),
}


@dataclass(frozen=True, slots=True)
class PackageSpec:
    """One package build of the example channel, published in one or both formats."""

    name: str
    version: str
    build: str
    build_number: int = 0
    subdir: str = "linux-64"
    depends: tuple[str, ...] = ()
    constrains: tuple[str, ...] = ()
    license: str | None = None
    license_family: str | None = None
    timestamp_ms: int = 0
    track_features: str | None = None
    features: str | None = None
    formats: tuple[Format, ...] = FORMATS
    noarch: str | None = None  # "python" or "generic"
    payload_size: int = 96  # bytes of the payload file
    seed: int = 0  # varies the payload bytes, hence the package checksums
    extra: dict[str, Any] = field(default_factory=dict, hash=False)  # more index.json fields

    @property
    def stem(self) -> str:
        return f"{self.name}-{self.version}-{self.build}"

    def filename(self, fmt: Format) -> str:
        return self.stem + SUFFIXES[fmt]

    @property
    def filenames(self) -> list[str]:
        return [self.filename(fmt) for fmt in self.formats]

    @property
    def payload_path(self) -> str:
        return f"share/{self.name}/{self.version}.txt"

    def index_json(self) -> dict[str, Any]:
        """The package's ``info/index.json`` (repodata records add md5, sha256 and size)."""
        index: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "build": self.build,
            "build_number": self.build_number,
            "depends": list(self.depends),
            "constrains": list(self.constrains),
            "subdir": self.subdir,
        }
        if self.timestamp_ms:
            index["timestamp"] = self.timestamp_ms
        if self.license is not None:
            index["license"] = self.license
        if self.license_family is not None:
            index["license_family"] = self.license_family
        if self.track_features is not None:
            index["track_features"] = self.track_features
        if self.features is not None:
            index["features"] = self.features
        if self.noarch is not None:
            index["noarch"] = self.noarch
        elif self.subdir in _ARCH_OF_SUBDIR:
            index["arch"], index["platform"] = _ARCH_OF_SUBDIR[self.subdir]
        index.update(self.extra)
        return index

    def payload(self) -> dict[str, bytes]:
        """The package's files: one small deterministic text file."""
        return {self.payload_path: _payload_text(f"{self.seed}:{self.stem}", self.payload_size)}


def _payload_text(key: str, size: int) -> bytes:
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
        fmt = "conda" if path.name.endswith(".conda") else "tar.bz2"
    if fmt not in SUFFIXES:
        raise ValueError(f"unknown package format {fmt!r}")
    if files is None:
        stem = f"{index['name']}-{index['version']}-{index['build']}"
        files = {f"share/{index['name']}/{index['version']}.txt": _payload_text(stem, 96)}
    for relpath in files:
        if relpath.startswith(("/", "info/")) or ".." in relpath.split("/"):
            raise ValueError(f"invalid payload path {relpath!r}")
    mtime = _seconds(index.get("timestamp", 0))
    info = _info_members(index, files)
    payload = sorted(files.items())
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "tar.bz2":
        data = bz2.compress(_tar_bytes(info + payload, mtime), 9)
    else:
        stem = path.name[: -len(".conda")] if path.name.endswith(".conda") else path.name
        compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        buffer = io.BytesIO()
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
        data = buffer.getvalue()
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)
    return {
        "md5": hashlib.md5(data).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }


def _seconds(timestamp: int | float) -> int:
    value = int(timestamp or 0)
    return value // 1000 if value > 253402300799 else value


def repodata_record(spec: PackageSpec, digests: dict[str, Any]) -> dict[str, Any]:
    """The repodata record of one file of ``spec``."""
    record: dict[str, Any] = {
        "name": spec.name,
        "version": spec.version,
        "build": spec.build,
        "build_number": spec.build_number,
        "depends": list(spec.depends),
        "constrains": list(spec.constrains),
        "subdir": spec.subdir,
        "md5": digests["md5"],
        "sha256": digests["sha256"],
        "size": digests["size"],
    }
    if spec.timestamp_ms:
        record["timestamp"] = spec.timestamp_ms
    if spec.license is not None:
        record["license"] = spec.license
    if spec.license_family is not None:
        record["license_family"] = spec.license_family
    if spec.track_features is not None:
        record["track_features"] = spec.track_features
    if spec.features is not None:
        record["features"] = spec.features
    if spec.noarch is not None:
        record["noarch"] = spec.noarch
    return record


def write_channel(
    root: Path,
    packages: list[PackageSpec],
    extra_repodata: dict[str, Any] | None = None,
    *,
    zst: bool = False,
) -> dict[str, dict[str, Any]]:
    """Write package files and ``<root>/<subdir>/repodata.json``; return repodata per subdir.

    ``noarch/repodata.json`` always exists. ``extra_repodata`` is merged into every subdir's
    document (its ``info`` into ``info``), e.g. ``{"removed": [...]}`` or unknown keys. With
    ``zst`` a ``repodata.json.zst`` is written beside each ``repodata.json``.
    """
    root = Path(root)
    subdirs = sorted({spec.subdir for spec in packages} | {"noarch"})
    documents: dict[str, dict[str, Any]] = {}
    for subdir in subdirs:
        documents[subdir] = {
            "info": {"subdir": subdir},
            "packages": {},
            "packages.conda": {},
            "removed": [],
            "repodata_version": 1,
        }
    for spec in packages:
        files = spec.payload()
        for fmt in spec.formats:
            fn = spec.filename(fmt)
            digests = build_package(root / spec.subdir / fn, spec.index_json(), files, fmt)
            documents[spec.subdir][REPODATA_KEYS[fmt]][fn] = repodata_record(spec, digests)
    for subdir, document in documents.items():
        for key, value in (extra_repodata or {}).items():
            if key == "info" and isinstance(value, dict):
                document["info"] = {**document["info"], **value}
            else:
                document[key] = copy.deepcopy(value)
        for key in ("packages", "packages.conda"):
            document[key] = dict(sorted(document[key].items()))
        directory = root / subdir
        directory.mkdir(parents=True, exist_ok=True)
        data = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()
        (directory / "repodata.json").write_bytes(data)
        if zst:
            compressed = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(data)
            (directory / "repodata.json.zst").write_bytes(compressed)
    return documents


def _ms(year: int, month: int, day: int, jitter_ms: int = 0) -> int:
    return int(datetime(year, month, day, 12, tzinfo=UTC).timestamp() * 1000) + jitter_ms


def _build_hash(*parts: object) -> str:
    return "h" + hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()[:7]


def example_packages(seed: int = 0) -> list[PackageSpec]:
    """A small, realistic channel for ``linux-64`` and ``noarch`` (all files a few KB).

    It holds: three pythons (no dependencies, installable alone); noarch ``pip`` and
    ``setuptools``; ``numpy`` for py310/py311/py312 pinned to python and ``libopenblas``;
    ``libopenblas`` (BSD) needing ``zlib``, which is reachable only as a dependency; GPL
    ``readline``; AGPL ``ghostscript``; ``mystery-tool`` without a license; py27 builds of
    ``futures`` and ``six``; the ``blas`` mkl/openblas pair where mkl has ``track_features``;
    ``.tar.bz2``-only old builds; ``.conda``/``.tar.bz2`` twins; timestamps in 2021–2025.
    The seed changes payload bytes (hence checksums) and jitters timestamps by up to a week.
    """
    rng = random.Random(seed)

    def when(year: int, month: int, day: int) -> int:
        return _ms(year, month, day, rng.randrange(0, 7 * 24 * 3600) * 1000)

    both: tuple[Format, ...] = ("conda", "tar.bz2")
    only_bz2: tuple[Format, ...] = ("tar.bz2",)
    only_conda: tuple[Format, ...] = ("conda",)
    specs: list[PackageSpec] = []

    # python: no dependencies, so it installs on its own.
    pythons = [("3.10.14", 2024, 3), ("3.11.9", 2024, 4), ("3.12.3", 2024, 4), ("3.12.4", 2024, 6)]
    for version, year, month in pythons:
        specs.append(
            PackageSpec(
                name="python",
                version=version,
                build=f"{_build_hash('python', version)}_0_cpython",
                license="Python-2.0",
                license_family="Other",
                timestamp_ms=when(year, month, 10),
                formats=both,
                payload_size=160,
            )
        )

    # noarch python packages.
    for name, version, year, month, formats in [
        ("pip", "23.3.1", 2023, 10, both),
        ("pip", "24.0", 2024, 2, both),
        ("setuptools", "69.5.1", 2024, 4, both),
        ("setuptools", "70.0.0", 2024, 5, only_conda),
    ]:
        specs.append(
            PackageSpec(
                name=name,
                version=version,
                build="pyhd8ed1ab_0",
                subdir="noarch",
                noarch="python",
                depends=("python >=3.8",),
                license="MIT",
                license_family="MIT",
                timestamp_ms=when(year, month, 2),
                formats=formats,
            )
        )

    # zlib: only ever needed as a dependency of libopenblas.
    for version, year in [("1.2.13", 2022), ("1.3.1", 2024)]:
        specs.append(
            PackageSpec(
                name="zlib",
                version=version,
                build=f"{_build_hash('zlib', version)}_0",
                license="Zlib",
                license_family="Other",
                timestamp_ms=when(year, 1, 20),
                formats=both,
            )
        )

    # libopenblas (BSD), an older build only as .tar.bz2.
    for version, year, formats in [("0.3.21", 2022, only_bz2), ("0.3.27", 2024, both)]:
        specs.append(
            PackageSpec(
                name="libopenblas",
                version=version,
                build=f"pthreads_{_build_hash('libopenblas', version)}_0",
                depends=("zlib >=1.2.13,<2.0a0",),
                constrains=("openblas >=" + version,),
                license="BSD-3-Clause",
                license_family="BSD",
                timestamp_ms=when(year, 5, 15),
                formats=formats,
            )
        )

    # numpy: one build per python minor, pinned to it and to libopenblas.
    numpys = [
        ("1.26.4", 2024, 2, ("3.10", "3.11", "3.12")),
        ("2.0.1", 2024, 7, ("3.10", "3.11", "3.12")),
        ("2.1.0", 2025, 1, ("3.11", "3.12")),
    ]
    for version, year, month, pythons_of in numpys:
        for py in pythons_of:
            major, minor = py.split(".")
            tag = f"py{major}{minor}"
            specs.append(
                PackageSpec(
                    name="numpy",
                    version=version,
                    build=f"{tag}{_build_hash('numpy', version, py)}_0",
                    depends=(
                        "libopenblas >=0.3.27,<1.0a0",
                        f"python >={py},<{major}.{int(minor) + 1}.0a0",
                    ),
                    constrains=("numpy-base <0a0",),
                    license="BSD-3-Clause",
                    license_family="BSD",
                    timestamp_ms=when(year, month, 5),
                    formats=both,
                    payload_size=256,
                )
            )

    # Copyleft and unlicensed packages, for license filters.
    specs.append(
        PackageSpec(
            name="readline",
            version="8.2",
            build=f"{_build_hash('readline', '8.2')}_1",
            build_number=1,
            license="GPL-3.0-only",
            license_family="GPL3",
            timestamp_ms=when(2023, 3, 1),
            formats=both,
        )
    )
    specs.append(
        PackageSpec(
            name="ghostscript",
            version="10.03.1",
            build=f"{_build_hash('ghostscript', '10.03.1')}_0",
            depends=("zlib >=1.3.1,<2.0a0",),
            license="AGPL-3.0-or-later",
            license_family="AGPL",
            timestamp_ms=when(2024, 5, 20),
            formats=both,
        )
    )
    specs.append(
        PackageSpec(
            name="mystery-tool",
            version="0.1.0",
            build="h0000000_0",
            timestamp_ms=when(2021, 6, 1),
            formats=only_bz2,
        )
    )

    # Python 2.7 builds (old: .tar.bz2 only), beside a noarch build of six.
    specs.append(
        PackageSpec(
            name="futures",
            version="3.3.0",
            build="py27_0",
            depends=("python 2.7.*",),
            license="BSD-2-Clause",
            license_family="BSD",
            timestamp_ms=when(2021, 2, 1),
            formats=only_bz2,
        )
    )
    specs.append(
        PackageSpec(
            name="six",
            version="1.16.0",
            build="py27_0",
            depends=("python 2.7.*",),
            license="MIT",
            license_family="MIT",
            timestamp_ms=when(2021, 5, 5),
            formats=only_bz2,
        )
    )
    specs.append(
        PackageSpec(
            name="six",
            version="1.16.0",
            build="pyh6c4a22f_0",
            subdir="noarch",
            noarch="python",
            depends=("python",),
            license="MIT",
            license_family="MIT",
            timestamp_ms=when(2021, 5, 6),
            formats=both,
        )
    )

    # blas: the mkl variant is de-prioritised by track_features.
    specs.append(
        PackageSpec(
            name="blas",
            version="1.0",
            build="mkl",
            license="BSD-3-Clause",
            license_family="BSD",
            track_features="mkl",
            timestamp_ms=when(2022, 9, 1),
            formats=both,
        )
    )
    specs.append(
        PackageSpec(
            name="blas",
            version="1.0",
            build="openblas",
            depends=("libopenblas >=0.3.21",),
            license="BSD-3-Clause",
            license_family="BSD",
            timestamp_ms=when(2022, 9, 1),
            formats=both,
        )
    )
    return [replace(spec, seed=seed) for spec in specs]


def write_example_channel(
    root: Path, seed: int = 0, *, zst: bool = False
) -> dict[str, dict[str, Any]]:
    """Write :func:`example_packages` as a channel under ``root``; return repodata per subdir."""
    return write_channel(root, example_packages(seed), zst=zst)
