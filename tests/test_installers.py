"""Installer folders end to end over real HTTP on 127.0.0.1: an upstream folder whose index is
an HTML table like repo.anaconda.com's, mirrored by ``sitegen mirror`` with the channels."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import trio

from sitegen.cli import main
from sitegen.config import SiteConfig, parse_config
from sitegen.layout import installer_state_path
from sitegen.sync.progress import human_bytes
from sitegen.sync.report import (
    COMPLETED,
    FAILED,
    SKIPPED_EXAMPLES,
    InstallerReport,
    RunReport,
)
from sitegen.sync.run import MirrorOptions, run_mirror
from testkit.installers import Row, index_page, serve_index, write_folder
from testkit.upstream import ExampleUpstream, UpstreamServer, respond, serve_bytes

pytestmark = pytest.mark.integration

LATEST = "Miniconda3-latest-Linux-x86_64.sh"
OLD = "Miniconda3-py311_23.1.0-1-Linux-x86_64.sh"
MAC = "Miniconda3-latest-MacOSX-arm64.pkg"
WINDOWS = "Miniconda3-latest-Windows-x86_64.exe"


def payload(name: str, version: int = 1, size: int = 3000) -> bytes:
    seed = hashlib.sha256(f"{name}-{version}".encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


FILES = {
    OLD: payload(OLD, size=2500),
    MAC: payload(MAC, size=4000),
    WINDOWS: payload(WINDOWS, size=3500),
    LATEST: payload(LATEST),
}


def config_text(site: Path, url: str, extra: str = "", channels: str = "channels: {}\n") -> str:
    return (
        f"output: {site}\n"
        "download: {concurrency: 4, per_host: 4, retries: 1, timeout: 10}\n"
        + channels
        + "installers:\n"
        "  miniconda:\n"
        f"    url: {url}/miniconda/\n"
        '    include: ["Miniconda3-*"]\n'
        '    exclude: ["*.exe"]\n' + "".join(f"    {line}\n" for line in extra.splitlines())
    )


def example_channel(url: str) -> str:
    """The ``channels:`` of a site mirroring the example upstream at ``url`` (linux-64)."""
    return f"channels:\n  cloud/example:\n    url: {url}\n    subdirs: [linux-64]\n"


def config_file(tmp_path: Path, site: Path, url: str, channels: str) -> Path:
    """channels.yaml (in ``tmp_path``) of :func:`config_text`, for the command line."""
    path = tmp_path / "channels.yaml"
    path.write_text(config_text(site, url, channels=channels))
    return path


def make_config(site: Path, url: str, extra: str = "", **kwargs: str) -> SiteConfig:
    return parse_config(config_text(site, url, extra, **kwargs))


def mirror(config: SiteConfig, **options: Any) -> RunReport:
    return trio.run(run_mirror, config, MirrorOptions(progress=False, **options))


def folder_report(report: RunReport) -> InstallerReport:
    (found,) = report.installers
    return found


def downloads(server: UpstreamServer) -> list[str]:
    """The installer files fetched whole (not the one-byte asks for their size)."""
    return sorted(
        r.path.rsplit("/", 1)[1]
        for r in server.requests
        if r.path.startswith("/miniconda/") and r.path != "/miniconda/" and not r.header("range")
    )


def on_disk(site: Path) -> dict[str, bytes]:
    folder = site / "miniconda"
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name != "index.html"}


@pytest.fixture
def upstream(tmp_path: Path, upstream_server_factory) -> tuple[UpstreamServer, Path]:
    folder = tmp_path / "upstream" / "miniconda"
    write_folder(folder, FILES)
    server = upstream_server_factory(folder.parent)
    serve_index(server, "/miniconda/")
    return server, folder


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


def test_an_installer_upstream_down_fails_only_its_part(
    tmp_path: Path,
    upstream: tuple[UpstreamServer, Path],
    example_upstream: ExampleUpstream,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, _folder = upstream
    site = tmp_path / "site"
    config_path = config_file(tmp_path, site, server.url, example_channel(example_upstream.url))
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 0
    published = on_disk(site)
    assert len(published) == 3

    server.add_fault("/miniconda/", respond(503))
    example_upstream.server.reset()
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 1
    (record,) = [
        json.loads(p.read_bytes())
        for p in (site / "history" / "runs").iterdir()
        if json.loads(p.read_bytes())["installers"][0]["status"] == FAILED
    ]
    assert record["status"] == FAILED
    assert "HTTP 503" in record["installers"][0]["errors"][0]
    assert record["installers"][0]["files"] == 3  # what it still holds
    assert not any(m["errors"] for m in record["mirrors"])  # the channel ran as ever
    assert example_upstream.server.count("repodata.json.zst") >= 1
    assert on_disk(site) == published  # what was published stays


def test_dry_run_and_only(
    tmp_path: Path,
    upstream: tuple[UpstreamServer, Path],
    example_upstream: ExampleUpstream,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, _folder = upstream
    site = tmp_path / "site"
    config_path = config_file(tmp_path, site, server.url, example_channel(example_upstream.url))
    args = ["mirror", "-c", str(config_path), "--no-progress"]
    assert main([*args, "--dry-run", "--only", "miniconda"]) == 0
    out = capsys.readouterr().out
    assert "miniconda/: would download 3 files (at least" in out and "publish 3 files" in out
    assert not site.exists()
    assert downloads(server) == []
    assert example_upstream.server.requests == []  # --only: the channel was not read

    assert main([*args, "--only", "miniconda"]) == 0
    assert len(on_disk(site)) == 3
    assert example_upstream.server.requests == []
    assert not (site / "cloud" / "example" / "linux-64" / "repodata.json").exists()
    assert main([*args, "--only", "nothing-such"]) == 2
    assert "installer folders are: miniconda" in capsys.readouterr().err


def test_a_folder_taken_out_of_the_configuration_is_named_in_the_log(
    tmp_path: Path,
    upstream: tuple[UpstreamServer, Path],
    example_upstream: ExampleUpstream,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server, _folder = upstream
    site = tmp_path / "site"
    channels = example_channel(example_upstream.url)
    config_path = config_file(tmp_path, site, server.url, channels)
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 0
    assert "installer folder miniconda is still published" not in caplog.text
    config_path.write_text(config_text(site, server.url, channels=channels).split("installers:")[0])
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 0
    assert "installer folder miniconda is still published" in caplog.text
    assert len(on_disk(site)) == 3  # left as it was: deleting it is the operator's call


def test_the_folder_page_lists_each_file_and_the_landing_page_links_it(
    tmp_path: Path, upstream: tuple[UpstreamServer, Path]
) -> None:
    server, folder = upstream
    hostile = '<img src=x onerror="alert(1)">.sh'
    write_folder(folder, FILES, extra=[Row(hostile, "1.0K", "2025-01-01 00:00:00", "0" * 64)])
    site = tmp_path / "site"
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(config_text(site, server.url))
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 0
    page = (site / "miniconda" / "index.html").read_text()
    for name in (OLD, MAC, LATEST):
        sha = hashlib.sha256(FILES[name]).hexdigest()
        assert f'<a href="{name}">{name}</a>' in page
        assert f'<code class="hash">{sha}</code>' in page
        assert f'title="{len(FILES[name])} bytes"' in page
    assert WINDOWS not in page  # excluded: not published, not listed
    assert "2025-06-26 13:03 UTC" in page  # the date upstream lists
    assert page.index(LATEST) < page.index(OLD)  # newest first
    landing = (site / "index.html").read_text()
    assert '<a href="miniconda/index.html">miniconda</a>' in landing
    assert f"{server.url}/miniconda/" in landing
    (run_page,) = [p for p in (site / "history").glob("2*.html")]
    text = run_page.read_text()
    assert "Installer folders" in text and hostile not in text
    assert "&lt;img src=x onerror=" in text  # the skipped row, escaped
    history = json.loads((site / "history" / "history.json").read_bytes())
    (row,) = history["runs"][0]["installers"]
    assert (row["path"], row["added"], row["files"], row["skipped"]) == ("miniconda", 3, 3, 1)
    assert history["runs"][0]["totals"]["downloaded_files"] == 3

    # Taken out of channels.yaml: its page goes with the next render, its files stay.
    config_path.write_text(config_text(site, server.url).split("installers:")[0])
    assert main(["render", "-c", str(config_path)]) == 0
    assert not (site / "miniconda" / "index.html").exists()
    assert "miniconda/index.html" not in (site / "index.html").read_text()
    assert len(on_disk(site)) == 3


def lead_and_description(landing: str) -> tuple[str, str]:
    lead = landing.split('<p class="lead">')[1].split("</p>")[0]
    description = landing.split('<meta name="description" content="')[1].split('"')[0]
    return " ".join(lead.split()), description


def test_the_landing_page_opens_with_the_installer_folders_it_holds(
    tmp_path: Path, upstream: tuple[UpstreamServer, Path], example_upstream: ExampleUpstream
) -> None:
    server, _folder = upstream
    site = tmp_path / "site"
    config_path = tmp_path / "channels.yaml"
    nested = f"  installers/anaconda:\n    url: {server.url}/miniconda/\n    include: ['*.exe']\n"
    config_path.write_text(config_text(site, server.url) + nested)
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 0
    landing = (site / "index.html").read_text()
    lead, description = lead_and_description(landing)
    # Installer folders only: no channel is spoken of, searched or set up.
    assert lead.startswith(
        "2 installer folders mirrored from upstream, each file verified against the SHA256"
        ' upstream lists: miniconda, installers/anaconda (<a href="#installers">below</a>).'
        " Last run"
    ), lead
    assert "channel" not in lead
    assert description == (
        "conda mirror: 2 installer folders mirrored from upstream, each file verified"
        " against the SHA256 upstream lists (miniconda, installers/anaconda); browse the"
        " installers and the run history."
    )
    assert "Search every channel" not in landing and "<h2>Mirrors</h2>" not in landing
    assert 'id="use"' not in landing and '<section id="installers">' in landing

    # Beside a channel, both.
    channels = example_channel(example_upstream.url)
    config_path.write_text(config_text(site, server.url, channels=channels))
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 0
    landing = (site / "index.html").read_text()
    lead, description = lead_and_description(landing)
    assert lead.startswith(
        "1 channel mirrored from upstream conda channels, filtered and verified, and 1"
        " installer folder mirrored from upstream, each file verified against the SHA256"
        ' upstream lists: miniconda (<a href="#installers">below</a>). Last run'
    ), lead
    assert description.endswith(
        "and 1 installer folder mirrored from upstream, each file verified against the SHA256"
        " upstream lists (miniconda); browse packages, install snippets and the run history."
    )
    assert "Search every channel" in landing and "<h2>Mirrors</h2>" in landing
    assert 'id="use"' in landing and '<section id="installers">' in landing


@pytest.mark.parametrize(
    "target", ["cloud/example/linux-64", "cloud", ".", ".sitegen", "../other-disk"]
)
def test_a_folder_that_links_to_a_channel_or_the_site_or_out_of_it_is_left_alone(
    tmp_path: Path,
    upstream: tuple[UpstreamServer, Path],
    example_upstream: ExampleUpstream,
    target: str,
) -> None:
    server, _folder = upstream
    site = tmp_path / "site"
    channels = example_channel(example_upstream.url)
    config = make_config(site, server.url, channels=channels)
    (site / ".sitegen").mkdir(parents=True)
    (tmp_path / "other-disk").mkdir()
    (site / "miniconda").symlink_to(site / target)
    report = mirror(config)
    ir = folder_report(report)
    assert ir.status == FAILED and "miniconda is a link" in ir.errors[0]
    assert not any(m.errors for m in report.mirrors)
    assert (site / "cloud" / "example" / "linux-64" / "repodata.json").is_file()
    assert not any(site.rglob(LATEST)) and not any((tmp_path / "other-disk").iterdir())


@pytest.mark.parametrize(
    ("target", "page"),
    [("cloud/example/linux-64", "cloud/example/linux-64/index.html"), (".", "index.html")],
)
def test_the_page_of_a_folder_left_alone_is_not_written_through_its_link(
    tmp_path: Path,
    upstream: tuple[UpstreamServer, Path],
    example_upstream: ExampleUpstream,
    target: str,
    page: str,
) -> None:
    server, _folder = upstream
    site = tmp_path / "site"
    config_path = config_file(tmp_path, site, server.url, example_channel(example_upstream.url))
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 0
    title = (site / page).read_text().split("<title>")[1].split("</title>")[0]
    for path in (site / "miniconda").iterdir():
        path.unlink()
    (site / "miniconda").rmdir()
    (site / "miniconda").symlink_to(site / target)
    # The folder fails; its page, neither written nor removed, leaves the page there alone.
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 1
    assert main(["render", "-c", str(config_path)]) == 0
    assert (site / page).read_text().split("<title>")[1].split("</title>")[0] == title
    assert 'href="miniconda/index.html"' not in (site / "index.html").read_text()


def test_a_folder_that_links_to_another_installer_folder_is_left_alone(
    tmp_path: Path, upstream: tuple[UpstreamServer, Path]
) -> None:
    """Two folders that are one directory (the second made a link to the first) would each
    take the other's files for ones upstream no longer lists: the link is left alone, and so
    is everything of the first, in runs and in a verify --repair."""
    from sitegen.tools.verify import verify_site

    server, _folder = upstream
    site = tmp_path / "site"
    config = parse_config(
        config_text(site, server.url)
        + f"  other:\n    url: {server.url}/miniconda/\n    include: ['*.exe']\n"
    )
    assert not mirror(config).failed
    shutil.rmtree(site / "other")
    (site / "other").symlink_to(site / "miniconda")
    for options in ({}, {"force_delete": True}):
        report = mirror(config, **options)
        mine, other = report.installers
        assert mine.status == COMPLETED and not mine.removed, mine.errors
        assert other.status == FAILED, other
        assert "is a link to installer folder miniconda's directory" in other.errors[0]
        assert on_disk(site) == {n: FILES[n] for n in (OLD, MAC, LATEST)}
    verified = trio.run(verify_site, config, True)
    assert on_disk(site) == {n: FILES[n] for n in (OLD, MAC, LATEST)}
    assert [(p.path, p.kind, p.repaired) for p in verified.problems] == [
        ("other", "metadata", False)
    ]


def test_a_link_under_a_listed_name_is_replaced_never_followed(
    tmp_path: Path, upstream: tuple[UpstreamServer, Path]
) -> None:
    """A link left in the folder under an installer's name, leading out of the site: the
    verified file takes its name, what it leads to is never written, and the run goes on."""
    server, _folder = upstream
    site = tmp_path / "site"
    config = make_config(site, server.url)
    assert not mirror(config).failed
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"not the site's")
    (site / "miniconda" / LATEST).unlink()
    (site / "miniconda" / LATEST).symlink_to(outside)
    report = mirror(config)
    ir = folder_report(report)
    assert not report.failed and ir.status == COMPLETED, (report.errors, ir.errors)
    assert ir.added == [LATEST] and not (site / "miniconda" / LATEST).is_symlink()
    assert on_disk(site) == {n: FILES[n] for n in (OLD, MAC, LATEST)}
    assert outside.read_bytes() == b"not the site's"


def test_a_folder_that_is_a_loop_of_links_fails_alone(
    tmp_path: Path,
    upstream: tuple[UpstreamServer, Path],
    example_upstream: ExampleUpstream,
) -> None:
    """A folder replaced by a link that loops leads nowhere: the folder fails saying so, while
    the channels publish, the pages render (the folder without one) and verify reports it."""
    from sitegen.tools.verify import verify_site

    server, _folder = upstream
    site = tmp_path / "site"
    channels = example_channel(example_upstream.url)
    config_path = config_file(tmp_path, site, server.url, channels)
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 0
    shutil.rmtree(site / "miniconda")
    (site / "miniconda").symlink_to(site / "miniconda")
    config = make_config(site, server.url, channels=channels)
    report = mirror(config)
    ir = folder_report(report)
    assert ir.status == FAILED and "a loop of symbolic links" in ir.errors[0], ir.errors
    assert not report.errors and not any(m.errors for m in report.mirrors)
    assert main(["render", "-c", str(config_path)]) == 0
    assert 'href="miniconda/index.html"' not in (site / "index.html").read_text()
    verified = trio.run(verify_site, config, False)
    assert [(p.path, p.kind) for p in verified.problems] == [("miniconda", "metadata")]
    assert "a loop of symbolic links" in verified.problems[0].detail


def test_a_folder_taken_out_loses_its_page_also_without_the_last_manifest(
    tmp_path: Path,
    upstream: tuple[UpstreamServer, Path],
    example_upstream: ExampleUpstream,
) -> None:
    """Without the last render's manifest, the page of a folder channels.yaml no longer names
    is found by the folder's state and goes as it does with the manifest (its files stay); one
    whose folder is now a link to a channel's subdir is not removed through the link."""
    server, _folder = upstream
    site = tmp_path / "site"
    channels = example_channel(example_upstream.url)
    config_path = config_file(tmp_path, site, server.url, channels)
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 0
    assert (site / "miniconda" / "index.html").is_file()
    manifest = site / ".sitegen" / "render" / "manifest.json"
    config_path.write_text(config_text(site, server.url, channels=channels).split("installers:")[0])
    manifest.unlink()
    assert main(["render", "-c", str(config_path)]) == 0
    assert not (site / "miniconda" / "index.html").exists()
    assert len(on_disk(site)) == 3

    shutil.rmtree(site / "miniconda")
    (site / "miniconda").symlink_to(site / "cloud" / "example" / "linux-64")
    manifest.unlink()
    assert main(["render", "-c", str(config_path)]) == 0
    assert (site / "cloud" / "example" / "linux-64" / "index.html").is_file()


@pytest.mark.parametrize("target", ["cloud/example/linux-64", "tools"])
def test_a_folder_taken_out_and_made_a_link_loses_no_page_through_the_link(
    tmp_path: Path,
    upstream: tuple[UpstreamServer, Path],
    example_upstream: ExampleUpstream,
    target: str,
) -> None:
    """With the last render's manifest naming the page of a folder channels.yaml no longer
    names, a folder made a link since (to a channel's subdir, or any directory of the site)
    keeps what the link leads to: the page the manifest names is not removed through it."""
    server, _folder = upstream
    site = tmp_path / "site"
    channels = example_channel(example_upstream.url)
    config_path = config_file(tmp_path, site, server.url, channels)
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 0
    config_path.write_text(config_text(site, server.url, channels=channels).split("installers:")[0])
    (site / "tools").mkdir()
    (site / "tools" / "index.html").write_text("<p>the operator's own page</p>")
    kept = {page: (site / page).read_bytes() for page in (f"{target}/index.html",)}
    shutil.rmtree(site / "miniconda")
    (site / "miniconda").symlink_to(site / target)
    for command in (["mirror", "--no-progress"], ["render"]):
        assert main([*command, "-c", str(config_path)]) == 0
        assert {page: (site / page).read_bytes() for page in kept} == kept, command
    assert (site / "miniconda").is_symlink()


def test_a_folder_holding_a_repodata_json_is_no_channel_to_a_render(
    tmp_path: Path, upstream: tuple[UpstreamServer, Path]
) -> None:
    """An installer folder whose upstream lists a file named repodata.json is still no
    channel's subdir: a render without its last manifest, looking for the pages of subdirs
    channels.yaml no longer names, takes none of the folder's files for a listing page."""
    server, folder = upstream
    files = {**FILES, "repodata.json": b"{}", "page-2.html": b"<p>notes</p>"}
    write_folder(folder, files)
    site = tmp_path / "site"
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {site}\nchannels: {{}}\n"
        f"installers:\n  tools/miniconda:\n    url: {server.url}/miniconda/\n"
    )
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 0
    held = sorted(p.name for p in (site / "tools" / "miniconda").iterdir())
    assert held == sorted([*files, "index.html"])
    (site / ".sitegen" / "render" / "manifest.json").unlink()
    assert main(["render", "-c", str(config_path)]) == 0
    assert sorted(p.name for p in (site / "tools" / "miniconda").iterdir()) == held


def test_a_folder_holding_a_repodata_json_is_no_subdir_left_published(
    tmp_path: Path,
    upstream: tuple[UpstreamServer, Path],
    example_upstream: ExampleUpstream,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An installer folder whose upstream lists a file named repodata.json is no subdir that
    channels.yaml stopped naming: the run log and status do not tell to remove it as one, and
    `sitegen remove` of the folder above it finds no channel there to delete its files as."""
    server, folder = upstream
    write_folder(folder, {**FILES, "repodata.json": b"{}"})
    site = tmp_path / "site"
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {site}\n"
        f"channels:\n  cloud/example:\n    url: {example_upstream.url}\n    subdirs: [linux-64]\n"
        f"installers:\n  tools/miniconda:\n    url: {server.url}/miniconda/\n"
    )
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 0
    held = sorted(p.name for p in (site / "tools" / "miniconda").iterdir())
    assert "no channel in the configuration names it" not in caplog.text
    capsys.readouterr()
    assert main(["status", "-c", str(config_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["unconfigured"] == []
    assert main(["remove", "tools", "-c", str(config_path)]) != 0
    assert sorted(p.name for p in (site / "tools" / "miniconda").iterdir()) == held


def test_the_run_pages_link_a_folder_page_only_while_there_is_one(
    tmp_path: Path, upstream: tuple[UpstreamServer, Path]
) -> None:
    """The history and run pages link each folder's page while the render writes it: once the
    folder is taken out of channels.yaml (its page gone), they name it without a link."""
    server, _folder = upstream
    site = tmp_path / "site"
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(config_text(site, server.url))
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 0

    def linking() -> list[str]:
        pages = [site / "history" / "index.html", *(site / "history").glob("2*.html")]
        return sorted(p.name for p in pages if "miniconda/index.html" in p.read_text())

    assert len(linking()) == 2  # the history page and the run's
    config_path.write_text(config_text(site, server.url).split("installers:")[0])
    assert main(["render", "-c", str(config_path)]) == 0
    assert not (site / "miniconda" / "index.html").exists()
    assert linking() == []
    assert "miniconda/" in (site / "history" / "index.html").read_text()
