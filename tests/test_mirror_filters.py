"""Every filter kind alone, at each of the three levels, in real mirror runs.

Upstream is the example channel over HTTP. Expectations are written out from the package list
of :func:`sitegen.tools.example_channel.example_packages` (``testkit.filters.P``; the inventory
below), never computed by running filter code: the published filenames and the per-reason
exclusion counts of the run report must be exactly these. The other test_mirror_filters_*
modules write theirs from the same inventory.

linux-64, 42 files: python 3.10.14 / 3.11.9 / 3.12.3 / 3.12.4 (both formats, 8); zlib 1.2.13,
1.3.1 (4); libopenblas 0.3.21 (.tar.bz2 only), 0.3.27 (3); numpy 1.26.4 and 2.0.1 for py310,
py311, py312 and 2.1.0 for py311, py312 (16); readline GPL (2); ghostscript AGPL (2);
mystery-tool without licence (.tar.bz2, 1); futures and six py27 builds (.tar.bz2, 2);
blas mkl and openblas (4).
noarch, 9 files: pip 23.3.1, 24.0 (4); setuptools 69.5.1 (2), 70.0.0 (.conda only, 1); six (2).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sitegen.tools.example_channel import PackageSpec, write_channel
from testkit.mirror_filters import (
    CHANNEL,
    CONDA,
    LINUX,
    NOARCH,
    NOT_ALLOWED,
    TAR,
    P,
    check,
    config_at,
    mirror,
    serve_example_channel,
)
from testkit.site import assert_channel_consistent, fns

pytestmark = pytest.mark.integration

upstream = pytest.fixture(scope="module", name="upstream")(serve_example_channel)


def test_inventory_matches_the_docstring() -> None:
    assert len(LINUX) == 42 and len(NOARCH) == 9
    assert len(fns(P, subdir="linux-64", fmt=CONDA)) == 19
    assert len(fns(P, subdir="noarch", fmt=CONDA)) == 5


# id: (filters, linux-64 kept, linux-64 reasons, noarch kept, noarch reasons)
Case = tuple[str, set[str], dict[str, int], set[str], dict[str, int]]


CASES: dict[str, Case] = {
    "names include": (
        '{names: {include: [numpy, "lib*"]}}',
        fns(P, "numpy") | fns(P, "libopenblas"),
        {NOT_ALLOWED: 42 - 16 - 3},
        set(),
        {NOT_ALLOWED: 9},
    ),
    "names include is case-insensitive": (
        "{names: {include: [PIP]}}",
        set(),
        {NOT_ALLOWED: 42},
        fns(P, "pip"),
        {NOT_ALLOWED: 5},
    ),
    "names exclude": (
        '{names: {exclude: ["*-tool", "read*"]}}',
        LINUX - fns(P, "mystery-tool") - fns(P, "readline"),
        {"name excluded": 3},
        NOARCH,
        {},
    ),
    "specs include": (
        '{specs: {include: ["numpy >=2", "python 3.11.*"]}}',
        fns(P, "numpy", "2.0.1") | fns(P, "numpy", "2.1.0") | fns(P, "python", "3.11.9"),
        {NOT_ALLOWED: 42 - 6 - 4 - 2},
        set(),
        {NOT_ALLOWED: 9},
    ),
    "specs exclude": (
        '{specs: {exclude: ["numpy <2", "pip 23.*"]}}',
        LINUX - fns(P, "numpy", "1.26.4"),
        {"spec excluded": 6},
        NOARCH - fns(P, "pip", "23.3.1"),
        {"spec excluded": 2},
    ),
    "specs exclude by licence, as conda matches it": (
        # Any case, and `*` for any run of characters, as conda compares these keys.
        """{specs: {exclude: [
            "python[license_family=OTHER]", "readline[license_family='gpl*']", "pip[license=mit]"
        ]}}""",
        LINUX - fns(P, "python") - fns(P, "readline"),
        {"spec excluded": 8 + 2},
        NOARCH - fns(P, "pip"),
        {"spec excluded": 4},
    ),
    "builds exclude": (
        '{builds: {exclude: ["py2*"]}}',
        LINUX - fns(P, "futures") - fns(P, "six", build="py27"),
        {"build excluded": 2},
        NOARCH,
        {},
    ),
    "builds include": (
        '{builds: {include: ["py31*"]}}',
        fns(P, "numpy"),
        {"build not included": 42 - 16},
        set(),
        {"build not included": 9},
    ),
    "licenses exclude GPL and AGPL": (
        '{licenses: {exclude: ["*GPL*"]}}',
        LINUX - fns(P, "readline") - fns(P, "ghostscript"),
        {"license excluded": 4},
        NOARCH,
        {},
    ),
    "licenses missing not allowed": (
        '{licenses: {exclude: ["*gpl*"], allow_missing: false}}',
        LINUX - fns(P, "readline") - fns(P, "ghostscript") - fns(P, "mystery-tool"),
        {"license excluded": 4, "license missing": 1},
        NOARCH,
        {},
    ),
    "licenses exclude family": (
        "{licenses: {exclude_families: [AGPL]}}",
        LINUX - fns(P, "ghostscript"),
        {"license family excluded": 2},
        NOARCH,
        {},
    ),
    "licenses include": (
        '{licenses: {include: [MIT, "BSD*"]}}',
        # python (Python-2.0), zlib (Zlib), readline, ghostscript are out; no licence passes.
        LINUX - fns(P, "python") - fns(P, "zlib") - fns(P, "readline") - fns(P, "ghostscript"),
        {"license not included": 8 + 4 + 2 + 2},
        NOARCH,
        {},
    ),
    "subdirs": (
        "{subdirs: [noarch]}",
        set(),
        {"subdir not selected": 42},
        NOARCH,
        {},
    ),
    "dates": (
        "{dates: {after: 2024-01-01, before: 2025-01-01}}",
        fns(P, "python")
        | fns(P, "zlib", "1.3.1")
        | fns(P, "libopenblas", "0.3.27")
        | fns(P, "numpy", "1.26.4")
        | fns(P, "numpy", "2.0.1")
        | fns(P, "ghostscript"),
        # 2021-2023: zlib 1.2.13, libopenblas 0.3.21, readline, mystery-tool, py27s, blas.
        {"older than date range": 2 + 1 + 2 + 1 + 2 + 4, "newer than date range": 4},
        fns(P, "pip", "24.0") | fns(P, "setuptools"),
        {"older than date range": 4},  # pip 23.3.1 (2023), six (2021)
    ),
    "newest_versions": (
        "{newest_versions: 1}",
        fns(P, "python", "3.12.4")
        | fns(P, "zlib", "1.3.1")
        | fns(P, "libopenblas", "0.3.27")
        | fns(P, "numpy", "2.1.0")
        | fns(P, name="readline")
        | fns(P, "ghostscript")
        | fns(P, "mystery-tool")
        | fns(P, "futures")
        | fns(P, "six", subdir="linux-64")
        | fns(P, "blas"),  # two builds of one version: both stay
        {"older version": 6 + 2 + 1 + 12},
        fns(P, "pip", "24.0") | fns(P, "setuptools", "70.0.0") | fns(P, "six", subdir="noarch"),
        {"older version": 4},
    ),
    "formats conda": (
        "{formats: conda}",
        fns(P, subdir="linux-64", fmt=CONDA),
        {"format not mirrored": 23},
        fns(P, subdir="noarch", fmt=CONDA),
        {"format not mirrored": 4},
    ),
    "formats tar.bz2": (
        "{formats: tar.bz2}",
        fns(P, subdir="linux-64", fmt=TAR),
        {"format not mirrored": 19},
        fns(P, subdir="noarch", fmt=TAR),
        {"format not mirrored": 5},
    ),
    "formats prefer-conda": (
        "{formats: prefer-conda}",
        # .tar.bz2 stays where there is no .conda twin: libopenblas 0.3.21, mystery-tool, py27s.
        fns(P, subdir="linux-64", fmt=CONDA)
        | fns(P, "libopenblas", "0.3.21")
        | fns(P, "mystery-tool")
        | fns(P, "futures")
        | fns(P, "six", build="py27"),
        {"has .conda twin": 19},
        fns(P, subdir="noarch", fmt=CONDA),
        {"has .conda twin": 4},
    ),
}


# Every case at the mirror level; these also at the site and the channel level (the same
# parser reads every level, so a few cases show that each level's filters take effect).
AT_EVERY_LEVEL = (
    "names include",
    "licenses missing not allowed",
    "subdirs",
    "newest_versions",
    "formats prefer-conda",
)


LEVEL_CASES = [("mirror", case) for case in CASES] + [
    (level, case) for level in ("site", "channel") for case in AT_EVERY_LEVEL
]


@pytest.mark.parametrize(("level", "case"), LEVEL_CASES, ids=[f"{c}-{lv}" for lv, c in LEVEL_CASES])
async def test_one_filter(case: str, level: str, upstream: str, tmp_path: Path) -> None:
    filters, linux_kept, linux_reasons, noarch_kept, noarch_reasons = CASES[case]
    site = tmp_path / "site"
    report = await mirror(config_at(site, upstream, level, filters))
    assert_channel_consistent(site, CHANNEL)
    check(report, site, "linux-64", linux_kept, linux_reasons)
    check(report, site, "noarch", noarch_kept, noarch_reasons)
    assert sum(linux_reasons.values()) + len(linux_kept) == 42  # the expectation adds up
    assert sum(noarch_reasons.values()) + len(noarch_kept) == 9


async def test_no_filters_keeps_everything(upstream: str, tmp_path: Path) -> None:
    site = tmp_path / "site"
    report = await mirror(config_at(site, upstream, "mirror", "{}"))
    check(report, site, "linux-64", LINUX, {})
    check(report, site, "noarch", NOARCH, {})


async def test_max_size(tmp_path: Path, upstream_server_factory) -> None:
    big = PackageSpec(name="bigdata", version="1.0", build="h0_0", payload_size=300_000)
    docs = write_channel(tmp_path / "upstream", [*P, big], zst=True)
    sizes = {fn: r["size"] for fn, r in docs["linux-64"]["packages.conda"].items()}
    sizes |= {fn: r["size"] for fn, r in docs["linux-64"]["packages"].items()}
    assert all(sizes[fn] > 100_000 for fn in big.filenames)
    assert all(size < 10_000 for fn, size in sizes.items() if fn not in big.filenames)
    server = upstream_server_factory(tmp_path / "upstream")
    site = tmp_path / "site"
    report = await mirror(config_at(site, server.url, "mirror", "{max_size: 100KB}"))
    assert_channel_consistent(site, CHANNEL)
    check(report, site, "linux-64", LINUX, {"too large": 2})
    check(report, site, "noarch", NOARCH, {})


# Licences as conda-forge writes them: SPDX expressions, judged by the licences they name.
SPDX = [
    PackageSpec(name="dual", version="1.0", build="h0_0", license="MIT OR Apache-2.0"),
    PackageSpec(
        name="nested", version="1.0", build="h0_0", license="(MIT OR Apache-2.0) AND BSD-3-Clause"
    ),
    PackageSpec(name="mixed", version="1.0", build="h0_0", license="Apache-2.0 AND AGPL-3.0-only"),
    PackageSpec(
        name="classpath",
        version="1.0",
        build="h0_0",
        license="GPL-2.0-or-later WITH Classpath-exception-2.0",
    ),
    PackageSpec(name="unbalanced", version="1.0", build="h0_0", license="(MIT OR AGPL-3.0"),
]
SPDX_CASES = {
    # Used under MIT, Apache-2.0 or BSD alone; mixed needs AGPL too, classpath GPL.
    "include": (
        '{licenses: {include: [MIT, Apache-2.0, "BSD-*"]}}',
        fns(SPDX, "dual") | fns(SPDX, "nested"),
        {"license not included": 6},
    ),
    # The committed channels.yaml's exclude: AGPL code is in mixed, whatever else is; text
    # that is no expression still names its licences.
    "exclude": (
        '{licenses: {exclude: ["AGPL*", "GPL-*"]}}',
        fns(SPDX, "dual") | fns(SPDX, "nested"),
        {"license excluded": 6},
    ),
}


@pytest.mark.parametrize("case", SPDX_CASES)
async def test_licenses_read_spdx_expressions(
    case: str, tmp_path: Path, upstream_server_factory
) -> None:
    filters, linux_kept, linux_reasons = SPDX_CASES[case]
    write_channel(tmp_path / "upstream", SPDX, zst=True)
    server = upstream_server_factory(tmp_path / "upstream")
    site = tmp_path / "site"
    report = await mirror(config_at(site, server.url, "mirror", filters))
    check(report, site, "linux-64", linux_kept, linux_reasons)
