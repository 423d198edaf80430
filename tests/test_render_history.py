"""The history pages of completed, failed, running and interrupted runs, and rendering from
the command line."""

from __future__ import annotations

import json
import socket
import textwrap
import time
from pathlib import Path

import pytest

from sitegen.cli import main
from sitegen.layout import run_page_path
from sitegen.store.site import Site
from sitegen.sync.history import History
from sitegen.sync.report import RUNNING, RunReport
from sitegen.tools.example_channel import PackageSpec
from sitegen.web.format import iso_time
from sitegen.web.private import ledger_hides
from sitegen.web.render import render_site
from testkit.local import drop_all, local_config
from testkit.rendered import (
    CHANNELS,
    FULL,
    assert_links_resolve,
    demo_config,
    distinct_run_ids,
    mtimes,
    page_text,
)
from testkit.site import mirror_unchecked
from testkit.upstream import ExampleUpstream

pytestmark = pytest.mark.integration


unique_run_ids = pytest.fixture(autouse=True, name="unique_run_ids")(distinct_run_ids)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens once the socket is closed


async def test_history_shows_completed_failed_running_and_interrupted_runs(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    site = tmp_path / "site"
    good = demo_config(site, example_upstream.url)
    completed = await mirror_unchecked(good)
    assert completed.status == "completed"

    # A run killed outright leaves its record 'running'.
    history = History(Site(site))
    killed = RunReport(id="20990101T000000Z-99", started=time.time(), status=RUNNING, pid=99)
    history.save(killed)
    render_site(good)
    runs = json.loads(page_text(site, "history/history.json"))["runs"]
    assert [r["status"] for r in runs] == ["running", "completed"]
    assert "badge-running" in page_text(site, "history/index.html")

    # The next run cannot reach upstream: it fails and marks the killed run interrupted.
    bad = demo_config(site, closed_port_url())
    failed = await mirror_unchecked(bad)
    assert failed.status == "failed"
    render_site(bad)
    runs = json.loads(page_text(site, "history/history.json"))["runs"]
    assert [r["status"] for r in runs] == ["failed", "interrupted", "completed"]
    assert [r["id"] for r in runs] == [failed.id, killed.id, completed.id]
    page = page_text(site, "history/index.html")
    positions = [page.index(f'id="run-{r["id"]}"') for r in runs]
    assert positions == sorted(positions)  # newest first
    for status in ("failed", "interrupted", "completed"):
        assert f"badge-{status}" in page
    failed_page = page_text(site, f"history/{failed.id}.html")
    assert "could not be read" in failed_page  # the subdir kept its previous state
    # One vocabulary: a subdir's count on the run page counts files, and says so.
    assert '<th class="n">Files</th>' in failed_page and ">Packages<" not in failed_page
    assert failed_page.count('class="errors"') >= 1
    interrupted_page = page_text(site, f"history/{killed.id}.html")
    assert "interrupted before it finished" in interrupted_page
    assert "not recorded" in interrupted_page  # no end time
    completed_run = runs[2]
    assert completed_run["totals"]["added"] == sum(c["added"] for c in completed_run["channels"])
    assert completed_run["totals"]["added"] > 0
    assert completed_run["mirrors"][1]["excluded"]["not in allowlist"] > 0
    # The landing page: last status failed, last successful sync is the completed run.
    landing = page_text(site, "index.html")
    assert "badge-failed" in landing
    assert iso_time(completed.ended) in landing
    assert_links_resolve(site)


DAMAGED_ROWS = {
    "approval without spec": {"approvals": [{"action": "approve", "channel": "internal/own"}]},
    "dependency row without keys": {"unsatisfied": [{"subdir": "linux-64"}]},
    "advisory row without file": {"advisories_blocked": [{"subdir": "linux-64"}]},
}


@pytest.mark.parametrize("what", sorted(DAMAGED_ROWS))
async def test_a_run_record_with_a_damaged_row_is_left_out_and_its_records_unserved(
    tmp_path: Path, what: str
) -> None:
    """A record whose types fit but whose row lacks a field the pages read is passed over
    like any unreadable record (the pages render without it), and, as it may name anything,
    the web server configuration keeps the records from everyone."""
    folder = tmp_path / "folder"
    drop_all(folder, [PackageSpec("zlib", "1.0", "h0_0")])
    site = tmp_path / "site"
    config = local_config(site, folder)
    good = await mirror_unchecked(config)
    assert not ledger_hides(config)
    damaged = {"id": "20990101T000000Z", "started": good.started + 1, "status": "completed"}
    row = DAMAGED_ROWS[what]
    if "approvals" in row:
        damaged.update(row)
    else:
        damaged["mirrors"] = [
            {"name": "internal-own", "channel": "internal/own", "source": str(folder), **row}
        ]
    (site / "history/runs/20990101T000000Z.json").write_text(json.dumps(damaged))
    render_site(config)
    runs = json.loads(page_text(site, "history/history.json"))["runs"]
    assert [r["id"] for r in runs] == [good.id]
    assert not (site / run_page_path("20990101T000000Z")).exists()
    assert ledger_hides(config)


def test_cli_mirror_renders_and_render_needs_no_network(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    site = tmp_path / "site"
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {site}\n" + textwrap.dedent(CHANNELS.format(url=example_upstream.url))
    )
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 0
    assert (site / "index.html").is_file() and (site / FULL / "packages/numpy.html").is_file()
    before = mtimes(site)
    example_upstream.server.stop()  # render reads only what is on disk
    example_upstream.server.reset()
    (site / "index.html").unlink()
    assert main(["render", "-c", str(config_path)]) == 0
    assert (site / "index.html").is_file()
    assert example_upstream.server.requests == []
    after = mtimes(site)
    assert {k: v for k, v in after.items() if k != "index.html"} == {
        k: v for k, v in before.items() if k != "index.html"
    }
    # A failed run renders too: its page shows the failure.
    config_path.write_text(
        f"output: {site}\n" + textwrap.dedent(CHANNELS.format(url=closed_port_url()))
    )
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 1
    runs = json.loads(page_text(site, "history/history.json"))["runs"]
    assert runs[0]["status"] == "failed"
    assert (site / runs[0]["page"]).is_file()
