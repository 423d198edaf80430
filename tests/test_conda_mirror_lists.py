"""conda-mirror's blacklist/whitelist written as sitegen filters: the blacklist as excludes, the
whitelist as ``except`` beside them, which takes records back from the excludes of its level."""

from __future__ import annotations

from pathlib import Path

import pytest

from sitegen.cli import EXIT_OK, main
from testkit.site import fns, published
from testkit.upstream import ExampleUpstream

pytestmark = pytest.mark.integration


def test_a_whitelist_is_an_exception_beside_the_excludes(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    # conda-mirror:  blacklist: [{build: 'py2*'}, {license: '*gpl*'}]
    #                whitelist: [{name: readline}, {name: six, version: '1.1*'}]
    site = tmp_path / "site"
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"""\
output: {site}
channels:
  pkgs/main:
    url: {example_upstream.url}
    subdirs: [linux-64]
    filters:
      builds: {{exclude: ['py2*']}}
      licenses: {{exclude: ['*gpl*']}}
      except: [{{name: readline}}, {{name: six, version: '1.1*'}}]
"""
    )
    assert main(["mirror", "-c", str(config), "--no-progress"]) == EXIT_OK
    packages = example_upstream.packages
    upstream = fns(packages, subdir="linux-64")
    # readline is GPL; six has py27 builds; futures only py27 ones; ghostscript is AGPL.
    rescued = fns(packages, "readline") | fns(packages, "six", build="py27")
    blacklisted = rescued | fns(packages, "futures") | fns(packages, "ghostscript")
    assert blacklisted - rescued and rescued
    assert published(site, "pkgs/main", "linux-64") == (upstream - blacklisted) | rescued
