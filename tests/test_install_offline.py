"""An air-gapped machine installs from a copy of the site on disk: the published tree is a
conda channel by ``file://`` URL, and by name under a ``file://`` channel alias, without a web
server or the upstream."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import trio
from rattler import Channel, ChannelConfig

from testkit.client import solve_and_install
from testkit.site import mirror_numpy_with_dependencies
from testkit.upstream import ExampleUpstream

pytestmark = pytest.mark.integration

CHANNEL = "cloud/example"


async def test_rattler_installs_from_a_copy_of_the_site_by_file_url(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    built = tmp_path / "built"
    await mirror_numpy_with_dependencies(built, example_upstream.url)
    # Carried to the air-gapped machine: another directory, the upstream out of reach.
    site = tmp_path / "media" / "site"
    shutil.copytree(built, site)
    shutil.rmtree(built)
    example_upstream.server.stop()

    by_url = f"{site.as_uri()}/{CHANNEL}"
    by_alias = Channel(CHANNEL, ChannelConfig(channel_alias=f"{site.as_uri()}/"))
    assert by_alias.base_url.rstrip("/") == by_url
    for name, channel in (("url", by_url), ("alias", by_alias)):
        installed = await trio.to_thread.run_sync(
            lambda channel=channel, name=name: solve_and_install(
                [channel], ["numpy"], tmp_path / f"env-{name}", cache_dir=tmp_path / f"c-{name}"
            )
        )
        by_name = {p.name: p for p in installed}
        assert set(by_name) == {"numpy", "python", "libopenblas", "zlib"}
        for package in installed:
            assert package.url == f"{by_url}/linux-64/{package.file_name}"
            payload = tmp_path / f"env-{name}" / "share" / package.name / f"{package.version}.txt"
            assert payload.is_file()
