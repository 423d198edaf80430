"""The upstream channel of the sync benchmarks: real packages, real sizes, cached under build/.

``linux-64`` + ``noarch``, ``.conda``/``.tar.bz2`` mixed (twins, conda-only, bz2-only), payloads
of incompressible random bytes so that file sizes are what they claim. Sizes are log-normal
(median ~30 KB) plus four files of 12-35 MB, scaled so that the channel holds the requested total.
Record metadata (depends, licenses, constrains, features) is sampled from the real pytorch
``linux-64`` repodata when it is present (../shared/data), from built-in shapes otherwise.

Two states of the same channel are built: ``v1`` and ``v2``, where 1 % of the files were
replaced by new builds (new file names, new bytes). Serving a state rewrites only the
``repodata.json`` (+ ``.zst``) of each subdir; every package file of both states is on disk.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import zstandard

from bench.common import BUILD, PYTORCH_REPODATA, log
from sitegen.conda.build import REPODATA_KEYS, Format, build_package
from sitegen.tools.example_channel import PackageSpec, repodata_record

GENERATOR_VERSION = 2  # bump when the generated channel changes shape
SUBDIRS = ("linux-64", "noarch")
CHANNEL = "upstream"
LARGE_MB = (12, 18, 25, 35)

_FALLBACK_SHAPES: list[dict[str, Any]] = [
    {
        "depends": ["python >=3.10,<3.11.0a0", "numpy >=1.21"],
        "license": "BSD-3-Clause",
        "license_family": "BSD",
    },
    {"depends": ["libgcc-ng >=12", "libstdcxx-ng >=12"], "license": "MIT"},
    {"depends": [], "license": "Apache-2.0", "license_family": "Apache"},
    {
        "depends": ["python >=3.8", "requests", "pyyaml >=5"],
        "license": "MIT",
        "constrains": ["pyopenssl >=22"],
    },
    {
        "depends": ["cudatoolkit >=11.8,<12", "python >=3.11,<3.12.0a0"],
        "license": "BSD",
        "track_features": "cuda",
    },
    {"depends": ["zlib >=1.2.13,<2.0a0"], "license": "GPL-3.0-or-later", "license_family": "GPL"},
]


@dataclass
class SyncChannel:
    root: Path  # nginx document root; the channel is <root>/upstream
    manifest: dict[str, Any]

    @property
    def directory(self) -> Path:
        return self.root / CHANNEL

    def documents(self, state: str) -> dict[str, dict[str, Any]]:
        return self.manifest[state]

    def files(self, state: str) -> list[tuple[str, str, int]]:
        """(subdir, filename, size) in sitegen's job order: subdir, then packages, .conda."""
        out = []
        for subdir in SUBDIRS:
            doc = self.manifest[state][subdir]
            for key in ("packages", "packages.conda"):
                out.extend((subdir, fn, rec["size"]) for fn, rec in doc[key].items())
        return out

    def serve(self, state: str) -> None:
        """Make ``state`` the upstream's current repodata (new mtime, so new ETag)."""
        for subdir in SUBDIRS:
            directory = self.directory / subdir
            data = (
                json.dumps(self.manifest[state][subdir], indent=2, sort_keys=True) + "\n"
            ).encode()
            for name, body in (
                ("repodata.json", data),
                ("repodata.json.zst", zstandard.ZstdCompressor(level=3).compress(data)),
            ):
                tmp = directory / f".{name}.tmp"
                tmp.write_bytes(body)
                os.replace(tmp, directory / name)

    @property
    def changed(self) -> list[str]:
        return self.manifest["changed"]


def _shapes() -> list[dict[str, Any]]:
    try:
        document = json.loads(PYTORCH_REPODATA.read_bytes())
    except (OSError, ValueError):
        return _FALLBACK_SHAPES
    keep = ("depends", "constrains", "license", "license_family", "track_features", "features")
    shapes = []
    for key in ("packages", "packages.conda"):
        for record in (document.get(key) or {}).values():
            shapes.append({k: record[k] for k in keep if k in record})
    return shapes or _FALLBACK_SHAPES


def _names(rng: random.Random, count: int) -> list[str]:
    base: list[str] = []
    try:
        document = json.loads(PYTORCH_REPODATA.read_bytes())
        base = sorted({r["name"] for r in document.get("packages", {}).values()})
    except (OSError, ValueError, KeyError):
        pass
    stems = [
        "arrow",
        "blosc",
        "cairo",
        "dask",
        "fiona",
        "gdal",
        "hdf5",
        "jax",
        "kiwi",
        "lz4",
        "mpi",
        "nccl",
        "onnx",
        "pandas",
        "qt",
        "rasterio",
        "scipy",
        "tiledb",
        "uvicorn",
        "vtk",
        "xarray",
        "yaml",
        "zarr",
        "boost",
        "eigen",
        "fmt",
        "grpc",
        "icu",
        "jpeg",
    ]
    prefixes = ["", "py-", "lib", "r-", "perl-", "ros-humble-", "jupyterlab-", "pytest-"]
    names = list(base)
    while len(names) < count:
        name = f"{rng.choice(prefixes)}{rng.choice(stems)}{rng.choice(['', '-core', '-extra', str(rng.randrange(2, 99))])}"
        if name not in names:
            names.append(name)
    return names[:count]


def _plan(
    seed: int, n_files: int, total_bytes: int
) -> tuple[list[tuple[PackageSpec, int]], list[tuple[PackageSpec, int]], list[str]]:
    """(v1 builds with payload sizes, v2 replacement builds, filenames v2 drops)."""
    rng = random.Random(seed)
    shapes = _shapes()
    names = _names(rng, max(40, n_files // 10))
    builds: list[tuple[PackageSpec, float]] = []
    files = 0
    versions: dict[str, int] = {}
    while files < n_files:
        name = rng.choice(names)
        subdir = "noarch" if rng.random() < 0.25 else "linux-64"
        minor = versions[name] = versions.get(name, 0) + 1
        version = f"{rng.randrange(0, 4)}.{minor}.{rng.randrange(0, 10)}"
        r = rng.random()
        formats: tuple[Format, ...] = (
            ("conda", "tar.bz2") if r < 0.45 else ("conda",) if r < 0.8 else ("tar.bz2",)
        )
        formats = formats[: n_files - files] if files + len(formats) > n_files else formats
        shape = rng.choice(shapes)
        py = rng.choice(["310", "311", "312"])
        digest = hashlib.sha1(f"{seed}/{name}/{version}/{subdir}".encode()).hexdigest()[:7]
        build = f"pyh{digest}_0" if subdir == "noarch" else f"py{py}h{digest}_0"
        spec = PackageSpec(
            name=name,
            version=version,
            build=build,
            subdir=subdir,
            depends=tuple(shape.get("depends", ())),
            constrains=tuple(shape.get("constrains", ())),
            license=shape.get("license"),
            license_family=shape.get("license_family"),
            track_features=shape.get("track_features") or None,
            timestamp_ms=1_600_000_000_000 + rng.randrange(0, 150_000_000) * 1000,
            formats=formats,
            noarch="python" if subdir == "noarch" else None,
            seed=seed,
        )
        builds.append((spec, min(8e6, math.exp(rng.gauss(math.log(30_000), 1.5)))))
        files += len(formats)
    # Four large single-format files; the rest scaled to the requested total.
    large = len(LARGE_MB) if total_bytes >= 200 * 1024 * 1024 else 0
    large_idx = rng.sample(range(len(builds)), large) if large else []
    large_total = 0
    for i, mb in zip(large_idx, LARGE_MB, strict=False):
        spec, _ = builds[i]
        builds[i] = (replace(spec, formats=spec.formats[:1]), float(mb * 1024 * 1024))
        large_total += mb * 1024 * 1024
    rest = sum(
        size * len(spec.formats) for i, (spec, size) in enumerate(builds) if i not in large_idx
    )
    factor = max(0.05, (total_bytes - large_total) / rest) if rest else 1.0
    sized = [
        (spec, int(size) if i in large_idx else max(600, int(size * factor)))
        for i, (spec, size) in enumerate(builds)
    ]
    # v2: 1 % of the files replaced by new builds of the same versions.
    target = max(1, round(n_files * 0.01))
    replaced: list[tuple[PackageSpec, int]] = []
    dropped: list[str] = []
    candidates = [i for i in range(len(sized)) if i not in large_idx]
    rng.shuffle(candidates)
    for i in candidates:
        if len(dropped) >= target:
            break
        spec, _size = sized[i]
        new = replace(
            spec,
            build=spec.build.rsplit("_", 1)[0] + "_1",
            build_number=spec.build_number + 1,
            seed=seed + 1,
            timestamp_ms=spec.timestamp_ms + 86_400_000,
        )
        replaced.append((new, max(600, int(math.exp(rng.gauss(math.log(30_000), 1.5)) * factor))))
        dropped.extend(spec.filenames)
    return sized, replaced, dropped


def _build_one(args: tuple[Path, PackageSpec, Format, int]) -> tuple[str, str, str, dict]:
    root, spec, fmt, payload_size = args
    fn = spec.filename(fmt)
    path = root / spec.subdir / fn
    payload = random.Random(f"{spec.seed}:{spec.stem}").randbytes(payload_size)
    files = {f"share/{spec.name}/{spec.version}-{spec.build}.bin": payload}
    digests = build_package(path, spec.index_json(), files, fmt)
    return spec.subdir, fmt, fn, repodata_record(spec, digests)


def build_sync_channel(seed: int, n_files: int, total_bytes: int) -> SyncChannel:
    key = f"sync-v{GENERATOR_VERSION}-s{seed}-n{n_files}-b{total_bytes}"
    base = BUILD / "channels" / key
    manifest_path = base / "manifest.json"
    if manifest_path.exists():
        channel = SyncChannel(base, json.loads(manifest_path.read_text()))
        if all((channel.directory / s / fn).is_file() for s, fn, _ in channel.files("v2")):
            log(f"upstream channel: cached {base}")
            return channel
    log(
        f"building upstream channel {key} (real packages, ~{total_bytes / 1e6:.0f} MB; "
        "cached for later runs) ..."
    )
    sized, replaced, dropped = _plan(seed, n_files, total_bytes)
    root = base / CHANNEL
    for subdir in SUBDIRS:
        (root / subdir).mkdir(parents=True, exist_ok=True)
    tasks = [(root, spec, fmt, size) for spec, size in sized + replaced for fmt in spec.formats]
    tasks.sort(key=lambda t: -t[3])  # big ones first: better packing on the workers
    records: dict[str, dict] = {}
    with ProcessPoolExecutor(max(1, os.cpu_count() or 1)) as pool:
        for done, (subdir, fmt, fn, record) in enumerate(
            pool.map(_build_one, tasks, chunksize=4), 1
        ):
            records[fn] = (subdir, fmt, record)
            if done % 500 == 0:
                log(f"  built {done}/{len(tasks)} files")

    def document(specs: list[tuple[PackageSpec, int]], drop: set[str]) -> dict[str, dict]:
        docs = {
            s: {
                "info": {"subdir": s},
                "packages": {},
                "packages.conda": {},
                "removed": [],
                "repodata_version": 1,
            }
            for s in SUBDIRS
        }
        for spec, _size in specs:
            for fmt in spec.formats:
                fn = spec.filename(fmt)
                if fn in drop:
                    continue
                subdir, _fmt, record = records[fn]
                docs[subdir][REPODATA_KEYS[fmt]][fn] = record
        for doc in docs.values():
            for k in ("packages", "packages.conda"):
                doc[k] = dict(sorted(doc[k].items()))
        return docs

    manifest = {
        "v1": document(sized, set()),
        "v2": document(sized + replaced, set(dropped)),
        "changed": sorted(fn for spec, _ in replaced for fn in spec.filenames),
        "dropped": sorted(dropped),
    }
    manifest_path.write_text(json.dumps(manifest))
    channel = SyncChannel(base, manifest)
    files = channel.files("v1")
    log(f"upstream channel built: {len(files)} files, {sum(f[2] for f in files) / 1e6:.0f} MB")
    return channel
