"""What makes the synthetic channel solvable by a real client: the packages every python build
needs, under their real names, and a typical spec set to solve (see :mod:`bench.synthetic`)."""

from __future__ import annotations

import random
from typing import Any

from testkit.records import raw_record

PYTHONS = ("39", "310", "311", "312")


def base_records(rng: random.Random, ts: int) -> dict[str, dict[str, Any]]:
    """python 3.9-3.12 with their python_abi, and the C/C++ runtimes, as conda-forge names them."""

    def record(name: str, version: str, build: str, depends: list[str]) -> dict[str, Any]:
        return raw_record(
            name,
            version,
            build,
            depends=depends,
            md5=f"{rng.getrandbits(128):032x}",
            sha256=f"{rng.getrandbits(256):064x}",
            size=30_000_000 if name == "python" else 200_000,
            timestamp=ts,
            license="PSF-2.0"
            if name.startswith("python")
            else "GPL-3.0-only WITH GCC-exception-3.1",
        )

    out = {}
    for name in ("libgcc-ng", "libstdcxx-ng"):
        out[f"{name}-13.2.0-h77fa898_7.conda"] = record(name, "13.2.0", "h77fa898_7", [])
    for py in PYTHONS:
        minor = int(py[1:])
        version = f"3.{minor}.9"
        build = f"h{minor:07x}_0_cpython"
        out[f"python-{version}-{build}.conda"] = record(
            "python", version, build, ["libgcc-ng >=12", f"python_abi 3.{minor}.* *_cp{py}"]
        )
        abi_build = f"5_cp{py}"
        out[f"python_abi-3.{minor}-{abi_build}.conda"] = record(
            "python_abi", f"3.{minor}", abi_build, []
        )
    return out


def client_specs(document: dict[str, Any]) -> list[str]:
    """A typical spec set, like ``python numpy pandas``: python and the two names other
    packages depend on most."""
    counts: dict[str, int] = {}
    for key in ("packages", "packages.conda"):
        for record in document[key].values():
            for dep in record.get("depends", ()):
                name = dep.split(" ", 1)[0]
                counts[name] = counts.get(name, 0) + 1
    skip = {"python", "python_abi", "libgcc-ng", "libstdcxx-ng", "__glibc"}
    top = sorted((n for n in counts if n not in skip), key=lambda n: -counts[n])[:2]
    return ["python 3.12.*", *top]
