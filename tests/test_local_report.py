"""What a run says about local sources: files are added from a folder, not downloaded, and
records are read in a folder, not upstream; in the log, ``sitegen status``, a dry run, the
run and history pages and the landing page."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from sitegen.cli import main
from sitegen.tools.example_channel import PackageSpec, write_channel
from testkit.local import drop_all
from testkit.small_channel import small_packages

pytestmark = pytest.mark.unit

OWN = PackageSpec("own", "1.0", "h0_0", formats=("conda",))


def _site(tmp_path: Path) -> Path:
    """``internal/own``: a folder only; ``internal/mixed``: a folder and an upstream channel."""
    drop_all(tmp_path / "inbox", small_packages())
    drop_all(tmp_path / "builds", [OWN])
    write_channel(tmp_path / "up", small_packages(seed=1))
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {tmp_path / 'site'}\n"
        "channels:\n"
        f"  internal/own: {{path: {tmp_path / 'inbox'}, subdirs: [linux-64]}}\n"
        "  internal/mixed:\n"
        "    mirrors:\n"
        f"      - {{name: builds, path: {tmp_path / 'builds'}, subdirs: [linux-64]}}\n"
        f"      - {{name: forge, url: 'file://{tmp_path / 'up'}', subdirs: [linux-64]}}\n"
    )
    return config


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_local_files_are_added_from_the_folder_not_downloaded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _site(tmp_path)
    assert main(["mirror", "-c", str(config), "--dry-run", "--no-progress"]) == 0
    dry = capsys.readouterr().out
    assert re.search(r"internal/own/linux-64: would add 5 files from the folder \(\d+ bytes\)", dry)
    assert re.search(
        r"internal/mixed/linux-64: would download 5 files \(\d+ bytes\),"
        r" would add 1 file from the folder \(\d+ bytes\)",
        dry,
    )

    with caplog.at_level(logging.INFO, logger="sitegen"):
        assert main(["mirror", "-c", str(config), "--no-progress"]) == 0
    lines = [r.getMessage() for r in caplog.records]
    assert any(
        re.fullmatch(
            r"internal/own/linux-64: published, 5 files \(\+5 ~0 -0\),"
            r" added 5 files from the folder \([0-9.]+ KB\)",
            line,
        )
        for line in lines
    ), lines
    assert any(
        re.fullmatch(
            r"internal/mixed/linux-64: published, 6 files \(\+6 ~0 -0\), downloaded 5 files"
            r" \([0-9.]+ KB\), added 1 file from the folder \([0-9.]+ KB\)",
            line,
        )
        for line in lines
    ), lines
    assert not [line for line in lines if "internal/own" in line and "download" in line]

    assert main(["status", "-c", str(config)]) == 0
    status = capsys.readouterr().out
    assert "(+6 ~0 -0), added 6 files from the folder (" in status  # internal-own
    assert "download" not in status.split("mirror builds")[0]

    site = tmp_path / "site"
    run_page = _text(next((site / "history").glob("2*.html")).read_text())
    assert "new files: 6 files downloaded (" in run_page
    assert "7 files added from local folders (" in run_page
    assert "Rejected upstream records" not in run_page
    own_section = run_page.split("internal-own → internal/own")[1].split("builds →")[0]
    assert "Folder" in own_section and "Upstream" not in own_section
    history = _text((site / "history" / "index.html").read_text())
    assert "added from local folders" in history

    landing = (site / "index.html").read_text()
    assert "kept <b>6</b> of 6 records in the folder" in landing  # internal-own
    assert "kept <b>6</b> of 6 upstream records" in landing  # forge
    lead = _text(landing.split('class="lead">')[1].split("</p>")[0])
    assert lead.startswith(
        "2 channels mirrored from upstream conda channels or published from local folders,"
    )


def test_the_landing_page_of_a_site_of_local_folders_says_so(tmp_path: Path) -> None:
    drop_all(tmp_path / "inbox", small_packages())
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {tmp_path / 'site'}\n"
        f"channels:\n  internal/own: {{path: {tmp_path / 'inbox'}, subdirs: [linux-64]}}\n"
    )
    assert main(["mirror", "-c", str(config), "--no-progress"]) == 0
    landing = (tmp_path / "site" / "index.html").read_text()
    assert "upstream" not in _text(landing.split("<h2")[0]).lower()
    assert "1 channel of packages published from local folders, filtered and verified." in landing
