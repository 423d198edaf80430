"""``sitegen status`` of the installer folders: each folder's upstream (never its token), the
files it holds and their disk, its last run and when it is due next, in text and JSON; and a
folder channels.yaml no longer names, still served."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sitegen.cli import EXIT_OK, main
from sitegen.config import parse_config
from sitegen.sync.report import COMPLETED, FAILED, InstallerReport, RunReport
from sitegen.tools.status import build_status
from sitegen.tools.status_format import format_status, status_json
from testkit.installers import serve_index, write_folder
from testkit.upstream import UpstreamServer, respond


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


CONFIG = parse_config(
    "output: /srv/site\nchannels: {}\ninstallers:\n"
    "  miniconda:\n    url: https://repo.example.org/t/${I_TOKEN}/miniconda/\n"
    "    schedule: '0 * * * *'\n"
    "  archive:\n    url: https://repo.example.org/archive/\n",
    environ={"I_TOKEN": "s3cr3t-value"},
)


def run(run_id: str, started: str, *folders: InstallerReport) -> RunReport:
    status = FAILED if any(f.errors for f in folders) else COMPLETED
    return RunReport(
        id=run_id,
        started=ts(started),
        ended=ts(started) + 30,
        status=status,
        pid=4242,
        installers=list(folders),
    )


def folder(path: str, status: str = COMPLETED, errors: tuple[str, ...] = ()) -> InstallerReport:
    return InstallerReport(
        path,
        "https://repo.example.org/x",
        status=status,
        listed=40,
        files=3,
        added=["a.sh"],
        updated=["latest.sh"],
        removed=["old.sh", "older.sh"],
        downloaded_files=2,
        downloaded_bytes=3_000_000,
        skipped_total=1,
        errors=list(errors),
    )


RUNS = [
    run("20260102T100000.000Z-1", "2026-01-02T10:00:00", folder("miniconda")),
    run(
        "20260102T103000.000Z-2",
        "2026-01-02T10:30:00",
        folder("archive", FAILED, ("the index could not be read: HTTP 503",)),
    ),
    run("20260101T000000.000Z-3", "2026-01-01T00:00:00", folder("archive")),
]


@pytest.mark.unit
def test_each_folder_shows_its_upstream_disk_last_run_and_next_due_time() -> None:
    now = ts("2026-01-02T10:45:00")
    disk = {"miniconda": (8_192_000, 3)}
    status = build_status(CONFIG, RUNS, None, {}, now, installer_disk=disk)
    miniconda, archive = status.installers
    assert miniconda.source == "https://repo.example.org/t/***/miniconda"
    assert (miniconda.files, miniconda.bytes) == (3, 8_192_000)
    assert miniconda.last_run is not None and miniconda.last_run.id == "20260102T100000.000Z-1"
    assert (miniconda.last_run.added, miniconda.last_run.updated) == (1, 1)
    assert (miniconda.last_run.removed, miniconda.last_run.skipped) == (2, 1)
    assert miniconda.next_due == ts("2026-01-02T11:00:00") and not miniconda.due  # hourly
    # Failed last; its schedule (daily by default) counts from its last completed run: due.
    assert archive.schedule == "@daily" and (archive.files, archive.bytes) == (0, 0)
    assert archive.last_run is not None and archive.last_run.status == FAILED
    assert archive.last_run.errors == ("the index could not be read: HTTP 503",)
    assert archive.last_completed == ts("2026-01-01T00:00:00")
    assert archive.next_due == ts("2026-01-02T00:00:00") and archive.due

    text = format_status(status)
    assert "installer folder miniconda (schedule 0 * * * *)" in text
    assert "  source: https://repo.example.org/t/***/miniconda/\n" in text
    assert "  holds: 3 files, 8.2 MB on disk\n" in text
    assert "  last run: 20260102T100000.000Z-1, completed, started 2026-01-02T10:00:00Z" in text
    assert (
        "    index: 40 files listed; folder: 3 files (+1 ~1 -2), downloaded 2 files (3.0 MB);"
        " 1 row of the index skipped\n" in text
    )
    assert "  next due: 2026-01-02T11:00:00Z (in 15 min); last completed" in text
    assert "installer folder archive (schedule @daily)" in text
    assert "    error: the index could not be read: HTTP 503\n" in text
    assert "  next due: now (since 2026-01-02T00:00:00Z)\n" in text
    assert "s3cr3t" not in text

    data = json.loads(json.dumps(status_json(status)))
    first = data["installers"][0]
    assert (first["path"], first["source"], first["files"], first["bytes"]) == (
        "miniconda",
        "https://repo.example.org/t/***/miniconda",
        3,
        8_192_000,
    )
    assert first["next_due"] == "2026-01-02T11:00:00Z" and first["due"] is False
    assert first["last_run"]["started"] == "2026-01-02T10:00:00Z"
    assert first["last_run"]["downloaded_bytes"] == 3_000_000
    assert data["installers"][1]["last_completed"] == "2026-01-01T00:00:00Z"
    assert data["unconfigured_installers"] == []
    assert "s3cr3t" not in json.dumps(data)


@pytest.mark.unit
def test_a_folder_never_run_is_due_now() -> None:
    now = ts("2026-01-02T10:45:00")
    status = build_status(CONFIG, [], None, {}, now)
    for found in status.installers:
        assert found.last_run is None and found.due and found.next_due == now
    text = format_status(status)
    assert text.count("  last run: never\n") == 2
    assert text.count("  next due: now (never completed)\n") == 2


MINICONDA = {
    "Miniconda3-latest-Linux-x86_64.sh": b"#!/bin/sh\n" * 400,
    "Miniconda3-latest-MacOSX-arm64.sh": b"#!/bin/bash\n" * 300,
}


@pytest.mark.integration
def test_status_after_a_run_and_of_a_folder_taken_out_of_the_configuration(
    tmp_path: Path,
    upstream_server_factory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Over real HTTP, from a URL holding a token: the token is nowhere in what status shows,
    and a folder taken out of channels.yaml is listed with the disk it still takes."""
    token = "tok-9f8e7d6c5b4a"
    monkeypatch.setenv("INSTALLER_TOKEN", token)
    upstream = tmp_path / "upstream"
    write_folder(upstream / "t" / token / "miniconda", MINICONDA)
    server: UpstreamServer = upstream_server_factory(upstream)
    serve_index(server, f"/t/{token}/miniconda/")
    site = tmp_path / "site"
    config = tmp_path / "channels.yaml"
    installers = (
        "installers:\n  miniconda:\n"
        f"    url: {server.url}/t/${{INSTALLER_TOKEN}}/miniconda/\n    schedule: '@daily'\n"
    )
    config.write_text(f"output: {site}\nchannels: {{}}\n{installers}")
    assert main(["status", "-c", str(config), "--json"]) == EXIT_OK
    (never,) = json.loads(capsys.readouterr().out)["installers"]
    assert never["last_run"] is None and never["due"] is True and never["files"] == 0

    assert main(["mirror", "-c", str(config), "--no-progress"]) == EXIT_OK
    capsys.readouterr()
    assert main(["status", "-c", str(config), "--json"]) == EXIT_OK
    out = capsys.readouterr().out
    assert token not in out
    (found,) = json.loads(out)["installers"]
    assert found["source"] == f"{server.url}/t/***/miniconda"
    assert found["files"] == 2 and found["bytes"] >= sum(map(len, MINICONDA.values()))
    assert found["last_run"]["status"] == COMPLETED
    assert (found["last_run"]["listed"], found["last_run"]["added"]) == (2, 2)
    assert found["due"] is False and found["next_due"].endswith("T00:00:00Z")

    # A failed run shows as the last one, with its error; the schedule counts from the
    # completed one.
    server.add_fault(f"/t/{token}/miniconda/", respond(503))
    assert main(["mirror", "-c", str(config), "--no-progress"]) == 1
    capsys.readouterr()
    assert main(["status", "-c", str(config)]) == EXIT_OK
    text = capsys.readouterr().out
    assert token not in text
    assert "installer folder miniconda (schedule @daily)" in text
    assert "  holds: 2 files, " in text
    assert "HTTP 503" in text and ", failed, started " in text

    config.write_text(f"output: {site}\nchannels: {{}}\n")
    assert main(["status", "-c", str(config), "--json"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert data["installers"] == []
    (left,) = data["unconfigured_installers"]
    assert (left["path"], left["files"]) == ("miniconda", 2) and left["bytes"] > 0
    assert main(["status", "-c", str(config)]) == EXIT_OK
    assert "installer folder not configured, still served: miniconda (" in capsys.readouterr().out


@pytest.mark.integration
def test_status_of_a_folder_that_is_a_loop_of_links(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder that is a loop of links leads nowhere, as a dangling link does: status shows
    it holding nothing, as the run that fails it says, instead of failing whole."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "miniconda").symlink_to(site / "miniconda")
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {site}\nchannels: {{}}\ninstallers:\n"
        "  miniconda:\n    url: https://repo.example.org/miniconda/\n"
    )
    assert main(["status", "-c", str(config), "--json"]) == EXIT_OK
    (found,) = json.loads(capsys.readouterr().out)["installers"]
    assert (found["path"], found["files"], found["bytes"]) == ("miniconda", 0, 0)
