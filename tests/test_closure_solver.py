"""An allowlisted mirror with ``include_dependencies`` installs what it keeps, as judged by a
real solver (py-rattler).

Upstream is the real pytorch ``linux-64`` repodata (../shared/data) beside a channel of stub
records for every name it depends on but does not hold (python, numpy, cudatoolkit...), each in
the versions and build strings its specs name, both served over HTTP and mirrored as two
channels of one site, metadata only (``mode: passive``). For each filter combination, the
reference is a site of the same upstream under the combination's hard filters alone (what no
closure may bring back); the property: every kept pytorch record that a client installs from the
reference, it installs from the filtered site, and nothing the reference leaves out is in the
solution.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from sitegen.sync.run import MirrorOptions, run_mirror
from testkit.client import solver
from testkit.records import raw_record
from testkit.site import published, read_repodata, site_config
from testkit.upstream import UpstreamServer

pytestmark = pytest.mark.integration

PYTORCH = Path("/work/shared/data/pytorch-linux-64-repodata.json")
TORCH, DEPS = "cloud/pytorch", "cloud/deps"
SAMPLE = 40  # kept records solved per case, spread over the sorted filenames


def _write(channel: Path, subdir: str, packages: dict[str, Any], conda: dict[str, Any]) -> None:
    (channel / subdir).mkdir(parents=True)
    document = {"info": {"subdir": subdir}, "packages": packages, "packages.conda": conda}
    (channel / subdir / "repodata.json").write_text(json.dumps(document))


def _stubs(records: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A record without dependencies for each name the records need but do not hold, in every
    version any spec of it writes (``>=3.8,<3.9.0a0`` offers 3.8 and 3.9.0a0) and build string
    (its ``*`` as ``0``), so that an upstream solve fails only for the records themselves."""
    held = {r["name"] for r in records.values()}
    specs: dict[str, set[str]] = {}
    for record in records.values():
        for dep in record.get("depends") or ():
            name, *rest = dep.split()
            if name not in held and not name.startswith("__"):
                specs.setdefault(name, set()).add(" ".join(rest) or "*")
    stubs = {}
    for name, texts in specs.items():
        versions, builds = {"1.0"}, {"0"}
        for text in texts:
            version, *build = text.split()
            versions.update(m.group(0) for m in re.finditer(r"\d+(\.\d+)*(a0)?", version))
            builds.update(b.replace("*", "0") for b in build)
        for version, build in itertools.product(sorted(versions), sorted(builds)):
            stubs[f"{name}-{version}-{build}.tar.bz2"] = raw_record(name, version, build)
    return stubs


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not PYTORCH.is_file():
        pytest.skip(f"reference data {PYTORCH} not available")
    document = json.loads(PYTORCH.read_bytes())
    root = tmp_path_factory.mktemp("upstream")
    _write(root / "pytorch", "linux-64", document["packages"], document["packages.conda"])
    _write(root / "pytorch", "noarch", {}, {})
    _write(root / "deps", "linux-64", _stubs(document["packages"]), {})
    _write(root / "deps", "noarch", {}, {})
    with UpstreamServer(root) as server:
        yield server.url


async def _site(site: Path, url: str, filters: str) -> None:
    config = site_config(
        site,
        f"""
        channels:
          {TORCH}:
            url: {url}/pytorch
            subdirs: [linux-64]
            mode: passive
            filters: {filters}
          {DEPS}:
            url: {url}/deps
            subdirs: [linux-64]
            mode: passive
        """,
    )
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert not report.failed, report.errors


def _channels(site: Path) -> list[str]:
    return [(site / TORCH).as_uri(), (site / DEPS).as_uri()]


# id: (the filters, the hard filters among them)
CASES = {
    "allowlist": ("{names: {include: [torchvision, torchaudio, ignite, torchtriton]}}", "{}"),
    "newest versions": (
        "{names: {include: [ignite, torchvision, torchtext, torchdata]}, newest_versions: 1}",
        "{}",
    ),
    "licenses": (
        "{names: {include: [torchvision, ignite]}, licenses: {exclude: ['*GPL*']}}",
        "{licenses: {exclude: ['*GPL*']}}",
    ),
    "builds": (
        "{names: {include: [torchvision, torchaudio]}, builds: {exclude: ['*cuda*']},"
        " newest_versions: 3}",
        "{builds: {exclude: ['*cuda*']}}",
    ),
    "specs": (
        "{specs: {include: ['torchvision >=0.10'], exclude: ['pytorch 1.10.*']}}",
        "{specs: {exclude: ['pytorch 1.10.*']}}",
    ),
}


@pytest.mark.parametrize("case", CASES)
async def test_a_kept_record_installs_as_it_does_from_upstream(
    case: str, upstream: str, tmp_path: Path
) -> None:
    filters, hard = CASES[case]
    site, reference = tmp_path / "site", tmp_path / "reference"
    await _site(site, upstream, filters.replace("{", "{include_dependencies: true, ", 1))
    await _site(reference, upstream, hard)
    kept_files = published(site, TORCH, "linux-64")
    allowed = published(reference, TORCH, "linux-64")
    document = read_repodata(site / TORCH / "linux-64")
    kept = {**document["packages"], **document["packages.conda"]}
    assert kept_files == set(kept) and kept_files <= allowed
    step = max(1, len(kept) // SAMPLE)
    sample = sorted(kept)[::step]

    from_site = solver(_channels(site), tmp_path / "cache-site")
    from_reference = solver(_channels(reference), tmp_path / "cache-reference")
    uninstallable = []
    for fn in sample:
        record = kept[fn]
        spec = f"{record['name']} =={record['version']} {record['build']}"
        if await trio.to_thread.run_sync(from_reference, spec) is None:
            continue  # upstream cannot install it either
        solution = await trio.to_thread.run_sync(from_site, spec)
        if solution is None:
            uninstallable.append(fn)
            continue
        torch_files = {name for channel, name in solution if channel.rstrip("/").endswith(TORCH)}
        assert torch_files <= kept_files & allowed, fn
    assert uninstallable == []
