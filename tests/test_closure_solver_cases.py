"""``include_dependencies`` judged by a real solver (py-rattler) on small hand-made channels, each
case aimed at one way a dependency can be written or reached: beside another package's
``constrains``, from ``linux-64`` into ``noarch``, with the spec forms conda accepts, through
virtual packages, and past a licence or build filter.

As in test_closure_solver, the reference is a site of the same upstream under the case's hard
filters alone; every root the reference installs, the filtered site installs, from files both
publish.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from sitegen.sync.report import RunReport
from sitegen.sync.run import MirrorOptions, run_mirror
from testkit.client import DEFAULT_VIRTUAL_PACKAGES, solver
from testkit.records import raw_record
from testkit.site import read_repodata, record_filenames, site_config
from testkit.upstream import UpstreamServer

pytestmark = pytest.mark.integration

CHANNEL = "cloud/cases"
SUBDIRS = ("linux-64", "noarch")
# A GPU box, so that a record needing __cuda installs from upstream.
VIRTUAL = (*DEFAULT_VIRTUAL_PACKAGES, ("__cuda", "12.0", "0"))


def _r(name: str, version: str = "1.0", build: str = "0", **extra: Any) -> dict[str, Any]:
    return raw_record(name, version, build, **extra)


def _noarch(name: str, version: str, **extra: Any) -> dict[str, Any]:
    return _r(name, version, subdir="noarch", noarch="python", **extra)


RECORDS = [
    # constrains: lib 2.0 rules out the newest zlib, which app needs beside it (an older one
    # installs), as does a client asking for lib and zlib together; app2 needs that zlib, so
    # only lib 1.0 installs beside it. Nothing depends on or keeps `other`: tool's constraint
    # must not bring it in.
    _r("app", depends=["lib", "zlib"]),
    _r("app2", depends=["lib", "zlib >=1.3"]),
    _r("lib", "2.0", constrains=["zlib <1.3"]),
    _r("lib", "1.0"),
    _r("zlib", "1.3"),
    _r("zlib", "1.2"),
    _r("tool", constrains=["other >=2"]),
    _r("other", "2.0"),
    _r("other", "1.0"),
    # noarch: a linux-64 package needing a noarch one, which needs a linux-64 one again.
    _r("cli", depends=["helper >=1.5", "__glibc >=2.17"]),
    _noarch("helper", "2.0", depends=["base >=2", "__unix"]),
    _noarch("helper", "1.0", depends=["base"]),
    _r("base", "2.0"),
    _r("base", "1.0"),
    # spec forms
    _r(
        "forms",
        depends=[
            "a 1.2 py39_*",
            "b *",
            "c !=1.3",
            "d ~=1.2",
            "e 1.0|2.0",
            "f[build_number=1]",
            "Hh >=1",
            "__glibc >=2.17",
            "__cuda >=11",
        ],
    ),
    _r("a", "1.2", "py39_0"),
    _r("a", "1.2", "py38_0"),
    _r("a", "1.3", "py39_0"),
    _r("b"),
    _r("c", "1.3"),
    _r("c", "1.2"),
    _r("d", "2.0"),
    _r("d", "1.2"),
    _r("d", "1.1"),
    _r("e", "3.0"),
    _r("e", "2.0"),
    _r("e", "1.0"),
    _r("f", "1.0", "2", build_number=2),
    _r("f", "1.0", "1", build_number=1),
    # rattler reads the channel of a dependency as named under its default alias
    # (conda.anaconda.org), so no mirror installs this one, upstream's included: the closure
    # must take it in its stride.
    _r("chan", depends=["conda-forge::g >=1"]),
    _r("g"),
    _r("hh"),
    # hard filters: a dependency whose every build a licence or build filter leaves out, and
    # one that still has a build that passes.
    _r("gplapp", depends=["gplonly"]),
    _r("gplonly", license="GPL-3.0-only"),
    _r("dbgapp", depends=["dbgpin 1.0 debug_*"]),
    _r("dbgpin", "1.0", "debug_0"),
    _r("dbgpin", "1.0", "0"),
    _r("mixapp", depends=["mixed"]),
    _r("mixed", "2.0", license="GPL-2.0-or-later"),
    _r("mixed", "1.0"),
]

HARD = "licenses: {exclude: ['*GPL*']}, builds: {exclude: ['*debug*']}"
# id: (the allowlisted roots, those the reference cannot install either), sorted
CASES = {
    "constrains": (["app", "tool"], []),
    "constrains against depends": (["app2"], []),
    "constrains between roots": (["lib", "zlib"], []),
    "noarch": (["cli"], []),
    "spec forms": (["chan", "forms"], ["chan"]),
    "hard filters": (["dbgapp", "gplapp", "mixapp"], ["dbgapp", "gplapp"]),
}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("upstream")
    for subdir in SUBDIRS:
        packages = {
            f"{r['name']}-{r['version']}-{r['build']}.tar.bz2": r
            for r in RECORDS
            if r["subdir"] == subdir
        }
        (root / subdir).mkdir()
        document = {"info": {"subdir": subdir}, "packages": packages, "packages.conda": {}}
        (root / subdir / "repodata.json").write_text(json.dumps(document))
    with UpstreamServer(root) as server:
        yield server.url


async def _site(site: Path, url: str, filters: str) -> RunReport:
    config = site_config(
        site,
        f"""
        channels:
          {CHANNEL}:
            url: {url}
            subdirs: [linux-64, noarch]
            mode: passive
            filters: {{{filters}}}
        """,
    )
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert not report.failed, report.errors
    return report


def _published(site: Path) -> dict[str, dict[str, Any]]:
    records = {}
    for subdir in SUBDIRS:
        document = read_repodata(site / CHANNEL / subdir)
        records.update(document["packages"])
        assert record_filenames(document) == set(document["packages"])
    return records


@pytest.mark.parametrize("case", CASES)
async def test_a_kept_root_installs_as_it_does_from_upstream(
    case: str, upstream: str, tmp_path: Path
) -> None:
    roots, uninstallable_upstream = CASES[case]
    site, reference = tmp_path / "site", tmp_path / "reference"
    filters = f"names: {{include: {roots}}}, newest_versions: 1, {HARD}"
    report = await _site(site, upstream, f"include_dependencies: true, {filters}")
    await _site(reference, upstream, HARD)
    kept, allowed = _published(site), _published(reference)
    assert set(kept) <= set(allowed)
    # Only what some kept record depends on or constrains is added: a constraint on a name
    # nothing needs or keeps brings nothing in, and a virtual package is no package.
    assert not any(fn.startswith(("other-", "__")) for fn in kept)

    from_site = solver([(site / CHANNEL).as_uri()], tmp_path / "cache-site", virtual=VIRTUAL)
    from_reference = solver(
        [(reference / CHANNEL).as_uri()], tmp_path / "cache-reference", virtual=VIRTUAL
    )
    not_upstream, uninstallable = [], []
    for fn, record in sorted(kept.items()):
        if record["name"] not in roots:
            continue
        spec = f"{record['name']} =={record['version']} {record['build']}"
        if await trio.to_thread.run_sync(from_reference, spec) is None:
            not_upstream.append(record["name"])
            continue
        solution = await trio.to_thread.run_sync(from_site, spec)
        if solution is None:
            uninstallable.append(fn)
            continue
        assert {name for _, name in solution} <= set(kept), fn
    assert (not_upstream, uninstallable) == (uninstallable_upstream, [])
    # The roots asked for together, as a client installing the allowlist does.
    if await trio.to_thread.run_sync(from_reference, *roots) is not None:
        assert await trio.to_thread.run_sync(from_site, *roots) is not None

    # What the hard filters leave no build of is reported, as the README promises.
    [mirror] = report.mirrors
    unsatisfied = {(u.subdir, u.spec, u.needed_by) for u in mirror.unsatisfied}
    expected = {
        "hard filters": {
            ("linux-64", "gplonly", "gplapp-1.0-0.tar.bz2"),
            ("linux-64", "dbgpin 1.0 debug_*", "dbgapp-1.0-0.tar.bz2"),
        },
    }
    assert unsatisfied == expected.get(case, set())
