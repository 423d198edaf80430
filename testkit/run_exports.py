"""CEP-12 ``run_exports.json`` over real mirror runs: the document an upstream of
:func:`testkit.small_channel.small_packages` serves beside its repodata, and what a site
publishes of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import zstandard

from sitegen.config import SiteConfig
from sitegen.sync.report import RunReport
from sitegen.sync.run import MirrorOptions, run_mirror
from testkit.invariant import assert_site_invariant, make_sandbox
from testkit.site import channel_config

ALPHA_CONDA = "alpha-1.0-h0_0.conda"
ALPHA_TAR = "alpha-1.0-h0_0.tar.bz2"
BETA = "beta-2.0-h1_0.conda"
GAMMA = "gamma-0.1-h2_0.tar.bz2"  # left out by the filters of exports_config
EPSILON = "epsilon-3.1-h3_0.conda"


def upstream_document() -> dict[str, Any]:
    """What upstream serves for linux-64: an entry for records the filters keep, leave out
    and upstream does not list, and one that is not sound."""
    return {
        "info": {"subdir": "linux-64", "version": 1},
        "packages": {
            ALPHA_TAR: {"run_exports": {"weak": ["alpha >=1.0,<2.0a0"]}},
            GAMMA: {"run_exports": {"strong": ["gamma"]}},
        },
        "packages.conda": {
            ALPHA_CONDA: {"run_exports": {"weak": ["alpha >=1.0,<2.0a0"]}},
            BETA: {"run_exports": {}},
            EPSILON: {"run_exports": {"weak": "not a list"}},  # not sound: left out
            "zeta-1.0-0.conda": {"run_exports": {"noarch": ["zeta"]}},  # no such record
        },
    }


def conda_build_lookup(channeldata: dict[str, Any], name: str, version: str) -> Any:
    """The run_exports conda-build's ``--use-channeldata`` takes of a dependency from a
    channel's channeldata.json (conda_build.render.get_upstream_pins): a version missing is
    read as one exporting nothing, and the package is not looked into."""
    assert "packages" in channeldata  # else conda-build reads the package instead
    return channeldata["packages"].get(name, {}).get("run_exports", {}).get(version, {})


def serve_exports(root: Path, document: Any, *, zst: bool, plain: bool = True) -> None:
    """Serve ``document`` (bytes as they are, else as JSON) as linux-64's run_exports.json,
    plain and/or as .zst."""
    data = document if isinstance(document, bytes) else json.dumps(document).encode()
    directory = root / "linux-64"
    if plain:
        (directory / "run_exports.json").write_bytes(data)
    if zst:
        (directory / "run_exports.json.zst").write_bytes(zstandard.compress(data))


def withdraw_exports(root: Path) -> None:
    """Upstream serves no run_exports.json for linux-64 any more."""
    for name in ("run_exports.json", "run_exports.json.zst"):
        (root / "linux-64" / name).unlink(missing_ok=True)


def exports_config(tmp_path: Path, url: str, extra: str = "") -> SiteConfig:
    """A site mirroring ``url`` (linux-64 and noarch) without gamma; ``extra``: more of the
    channel's settings."""
    filters = "filters: {names: {exclude: [gamma]}}\n"
    return channel_config(
        make_sandbox(tmp_path), url, subdirs="[linux-64, noarch]", extra=filters + extra
    )


async def mirror_once(config: SiteConfig, *, passive: bool = False) -> RunReport:
    """A run of ``config`` that fails nothing and leaves the site sound."""
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert not report.failed, report.errors
    if not passive:  # (a passive mirror's files are fetched on request)
        assert_site_invariant(config.output)
    return report


def published_exports(config: SiteConfig, subdir: str = "linux-64") -> dict[str, Any] | None:
    """The run_exports.json the first channel publishes for ``subdir`` (its .zst the same
    body), None when it publishes none (nor a .zst)."""
    directory = config.output / config.channels[0].path / subdir
    path = directory / "run_exports.json"
    if not path.exists():
        assert not (directory / "run_exports.json.zst").exists()
        return None
    body = path.read_bytes()
    assert zstandard.decompress((directory / "run_exports.json.zst").read_bytes()) == body
    return json.loads(body)


# What the site publishes of upstream_document(): the records exports_config keeps only.
KEPT = {
    "info": {"subdir": "linux-64", "version": 1},
    "packages": {ALPHA_TAR: {"run_exports": {"weak": ["alpha >=1.0,<2.0a0"]}}},
    "packages.conda": {
        ALPHA_CONDA: {"run_exports": {"weak": ["alpha >=1.0,<2.0a0"]}},
        BETA: {"run_exports": {}},
    },
}
