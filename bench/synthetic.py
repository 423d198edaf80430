"""A synthetic conda-forge-sized ``linux-64`` repodata (no package files), cached under build/.

Shapes follow the real pytorch ``linux-64`` repodata when it is present (../shared/data): the
number of ``depends`` per record and the constraint text of each spec (``>=1.11``,
``>=10.1,<10.2``, ``* mkl``, pins) are sampled from it, with the package names swapped for
names of the synthetic channel, weighted towards popular ones. Around it, conda-forge's
proportions: ~34,000 names at 800,000 records, several versions per name and several builds
per version (python variants ``py39``..``py312``, build numbers), ``.tar.bz2`` for older and
``.conda`` for newer builds, python pins and ``__glibc``, licenses with ~10 % GPL-family,
``license_family`` on ~60 %, ``constrains`` on ~30 %, a few ``track_features``, millisecond
timestamps, random md5/sha256 (so it compresses less well than the real thing).

The stack of ``python numpy pandas`` exists under conda-forge's names (:mod:`bench.solvable`),
so that a client can solve that typical spec set against the big subdir.

Two states: ``v1`` and ``v2`` (10 names gained a new version), each as ``repodata.json`` and
``repodata.json.zst``.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
from pathlib import Path
from typing import Any

import msgspec
import zstandard

from bench.common import BUILD, PYTORCH_REPODATA, log
from bench.solvable import PYTHONS, base_records
from testkit.records import raw_record

GENERATOR_VERSION = 7
CHANNEL = "forge"

LICENSES = [
    ("MIT", "MIT", 24),
    ("BSD-3-Clause", "BSD", 20),
    ("Apache-2.0", "Apache", 14),
    ("BSD-2-Clause", "BSD", 4),
    ("LGPL-2.1-or-later", "LGPL", 3),
    ("GPL-3.0-or-later", "GPL3", 4),
    ("GPL-2.0-or-later", "GPL2", 2),
    ("MPL-2.0", "Other", 3),
    ("Zlib", "Other", 1),
    ("AGPL-3.0-only", "AGPL", 1),
    ("PSF-2.0", "PSF", 2),
    ("ISC", "Other", 2),
    ("LicenseRef-Proprietary", None, 1),
    ("BSD-3-Clause AND MIT", None, 2),
    ("Unlicense", None, 1),
]
_SYLLABLES = [
    "ar",
    "bo",
    "ca",
    "de",
    "el",
    "fi",
    "ga",
    "he",
    "io",
    "ju",
    "ka",
    "lo",
    "mi",
    "no",
    "pa",
    "qu",
    "ro",
    "sa",
    "ti",
    "un",
    "vo",
    "wa",
    "xe",
    "yo",
    "za",
    "ly",
    "py",
    "ne",
]
_PREFIXES = [
    ("", 30),
    ("lib", 8),
    ("py", 6),
    ("r-", 12),
    ("perl-", 2),
    ("ros-humble-", 3),
    ("jupyterlab-", 1),
    ("pytest-", 1),
    ("sphinx", 1),
    ("go-", 1),
    ("rust-", 1),
]


def _pytorch_shapes() -> tuple[list[int], list[str]]:
    """(depends counts, constraint texts) of the real records, or built-in ones."""
    try:
        document = json.loads(PYTORCH_REPODATA.read_bytes())
        records = list(document["packages"].values()) + list(
            document.get("packages.conda", {}).values()
        )
    except (OSError, ValueError, KeyError):
        return [0, 1, 2, 2, 3, 4, 5, 5, 6, 7, 8, 10], [
            ">=1.11",
            ">=10.1,<10.2",
            "",
            ">=2018",
            "* mkl",
            "1.12.0",
            "<=9b",
        ]
    counts = [len(r.get("depends", [])) for r in records]
    constraints = []
    for r in records:
        for spec in r.get("depends", []):
            parts = spec.split(" ", 1)
            if not parts[0].startswith("python") and not parts[0].startswith("__"):
                constraints.append(parts[1] if len(parts) > 1 else "")
    return counts, constraints


def _names(rng: random.Random, count: int) -> list[str]:
    names: set[str] = set()
    ordered: list[str] = []
    prefixes = [p for p, w in _PREFIXES for _ in range(w)]
    while len(ordered) < count:
        stem = "".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((2, 3, 3, 4))))
        name = rng.choice(prefixes) + stem + rng.choice(("", "", "", "-core", "-base", "2", "-cpp"))
        if name not in names:
            names.add(name)
            ordered.append(name)
    return ordered


def _versions(rng: random.Random, count: int) -> list[str]:
    if rng.random() < 0.1:  # calver
        year, month = 2019 + rng.randrange(4), 1
        out = []
        for _ in range(count):
            month += rng.randrange(1, 4)
            year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
            out.append(f"{year}.{month:02d}.{rng.randrange(0, 30)}")
        return out
    major, minor, patch = rng.randrange(0, 3), rng.randrange(0, 12), 0
    out = []
    for _ in range(count):
        r = rng.random()
        if r < 0.6:
            patch += 1
        elif r < 0.93:
            minor, patch = minor + 1, 0
        else:
            major, minor, patch = major + 1, 0, 0
        suffix = ".post1" if rng.random() < 0.01 else ""
        out.append(f"{major}.{minor}.{patch}{suffix}")
    return out


def generate(seed: int, n_records: int, n_names: int) -> dict[str, Any]:
    """The repodata document (dict) of the v1 state."""
    rng = random.Random(seed)
    dep_counts, constraints = _pytorch_shapes()
    names = _names(rng, n_names)
    # Popular dependency targets: Zipf-like over the first names, plus the usual suspects.
    popular = names[: max(50, n_names // 20)]
    popular_weights = [1 / (i + 1) ** 0.9 for i in range(len(popular))]
    licenses = [(lic, fam) for lic, fam, w in LICENSES for _ in range(w)]
    mean_per_name = n_records / n_names
    mean_builds = 3.4
    packages: dict[str, dict] = {}
    packages_conda: dict[str, dict] = {}
    total = 0
    start_ms = 1_514_764_800_000  # 2018-01-01

    def make(
        name: str,
        version: str,
        build: str,
        build_number: int,
        ts: int,
        py: str | None,
        lic: tuple[str, str | None],
        base_deps: list[str],
    ) -> dict:
        depends = list(base_deps)
        if py is not None:
            minor = int(py[1:])
            depends.append(f"python >=3.{minor},<3.{minor + 1}.0a0")
            depends.append(f"python_abi 3.{minor}.* *_cp3{minor}")
        record = raw_record(
            name,
            version,
            build,
            depends=sorted(depends),
            build_number=build_number,
            md5=f"{rng.getrandbits(128):032x}",
            sha256=f"{rng.getrandbits(256):064x}",
            size=int(min(2e9, math.exp(rng.gauss(math.log(150_000), 1.6)))),
            timestamp=ts,
            license=lic[0],
        )
        if lic[1] is not None and rng.random() < 0.6:
            record["license_family"] = lic[1]
        return record

    name_iter = 0
    while total < n_records:
        name = names[name_iter % n_names]
        name_iter += 1
        if name_iter > n_names:  # every name exists once: top up the most popular ones
            name = names[rng.randrange(len(popular))]
        n_versions = max(1, min(120, int(rng.expovariate(1 / (mean_per_name / mean_builds)))))
        is_py = rng.random() < 0.45
        lic = rng.choice(licenses)
        n_deps = rng.choice(dep_counts)
        deps = set()
        targets = {t for t in rng.choices(popular, popular_weights, k=n_deps) if t != name}
        for target in targets:
            deps.add(f"{target} {rng.choice(constraints)}".strip())
        if rng.random() < 0.1:
            deps.add("__glibc >=2.17,<3.0.a0")
        if not is_py and rng.random() < 0.5:
            deps.update(("libgcc-ng >=12", "libstdcxx-ng >=12"))
        constrains = (
            [f"{rng.choice(popular)} >={rng.randrange(1, 9)}"] if rng.random() < 0.3 else None
        )
        features = rng.random() < 0.004
        ts = start_ms + rng.randrange(0, 5 * 365 * 86_400_000)
        for version in _versions(rng, n_versions):
            ts += rng.randrange(1, 40) * 86_400_000
            builds_here = rng.choice((1, 1, 2, 2, 3, 4, 4, 6, 8))
            pys = rng.sample(PYTHONS, min(len(PYTHONS), builds_here)) if is_py else [None]
            for i in range(builds_here if not is_py else len(pys)):
                py = pys[i] if is_py else None
                bn = rng.choice((0, 0, 0, 1, 2))
                hash7 = f"{rng.getrandbits(28):07x}"
                build = f"py{py}h{hash7}_{bn}" if py else f"h{hash7}_{bn}"
                record = make(name, version, build, bn, ts + i * 60_000, py, lic, sorted(deps))
                if constrains:
                    record["constrains"] = constrains
                if features and i == 0:
                    record["track_features"] = "mkl"
                stem = f"{name}-{version}-{build}"
                if ts > 1_640_995_200_000 and rng.random() < 0.85:  # since 2022: mostly .conda
                    packages_conda[f"{stem}.conda"] = record
                else:
                    packages[f"{stem}.tar.bz2"] = record
                total += 1
                if total >= n_records:
                    break
            if total >= n_records:
                break
    for fn, record in base_records(rng, start_ms).items():
        packages_conda[fn] = record
    return {
        "info": {"subdir": "linux-64"},
        "packages": dict(sorted(packages.items())),
        "packages.conda": dict(sorted(packages_conda.items())),
        "removed": [],
        "repodata_version": 1,
    }


def changed_copy(document: dict[str, Any], seed: int, count: int = 10) -> tuple[dict, list[str]]:
    """v2: ``count`` names gain a new version (one .conda build each)."""
    rng = random.Random(seed + 7)
    conda = dict(document["packages.conda"])
    candidates = list(conda.items())
    picked: list[str] = []
    seen = set()
    while len(picked) < count:
        _fn, record = rng.choice(candidates)
        if record["name"] in seen:
            continue
        seen.add(record["name"])
        new = dict(record)
        new["version"] = record["version"] + ".9999"
        new["build"] = f"h{rng.getrandbits(28):07x}_0"
        new["md5"] = f"{rng.getrandbits(128):032x}"
        new["sha256"] = f"{rng.getrandbits(256):064x}"
        new["timestamp"] = record["timestamp"] + 86_400_000
        fn = f"{new['name']}-{new['version']}-{new['build']}.conda"
        conda[fn] = new
        picked.append(new["name"])
    out = dict(document)
    out["packages.conda"] = dict(sorted(conda.items()))
    return out, picked


class MetaChannel:
    """``<root>/forge/{linux-64,noarch}/repodata.json(.zst)``; states cached under state/."""

    def __init__(self, root: Path, info: dict[str, Any]) -> None:
        self.root = root
        self.info = info

    @property
    def directory(self) -> Path:
        return self.root / CHANNEL

    def repodata_path(self) -> Path:
        return self.directory / "linux-64" / "repodata.json"

    def serve(self, state: str) -> None:
        target = self.directory / "linux-64"
        for suffix in (".json", ".json.zst"):
            tmp = target / f".tmp{suffix}"
            shutil.copyfile(self.root / "state" / f"{state}{suffix}", tmp)
            os.replace(tmp, target / f"repodata{suffix}")


def build_meta_channel(seed: int, n_records: int, n_names: int) -> MetaChannel:
    key = f"meta-v{GENERATOR_VERSION}-s{seed}-r{n_records}-n{n_names}"
    root = BUILD / "channels" / key
    info_path = root / "info.json"
    if info_path.exists():
        log(f"synthetic repodata: cached {root}")
        return MetaChannel(root, json.loads(info_path.read_text()))
    log(
        f"generating synthetic linux-64 repodata: {n_records} records, {n_names} names "
        "(cached for later runs) ..."
    )
    document = generate(seed, n_records, n_names)
    v2, changed = changed_copy(document, seed)
    (root / "state").mkdir(parents=True, exist_ok=True)
    for sub in ("linux-64", "noarch"):
        (root / CHANNEL / sub).mkdir(parents=True, exist_ok=True)
    encoder = msgspec.json.Encoder(order="sorted")
    sizes = {}
    for state, doc in (("v1", document), ("v2", v2)):
        data = encoder.encode(doc)
        sizes[state] = len(data)
        (root / "state" / f"{state}.json").write_bytes(data)
        (root / "state" / f"{state}.json.zst").write_bytes(
            zstandard.ZstdCompressor(level=3, threads=-1).compress(data)
        )
        del data
    empty = encoder.encode(
        {
            "info": {"subdir": "noarch"},
            "packages": {},
            "packages.conda": {},
            "removed": [],
            "repodata_version": 1,
        }
    )
    (root / CHANNEL / "noarch" / "repodata.json").write_bytes(empty)
    (root / CHANNEL / "noarch" / "repodata.json.zst").write_bytes(
        zstandard.ZstdCompressor(level=3).compress(empty)
    )
    names = {r["name"] for key in ("packages", "packages.conda") for r in document[key].values()}
    info = {
        "records": len(document["packages"]) + len(document["packages.conda"]),
        "names": len(names),
        "bytes": sizes["v1"],
        "zst_bytes": (root / "state" / "v1.json.zst").stat().st_size,
        "changed_names": changed,
    }
    channel = MetaChannel(root, info)
    channel.serve("v1")
    info_path.write_text(json.dumps(info))
    log(
        f"synthetic repodata: {info['records']} records, {info['names']} names, "
        f"{info['bytes'] / 1e6:.0f} MB JSON, {info['zst_bytes'] / 1e6:.0f} MB .zst"
    )
    return channel
