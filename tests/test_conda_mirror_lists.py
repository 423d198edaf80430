"""conda-mirror's blacklist/whitelist written as sitegen filters: the blacklist as excludes, the
whitelist as ``except`` beside them, which takes records back from the excludes of its level."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sitegen.cli import EXIT_OK, main
from sitegen.filters.apply import REASON_BUILD_EXCLUDED, REASON_LICENSE_EXCLUDED
from sitegen.layout import filtered_records_path, run_page_path
from sitegen.store.site import Site
from sitegen.sync.history import History
from testkit.site import fns, published
from testkit.upstream import ExampleUpstream

pytestmark = pytest.mark.integration


def test_a_whitelist_is_an_exception_beside_the_excludes(
    example_upstream: ExampleUpstream, tmp_path: Path, capsys: pytest.CaptureFixture[str]
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

    # The run says what its exceptions took back, and from which exclude.
    [run] = History(Site(site)).runs()
    [mirror] = run.mirrors
    excepted = mirror.subdirs["linux-64"].excepted
    readline = len(fns(packages, "readline"))
    six = len(fns(packages, "six", build="py27"))
    assert (readline, six) == (2, 1)  # both formats of readline, one py27 build of six
    assert excepted == {REASON_LICENSE_EXCLUDED: readline, REASON_BUILD_EXCLUDED: six}
    page = (site / run_page_path(run.id)).read_text()
    assert "by exception: 2 license excluded, 1 build excluded" in page
    # The filtered-out list holds what stayed out, not what was taken back.
    filtered = json.loads((site / filtered_records_path(run.id)).read_text())
    rows = filtered["mirrors"][0]["subdirs"]["linux-64"]
    assert {row[0] for row in rows} == {"futures", "ghostscript"}
    # `sitegen status` says it beside the records kept.
    capsys.readouterr()
    assert main(["status", "-c", str(config)]) == EXIT_OK
    by_exception = " records kept (3 by exception: 2 license excluded, 1 build excluded);"
    assert by_exception in capsys.readouterr().out
    assert main(["status", "-c", str(config), "--json"]) == EXIT_OK
    last_run = json.loads(capsys.readouterr().out)["mirrors"][0]["last_run"]
    assert last_run["excepted"] == excepted
