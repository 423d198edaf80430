"""channeldata.json's run_exports over real mirror runs, read as conda-build's
``--use-channeldata`` reads them: those of an upstream's CEP-12 ``run_exports.json`` and of a
local source's ``info/run_exports.json``, in one channel; kept by verify's repair."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sitegen.config import SiteConfig
from sitegen.tools.verify import verify_site
from testkit.invariant import make_sandbox
from testkit.local import index_of, info_members, write_conda
from testkit.run_exports import (
    conda_build_lookup,
    exports_config,
    mirror_once,
    serve_exports,
    upstream_document,
)
from testkit.site import CHANNEL, mirror_unchecked, site_config
from testkit.small_channel import set_repodata
from testkit.upstream import UpstreamServer

pytestmark = pytest.mark.integration

ALPHA_EXPORTS = {"weak": ["alpha >=1.0,<2.0a0"]}


def channeldata(config: SiteConfig) -> dict[str, Any]:
    return json.loads((config.output / CHANNEL / "channeldata.json").read_bytes())


async def test_upstream_and_local_run_exports_reach_conda_build(
    small_upstream: tuple[Path, UpstreamServer], tmp_path: Path
) -> None:
    root, server = small_upstream
    serve_exports(root, upstream_document(), zst=True)
    folder = tmp_path / "incoming"
    folder.mkdir()
    exported = ("info/run_exports.json", json.dumps(["rex >=1.0,<1.1"]).encode())
    write_conda(folder / "rex-1.0-0.conda", [*info_members(index_of("rex")), exported])
    body = f"""
channels:
  {CHANNEL}:
    mirrors:
      - name: builds
        path: {folder}
        subdirs: [linux-64]
      - name: forge
        url: {server.url}
        subdirs: [linux-64, noarch]
"""
    config = site_config(make_sandbox(tmp_path), body)
    await mirror_once(config)
    data = channeldata(config)
    assert conda_build_lookup(data, "alpha", "1.0") == ALPHA_EXPORTS
    # conda-build's bare list of weak exports, as the package holds it.
    assert conda_build_lookup(data, "rex", "1.0") == {"weak": ["rex >=1.0,<1.1"]}
    # Exporting nothing, an entry that is not sound, none served: no run_exports at all.
    for name in ("beta", "epsilon", "delta"):
        assert "run_exports" not in data["packages"][name], name
    assert (await verify_site(config)).problems == []


async def test_verify_repair_writes_them_again(
    small_upstream: tuple[Path, UpstreamServer], tmp_path: Path
) -> None:
    root, server = small_upstream
    serve_exports(root, upstream_document(), zst=True)
    config = exports_config(tmp_path, server.url)
    await mirror_once(config)
    published = channeldata(config)
    assert conda_build_lookup(published, "alpha", "1.0") == ALPHA_EXPORTS
    damaged = json.loads(json.dumps(published))
    del damaged["packages"]["alpha"]
    path = config.output / CHANNEL / "channeldata.json"
    path.write_text(json.dumps(damaged))
    found = [(p.path, p.repaired) for p in (await verify_site(config, repair=True)).problems]
    assert found == [(f"{CHANNEL}/channeldata.json", True)]
    assert channeldata(config) == published


async def test_a_subdir_kept_as_published_keeps_them(
    small_upstream: tuple[Path, UpstreamServer], tmp_path: Path
) -> None:
    """linux-64 cannot be read upstream: the run keeps it as published, and channeldata.json,
    which each run builds afresh, keeps the run_exports of its run_exports.json."""
    root, server = small_upstream
    serve_exports(root, upstream_document(), zst=True)
    config = exports_config(tmp_path, server.url)
    await mirror_once(config)
    published = channeldata(config)
    set_repodata(root, "linux-64", b"not json", zst=b"not zstd")
    report = await mirror_unchecked(config)
    assert report.failed
    data = channeldata(config)
    assert conda_build_lookup(data, "alpha", "1.0") == ALPHA_EXPORTS
    assert data["packages"]["alpha"] == published["packages"]["alpha"]
