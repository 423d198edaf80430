"""Download statistics of installer folders: their files' downloads counted per folder and
file from access log lines (``combined`` and ``sitegen_stats``), apart from the channels'
counts; kept in the state, rolled into months, in ``stats.json``, on each folder's page, and
dropped by ``sitegen remove FOLDER``; and counted from what real nginx and Apache served."""

from __future__ import annotations

import shutil
import subprocess
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import msgspec
import pytest
import trio

from sitegen import layout
from sitegen.cli import EXIT_OK, main
from sitegen.config import load_config
from sitegen.stats.counter import line_counter
from sitegen.stats.logline import Kind, PathClassifier
from sitegen.stats.report import (
    InstallerFileRow,
    InstallerRow,
    build_doc,
    decode_doc,
    encode_doc,
)
from sitegen.stats.run import run_stats
from sitegen.stats.state import decode_state, encode_state
from sitegen.sync.run import MirrorOptions, run_mirror
from testkit import stats_lines
from testkit.apache import require_server, webconf_server, world_readable_dir
from testkit.installers import serve_index, write_folder
from testkit.require import require_tool
from testkit.stats_lines import CHANNEL, CONDA_UA, PKG, TODAY, count, flat
from testkit.upstream import UpstreamServer

FOLDER = "miniconda"
NESTED = "installers/anaconda"
LATEST = "Miniconda3-latest-Linux-x86_64.sh"
MAC = "Miniconda3-latest-MacOSX-arm64.pkg"
ARCHIVE = "Anaconda3-2024.10-1-Linux-x86_64.sh"
FOLDERS = (FOLDER, NESTED)
CURL = "curl/8.5.0"
# Installers are downloaded by curl and browsers rather than by conda.
line = partial(stats_lines.line, agent=CURL)


# --------------------------------------------------------------------------- paths


@pytest.mark.unit
@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (f"/{FOLDER}/{LATEST}", (Kind.INSTALLER, FOLDER, "", LATEST)),
        (f"/{NESTED}/{ARCHIVE}", (Kind.INSTALLER, NESTED, "", ARCHIVE)),
        (f"/conda/{NESTED}/{ARCHIVE}?x=1", (Kind.INSTALLER, NESTED, "", ARCHIVE)),
        (f"/t/tk-123/{FOLDER}/{LATEST}", (Kind.INSTALLER, FOLDER, "", LATEST)),
        (f"/{FOLDER}/index.html", (Kind.OTHER, "", "", "")),  # the folder's page
        (f"/{FOLDER}/", (Kind.OTHER, "", "", "")),
        (f"/{FOLDER}/.sitegen-tmp-1", (Kind.OTHER, "", "", "")),  # never a folder's file
        (f"/anaconda/{ARCHIVE}", (Kind.OTHER, "", "", "")),  # no folder there
        (f"/{FOLDER}/sub/{LATEST}", (Kind.OTHER, "", "", "")),
        (f"/{CHANNEL}/linux-64/{PKG}", (Kind.PACKAGE, CHANNEL, "linux-64", PKG)),
        (f"/{FOLDER}/%3Cscript%3E.sh", (Kind.HOSTILE, "", "", "")),
        (f"/{FOLDER}/../{LATEST}", (Kind.HOSTILE, "", "", "")),
    ],
)  # fmt: skip
def test_installer_paths_are_classified(path: str, expected: tuple) -> None:
    assert PathClassifier([CHANNEL], FOLDERS).classify(path) == expected


# --------------------------------------------------------------------------- counting


@pytest.mark.unit
def test_installer_downloads_are_counted_per_folder_and_file_apart_from_the_channels() -> None:
    tally = count(
        [
            line(f"/{FOLDER}/{LATEST}", 200, 5000),
            line(f"/conda/{FOLDER}/{LATEST}", 200, 5000, ip="192.0.2.2", fetcher="-"),
            line(f"/{FOLDER}/{LATEST}", 206, 100, ip="192.0.2.3"),  # two ranges, one download
            line(f"/{FOLDER}/{LATEST}", 206, 100, ip="192.0.2.3", fetcher="-"),
            line(f"/{FOLDER}/{LATEST}", 206, 100, ip="192.0.2.4"),  # another client's
            line(f"/{FOLDER}/{LATEST}", 304, 0),  # revalidated: no download
            line(f"/{FOLDER}/{LATEST}", 200, 0, method="HEAD"),
            line(f"/{FOLDER}/gone.sh", 404, 150),
            line(f"/{FOLDER}/index.html", 200, 900),
            line(f"/{NESTED}/{ARCHIVE}", 200, 7000, when="06/Dec/2026:01:00:00 +0000"),
            line(f"/{CHANNEL}/linux-64/{PKG}", 200, 3000, agent=CONDA_UA),
        ],
        installers=FOLDERS,
    )
    day, next_day = "2026-12-05", "2026-12-06"
    assert flat(tally.installers) == {
        (day, FOLDER, LATEST): [4, 10300, 5],
        (next_day, NESTED, ARCHIVE): [1, 7000, 1],
    }
    assert flat(tally.files) == {(day, CHANNEL, "linux-64", PKG): [1, 3000, 1]}
    # Requests count every line; clients, tools and downloads are the channels' alone.
    assert tally.days == {day: [10, 1, 1, 3000], next_day: [1, 0, 0, 0]}
    assert flat(tally.tools) == {(day, "conda", "24.1.2"): 1}
    assert tally.missing == {day: {}, next_day: {}} and tally.skipped == {}
    saved = encode_state(tally, [])
    assert b"192.0.2" not in saved and CURL.encode() not in saved


@pytest.mark.unit
def test_installer_counts_are_kept_rolled_up_and_forgotten_by_folder() -> None:
    tally = count(
        [
            line(f"/{FOLDER}/{LATEST}", when="01/Sep/2026:10:00:00 +0000"),
            line(f"/{FOLDER}/{LATEST}", when="02/Sep/2026:10:00:00 +0000"),
            line(f"/{FOLDER}/{MAC}", 206, 10),
            line(f"/{NESTED}/{ARCHIVE}"),
        ],
        installers=FOLDERS,
    )
    again, _cursors = decode_state(encode_state(tally, []))
    assert again.installers == tally.installers and again.open_days == tally.open_days
    # The ranges seen stay with their day: the same client's next range is no new download.
    line_counter(again, [CHANNEL], TODAY, FOLDERS).add([line(f"/{FOLDER}/{MAC}", 206, 10)])
    assert again.installers["2026-12-05"][f"{FOLDER}|{MAC}"] == [1, 20, 2]
    again.roll_up(TODAY, keep_days=30)
    assert flat(again.installers) == {
        ("2026-09", FOLDER, LATEST): [2, 2000, 2],
        ("2026-12-05", FOLDER, MAC): [1, 20, 2],
        ("2026-12-05", NESTED, ARCHIVE): [1, 1000, 1],
    }
    assert again.forget_installers(FOLDER) and not again.forget_installers(FOLDER)
    assert flat(again.installers) == {("2026-12-05", NESTED, ARCHIVE): [1, 1000, 1]}
    assert all(not key.startswith(f"{FOLDER}|") for _c, key in again.open_days[
        "2026-12-05"].ranges)  # fmt: skip
    # A state written before installer folders were counted reads as having none.
    older, _ = decode_state(msgspec.msgpack.encode({"version": 1, "files": {}}))
    assert older.installers == {}


@pytest.mark.unit
def test_stats_json_lists_each_folder_and_file_in_all_and_over_30_days() -> None:
    tally = count(
        [
            line(f"/{FOLDER}/{LATEST}", 200, 5000),
            line(f"/{FOLDER}/{LATEST}", 200, 5000, when="20/Nov/2026:10:00:00 +0000"),
            line(f"/{FOLDER}/{MAC}", 200, 4000, when="01/Oct/2026:10:00:00 +0000"),
            line(f"/{CHANNEL}/linux-64/{PKG}", 200, 3000, agent=CONDA_UA),
        ],
        installers=FOLDERS,
    )
    tally.roll_up(TODAY, keep_days=30)
    doc = build_doc(tally, [CHANNEL], [], TODAY, installers=[NESTED, FOLDER])
    assert decode_doc(encode_doc(doc)) == doc
    assert doc.installers == [
        InstallerRow(NESTED),  # configured, never downloaded
        InstallerRow(
            FOLDER,
            downloads=3,
            downloads_30d=2,
            bytes=14000,
            files=[InstallerFileRow(LATEST, 2, 2, 10000), InstallerFileRow(MAC, 1, 0, 4000)],
        ),
    ]
    assert (doc.totals.downloads, doc.totals.bytes) == (1, 3000)  # the channels' alone
    # Counts of a folder no longer configured stay in the document, as a channel's do.
    assert [r.folder for r in build_doc(tally, [CHANNEL], [], TODAY).installers] == [FOLDER]
    # A document from before installer folders were counted reads as having none.
    older = encode_doc(doc).replace(b',\n "installers"', b',\n "x_installers"')
    assert decode_doc(older).installers == []


# --------------------------------------------------------------------------- site


def _config_text(site: Path, url: str, log: Path, folder: bool = True) -> str:
    text = (
        f"output: {site}\n"
        "download: {concurrency: 4, per_host: 4, retries: 1, timeout: 10}\n"
        "channels: {}\n"
        f"stats:\n  logs: [{log}]\n"
    )
    if folder:
        text += f"installers:\n  {FOLDER}:\n    url: {url}/miniconda/\n"
    return text


FILES = {LATEST: b"#!/bin/sh\n# latest\n" * 160, MAC: b"xar!" * 1000}


@pytest.fixture
def installer_upstream(tmp_path: Path, upstream_server_factory) -> UpstreamServer:
    upstream = tmp_path / "upstream" / "miniconda"
    write_folder(upstream, FILES)
    server = upstream_server_factory(upstream.parent)
    serve_index(server, "/miniconda/")
    return server


@pytest.mark.integration
def test_the_folder_page_shows_the_downloads_and_remove_drops_them(
    tmp_path: Path, installer_upstream: UpstreamServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site"
    log = tmp_path / "access.log"
    stamp = datetime.now(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
    log.write_bytes(
        line(f"/{FOLDER}/{LATEST}", when=stamp)
        + b"\n"
        + line(f"/{FOLDER}/{LATEST}", ip="192.0.2.9", when=stamp, fetcher="-")
        + b"\n"
    )
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(_config_text(site, installer_upstream.url, log))
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == EXIT_OK
    doc = decode_doc((site / layout.STATS_JSON).read_bytes())
    assert [(r.folder, r.downloads, [(f.file, f.downloads) for f in r.files]) for r in
            doc.installers] == [(FOLDER, 2, [(LATEST, 2)])]  # fmt: skip
    page = (site / FOLDER / "index.html").read_text()
    assert "<dt>Downloads</dt>" in page
    assert "<b>2</b> in all, <b>2</b> in the last 30 days" in page
    assert '<a href="../stats.html">statistics</a>' in page
    assert '<th class="n">Downloads</th>' in page
    assert f'<a href="{LATEST}">{LATEST}</a>' in page
    rows = {name: next(r for r in page.split("<tr>") if f'href="{name}"' in r) for name in FILES}
    assert '<td class="n">2</td>' in rows[LATEST] and '<td class="n">0</td>' in rows[MAC]
    # The statistics page has a row for the folder, apart from the channels' counts.
    stats_page = (site / layout.STATS_PAGE).read_text()
    assert f'<a href="{FOLDER}/index.html">{FOLDER}</a>' in stats_page
    assert '<td class="n" data-label="Downloads">2</td>' in stats_page
    assert f'<code>{LATEST}</code></span> <span class="num">2</span>' in stats_page
    assert '<b data-stat="downloads">0</b>' in stats_page

    # Without stats.json the page goes without downloads.
    (site / layout.STATS_JSON).unlink()
    assert main(["render", "-c", str(config_path)]) == EXIT_OK
    page = (site / FOLDER / "index.html").read_text()
    assert "<dt>Downloads</dt>" not in page and '<th class="n">Downloads</th>' not in page
    assert run_stats(load_config(config_path)).lines == 0

    # Taken out of channels.yaml and removed: its counts go with it.
    config_path.write_text(_config_text(site, installer_upstream.url, log, folder=False))
    capsys.readouterr()
    assert main(["remove", FOLDER, "--dry-run", "-c", str(config_path)]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"would remove .sitegen/stats/state.msgpack: the download counts of {FOLDER}" in out
    assert main(["remove", FOLDER, "-c", str(config_path)]) == EXIT_OK
    doc = decode_doc((site / layout.STATS_JSON).read_bytes())
    assert doc.installers == []
    assert "installers-table" not in (site / layout.STATS_PAGE).read_text()
    # Configured again, it starts with none, though the log still holds its old lines.
    config_path.write_text(_config_text(site, installer_upstream.url, log))
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == EXIT_OK
    page = (site / FOLDER / "index.html").read_text()
    assert "none counted yet" in page


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_stats_count_exactly_the_installers_the_real_server_served(
    server: str, upstream_server_factory, capsys: pytest.CaptureFixture[str]
) -> None:
    require_server(server)
    require_tool(shutil.which("curl") is not None, "curl")
    with world_readable_dir() as public_dir:
        folder = public_dir / "upstream" / "miniconda"
        write_folder(folder, FILES)
        upstream = upstream_server_factory(folder.parent)
        serve_index(upstream, "/miniconda/")
        state = public_dir / "state"
        log = state / "access.log"
        config_path = public_dir / "channels.yaml"
        config_path.write_text(_config_text(public_dir / "site", upstream.url, log))
        config = load_config(config_path)
        assert not trio.run(run_mirror, config, MirrorOptions(progress=False)).failed
        assert main(["render", "-c", str(config_path)]) == EXIT_OK
        with webconf_server(server, config, state, prefix="/conda") as running:
            base = f"{running.url}/conda/{FOLDER}"
            asked = [
                (_curl(f"{base}/{LATEST}"), 200),
                (_curl(f"{base}/{LATEST}", "0-99"), 206),
                (_curl(f"{base}/{LATEST}", "100-199"), 206),  # the same client: once
                (_curl(f"{base}/{MAC}", agent="Mozilla/5.0"), 200),
                (_curl(f"{base}/missing.sh"), 404),
                (_curl(f"{base}/"), 200),  # the folder's page
            ]
            assert [status for status, _ in asked] == [want for _, want in asked]
            _wait_for_lines(log, len(asked))
        capsys.readouterr()
        assert main(["stats", "-c", str(config_path)]) == EXIT_OK
        assert "0 downloads counted in all (and 3 of installers)" in capsys.readouterr().out
        doc = decode_doc((config.output / layout.STATS_JSON).read_bytes())
    (row,) = doc.installers
    assert (row.folder, row.downloads, row.bytes) == (FOLDER, 3, len(FILES[LATEST]) + 200 + 4000)
    assert [(f.file, f.downloads) for f in row.files] == [(LATEST, 2), (MAC, 1)]
    assert doc.totals.downloads == 0 and doc.periods[-1].requests == len(asked)


def _curl(url: str, byte_range: str | None = None, agent: str = CURL) -> int:
    command = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-A", agent, url]
    command += ["-r", byte_range] if byte_range else []
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=30)
    return int(done.stdout)


def _wait_for_lines(log: Path, count: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if log.exists() and log.read_bytes().count(b"\n") >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{log}: fewer than {count} lines")
