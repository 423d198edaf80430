"""A real client installs from the mirror: py-rattler solves and installs numpy from the site
served by real nginx, using packages that only include_dependencies brought in."""

from __future__ import annotations

from pathlib import Path

import trio
from support.client import solve_and_install
from support.site import assert_channel_consistent, fns, published, site_config
from support.upstream import ExampleUpstream

from sitegen.mirror import MirrorOptions, run_mirror

CHANNEL = "cloud/example"


async def test_rattler_installs_numpy_from_the_mirror(
    example_upstream: ExampleUpstream, nginx_server_factory, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    config = site_config(
        site,
        f"""
        channels:
          {CHANNEL}:
            url: {example_upstream.url}
            subdirs: [linux-64]
            filters:
              specs: {{include: [numpy]}}
              include_dependencies: true
        """,
    )
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert not report.failed
    assert_channel_consistent(site, CHANNEL)
    packages = example_upstream.packages
    # The mirror holds numpy and what it needs, and nothing else of the upstream channel.
    assert not published(site, CHANNEL, "linux-64") & (
        fns(packages, "readline") | fns(packages, "blas") | fns(packages, "futures")
    )
    added = {d["file"] for d in report.mirrors[0].dependencies_added}
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
    assert any(f" /{CHANNEL}/linux-64/repodata.json" in line for line in nginx.access_log_lines())
