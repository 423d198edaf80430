"""The prune after publishing: a package file of a subdir that no published record names goes,
as ``sitegen verify --repair`` removes it (the web server would serve it though no record
vouches for it), a link named like a package file too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sitegen.cli import main
from testkit.site import rewrite_repodata
from testkit.small_channel import CHANNEL, keep_mirrored_small
from testkit.upstream import UpstreamServer

pytestmark = pytest.mark.integration

mirrored = pytest.fixture(name="mirrored")(keep_mirrored_small)

LINUX = "linux-64"
GAMMA = "gamma-0.1-h2_0.tar.bz2"
ALPHA = "alpha-1.0-h0_0.conda"


def test_a_run_prunes_unlisted_package_files_and_links_named_like_them(
    mirrored: tuple[Path, Path, UpstreamServer],
) -> None:
    config, site, server = mirrored
    directory = site / CHANNEL / LINUX
    stray = directory / "zeta-9.9-h0_0.conda"
    stray.write_bytes(b"not listed anywhere")
    link = directory / "eta-1.0-h0_0.tar.bz2"
    link.symlink_to(directory / ALPHA)

    def drop_gamma(document: dict[str, Any]) -> None:
        del document["packages"][GAMMA]

    # Upstream changes, so the run rebuilds the subdir (and prunes after publishing it).
    rewrite_repodata(server.root, LINUX, drop_gamma)
    assert main(["mirror", "-c", str(config), "--no-progress"]) == 0
    assert not (directory / GAMMA).exists()
    assert not stray.exists()
    assert not link.is_symlink()
    assert (directory / ALPHA).is_file()  # the link went, not what it led to
    assert main(["verify", "-c", str(config)]) == 0
