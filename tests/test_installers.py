"""Installer folders end to end over real HTTP on 127.0.0.1: an upstream folder whose index is
an HTML table like repo.anaconda.com's, mirrored by ``sitegen mirror``: the files chosen,
verified and kept up to date; hostile, odd or truncated listings never publish a bad file."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from html.parser import HTMLParser
from pathlib import Path

import pytest
import trio

from sitegen.cli import main
from sitegen.config import parse_config
from sitegen.layout import installer_state_path
from sitegen.sync.progress import human_bytes
from sitegen.sync.report import (
    COMPLETED,
    FAILED,
    MESSAGES_KEPT,
    SKIPPED_EXAMPLES,
)
from testkit.installer_site import (
    FILES,
    LATEST,
    MAC,
    OLD,
    WINDOWS,
    config_text,
    downloads,
    folder_report,
    make_config,
    mirror,
    on_disk,
    payload,
    serve_installer_folder,
)
from testkit.installers import Row, index_page, serve_index, write_folder
from testkit.upstream import UpstreamServer, respond, serve_bytes

pytestmark = pytest.mark.integration

upstream = pytest.fixture(name="upstream")(serve_installer_folder)


def test_a_first_run_downloads_the_selected_files_verified_and_a_rerun_nothing(
    tmp_path: Path, upstream: tuple[UpstreamServer, Path]
) -> None:
    server, _folder = upstream
    site = tmp_path / "site"
    config = make_config(site, server.url)
    report = mirror(config)
    ir = folder_report(report)
    assert report.status == COMPLETED and ir.status == COMPLETED, ir.errors
    assert ir.added == sorted([OLD, MAC, LATEST]) and not ir.errors
    assert (ir.listed, ir.files, ir.downloaded_files) == (4, 3, 3)
    assert ir.downloaded_bytes == sum(len(FILES[n]) for n in (OLD, MAC, LATEST))
    assert on_disk(site) == {n: FILES[n] for n in (OLD, MAC, LATEST)}  # the .exe is excluded
    assert downloads(server) == sorted([OLD, MAC, LATEST])
    state = json.loads(installer_state_path(site, "miniconda").read_bytes())
    assert state["files"][LATEST]["sha256"] == hashlib.sha256(FILES[LATEST]).hexdigest()
    assert state["url"] == f"{server.url}/miniconda"

    server.reset()
    mtimes = {p.name: p.stat().st_mtime_ns for p in (site / "miniconda").iterdir()}
    again = folder_report(mirror(config))
    assert again.status == COMPLETED and not (again.added or again.updated or again.removed)
    assert again.downloaded_files == 0 and again.files == 3
    assert [r.path for r in server.requests] == ["/miniconda/"]  # the index only
    assert {p.name: p.stat().st_mtime_ns for p in (site / "miniconda").iterdir()} == mtimes


def test_installer_downloads_report_their_progress_as_package_files_do(
    tmp_path: Path, upstream: tuple[UpstreamServer, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """Installers run to hundreds of MB: their downloads show the progress line (log lines
    without a terminal) with their files and bytes, and keep the progress file `sitegen
    status` reads while they last, as the channels' downloads do."""
    from sitegen.layout import progress_path
    from testkit.faults import delay
    from testkit.site import mirror_watching_progress

    server, _folder = upstream
    server.add_fault(f"/miniconda/{LATEST}", delay(1.0))
    site = tmp_path / "site"
    config = make_config(site, server.url)
    with caplog.at_level(logging.INFO, logger="sitegen"):
        report, seen = trio.run(mirror_watching_progress, config)
    assert folder_report(report).downloaded_files == 3, report
    total = sum(len(FILES[n]) for n in (OLD, MAC, LATEST))
    assert seen and (seen[0]["total_files"], seen[0]["total_bytes"]) == (3, total), seen
    shown = human_bytes(total)
    assert f"download: 3/3 files, {shown}/{shown}" in caplog.text
    assert not progress_path(site).exists()


def test_an_upstream_change_replaces_and_removes_files(
    tmp_path: Path, upstream: tuple[UpstreamServer, Path]
) -> None:
    server, folder = upstream
    site = tmp_path / "site"
    config = make_config(site, server.url)
    assert not mirror(config).failed
    # A new "latest" under the same name, the old py311 installer gone upstream.
    new_latest = payload(LATEST, version=2, size=3100)
    write_folder(folder, {MAC: FILES[MAC], WINDOWS: FILES[WINDOWS], LATEST: new_latest})
    server.reset()
    ir = folder_report(mirror(config))
    assert ir.status == COMPLETED, ir.errors
    assert (ir.added, ir.updated, ir.removed) == ([], [LATEST], [OLD])
    assert on_disk(site) == {MAC: FILES[MAC], LATEST: new_latest}
    assert downloads(server) == [LATEST]

    # No longer selected: only the newest Linux installer is kept.
    narrowed = parse_config(
        config_text(site, server.url).replace('["Miniconda3-*"]', '["*Linux*"]') + "    newest: 1\n"
    )
    ir = folder_report(mirror(narrowed))
    assert (ir.removed, ir.files) == ([MAC], 1)
    assert on_disk(site) == {LATEST: new_latest}


def test_hostile_rows_and_a_checksum_mismatch_never_publish_a_bad_file(
    tmp_path: Path, upstream: tuple[UpstreamServer, Path]
) -> None:
    server, folder = upstream
    root = folder.parent
    evil = b"#!/bin/sh\nrm -rf /\n"
    (root / "evil.sh").write_bytes(evil)
    evil_sha = hashlib.sha256(evil).hexdigest()
    rows = [
        Row("../evil.sh", "1.0K", "2025-01-01 00:00:00", evil_sha),
        Row("Miniconda3-evil.sh", "1.0K", "2025-01-01 00:00:00", evil_sha, href="../evil.sh"),
        Row("Miniconda3-badsha.sh", "1.0K", "2025-01-01 00:00:00", "not-a-sha"),
        Row("Miniconda3-huge.sh", "900000G", "2025-01-01 00:00:00", evil_sha),
        Row(".Miniconda3-hidden.sh", "1.0K", "2025-01-01 00:00:00", evil_sha),
    ]
    write_folder(folder, FILES, extra=rows)
    # The upstream sends other bytes than the listed sha256 for one good row.
    server.add_fault(f"/miniconda/{MAC}", serve_bytes(payload(MAC, version=9, size=4000)))
    site = tmp_path / "site"
    report = mirror(make_config(site, server.url))
    ir = folder_report(report)
    assert report.failed and ir.status == FAILED
    assert ir.skipped_total == 5 and len(ir.skipped) == 5
    assert any("not a plain file name" in why for why in ir.skipped.values())
    assert any("its link names another file" in why for why in ir.skipped.values())
    (error,) = ir.errors
    assert MAC in error and "checksum mismatch" in error
    # The good rows stand; nothing bad is published, nothing lands outside the folder.
    assert on_disk(site) == {OLD: FILES[OLD], LATEST: FILES[LATEST]}
    assert not any(site.rglob("evil.sh")) and not (site.parent / "evil.sh").exists()
    assert not any(p.name.startswith(".") for p in (site / "miniconda").iterdir())
    assert ir.added == sorted([OLD, LATEST])
    assert "/evil.sh" not in [r.path for r in server.requests]


def test_a_flood_of_bad_rows_is_logged_as_examples_and_a_count(
    tmp_path: Path, upstream: tuple[UpstreamServer, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """An index of thousands of bad rows writes a bounded number of log lines, not one each:
    the first rows as examples, then how many more there were."""
    server, folder = upstream
    bad = [Row(f"../evil-{n}.sh", "1.0K", "2025-01-01 00:00:00", "0" * 64) for n in range(2000)]
    write_folder(folder, FILES, extra=bad)
    with caplog.at_level(logging.WARNING, logger="sitegen"):
        ir = folder_report(mirror(make_config(tmp_path / "site", server.url)))
    assert ir.status == COMPLETED and ir.skipped_total == 2000
    lines = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(lines) == SKIPPED_EXAMPLES + 1, len(lines)
    assert lines[-1] == f"miniconda: skipped {2000 - SKIPPED_EXAMPLES} more rows of its index"


def test_a_flood_of_files_that_fail_is_recorded_as_the_first_errors_and_a_count(
    tmp_path: Path, upstream: tuple[UpstreamServer, Path]
) -> None:
    """Rows that read well but whose files upstream never serves fail one download each: the
    run's record (and history.json, which holds every run kept) keeps the first errors and a
    count of the rest, as a mirror's, while the good rows are published."""
    server, folder = upstream
    gone = [
        Row(f"Miniconda3-gone-{n}.sh", "1000", "2025-01-01 00:00:00", "0" * 64)
        for n in range(MESSAGES_KEPT + 5)
    ]
    write_folder(folder, FILES, extra=gone)
    site = tmp_path / "site"
    ir = folder_report(mirror(make_config(site, server.url)))
    assert ir.status == FAILED and ir.added == sorted([OLD, MAC, LATEST])
    assert len(ir.errors) == MESSAGES_KEPT + 1, len(ir.errors)
    assert all("Miniconda3-gone-" in error for error in ir.errors[:-1])
    assert ir.errors[-1] == "and 5 more errors, not recorded"


def test_an_index_ending_in_unfinished_markup_is_read_in_linear_time(
    tmp_path: Path, upstream: tuple[UpstreamServer, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page whose tail is a run of markup that never ends (``<!--<!--...``, ``<a<a...``):
    the HTML parser's end of input takes such a run apart piece by piece, each piece scanning
    the rest of the page, which held a run for hours with a page under the 8 MB cap; the good
    rows are read in moments and what follows them is nothing."""
    server, folder = upstream
    write_folder(folder, FILES)
    page = folder / "index.html"
    page.write_text(page.read_text().replace("</table>", "") + "<!--" * (64 << 10))
    ends: list[bool] = []  # the parser's end-of-input step takes the unfinished tail apart
    step = HTMLParser.goahead

    def noted(self: HTMLParser, end: bool) -> None:
        ends.append(bool(end))
        step(self, end)

    monkeypatch.setattr(HTMLParser, "goahead", noted)
    ir = folder_report(mirror(make_config(tmp_path / "site", server.url)))
    assert ends and not any(ends)
    assert ir.status == COMPLETED and ir.added == sorted([OLD, MAC, LATEST]), ir.errors


def test_a_row_holding_the_token_of_the_url_is_skipped_and_the_token_shown_nowhere(
    tmp_path: Path,
    upstream_server_factory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # An upstream reached under /t/<token>/ that writes its token into its index: into a file
    # name (served, with the listed sha256), a path shown as the name, or any other cell.
    token = "tk-0123456789abcdef"
    monkeypatch.setenv("INSTALLER_TOKEN", token)
    folder = tmp_path / "upstream" / "t" / token / "miniconda"
    named = f"Miniconda3-{token}-Linux-x86_64.sh"
    files = {**FILES, named: payload(named)}
    rows = [
        Row(f"/t/{token}/miniconda/{LATEST}", "2.9K", "2025-01-01 00:00:00", "0" * 64),
        Row("Miniconda3-size.sh", f"{token}K", "2025-01-01 00:00:00", "0" * 64),
        Row("Miniconda3-date.sh", "2.9K", f"{token} 2025", "0" * 64),
    ]
    write_folder(folder, files, extra=rows)
    server = upstream_server_factory(tmp_path / "upstream")
    serve_index(server, f"/t/{token}/miniconda/")
    site = tmp_path / "site"
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        config_text(site, server.url).replace(
            f"{server.url}/", f"{server.url}/t/${{INSTALLER_TOKEN}}/"
        )
    )
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 0
    assert on_disk(site) == {n: FILES[n] for n in (OLD, MAC, LATEST)}  # the .exe is excluded
    [run] = (site / "history" / "runs").iterdir()
    skipped = json.loads(run.read_bytes())["installers"][0]["skipped"]
    assert skipped == {
        "'Miniconda3-***-Linux-x86_64.sh'": "holds a secret of the folder's URL",
        f"'/t/***/miniconda/{LATEST}'": "holds a secret of the folder's URL",
        "'Miniconda3-size.sh'": "holds a secret of the folder's URL",
        "'Miniconda3-date.sh'": "holds a secret of the folder's URL",
    }
    output = capsys.readouterr()
    assert token not in caplog.text + output.out + output.err
    for path in site.rglob("*"):
        assert token not in path.name
        assert path.is_dir() or token.encode() not in path.read_bytes(), path


def test_a_size_that_does_not_fit_the_listing_is_skipped(
    tmp_path: Path, upstream: tuple[UpstreamServer, Path]
) -> None:
    server, folder = upstream
    # The index claims 1.0K where 3000 bytes are served (and listed by their sha256).
    sha = hashlib.sha256(FILES[LATEST]).hexdigest()
    rows = write_folder(folder, {OLD: FILES[OLD]}, extra=[])
    (folder / LATEST).write_bytes(FILES[LATEST])
    page = folder / "index.html"
    rows.append(Row(LATEST, "1.0K", "2025-06-26 14:00:00", sha))
    page.write_text(index_page(rows))
    site = tmp_path / "site"
    ir = folder_report(mirror(make_config(site, server.url)))
    assert ir.status == COMPLETED and ir.skipped_total == 1
    (why,) = ir.skipped.values()
    assert "upstream sends 3000 bytes" in why
    assert on_disk(site) == {OLD: FILES[OLD]}


def test_a_truncated_index_is_held_back_unless_forced(
    tmp_path: Path, upstream: tuple[UpstreamServer, Path]
) -> None:
    server, folder = upstream
    site = tmp_path / "site"
    config = make_config(site, server.url)
    assert not mirror(config).failed
    write_folder(folder, {LATEST: FILES[LATEST]})  # two of the three published files gone
    ir = folder_report(mirror(config))
    assert ir.status == FAILED and "held back" in ir.errors[0] and "--force-delete" in ir.errors[0]
    assert set(on_disk(site)) == {OLD, MAC, LATEST}
    ir = folder_report(mirror(config, force_delete=True))
    assert ir.status == COMPLETED and ir.removed == sorted([OLD, MAC])
    assert set(on_disk(site)) == {LATEST}


def test_a_newer_installer_taking_the_place_of_the_newest_is_no_loss_to_hold_back(
    tmp_path: Path, upstream: tuple[UpstreamServer, Path]
) -> None:
    # `newest: 1` of each platform: every release replaces each file by its next version.
    server, folder = upstream
    linux, mac = "Miniconda3-py312_{}-Linux-x86_64.sh", "Miniconda3-py312_{}-MacOSX-arm64.pkg"
    releases = [
        {name.format(version): payload(name, n) for name in (linux, mac)}
        for n, version in enumerate(["24.1.2-0", "24.3.0-0", "24.4.0-0"])
    ]
    write_folder(folder, releases[0])
    site = tmp_path / "site"
    globs = '["Miniconda3-py312_*-Linux-x86_64.sh", "Miniconda3-py312_*-MacOSX-arm64.pkg"]'
    text = config_text(site, server.url).replace('["Miniconda3-*"]', globs) + "    newest: 1\n"
    assert folder_report(mirror(parse_config(text))).status == COMPLETED
    write_folder(folder, {**releases[0], **releases[1]})
    ir = folder_report(mirror(parse_config(text)))
    assert ir.status == COMPLETED, ir.errors
    assert (ir.added, ir.removed) == (sorted(releases[1]), sorted(releases[0]))
    assert on_disk(site) == releases[1]
    # Files whose successors could not be fetched are no loss either: they stay.
    write_folder(folder, releases[2])
    for name in releases[2]:
        server.add_fault(f"/miniconda/{name}", respond(404))
    ir = folder_report(mirror(parse_config(text)))
    assert ir.status == FAILED and ir.removed == [] and on_disk(site) == releases[1]
    assert any(e.startswith("held back") and "--force-delete" in e for e in ir.errors), ir.errors
    # An index that lists fewer files than the folder holds is held back as ever.
    write_folder(folder, {})
    ir = folder_report(mirror(parse_config(text)))
    assert ir.status == FAILED and "held back" in ir.errors[0] and on_disk(site) == releases[1]


def test_a_file_changed_on_disk_is_fetched_again(
    tmp_path: Path, upstream: tuple[UpstreamServer, Path]
) -> None:
    server, _folder = upstream
    site = tmp_path / "site"
    config = make_config(site, server.url)
    assert not mirror(config).failed
    target = site / "miniconda" / LATEST
    st = target.stat()
    # Same size, other bytes, its mtime kept: only --verify finds it.
    target.write_bytes(payload("tampered", size=len(FILES[LATEST])))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    server.reset()
    assert folder_report(mirror(config)).downloaded_files == 0
    ir = folder_report(mirror(config, verify=True))
    assert (ir.updated, ir.downloaded_files) == ([LATEST], 1)
    assert target.read_bytes() == FILES[LATEST]
    # Changed with a new mtime: found without --verify.
    target.write_bytes(b"x" * len(FILES[LATEST]))
    ir = folder_report(mirror(config))
    assert ir.updated == [LATEST] and target.read_bytes() == FILES[LATEST]
