"""Run records that sitegen did not write as they are (hand-edited, damaged, dated by a clock
set wrong): real runs through the CLI go on, and the history pages and the feed show them
safely or not at all."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from sitegen.cli import EXIT_FAILED, EXIT_OK, main
from sitegen.layout import runs_dir
from testkit.upstream import ExampleUpstream

pytestmark = pytest.mark.integration

CHANNEL = "c/x"


def configure(tmp_path: Path, url: str) -> tuple[Path, Path]:
    site, config = tmp_path / "site", tmp_path / "channels.yaml"
    config.write_text(
        f"output: {site}\nchannels:\n  {CHANNEL}:\n    url: {url}\n    subdirs: [linux-64]\n"
        "    filters: {names: {include: [numpy, zlib]}}\n"
    )
    return site, config


def mirror(config: Path) -> int:
    return main(["mirror", "-c", str(config), "--no-progress"])


def records(site: Path) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_bytes()) for p in (site / "history/runs").glob("*.json")}


def history_ids(site: Path) -> list[str]:
    return [run["id"] for run in json.loads((site / "history/history.json").read_bytes())["runs"]]


def write_record(site: Path, record: dict[str, Any], text: str | None = None) -> None:
    """``record`` as the ledger file of its id; ``text``: the file's text instead of JSON's."""
    path = site / "history/runs" / f"{record['id']}.json"
    path.write_text(json.dumps(record, indent=1) if text is None else text)


def test_a_lone_surrogate_in_a_record_is_shown_and_stops_no_render(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    """JSON reads a lone surrogate escape ("\\ud800") as text no page can be written in: one
    such record, hand-edited or damaged, stopped every later render (pages, history.json,
    feed). The record is shown with U+FFFD in its place."""
    site, config = configure(tmp_path, example_upstream.url)
    assert mirror(config) == EXIT_OK
    (first,) = records(site).values()
    edited = {**first, "id": "20000101T000000.000Z-1", "started": first["started"] - 60}
    edited["errors"] = ["PLACEHOLDER-1"]
    edited["channels"][0]["added"][0] = "PLACEHOLDER-2"
    text = json.dumps(edited, indent=1)
    text = text.replace("PLACEHOLDER-1", "bad \\ud800 text").replace(
        "PLACEHOLDER-2", "numpy\\udfff-9-0.conda"
    )
    write_record(site, edited, text)
    assert main(["render", "-c", str(config)]) == EXIT_OK
    assert mirror(config) == EXIT_OK
    (newest,) = set(records(site)) - {first["id"], edited["id"]}
    assert history_ids(site) == [newest, first["id"], edited["id"]]
    page = (site / "history/20000101T000000.000Z-1.html").read_text(encoding="utf-8")
    assert "bad \ufffd text" in page and "numpy\ufffd-9-0.conda" in page
    assert newest in (site / "history/index.html").read_text(encoding="utf-8")
    ET.fromstring((site / "history/feed.atom").read_bytes())


def test_the_feed_stays_well_formed_xml_whatever_a_record_names(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    """Characters XML 1.0 does not allow even escaped (C0 controls but tab and line ends,
    U+FFFE, U+FFFF) in the files a record lists made the feed unreadable to every feed reader:
    they are shown as U+FFFD."""
    site, config = configure(tmp_path, example_upstream.url)
    assert mirror(config) == EXIT_OK
    (first,) = records(site).values()
    edited = {**first, "id": "20000101T000000.000Z-1", "started": first["started"] + 1}
    edited["ended"] = edited["started"] + 1
    hostile = [
        "ctl\x01-1\x08-0.conda",
        "vt\x0b-1\x1f-0.conda",
        "nul\x00-1-0.conda",
        "ff\ufffe-1\uffff-0.conda",
    ]
    edited["channels"][0]["added"] = hostile
    write_record(site, edited)
    assert main(["render", "-c", str(config)]) == EXIT_OK
    feed = ET.fromstring((site / "history/feed.atom").read_bytes())
    ns = {"a": "http://www.w3.org/2005/Atom"}
    titles = {e.findtext("a:title", namespaces=ns) for e in feed.findall("a:entry", ns)}
    assert {
        f"ctl\ufffd 1\ufffd in {CHANNEL}",
        f"vt\ufffd 1\ufffd in {CHANNEL}",
        f"nul\ufffd 1 in {CHANNEL}",
        f"ff\ufffd 1\ufffd in {CHANNEL}",
    } <= titles


def test_a_version_with_a_huge_number_of_builds_gives_the_feed_a_bounded_entry(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    """The feed names a few files per package version: a first run of an upstream serving
    200,000 builds of one version listed them all in its one entry (7 MB of feed, each time a
    reader polls it, and as much kept by the render between runs)."""
    site, config = configure(tmp_path, example_upstream.url)
    assert mirror(config) == EXIT_OK
    (first,) = records(site).values()
    edited = {**first, "id": "20000101T000000.000Z-1", "started": first["started"] + 1}
    edited["ended"] = edited["started"] + 1
    edited["channels"][0]["added"] = [f"many-1.0-h{n:08x}_0.conda" for n in range(200_000)]
    write_record(site, edited)
    assert main(["render", "-c", str(config)]) == EXIT_OK
    assert (site / "history/feed.atom").stat().st_size < 100_000
    assert sum(p.stat().st_size for p in (site / ".sitegen/render").iterdir()) < 1_000_000
    feed = ET.fromstring((site / "history/feed.atom").read_bytes())
    ns = {"a": "http://www.w3.org/2005/Atom"}
    (entry,) = (
        e for e in feed.findall("a:entry", ns) if "many 1.0" in e.findtext("a:title", "", ns)
    )
    summary = entry.findtext("a:summary", "", ns)
    assert summary.startswith("linux-64/many-1.0-h00000000_0.conda, ")
    assert summary.endswith(", and 199,980 more")


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens once the socket is closed


def test_a_run_dated_in_the_future_is_not_the_last_run_the_pages_show(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    """A run recorded while the clock ran ahead (set back since) counts as the oldest, as for
    ``sitegen status`` and ``--due``: the landing page showed it as each mirror's last run and
    last successful sync, and the history as the newest run, until the clock caught up, over
    every run since (failing ones too)."""
    site, config = configure(tmp_path, example_upstream.url)
    assert mirror(config) == EXIT_OK
    (first,) = records(site).values()
    ahead = {**first, "id": "20900101T000000.000Z-1", "started": 3786912000.0}
    ahead["ended"] = ahead["started"] + 1
    write_record(site, ahead)
    configure(tmp_path, closed_port_url())
    assert mirror(config) == EXIT_FAILED
    (failed,) = set(records(site)) - {first["id"], ahead["id"]}
    assert history_ids(site) == [failed, first["id"], ahead["id"]]
    landing = (site / "index.html").read_text(encoding="utf-8")
    assert "badge-failed" in landing and "badge-completed" not in landing
    assert "2090" not in landing
    feed = ET.fromstring((site / "history/feed.atom").read_bytes())
    assert not feed.findtext("{http://www.w3.org/2005/Atom}updated", "").startswith("2090")


def test_retention_keeps_the_removal_that_makes_a_mirror_due_again(
    tmp_path: Path, example_upstream: ExampleUpstream, capsys: pytest.CaptureFixture[str]
) -> None:
    """A channel removed with `sitegen remove` and configured again is built by the next
    `mirror --due`: its mirror's last completed run is older than the removal. Retention
    removed the removal's record past keep_runs (its mirror's last completed run, which it
    keeps, stayed), and the channel stayed away until the mirror's schedule came due again."""
    site, config = tmp_path / "site", tmp_path / "channels.yaml"
    busy = (
        f"  c/busy:\n    mirrors:\n      - name: busy\n        url: {example_upstream.url}\n"
        "        subdirs: [linux-64]\n        filters: {names: {include: [zlib]}}\n"
    )
    forge = (
        f"  {CHANNEL}:\n    mirrors:\n      - name: forge\n        url: {example_upstream.url}\n"
        "        subdirs: [linux-64]\n        schedule: '@monthly'\n"
    )

    def configure_channels(*channels: str) -> None:
        config.write_text(
            f"output: {site}\nhistory: {{keep_runs: 2}}\nchannels:\n{''.join(channels)}"
        )

    def forge_due() -> bool:
        capsys.readouterr()
        assert main(["status", "--json", "-c", str(config)]) == EXIT_OK
        status = json.loads(capsys.readouterr().out)
        (found,) = [m for m in status["mirrors"] if m["name"] == "forge"]
        return found["due"]

    configure_channels(forge, busy)
    assert main(["mirror", "--due", "--no-progress", "-c", str(config)]) == EXIT_OK
    assert (site / CHANNEL / "linux-64/repodata.json").is_file()
    configure_channels(busy)
    assert main(["remove", CHANNEL, "-c", str(config)]) == EXIT_OK
    assert not (site / CHANNEL).exists()
    for _ in range(3):  # the busy mirror runs on; the ledger keeps its newest two runs
        assert mirror(config) == EXIT_OK
    configure_channels(forge, busy)
    assert forge_due()
    assert main(["mirror", "--due", "--no-progress", "-c", str(config)]) == EXIT_OK
    assert (site / CHANNEL / "linux-64/repodata.json").is_file()
    assert not forge_due()


def test_a_record_whose_id_ends_in_a_line_end_gets_no_page(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    """Only ids of a run's shape become page names: ``1\\n`` passed the check (a regular
    expression's ``$`` matches before a final line end) and the site published a page whose
    name ends in a line end."""
    site, config = configure(tmp_path, example_upstream.url)
    assert mirror(config) == EXIT_OK
    (first,) = records(site).values()
    write_record(site, {**first, "id": "1\n", "started": first["started"] - 60})
    assert main(["render", "-c", str(config)]) == EXIT_OK
    assert history_ids(site) == [first["id"]]
    assert not [p.name for p in (site / "history").iterdir() if "\n" in p.name]
    ET.fromstring((site / "history/feed.atom").read_bytes())


def test_a_named_pipe_named_like_a_record_holds_no_command(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    """A named pipe under a record's name held every command reading the ledger (render,
    status, mirror) until a writer came, a stop signal included. It is passed over as any
    unreadable record is (as a device, through a link, is: read, it would never end)."""
    site, config = configure(tmp_path, example_upstream.url)
    assert mirror(config) == EXIT_OK
    (first,) = records(site)
    os.mkfifo(runs_dir(site) / "20000101T000000.000Z-1.json")
    for command in (["render"], ["status", "--json"]):
        done = subprocess.run(
            [sys.executable, "-m", "sitegen", *command, "-c", str(config)],
            capture_output=True,
            text=True,
            timeout=60,  # a hang guard: reading the pipe waits for a writer
            check=False,
        )
        assert done.returncode == EXIT_OK, done.stderr
    assert history_ids(site) == [first]
    assert json.loads(done.stdout)["mirrors"][0]["last_run"]["id"] == first
