"""``include_dependencies`` across two channels of one site, judged by a real solver (py-rattler)
with strict channel priority: a client installing a root lists the root's channel first, then
the other, as the closure resolves the root's dependencies.

As in test_closure_solver, the reference is a site of the same upstream without filters; every
root the reference installs, the filtered site installs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from sitegen.sync.run import MirrorOptions, run_mirror
from testkit.client import solver
from testkit.records import raw_record
from testkit.site import read_repodata, site_config
from testkit.upstream import UpstreamServer

pytestmark = pytest.mark.integration

LIBS, APPS = "cloud/libs", "cloud/apps"
# channel -> its upstream records. lib 2.0 rules out zlib 1.3; app, in the other channel, needs
# lib (found in libs only) and zlib, which its own channel has: strict priority takes zlib from
# apps alone, so an older zlib lib 2.0 allows must be there, not only in libs.
UPSTREAM = {
    LIBS: [
        raw_record("lib", "2.0", constrains=["zlib <1.3"]),
        raw_record("lib", "1.0"),
        raw_record("zlib", "1.3"),
        raw_record("zlib", "1.2"),
    ],
    APPS: [
        raw_record("app", depends=["lib", "zlib"]),
        raw_record("zlib", "1.3"),
        raw_record("zlib", "1.2"),
    ],
}
FILTERS = {
    LIBS: "{names: {include: [lib]}, newest_versions: 1}",
    APPS: "{include_dependencies: true, names: {include: [app]}, newest_versions: 1}",
}
ROOTS = {APPS: ["app"]}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("upstream")
    for channel, records in UPSTREAM.items():
        packages = {f"{r['name']}-{r['version']}-{r['build']}.tar.bz2": r for r in records}
        for subdir, section in (("linux-64", packages), ("noarch", {})):
            (root / channel / subdir).mkdir(parents=True)
            document = {"info": {"subdir": subdir}, "packages": section, "packages.conda": {}}
            (root / channel / subdir / "repodata.json").write_text(json.dumps(document))
    with UpstreamServer(root) as server:
        yield server.url


async def _site(site: Path, url: str, filters: dict[str, str]) -> None:
    channels = "".join(
        f"""
          {channel}:
            url: {url}/{channel}
            subdirs: [linux-64]
            mode: passive
            filters: {filters.get(channel, "{}")}"""
        for channel in UPSTREAM
    )
    report = await run_mirror(
        site_config(site, f"channels:{channels}"), MirrorOptions(progress=False)
    )
    assert not report.failed, report.errors


def _kept(site: Path, channel: str) -> dict[str, dict[str, Any]]:
    return read_repodata(site / channel / "linux-64")["packages"]


async def test_a_root_installs_from_its_channel_first_as_it_does_from_upstream(
    upstream: str, tmp_path: Path
) -> None:
    site, reference = tmp_path / "site", tmp_path / "reference"
    await _site(site, upstream, FILTERS)
    await _site(reference, upstream, {})
    uninstallable = []
    for channel, roots in ROOTS.items():
        order = [channel, *(c for c in UPSTREAM if c != channel)]
        from_site = solver([(site / c).as_uri() for c in order], tmp_path / "cache-site")
        from_reference = solver([(reference / c).as_uri() for c in order], tmp_path / "cache-ref")
        for fn, record in sorted(_kept(site, channel).items()):
            if record["name"] not in roots:
                continue
            spec = f"{record['name']} =={record['version']} {record['build']}"
            assert await trio.to_thread.run_sync(from_reference, spec) is not None, fn
            if await trio.to_thread.run_sync(from_site, spec) is None:
                uninstallable.append(fn)
    assert uninstallable == []
    # What the constraint allows comes in where app's zlib is taken from.
    assert "zlib-1.2-0.tar.bz2" in _kept(site, APPS)
