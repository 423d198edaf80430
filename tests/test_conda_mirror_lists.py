"""conda-mirror's blacklist/whitelist written as sitegen filters: a whitelist that rescues
blacklisted records becomes a second mirror of the same URL that keeps only them, as every
filter level must pass and the mirrors of a channel add up."""

from __future__ import annotations

from pathlib import Path

import pytest

from sitegen.sync.run import MirrorOptions, run_mirror
from testkit.site import fns, published, site_config
from testkit.upstream import ExampleUpstream

pytestmark = pytest.mark.integration


async def test_a_whitelist_that_rescues_is_a_second_mirror(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    # conda-mirror:  blacklist: [{build: 'py2*'}, {license: '*gpl*'}]
    #                whitelist: [{name: readline}]
    site = tmp_path / "site"
    url = example_upstream.url
    config = site_config(
        site,
        f"""
        channels:
          pkgs/main:
            mirrors:
              - name: main
                url: {url}
                subdirs: [linux-64]
                filters:
                  builds: {{exclude: ['py2*']}}
                  licenses: {{exclude: ['*gpl*']}}
              - name: main-whitelist
                url: {url}
                subdirs: [linux-64]
                filters:
                  names: {{include: [readline]}}
        """,
    )
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert not report.failed, report.errors
    packages = example_upstream.packages
    upstream = fns(packages, subdir="linux-64")
    blacklisted = (
        fns(packages, "futures") | fns(packages, "six", build="py27") | fns(packages, "ghostscript")
    )
    blacklisted |= fns(packages, "readline")  # matched by {license: '*gpl*'} ...
    rescued = fns(packages, "readline")  # ... and taken back by the whitelist
    assert blacklisted - rescued and rescued
    assert published(site, "pkgs/main", "linux-64") == (upstream - blacklisted) | rescued
