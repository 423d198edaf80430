"""What makes the synthetic channel solvable by a real client (see :mod:`bench.synthetic`): the
stack of ``python numpy pandas`` under conda-forge's names, a few versions each, beside the
random names, so that a client solves a typical spec set with a realistic closure (~25 names)
out of the 800,000-record subdir."""

from __future__ import annotations

import random
from typing import Any

from testkit.records import raw_record

PYTHONS = ("39", "310", "311", "312")
CLIENT_SPECS = ["python 3.12.*", "numpy", "pandas"]

# name -> (versions, depends); "{py}" entries are built once per python with its pins.
_LIBS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "libgcc-ng": (("12.3.0", "13.2.0"), ()),
    "libstdcxx-ng": (("12.3.0", "13.2.0"), ()),
    "libgfortran-ng": (("13.2.0",), ("libgcc-ng >=13",)),
    "libzlib": (("1.2.13", "1.3.1"), ("libgcc-ng >=12",)),
    "bzip2": (("1.0.8",), ("libgcc-ng >=12",)),
    "xz": (("5.4.6", "5.6.2"), ("libgcc-ng >=12",)),
    "libffi": (("3.4.2", "3.4.4"), ("libgcc-ng >=12",)),
    "ncurses": (("6.4", "6.5"), ("libgcc-ng >=12",)),
    "readline": (("8.2",), ("libgcc-ng >=12", "ncurses >=6.4,<7.0a0")),
    "tk": (("8.6.13",), ("libgcc-ng >=12", "libzlib >=1.2.13,<2.0a0")),
    "openssl": (("3.2.1", "3.3.1"), ("libgcc-ng >=12", "ca-certificates")),
    "ca-certificates": (("2024.7.4",), ()),
    "libsqlite": (("3.45.3", "3.46.0"), ("libgcc-ng >=12", "libzlib >=1.2.13,<2.0a0")),
    "libuuid": (("2.38.1",), ("libgcc-ng >=12",)),
    "tzdata": (("2024a",), ()),
    "libopenblas": (("0.3.26", "0.3.27"), ("libgcc-ng >=12", "libgfortran-ng")),
    "libblas": (("3.9.0",), ("libopenblas >=0.3.26,<1.0a0",)),
    "libcblas": (("3.9.0",), ("libblas 3.9.0",)),
    "liblapack": (("3.9.0",), ("libblas 3.9.0",)),
}
_PY_PACKAGES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "six": (("1.16.0",), ()),
    "pytz": (("2024.1",), ()),
    "python-tzdata": (("2024.1",), ()),
    "python-dateutil": (("2.9.0",), ("six >=1.5",)),
    "numpy": (
        ("1.26.4", "2.0.1", "2.1.0"),
        ("libgcc-ng >=12", "libstdcxx-ng >=12", "libblas >=3.9.0,<4.0a0", "libcblas", "liblapack"),
    ),
    "pandas": (
        ("2.1.4", "2.2.2"),
        (
            "libgcc-ng >=12",
            "libstdcxx-ng >=12",
            "numpy >=1.22.4",
            "python-dateutil >=2.8.1",
            "python-tzdata >=2022a",
            "pytz >=2020.1",
        ),
    ),
}
_PYTHON_DEPENDS = (
    "bzip2 >=1.0.8,<2.0a0",
    "ld_impl_linux-64 >=2.36.1",
    "libffi >=3.4,<4.0a0",
    "libgcc-ng >=12",
    "libsqlite >=3.45.3,<4.0a0",
    "libuuid >=2.38.1,<3.0a0",
    "libzlib >=1.2.13,<2.0a0",
    "ncurses >=6.4,<7.0a0",
    "openssl >=3.2.1,<4.0a0",
    "readline >=8.2,<9.0a0",
    "tk >=8.6.13,<8.7.0a0",
    "tzdata",
    "xz >=5.2.6,<6.0a0",
)


def base_records(rng: random.Random, ts: int) -> dict[str, dict[str, Any]]:
    """python 3.9-3.12 with their python_abi and libraries, numpy and pandas for each python."""
    out: dict[str, dict[str, Any]] = {}

    def add(name: str, version: str, build: str, depends: list[str]) -> None:
        out[f"{name}-{version}-{build}.conda"] = raw_record(
            name,
            version,
            build,
            depends=sorted(depends),
            md5=f"{rng.getrandbits(128):032x}",
            sha256=f"{rng.getrandbits(256):064x}",
            size=rng.randrange(100_000, 30_000_000),
            timestamp=ts + rng.randrange(0, 86_400_000 * 365),
        )

    add("ld_impl_linux-64", "2.40", "hf3520f5_7", [])
    for name, (versions, depends) in _LIBS.items():
        for version in versions:
            add(name, version, f"h{rng.getrandbits(28):07x}_0", list(depends))
    for py in PYTHONS:
        minor = int(py[1:])
        pins = [f"python >=3.{minor},<3.{minor + 1}.0a0", f"python_abi 3.{minor}.* *_cp{py}"]
        add("python_abi", f"3.{minor}", f"5_cp{py}", [])
        python_build = f"h{rng.getrandbits(28):07x}_0_cpython"
        add("python", f"3.{minor}.9", python_build, [*_PYTHON_DEPENDS, f"python_abi 3.{minor}.*"])
        for name, (versions, depends) in _PY_PACKAGES.items():
            for version in versions:
                add(name, version, f"py{py}h{rng.getrandbits(28):07x}_0", [*depends, *pins])
    return out
