"""``sitegen remove FOLDER``: an installer folder taken out of channels.yaml, mirrored over real
HTTP on 127.0.0.1 beside a channel, deleted on purpose (files, page, state), with ``--dry-run``;
refused while channels.yaml still names it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from sitegen.cli import EXIT_CONFIG, EXIT_LOCKED, EXIT_OK, main
from sitegen.layout import installer_state_path
from sitegen.store.site import Site
from sitegen.sync.history import History
from testkit.installers import serve_index, write_folder
from testkit.site import snapshot
from testkit.site_lock import lock_held
from testkit.upstream import ExampleUpstream, UpstreamServer

pytestmark = pytest.mark.integration

LATEST = "Miniconda3-latest-Linux-x86_64.sh"
MAC = "Miniconda3-latest-MacOSX-arm64.pkg"
FILES = {MAC: b"xar!" * 1000, LATEST: b"#!/bin/sh\n# latest\n" * 160}


class Site2:
    """A site with the channel c/x and the installer folder at ``folder``, mirrored by a real
    run; channels.yaml rewritten with or without the folder."""

    def __init__(self, tmp_path: Path, server: UpstreamServer, channel_url: str, folder: str):
        self.site = tmp_path / "site"
        self.config = tmp_path / "channels.yaml"
        self.server = server
        self.channel_url = channel_url
        self.path = folder

    def configure(self, folder: bool, channels: str = "") -> None:
        text = (
            f"output: {self.site}\n"
            "download: {concurrency: 4, per_host: 4, retries: 1, timeout: 10}\n"
            f"channels:\n  c/x:\n    url: {self.channel_url}\n    subdirs: [linux-64]\n" + channels
        )
        if folder:
            text += f"installers:\n  {self.path}:\n    url: {self.server.url}/miniconda/\n"
        self.config.write_text(text)

    def run(self, *args: str) -> int:
        return main([*args, "-c", str(self.config)])

    @property
    def folder(self) -> Path:
        return self.site / self.path

    def everything(self) -> dict[str, tuple[int, str]]:
        return snapshot(self.site, exclude=[".sitegen/lock"])


@pytest.fixture
def factory(tmp_path: Path, upstream_server_factory, example_upstream: ExampleUpstream):
    upstream = tmp_path / "installers" / "miniconda"
    write_folder(upstream, FILES)
    server = upstream_server_factory(upstream.parent)
    serve_index(server, "/miniconda/")

    def make(folder: str = "miniconda") -> Site2:
        s = Site2(tmp_path, server, example_upstream.url, folder)
        s.configure(folder=True)
        assert s.run("mirror", "--no-progress") == EXIT_OK
        assert sorted(p.name for p in s.folder.iterdir()) == sorted([*FILES, "index.html"])
        s.configure(folder=False)
        return s

    return make


def test_dry_run_then_removal_of_a_folder_no_longer_configured(
    factory, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    s = factory()
    channel = snapshot(s.site / "c/x")
    before = s.everything()
    capsys.readouterr()
    assert s.run("remove", "miniconda", "--dry-run") == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[:-1] == [
        f"would remove miniconda/{LATEST}",
        f"would remove miniconda/{MAC}",
        "would remove miniconda/index.html",
        "would remove .sitegen/installers/miniconda.json",
    ]
    assert lines[-1].startswith("would remove the installer folder miniconda (3 files, ")
    assert lines[-1].endswith(", 1 file of its state)")
    assert s.everything() == before  # a dry run deletes nothing

    caplog.clear()
    caplog.set_level(logging.INFO, logger="sitegen")
    assert s.run("remove", "miniconda") == EXIT_OK
    assert f"removed {lines[-1].removeprefix('would remove ')}" in caplog.text
    assert not s.folder.exists() and not s.folder.is_symlink()
    assert not installer_state_path(s.site, "miniconda").exists()
    assert snapshot(s.site / "c/x") == channel  # the channel is as it was
    # The removal is in the ledger and on the history pages, naming the files it deleted.
    [record] = [r for r in History(Site(s.site)).runs() if r.removal]
    assert record.options == {"remove": "miniconda"}
    [row] = record.installers
    assert (row.path, row.status, row.removed) == ("miniconda", "removed", sorted(FILES))
    page = (s.site / f"history/{record.id}.html").read_text()
    assert "removed by sitegen remove" in page and 'href="../miniconda/' not in page
    history = json.loads((s.site / "history/history.json").read_bytes())
    [entry] = [r for r in history["runs"] if r["id"] == record.id]
    assert entry["installers"][0]["page"] is None and entry["installers"][0]["removed"] == 2

    # Nothing left to list or warn about; a second removal finds nothing.
    capsys.readouterr()
    assert s.run("status", "--json") == EXIT_OK
    assert json.loads(capsys.readouterr().out)["unconfigured_installers"] == []
    caplog.clear()
    assert s.run("mirror", "--no-progress") == EXIT_OK
    assert "installer folder miniconda" not in caplog.text
    assert s.run("remove", "miniconda") == EXIT_CONFIG


def test_the_log_and_status_name_the_command_that_removes_a_folder_left_behind(
    factory, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    s = factory()
    caplog.clear()
    assert s.run("mirror", "--no-progress") == EXIT_OK
    assert "`sitegen remove miniconda` stops serving it" in caplog.text
    capsys.readouterr()
    assert s.run("status") == EXIT_OK
    assert "`sitegen remove miniconda` stops serving it" in capsys.readouterr().out


def test_refusals_touch_nothing(factory, capsys: pytest.CaptureFixture[str]) -> None:
    s = factory()
    s.configure(folder=True)
    before = s.everything()
    capsys.readouterr()
    for args in (["miniconda"], ["miniconda", "--dry-run"], [str(s.folder)]):
        assert s.run("remove", *args) == EXIT_CONFIG, args
        err = capsys.readouterr().err
        assert "still configures the installer folder miniconda" in err
        assert "nothing was removed" in err
    # A channel configured where the folder was: the files there are the channel's now.
    s.configure(
        folder=False, channels=f"  miniconda:\n    url: {s.channel_url}\n    subdirs: [linux-64]\n"
    )
    assert s.run("remove", "miniconda") == EXIT_CONFIG
    assert "configures the channel miniconda there now" in capsys.readouterr().err
    assert s.everything() == before


def test_a_run_holding_the_lock_keeps_the_removal_out(factory) -> None:
    s = factory()
    before = s.everything()
    with lock_held(s.site / ".sitegen"):
        assert s.run("remove", "miniconda") == EXIT_LOCKED
    assert s.everything() == before


def test_a_nested_folder_goes_with_the_parents_it_empties_and_is_due_when_configured_again(
    factory, capsys: pytest.CaptureFixture[str]
) -> None:
    s = factory("installers/miniconda")
    (s.folder / ".sitegen-tmp-left-by-a-killed-run").write_bytes(b"half")
    assert s.run("remove", "installers/miniconda") == EXIT_OK
    assert not (s.site / "installers").exists()
    # Configured again: the runs before the removal were of the folder removed. Its page and
    # status say it never ran, and --due runs it now, though its schedule (daily) counted from
    # the run before the removal would not fire until tomorrow.
    s.configure(folder=True)
    assert s.run("render") == EXIT_OK
    page = (s.folder / "index.html").read_text()
    assert "none yet" in page and "Nothing published yet." in page
    capsys.readouterr()
    assert s.run("status", "--json") == EXIT_OK
    (folder,) = json.loads(capsys.readouterr().out)["installers"]
    assert folder["last_run"] is None and folder["due"] is True
    s.server.reset()
    assert s.run("mirror", "--no-progress", "--due") == EXIT_OK
    assert sorted(p.name for p in s.folder.iterdir()) == sorted([*FILES, "index.html"])
    capsys.readouterr()
    assert s.run("status", "--json") == EXIT_OK
    (folder,) = json.loads(capsys.readouterr().out)["installers"]
    assert folder["last_run"]["status"] == "completed" and folder["last_run"]["added"] == 2


def test_a_folder_made_a_link_goes_itself_and_nothing_it_leads_to(
    factory, capsys: pytest.CaptureFixture[str]
) -> None:
    s = factory()
    elsewhere = s.site / "kept-by-hand"
    s.folder.rename(elsewhere)
    s.folder.symlink_to(elsewhere)
    kept = snapshot(elsewhere)
    capsys.readouterr()
    assert s.run("remove", "miniconda", "--dry-run") == EXIT_OK
    out = capsys.readouterr().out
    assert "would remove miniconda (a link: itself, nothing it leads to)" in out
    assert s.run("remove", "miniconda") == EXIT_OK
    assert not s.folder.is_symlink() and snapshot(elsewhere) == kept
    assert not installer_state_path(s.site, "miniconda").exists()
