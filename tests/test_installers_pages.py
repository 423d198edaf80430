"""The pages of installer folders: each folder's page, the landing page opening with the
folders, and the run pages linking a folder's page while there is one."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from sitegen.cli import main
from testkit.installer_site import (
    FILES,
    LATEST,
    MAC,
    OLD,
    WINDOWS,
    config_text,
    example_channel,
    on_disk,
    serve_installer_folder,
)
from testkit.installers import Row, write_folder
from testkit.upstream import ExampleUpstream, UpstreamServer

pytestmark = pytest.mark.integration

upstream = pytest.fixture(name="upstream")(serve_installer_folder)


def test_the_folder_page_lists_each_file_and_the_landing_page_links_it(
    tmp_path: Path, upstream: tuple[UpstreamServer, Path]
) -> None:
    server, folder = upstream
    hostile = '<img src=x onerror="alert(1)">.sh'
    write_folder(folder, FILES, extra=[Row(hostile, "1.0K", "2025-01-01 00:00:00", "0" * 64)])
    site = tmp_path / "site"
    config_path = tmp_path / "channels.yaml"
    summary_path = tmp_path / "summary.json"
    save_stdin = f"import sys; open({str(summary_path)!r}, 'wb').write(sys.stdin.buffer.read())"
    notify = f"notify:\n  on_success: {json.dumps([sys.executable, '-c', save_stdin])}\n"
    config_path.write_text(notify + config_text(site, server.url))
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
    # The notification hook hears of the skipped row too: a run that completes says so nowhere
    # else a hook reads.
    (summary,) = json.loads(summary_path.read_bytes())["installers"]
    assert (summary["added"], summary["files"], summary["skipped"]) == (3, 3, 1)

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
