"""Every filter kind, alone (at each of the three levels) and combined, in real mirror runs.

Upstream is the example channel over HTTP. Expectations are written out from the package list
of :func:`sitegen.tools.example_channel.example_packages` (see the inventory below), never computed by
running filter code: the published filenames and the per-reason exclusion counts of the run
report must be exactly these.

linux-64, 42 files: python 3.10.14 / 3.11.9 / 3.12.3 / 3.12.4 (both formats, 8); zlib 1.2.13,
1.3.1 (4); libopenblas 0.3.21 (.tar.bz2 only), 0.3.27 (3); numpy 1.26.4 and 2.0.1 for py310,
py311, py312 and 2.1.0 for py311, py312 (16); readline GPL (2); ghostscript AGPL (2);
mystery-tool without licence (.tar.bz2, 1); futures and six py27 builds (.tar.bz2, 2);
blas mkl and openblas (4).
noarch, 9 files: pip 23.3.1, 24.0 (4); setuptools 69.5.1 (2), 70.0.0 (.conda only, 1); six (2).
"""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from sitegen.store.frozen import FrozenChannels
from sitegen.store.site import Site
from sitegen.sync.report import RunReport
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import PackageSpec, example_packages, write_channel
from sitegen.web.run import mirror_row, same
from testkit.site import assert_channel_consistent, fns, published, site_config
from testkit.upstream import UpstreamServer

pytestmark = pytest.mark.integration

CHANNEL = "cloud/example"
P = example_packages(seed=0)
LINUX = fns(P, subdir="linux-64")
NOARCH = fns(P, subdir="noarch")
CONDA, TAR = "conda", "tar.bz2"


def test_inventory_matches_the_docstring() -> None:
    assert len(LINUX) == 42 and len(NOARCH) == 9
    assert len(fns(P, subdir="linux-64", fmt=CONDA)) == 19
    assert len(fns(P, subdir="noarch", fmt=CONDA)) == 5


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The example channel, served for the whole module (no test changes it)."""
    root = tmp_path_factory.mktemp("upstream")
    write_channel(root, P, zst=True)
    with UpstreamServer(root) as server:
        yield server.url


def _flow(filters: str) -> str:
    return textwrap.dedent(filters).strip()


def config_at(site: Path, url: str, level: str, filters: str, subdirs: str = "[linux-64]"):
    """One mirror of the example channel with `filters` (a YAML flow mapping) at `level`."""
    filters = _flow(filters)
    site_filters = f"filters: {filters}\n" if level == "site" else ""
    channel_filters = f"    filters: {filters}\n" if level == "channel" else ""
    mirror_filters = f"        filters: {filters}\n" if level == "mirror" else ""
    body = (
        site_filters
        + "channels:\n"
        + f"  {CHANNEL}:\n"
        + channel_filters
        + "    mirrors:\n"
        + "      - name: example\n"
        + f"        url: {url}\n"
        + f"        subdirs: {subdirs}\n"
        + mirror_filters
    )
    return site_config(site, body)


async def mirror(config) -> RunReport:
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert not report.failed, (report.errors, report.mirrors, report.channels)
    return report


def excluded(report: RunReport, subdir: str, index: int = 0) -> dict[str, int]:
    return report.mirrors[index].subdirs[subdir].excluded


def check(
    report: RunReport,
    site: Path,
    subdir: str,
    kept: set[str],
    reasons: dict[str, int],
    *,
    channel: str = CHANNEL,
    index: int = 0,
) -> None:
    """The subdir publishes exactly `kept`, and the report counts exactly `reasons`."""
    assert published(site, channel, subdir) == kept
    assert excluded(report, subdir, index) == reasons
    assert report.mirrors[index].subdirs[subdir].kept == len(kept)


# --------------------------------------------------------------------------- one filter alone

# id: (filters, linux-64 kept, linux-64 reasons, noarch kept, noarch reasons)
Case = tuple[str, set[str], dict[str, int], set[str], dict[str, int]]
NOT_ALLOWED = "not in allowlist"
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


# --------------------------------------------------------------------------- dependencies


async def test_include_dependencies_adds_what_the_allowlist_needs(
    upstream: str, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    filters = '{specs: {include: ["numpy 2.1.*"]}, include_dependencies: true}'
    report = await mirror(config_at(site, upstream, "mirror", filters))
    assert_channel_consistent(site, CHANNEL)
    # numpy 2.1.0 needs libopenblas >=0.3.27 and python 3.11 / 3.12; libopenblas needs zlib,
    # which nothing asked for: it comes in only as a dependency of a dependency.
    deps = (
        fns(P, "libopenblas", "0.3.27")
        | fns(P, "python", "3.11.9")
        | fns(P, "python", "3.12.3")
        | fns(P, "python", "3.12.4")
        | fns(P, "zlib")
    )
    check(report, site, "linux-64", fns(P, "numpy", "2.1.0") | deps, {NOT_ALLOWED: 42 - 16})
    check(report, site, "noarch", set(), {NOT_ALLOWED: 9})
    mr = report.mirrors[0]
    assert mr.subdirs["linux-64"].added_as_dependency == len(deps) == 12
    assert {d.file for d in mr.dependencies_added} == deps
    zlib_why = {d.why for d in mr.dependencies_added if d.file.startswith("zlib-")}
    assert all(why.startswith("needed by libopenblas-0.3.27") for why in zlib_why)
    assert mr.unsatisfied == []


async def test_noarch_package_pulls_in_a_platform_dependency(upstream: str, tmp_path: Path) -> None:
    site = tmp_path / "site"
    filters = "{names: {include: [pip]}, include_dependencies: true, newest_versions: 1}"
    report = await mirror(config_at(site, upstream, "mirror", filters))
    assert_channel_consistent(site, CHANNEL)
    # pip needs `python >=3.8`: every python matches, newest_versions 1 adds only the newest.
    check(report, site, "noarch", fns(P, "pip", "24.0"), {"older version": 2, NOT_ALLOWED: 5})
    check(report, site, "linux-64", fns(P, "python", "3.12.4"), {NOT_ALLOWED: 40})
    assert report.mirrors[0].subdirs["linux-64"].added_as_dependency == 2


async def test_a_noarch_package_takes_each_platforms_dependency_by_channel_priority(
    tmp_path: Path, upstream_server_factory
) -> None:
    """internal/builds: own builds (a noarch tool, and libx for osx-64 only), then forge
    (libx for linux-64 and osx-64). A linux-64 client of the channel finds no libx among the
    builds for linux-64 or noarch and takes forge's; an osx-64 client takes the own build.
    cloud/win (win-64), later in the file, has libx too: the channel serves no win-64, so
    nothing is pulled from it."""
    tool = PackageSpec("tool", "1.0", "0", subdir="noarch", noarch="generic", depends=("libx",))
    own_libx = PackageSpec("libx", "1.0", "0", subdir="osx-64")
    forge = [PackageSpec("libx", "2.0", "0", subdir=s) for s in ("linux-64", "osx-64")]
    forge.append(PackageSpec("other", "1.0", "0"))
    win = [PackageSpec(name, "1.0", "0", subdir="win-64") for name in ("libx", "w")]
    servers = {}
    for name, specs in (("builds", [tool, own_libx]), ("forge", forge), ("win", win)):
        write_channel(tmp_path / name, specs, zst=True)
        servers[name] = upstream_server_factory(tmp_path / name).url
    site = tmp_path / "site"
    config = site_config(
        site,
        f"""
        channels:
          internal/builds:
            mirrors:
              - name: builds
                url: {servers["builds"]}
                subdirs: [osx-64]
                filters: {{names: {{include: [tool]}}, include_dependencies: true}}
              - name: forge
                url: {servers["forge"]}
                subdirs: [linux-64, osx-64]
                filters: {{names: {{include: [other]}}}}
          cloud/win:
            url: {servers["win"]}
            subdirs: [win-64]
            filters: {{names: {{include: [w]}}}}
        """,
    )
    report = await mirror(config)
    assert_channel_consistent(site, "internal/builds")
    assert published(site, "internal/builds", "noarch") == fns([tool])
    assert published(site, "internal/builds", "linux-64") == fns(forge, subdir="linux-64")
    assert published(site, "internal/builds", "osx-64") == fns([own_libx])
    assert published(site, "cloud/win", "win-64") == fns(win, "w")
    assert [mr.unsatisfied for mr in report.mirrors] == [[], [], []]


async def test_a_dependency_comes_from_the_own_channel_before_an_earlier_one(
    tmp_path: Path, upstream_server_factory
) -> None:
    """internal/builds (own builds, then forge for what they need) comes after cloud/forge in
    the file. A client of internal/builds sees both its mirrors as one channel: libx, which
    the builds lack, is taken from its forge mirror, not pulled into cloud/forge."""
    tool = PackageSpec("tool", "1.0", "0", depends=("libx",))
    forge = [PackageSpec("libx", "2.0", "0"), PackageSpec("other", "1.0", "0")]
    write_channel(tmp_path / "builds", [tool], zst=True)
    write_channel(tmp_path / "forge", forge, zst=True)
    builds = upstream_server_factory(tmp_path / "builds").url
    forge_url = upstream_server_factory(tmp_path / "forge").url
    site = tmp_path / "site"
    config = site_config(
        site,
        f"""
        channels:
          cloud/forge:
            url: {forge_url}
            subdirs: [linux-64]
            filters: {{names: {{include: [other]}}}}
          internal/builds:
            filters: {{include_dependencies: true}}
            mirrors:
              - name: builds
                url: {builds}
                subdirs: [linux-64]
              - name: forge-deps
                url: {forge_url}
                subdirs: [linux-64]
                filters: {{names: {{include: [other]}}}}
        """,
    )
    report = await mirror(config)
    assert_channel_consistent(site, "internal/builds")
    assert published(site, "internal/builds", "linux-64") == fns([tool, *forge])
    assert published(site, "cloud/forge", "linux-64") == fns(forge, "other")
    assert [mr.unsatisfied for mr in report.mirrors] == [[], [], []]


async def test_dependencies_must_pass_the_other_filters(upstream: str, tmp_path: Path) -> None:
    site = tmp_path / "site"
    # ghostscript needs zlib >=1.3.1; zlib is excluded by name, so it cannot be added.
    filters = "{names: {include: [ghostscript], exclude: [zlib]}, include_dependencies: true}"
    report = await mirror(config_at(site, upstream, "mirror", filters))
    check(
        report,
        site,
        "linux-64",
        fns(P, "ghostscript"),
        {"name excluded": 4, NOT_ALLOWED: 42 - 4 - 2},
    )
    (missing,) = {(u.spec, u.needed_by.split("-")[0]) for u in report.mirrors[0].unsatisfied}
    assert missing == ("zlib >=1.3.1,<2.0a0", "ghostscript")


def _two_channels(site: Path, url_a: str, filters_a: str, url_b: str, filters_b: str):
    return site_config(
        site,
        f"""
        channels:
          cloud/a:
            url: {url_a}
            subdirs: [linux-64]
            filters: {filters_a}
          cloud/b:
            url: {url_b}
            subdirs: [linux-64]
            filters: {filters_b}
        """,
    )


def _numpy_needs_the_second_mirror(site: Path, upstream: str, upstream_server_factory):
    """cloud/a: numpy 2.1 with its dependencies, from an upstream of numpy only (at
    ``site.parent / "a"``); cloud/b: the example channel, zlib allowlisted."""
    write_channel(site.parent / "a", [p for p in P if p.name == "numpy"], zst=True)
    only_numpy = upstream_server_factory(site.parent / "a")
    return _two_channels(
        site,
        only_numpy.url,
        '{specs: {include: ["numpy 2.1.*"]}, include_dependencies: true}',
        upstream,
        "{names: {include: [zlib]}}",  # the second mirror's own allowlist
    )


async def test_include_dependencies_across_two_mirrors(
    upstream: str, tmp_path: Path, upstream_server_factory
) -> None:
    site = tmp_path / "site"
    config = _numpy_needs_the_second_mirror(site, upstream, upstream_server_factory)
    report = await mirror(config)
    assert_channel_consistent(site, "cloud/a")
    assert_channel_consistent(site, "cloud/b")
    # The first mirror has no libopenblas or python: they come from the second mirror, into
    # the second mirror's channel, beside its own allowlisted zlib.
    check(report, site, "linux-64", fns(P, "numpy", "2.1.0"), {NOT_ALLOWED: 12}, channel="cloud/a")
    from_b = fns(P, "libopenblas", "0.3.27") | fns(P, "python", "3.11.9")
    from_b |= fns(P, "python", "3.12.3") | fns(P, "python", "3.12.4")
    check(
        report,
        site,
        "linux-64",
        fns(P, "zlib") | from_b,
        {NOT_ALLOWED: 42 - 4 - 8},
        channel="cloud/b",
        index=1,
    )
    assert report.mirrors[0].unsatisfied == []
    assert report.mirrors[1].subdirs["linux-64"].added_as_dependency == 8


async def test_a_mirror_down_upstream_keeps_what_it_pulled_into_another_channel(
    upstream: str, tmp_path: Path, upstream_server_factory
) -> None:
    """cloud/a's numpy pulled libopenblas and python into cloud/b. With cloud/a's upstream
    down, cloud/a keeps what it publishes, and so does cloud/b: those dependencies stay."""
    site = tmp_path / "site"
    config = _numpy_needs_the_second_mirror(site, upstream, upstream_server_factory)
    # No deletion guard to hide behind: each removal must be one the run meant.
    config = dataclasses.replace(config, max_delete_fraction=1.0)
    await mirror(config)
    in_b = published(site, "cloud/b", "linux-64")
    pulled = fns(P, "libopenblas", "0.3.27") | fns(P, "python", "3.12.4")
    assert pulled <= in_b
    for path in (site.parent / "a").glob("*/repodata.json*"):
        path.write_bytes(b"<html>maintenance</html>")  # cloud/a's upstream is broken

    report = await run_mirror(config, MirrorOptions(progress=False))

    assert report.failed and report.mirrors[0].errors
    assert published(site, "cloud/b", "linux-64") == in_b
    assert report.mirrors[1].errors == []
    assert_channel_consistent(site, "cloud/b")


@pytest.mark.parametrize("walked", [True, False], ids=["closure", "no-closure"])
async def test_a_mirror_down_upstream_counts_what_it_keeps_not_its_channel(
    walked: bool, upstream: str, tmp_path: Path, upstream_server_factory
) -> None:
    """cloud/b has two mirrors: numpy from one, six from the other. With the numpy mirror's
    upstream down, cloud/b keeps what it publishes, and that mirror's report counts as kept
    the numpy files it keeps published, not every file of its channel; whether or not a
    mirror of the site pulls in dependencies (the closure then walks cloud/b as published)."""
    write_channel(tmp_path / "a", [p for p in P if p.name == "numpy"], zst=True)
    only_numpy = upstream_server_factory(tmp_path / "a")
    dependencies = ", include_dependencies: true" if walked else ""
    site = tmp_path / "site"
    config = site_config(
        site,
        f"""
        channels:
          cloud/a:
            url: {upstream}
            subdirs: [linux-64]
            filters: {{names: {{include: [zlib]}}{dependencies}}}
          cloud/b:
            mirrors:
              - name: b-numpy
                url: {only_numpy.url}
                subdirs: [linux-64]
              - name: b-six
                url: {upstream}
                subdirs: [linux-64]
                filters: {{names: {{include: [six]}}}}
        """,
    )
    await mirror(config)
    numpy = fns(P, "numpy", subdir="linux-64")
    in_b = published(site, "cloud/b", "linux-64")
    assert in_b == numpy | fns(P, "six", subdir="linux-64")
    for path in (tmp_path / "a").glob("*/repodata.json*"):
        path.write_bytes(b"<html>maintenance</html>")

    report = await run_mirror(config, MirrorOptions(progress=False))

    assert published(site, "cloud/b", "linux-64") == in_b
    down = next(mr for mr in report.mirrors if mr.name == "b-numpy")
    assert down.errors and down.subdirs["linux-64"].upstream == "error"
    assert down.subdirs["linux-64"].kept == len(numpy) == 16
    assert mirror_row(down, same)["kept"] == 16  # the run page and history.json
    six = next(mr for mr in report.mirrors if mr.name == "b-six")
    assert six.errors == [] and six.subdirs["linux-64"].kept == 1


async def test_a_frozen_channel_keeps_what_it_pulled_into_another_channel(
    upstream: str, tmp_path: Path, upstream_server_factory
) -> None:
    """cloud/a is frozen, then its upstream drops numpy 2.1: cloud/a goes on publishing it, so
    what it needs stays in cloud/b, and nothing upstream offers now is pulled in for it."""
    site = tmp_path / "site"
    config = _numpy_needs_the_second_mirror(site, upstream, upstream_server_factory)
    config = dataclasses.replace(config, max_delete_fraction=1.0)
    await mirror(config)
    in_a = published(site, "cloud/a", "linux-64")
    in_b = published(site, "cloud/b", "linux-64")
    assert fns(P, "libopenblas", "0.3.27") <= in_b
    FrozenChannels(Site(site)).freeze("cloud/a", "alice", "under review")
    older = [p for p in P if p.name == "numpy" and p.version != "2.1.0"]
    for path in (site.parent / "a").rglob("*"):
        if path.is_file():
            path.unlink()
    write_channel(site.parent / "a", older, zst=True)

    report = await mirror(config)

    assert published(site, "cloud/a", "linux-64") == in_a
    assert published(site, "cloud/b", "linux-64") == in_b
    assert_channel_consistent(site, "cloud/b")
    # The frozen mirror's report still tells what its filters make of upstream.
    assert excluded(report, "linux-64") == {NOT_ALLOWED: 12}


async def test_a_run_of_one_channel_keeps_what_another_pulled_into_it(
    upstream: str, tmp_path: Path, upstream_server_factory
) -> None:
    """A run of cloud/b alone (its own schedule, or --only) walks what cloud/a publishes: the
    dependencies cloud/a's numpy pulled into cloud/b stay."""
    site = tmp_path / "site"
    config = _numpy_needs_the_second_mirror(site, upstream, upstream_server_factory)
    config = dataclasses.replace(config, max_delete_fraction=1.0)
    await mirror(config)
    in_b = published(site, "cloud/b", "linux-64")
    assert fns(P, "libopenblas", "0.3.27") | fns(P, "python", "3.12.4") <= in_b

    report = await run_mirror(config, MirrorOptions(progress=False, only=("cloud-b",)))

    assert not report.failed
    assert [mr.name for mr in report.mirrors] == ["cloud-b"]
    assert published(site, "cloud/b", "linux-64") == in_b
    assert_channel_consistent(site, "cloud/b")
    assert report.mirrors[0].subdirs["linux-64"].added_as_dependency == 8
    assert {d.needed_by_channel for d in report.mirrors[0].dependencies_added} == {"cloud/a"}


async def test_a_run_of_one_channel_counts_what_another_channel_publishes(
    upstream: str, tmp_path: Path, upstream_server_factory
) -> None:
    """A run of cloud/a alone finds numpy's python and libopenblas where a full run found them,
    in what cloud/b publishes, though cloud/b pulls in nothing of its own: nothing is reported
    unsatisfied."""
    site = tmp_path / "site"
    config = _numpy_needs_the_second_mirror(site, upstream, upstream_server_factory)
    config = dataclasses.replace(config, max_delete_fraction=1.0)
    await mirror(config)
    in_a = published(site, "cloud/a", "linux-64")

    report = await run_mirror(config, MirrorOptions(progress=False, only=("cloud-a",)))

    assert not report.failed
    assert [mr.name for mr in report.mirrors] == ["cloud-a"]
    assert report.mirrors[0].unsatisfied == []
    assert published(site, "cloud/a", "linux-64") == in_a


async def test_a_run_of_one_channel_adds_what_another_needs_since_its_last_run(
    upstream: str, tmp_path: Path, upstream_server_factory
) -> None:
    """cloud/a gains numpy's py311 build in a run of its own, which cannot add python 3.11 to
    cloud/b. cloud/b's next run, with nothing new upstream, is not skipped as unchanged: what
    cloud/a publishes is one of its inputs, so it adds python 3.11."""
    numpy = [p for p in P if p.name == "numpy" and p.version == "2.1.0"]
    write_channel(tmp_path / "a", [p for p in numpy if "py312" in p.build], zst=True)
    only_numpy = upstream_server_factory(tmp_path / "a")
    site = tmp_path / "site"
    config = _two_channels(
        site,
        only_numpy.url,
        '{specs: {include: ["numpy 2.1.*"]}, include_dependencies: true}',
        upstream,
        "{names: {include: [zlib]}}",
    )
    await mirror(config)
    await run_mirror(config, MirrorOptions(progress=False, only=("cloud-b",)))
    assert not fns(P, "python", "3.11.9") & published(site, "cloud/b", "linux-64")
    write_channel(tmp_path / "a", numpy, zst=True)
    await run_mirror(config, MirrorOptions(progress=False, only=("cloud-a",)))
    assert fns(numpy) == published(site, "cloud/a", "linux-64")

    report = await run_mirror(config, MirrorOptions(progress=False, only=("cloud-b",)))

    assert not report.failed
    assert fns(P, "python", "3.11.9") <= published(site, "cloud/b", "linux-64")
    assert_channel_consistent(site, "cloud/b")


async def test_own_mirror_first_even_when_it_cannot_satisfy(
    upstream: str, tmp_path: Path, upstream_server_factory
) -> None:
    # The first mirror has python, but only 3.12.4: numpy's py311 build finds no python 3.11
    # there, and the second mirror is not consulted for a name the own mirror has.
    own = [p for p in P if p.name == "numpy" and p.version == "2.1.0"]
    own += [p for p in P if p.name == "python" and p.version == "3.12.4"]
    write_channel(tmp_path / "a", own, zst=True)
    first = upstream_server_factory(tmp_path / "a")
    site = tmp_path / "site"
    config = _two_channels(
        site,
        first.url,
        '{specs: {include: ["numpy 2.1.*"]}, include_dependencies: true}',
        upstream,
        "{names: {include: [zlib]}}",
    )
    report = await mirror(config)
    check(
        report,
        site,
        "linux-64",
        fns(P, "numpy", "2.1.0") | fns(P, "python", "3.12.4"),
        {},
        channel="cloud/a",
    )
    from_b = fns(P, "libopenblas", "0.3.27")
    check(
        report,
        site,
        "linux-64",
        fns(P, "zlib") | from_b,
        {NOT_ALLOWED: 42 - 4 - 2},
        channel="cloud/b",
        index=1,
    )
    unsatisfied = {(u.spec, u.needed_by) for u in report.mirrors[0].unsatisfied}
    py311 = next(p for p in own if p.build.startswith("py311"))
    assert unsatisfied == {("python >=3.11,<3.12.0a0", fn) for fn in py311.filenames}


# --------------------------------------------------------------------------- combined levels


async def test_filters_of_three_levels_combined(upstream: str, tmp_path: Path) -> None:
    site = tmp_path / "site"
    config = site_config(
        site,
        f"""
        filters:
          builds: {{exclude: ["py2*"]}}
          licenses: {{allow_missing: false}}
        channels:
          {CHANNEL}:
            filters:
              licenses: {{exclude: ["*GPL*"]}}
            mirrors:
              - name: example
                url: {upstream}
                subdirs: [linux-64]
                filters:
                  specs: {{include: ["numpy >=2", pip]}}
                  include_dependencies: true
                  newest_versions: 1
                  formats: prefer-conda
        """,
    )
    report = await mirror(config)
    assert_channel_consistent(site, CHANNEL)

    # numpy 2.1.0 (newest of >=2) as .conda; its dependencies' newest matching versions as
    # .conda: libopenblas 0.3.27, python 3.11.9 (py311 build), python 3.12.4, zlib 1.3.1.
    linux = (
        fns(P, "numpy", "2.1.0", fmt=CONDA)
        | fns(P, "libopenblas", "0.3.27", fmt=CONDA)
        | fns(P, "python", "3.11.9", fmt=CONDA)
        | fns(P, "python", "3.12.4", fmt=CONDA)
        | fns(P, "zlib", "1.3.1", fmt=CONDA)
    )
    assert len(linux) == 6
    check(
        report,
        site,
        "linux-64",
        linux,
        {
            "build excluded": 2,  # site: futures, six py27
            "license missing": 1,  # site: mystery-tool
            "license excluded": 4,  # channel: readline, ghostscript
            # numpy 2.0.1's .conda files (its .tar.bz2 twins count as twins below)
            "older version": 3,
            # .tar.bz2 twins of numpy 2.1.0 (2), 2.0.1 (3), 1.26.4 (3), python (4), zlib (2),
            # libopenblas 0.3.27 (1), blas (2)
            "has .conda twin": 2 + 3 + 3 + 4 + 2 + 1 + 2,
            # the rest, as .conda: python 3.10.14 and 3.12.3 (2), zlib 1.2.13 (1), numpy 1.26.4
            # (3), blas (2); and libopenblas 0.3.21 (.tar.bz2 only)
            NOT_ALLOWED: 2 + 1 + 3 + 2 + 1,
        },
    )
    check(
        report,
        site,
        "noarch",
        fns(P, "pip", "24.0", fmt=CONDA),
        {
            "older version": 1,  # pip 23.3.1 .conda
            "has .conda twin": 4,  # pip (2), setuptools 69.5.1, six
            NOT_ALLOWED: 3,  # setuptools .conda (2), six .conda
        },
    )
    assert report.mirrors[0].unsatisfied == []


# --------------------------------------------------------------------------- entries matching nothing


async def test_entries_matching_no_record_upstream_are_warned_about(
    upstream: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An allowlist name or an exception that matches no record of any subdir of the mirrors
    its level applies to (a typo) is named in the log and in the run record, the log naming
    the first few; one matching in noarch only, or any record at all, is not."""
    typos = [f"nunpy{i}" for i in range(12)]
    site = tmp_path / "site"
    config = site_config(
        site,
        f"""
        filters:
          names: {{include: [numpy, six, futures, pip, {", ".join(typos)}]}}
        channels:
          {CHANNEL}:
            filters:
              builds: {{exclude: ['py2*']}}
              except: [six, {{name: sixx}}, {{build: 'py99*'}}, futures 3.*]
            mirrors:
              - name: example
                url: {upstream}
                subdirs: [linux-64]
        """,
    )
    caplog.set_level("WARNING", logger="sitegen")

    report = await mirror(config)

    unmatched = [(u.filters, u.key, u.entry) for u in report.mirrors[0].unmatched]
    assert unmatched == [
        *(("site", "names.include", typo) for typo in typos),
        (f"channel {CHANNEL}", "except", "{name: sixx}"),
        (f"channel {CHANNEL}", "except", "{build: py99*}"),
    ]
    warned = [r.getMessage() for r in caplog.records if "matches no record" in r.getMessage()]
    assert len(warned) == 10
    assert warned[0] == (
        "example: names.include entry 'nunpy0' of the site's filters matches no record"
        " in any subdir"
    )
    assert any("and 4 more entries matching no record" in r.getMessage() for r in caplog.records)
    assert RunReport.from_json(report.to_json()).mirrors[0].unmatched == report.mirrors[0].unmatched
    again = await mirror(config)  # nothing changed: the report is that of the run before
    assert again.mirrors[0].unmatched == report.mirrors[0].unmatched


async def test_entries_are_not_judged_while_upstream_is_down(
    tmp_path: Path, upstream_server_factory
) -> None:
    """A mirror that could not be read says nothing of what its entries match."""
    write_channel(tmp_path / "upstream", P, zst=True)
    server = upstream_server_factory(tmp_path / "upstream")
    site = tmp_path / "site"
    config = config_at(site, server.url, "mirror", "{names: {include: [numpy, nunpy]}}")
    first = await mirror(config)
    assert [u.entry for u in first.mirrors[0].unmatched] == ["nunpy"]
    for path in (tmp_path / "upstream").glob("*/repodata.json*"):
        path.write_bytes(b"<html>maintenance</html>")

    report = await run_mirror(config, MirrorOptions(progress=False))

    assert report.mirrors[0].errors and report.mirrors[0].unmatched == []
