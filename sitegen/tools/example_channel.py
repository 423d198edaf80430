"""A small, realistic upstream channel, deterministically, offline.

Used by ``make demo``, the tests and the benchmarks. A :class:`PackageSpec` describes one package
build; :func:`write_channel` builds its files with :func:`sitegen.conda.build.build_package`
(real, installable archives, each with a tiny payload ``share/<name>/<version>.txt``) and writes
each subdir's ``repodata.json``; :func:`example_packages` is the example channel's contents.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import zstandard

from sitegen.conda.build import (
    FORMATS,
    REPODATA_KEYS,
    SUFFIXES,
    ZSTD_LEVEL,
    Format,
    build_package,
    payload_text,
)
from sitegen.conda.schema import RECORD_SECTIONS

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

    def _identity(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "build": self.build,
            "build_number": self.build_number,
            "depends": list(self.depends),
            "constrains": list(self.constrains),
            "subdir": self.subdir,
        }

    def _optional(self) -> dict[str, Any]:
        """The fields a package has only when set, in the order both documents list them."""
        fields = {
            "timestamp": self.timestamp_ms or None,
            "license": self.license,
            "license_family": self.license_family,
            "track_features": self.track_features,
            "features": self.features,
            "noarch": self.noarch,
        }
        return {key: value for key, value in fields.items() if value is not None}

    def index_json(self) -> dict[str, Any]:
        """The package's ``info/index.json`` (repodata records add md5, sha256 and size)."""
        index = {**self._identity(), **self._optional()}
        if self.noarch is None and self.subdir in _ARCH_OF_SUBDIR:
            index["arch"], index["platform"] = _ARCH_OF_SUBDIR[self.subdir]
        index.update(self.extra)
        return index

    def payload(self) -> dict[str, bytes]:
        """The package's files: one small deterministic text file."""
        return {self.payload_path: payload_text(f"{self.seed}:{self.stem}", self.payload_size)}


def repodata_record(spec: PackageSpec, digests: dict[str, Any]) -> dict[str, Any]:
    """The repodata record of one file of ``spec``."""
    checksums = {key: digests[key] for key in ("md5", "sha256", "size")}
    return {**spec._identity(), **checksums, **spec._optional()}


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
        for key in RECORD_SECTIONS:
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

    # One build each: copyleft and unlicensed packages (for license filters); py27 builds (old:
    # .tar.bz2 only) beside a noarch six; blas, whose mkl variant track_features de-prioritises.
    py27 = ("python 2.7.*",)
    # name, version, build, depends, license, license family, timestamp, other fields
    singles: list[tuple[Any, ...]] = [
        ("readline", "8.2", f"{_build_hash('readline', '8.2')}_1", (), "GPL-3.0-only", "GPL3",
         when(2023, 3, 1), {"build_number": 1}),
        ("ghostscript", "10.03.1", f"{_build_hash('ghostscript', '10.03.1')}_0",
         ("zlib >=1.3.1,<2.0a0",), "AGPL-3.0-or-later", "AGPL", when(2024, 5, 20), {}),
        ("mystery-tool", "0.1.0", "h0000000_0", (), None, None, when(2021, 6, 1),
         {"formats": only_bz2}),
        ("futures", "3.3.0", "py27_0", py27, "BSD-2-Clause", "BSD", when(2021, 2, 1),
         {"formats": only_bz2}),
        ("six", "1.16.0", "py27_0", py27, "MIT", "MIT", when(2021, 5, 5), {"formats": only_bz2}),
        ("six", "1.16.0", "pyh6c4a22f_0", ("python",), "MIT", "MIT", when(2021, 5, 6),
         {"subdir": "noarch", "noarch": "python"}),
        ("blas", "1.0", "mkl", (), "BSD-3-Clause", "BSD", when(2022, 9, 1),
         {"track_features": "mkl"}),
        ("blas", "1.0", "openblas", ("libopenblas >=0.3.21",), "BSD-3-Clause", "BSD",
         when(2022, 9, 1), {}),
    ]  # fmt: skip
    for name, version, build, depends, license, family, timestamp, more in singles:
        specs.append(
            PackageSpec(
                name=name,
                version=version,
                build=build,
                depends=depends,
                license=license,
                license_family=family,
                timestamp_ms=timestamp,
                **{"formats": both, **more},
            )
        )
    return [replace(spec, seed=seed) for spec in specs]


def write_example_channel(
    root: Path, seed: int = 0, *, zst: bool = False
) -> dict[str, dict[str, Any]]:
    """Write :func:`example_packages` as a channel under ``root``; return repodata per subdir."""
    return write_channel(root, example_packages(seed), zst=zst)
