"""A real client installs from the mirror: py-rattler solves and installs numpy from the site
served by real nginx, using packages that only include_dependencies brought in."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
import trio

from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import PackageSpec
from testkit.client import make_gateway, solve_and_install, solve_records
from testkit.local import drop
from testkit.site import (
    assert_channel_consistent,
    channel_config,
    fns,
    mirror_numpy_with_dependencies,
    published,
    site_config,
)
from testkit.upstream import ExampleUpstream

pytestmark = pytest.mark.integration

CHANNEL = "cloud/example"


async def test_rattler_installs_numpy_from_the_mirror(
    example_upstream: ExampleUpstream, nginx_server_factory, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    report = await mirror_numpy_with_dependencies(site, example_upstream.url)
    assert_channel_consistent(site, CHANNEL)
    packages = example_upstream.packages
    # The mirror holds numpy and what it needs, and nothing else of the upstream channel.
    assert not published(site, CHANNEL, "linux-64") & (
        fns(packages, "readline") | fns(packages, "blas") | fns(packages, "futures")
    )
    added = {d.file for d in report.mirrors[0].dependencies_added}
    assert fns(packages, "zlib") <= added and fns(packages, "libopenblas", "0.3.27") <= added

    nginx = nginx_server_factory(site)
    mirror_url = f"{nginx.url}/{CHANNEL}"
    example_upstream.server.reset()
    installed = await trio.to_thread.run_sync(
        lambda: solve_and_install(
            [mirror_url], ["numpy"], tmp_path / "env", cache_dir=tmp_path / "cache"
        )
    )

    by_name = {p.name: p for p in installed}
    assert set(by_name) == {"numpy", "python", "libopenblas", "zlib"}
    assert (by_name["numpy"].version, by_name["python"].version) == ("2.1.0", "3.12.4")
    # zlib and libopenblas are on the mirror only because numpy needs them.
    for name in ("zlib", "libopenblas"):
        assert by_name[name].file_name in added
    for package in installed:
        assert package.channel.rstrip("/") == mirror_url
        assert package.url == f"{mirror_url}/linux-64/{package.file_name}"
        payload = tmp_path / "env" / "share" / package.name / f"{package.version}.txt"
        assert payload.is_file()
    assert example_upstream.server.requests == []  # the client never reached upstream
    # The solve read the mirror's repodata through nginx (logged long before the installs end).
    assert nginx.access_log_lines_with(f" /{CHANNEL}/linux-64/repodata.json")


@pytest.mark.parametrize(
    ("zstd", "bz2", "variant"),
    [(True, True, "repodata.json.zst"), (False, True, "repodata.json.bz2"), (False, False, "")],
)
async def test_every_published_repodata_variant_reads_the_same(
    example_upstream: ExampleUpstream,
    nginx_server_factory,
    tmp_path: Path,
    zstd: bool,
    bz2: bool,
    variant: str,
) -> None:
    """rattler reads the .zst, the .bz2 (single-stream: rattler 0.28 stops at the end of a
    first bz2 stream) or the plain JSON, and solves the same environment from each."""
    site = tmp_path / "site"
    config = replace(channel_config(site, example_upstream.url), repodata_bz2=True)
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert not report.failed
    nginx = nginx_server_factory(site)
    mirror_url = f"{nginx.url}/{CHANNEL}"
    gateway = make_gateway(tmp_path / "cache", zstd=zstd, bz2=bz2)
    records = await trio.to_thread.run_sync(
        lambda: asyncio.run(
            solve_records([mirror_url], ["numpy"], cache_dir=tmp_path, gateway=gateway)
        )
    )
    chosen = sorted((r.name.normalized, str(r.version)) for r in records)
    assert chosen == [
        ("libopenblas", "0.3.27"),
        ("numpy", "2.1.0"),
        ("python", "3.12.4"),
        ("zlib", "1.3.1"),
    ]
    fetched = nginx.access_log_lines_with("/linux-64/repodata.json")
    expected = variant or "repodata.json "
    assert any(f"/linux-64/{expected}" in line for line in fetched), fetched


async def test_rattler_installs_a_local_build_whose_dependency_is_mirrored(
    example_upstream: ExampleUpstream, nginx_server_factory, tmp_path: Path
) -> None:
    """An internal build beside a mirrored subset, in one channel: the client solves the local
    package and takes its dependency from the mirrored part, all through nginx."""
    folder = tmp_path / "incoming"
    app = PackageSpec("inhouse-app", "3.1", "h0_0", depends=("zlib >=1.2.13",), formats=("conda",))
    drop(folder, app, "conda")
    site = tmp_path / "site"
    config = site_config(
        site,
        f"""
channels:
  {CHANNEL}:
    mirrors:
      - name: builds
        path: {folder}
        subdirs: [linux-64]
        filters: {{include_dependencies: true}}
      - name: forge
        url: {example_upstream.url}
        subdirs: [linux-64]
        filters:
          specs: {{include: [inhouse-app]}}
""",
    )
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert not report.failed
    assert_channel_consistent(site, CHANNEL)
    nginx = nginx_server_factory(site)
    mirror_url = f"{nginx.url}/{CHANNEL}"
    installed = await trio.to_thread.run_sync(
        lambda: solve_and_install(
            [mirror_url], ["inhouse-app"], tmp_path / "env", cache_dir=tmp_path / "cache"
        )
    )
    assert {p.name for p in installed} == {"inhouse-app", "zlib"}
    for package in installed:
        assert package.url == f"{mirror_url}/linux-64/{package.file_name}"
    assert (tmp_path / "env" / "share" / "inhouse-app" / "3.1.txt").is_file()
    assert nginx.access_log_lines_with(f" /{CHANNEL}/linux-64/inhouse-app-3.1-h0_0.conda")
