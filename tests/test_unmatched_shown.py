"""The filter entries that matched no record (a typo: ``nunpy``) are named where an operator
looks after a run: on the run's page and by ``sitegen status``, per mirror, not only in the log
and the run record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sitegen.cli import EXIT_OK, main
from sitegen.layout import run_page_path
from sitegen.store.site import Site
from sitegen.sync.history import History
from testkit.upstream import ExampleUpstream

pytestmark = pytest.mark.integration

HEADING = "Filter entries that matched nothing"


def _write_config(config: Path, site: Path, url: str, excepts: str, names: str) -> None:
    config.write_text(
        f"""\
output: {site}
channels:
  pkgs/main:
    filters:
      builds: {{exclude: ['py2*']}}
      except: {excepts}
    mirrors:
      - name: main
        url: {url}
        subdirs: [linux-64]
        filters:
          names: {{include: {names}}}
"""
    )


def _status(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, dict]:
    capsys.readouterr()
    assert main(["status", "-c", str(config)]) == EXIT_OK
    text = capsys.readouterr().out
    assert main(["status", "-c", str(config), "--json"]) == EXIT_OK
    return text, json.loads(capsys.readouterr().out)["mirrors"][0]["last_run"]


def test_entries_matching_nothing_are_on_the_run_page_and_in_status(
    example_upstream: ExampleUpstream, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site, config = tmp_path / "site", tmp_path / "channels.yaml"
    typos = [f"nunpy{i}" for i in range(10)]
    _write_config(
        config,
        site,
        example_upstream.url,
        "['nunpy<2', {name: sixx}, six]",
        f"[numpy, six, {', '.join(typos)}]",
    )
    assert main(["mirror", "-c", str(config), "--no-progress"]) == EXIT_OK
    [run] = History(Site(site)).runs()
    assert len(run.mirrors[0].unmatched) == 12

    # The run page: the first 10, escaped, and how many more the run record names.
    page = (site / run_page_path(run.id)).read_text()
    assert page.count(HEADING) == 1
    assert (
        '<li><code>except</code> <code class="wrap-any">nunpy&lt;2</code>'
        " of channel pkgs/main&#39;s filters</li>"
    ) in page
    assert '<code class="wrap-any">{name: sixx}</code>' in page
    assert (
        '<li><code>names.include</code> <code class="wrap-any">nunpy7</code>'
        " of mirror main&#39;s filters</li>"
    ) in page
    assert "nunpy8" not in page and "nunpy9" not in page
    assert "… and 2 more in the run record." in page
    assert '<code class="wrap-any">six</code>' not in page  # matched records

    # `sitegen status`: the same first 10 under the mirror's last run, all of them in JSON.
    text, last_run = _status(config, capsys)
    assert "    matched nothing: except entry 'nunpy<2' of channel pkgs/main's filters\n" in text
    assert "    matched nothing: names.include entry 'nunpy7' of mirror main's filters\n" in text
    assert "nunpy8" not in text
    assert "    ... 2 more filter entries matched nothing (see the run record)\n" in text
    assert last_run["id"] == run.id
    assert last_run["unmatched"] == [
        {"filters": "channel pkgs/main", "key": "except", "entry": "nunpy<2"},
        {"filters": "channel pkgs/main", "key": "except", "entry": "{name: sixx}"},
        *({"filters": "mirror main", "key": "names.include", "entry": t} for t in typos),
    ]

    # Once every entry matches a record, neither says anything of them.
    _write_config(config, site, example_upstream.url, "['numpy<2', {name: six}]", "[numpy, six]")
    assert main(["mirror", "-c", str(config), "--no-progress"]) == EXIT_OK
    newest = History(Site(site)).runs()[0]
    assert newest.id != run.id and newest.mirrors[0].unmatched == []
    assert HEADING not in (site / run_page_path(newest.id)).read_text()
    text, last_run = _status(config, capsys)
    assert last_run["id"] == newest.id and last_run["unmatched"] == []
    assert "matched nothing" not in text
