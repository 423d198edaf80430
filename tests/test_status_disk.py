"""``sitegen status`` reading the site: disk use per channel, subdirs and channels no longer
configured on lines of their own, and the lock holder read without taking the lock."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sitegen.cli import EXIT_OK, main
from sitegen.config import parse_config
from sitegen.store.lock import SiteLock, lock_holder
from sitegen.tools.site_disk import disk_usage
from sitegen.tools.status import collect_status


@pytest.mark.unit
def test_disk_usage_counts_hard_links_once_and_skips_nested_channels(tmp_path: Path) -> None:
    channel = tmp_path / "c"
    (channel / "linux-64").mkdir(parents=True)
    (channel / "linux-64" / "a.conda").write_bytes(b"x" * 10000)
    os.link(channel / "linux-64" / "a.conda", channel / "linux-64" / "b.conda")
    (channel / "nested" / "linux-64").mkdir(parents=True)
    (channel / "nested" / "linux-64" / "n.conda").write_bytes(b"y" * 50000)
    used, files = disk_usage(channel, {channel / "nested"})
    assert files == 1
    assert 10000 <= used < 50000


@pytest.mark.unit
def test_a_subdir_no_longer_configured_counts_on_its_own_line_not_in_its_channel(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    for subdir, size in (("linux-64", 10000), ("osx-64", 50000)):
        (site / "c/x" / subdir).mkdir(parents=True)
        (site / "c/x" / subdir / "repodata.json").write_text("{}")
        (site / "c/x" / subdir / "p.conda").write_bytes(b"x" * size)
    config = parse_config(
        f"output: {site}\nchannels:\n"
        "  c/x:\n    url: http://127.0.0.1:1/c\n    subdirs: [linux-64]\n"
    )
    status = collect_status(config)
    [osx] = status.unconfigured
    [channel] = status.channels
    assert (osx.path, osx.files, channel.files) == ("c/x/osx-64", 2, 2)
    assert channel.bytes + osx.bytes == disk_usage(site / "c/x", set())[0]
    assert channel.bytes < 50000 <= osx.bytes


@pytest.mark.unit
def test_a_channel_no_longer_configured_inside_a_configured_one_counts_its_own_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its subdirs on their own lines, and its channeldata.json, pages and search index on its
    own line too, not in the disk of the channel it sits in."""
    site = tmp_path / "site"
    for channel, size in (("c/x", 10000), ("c/x/old", 20000)):
        (site / channel / "linux-64").mkdir(parents=True)
        (site / channel / "linux-64" / "repodata.json").write_text("{}")
        (site / channel / "linux-64" / "p.conda").write_bytes(b"x" * size)
    old = site / "c/x/old"
    (old / "channeldata.json").write_bytes(b"{}" * 40000)
    (old / "index.html").write_text("<html></html>")
    (old / "packages").mkdir()
    (old / "packages" / "p.html").write_text("<html></html>")
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {site}\nchannels:\n"
        "  c/x:\n    url: http://127.0.0.1:1/c\n    subdirs: [linux-64]\n"
    )
    status = collect_status(parse_config(config.read_text()))
    [channel] = status.channels
    [subdir] = status.unconfigured
    [gone] = status.unconfigured_channels
    assert (channel.channel, channel.files) == ("c/x", 2)
    assert (subdir.path, subdir.files) == ("c/x/old/linux-64", 2)
    assert (gone.path, gone.files) == ("c/x/old", 3)
    assert channel.bytes < 20000 and gone.bytes >= 80000
    assert channel.bytes + subdir.bytes + gone.bytes == disk_usage(site / "c/x", set())[0]
    assert main(["status", "-c", str(config), "--json"]) == EXIT_OK
    shown = json.loads(capsys.readouterr().out)["unconfigured_channels"]
    assert shown == [{"path": "c/x/old", "bytes": gone.bytes, "files": 3}]
    assert main(["status", "-c", str(config)]) == EXIT_OK
    text = capsys.readouterr().out
    assert "channel not configured, still served: c/x/old (" in text
    assert "`sitegen remove c/x/old` stops serving it" in text


@pytest.mark.unit
def test_disk_lines_count_one_file_as_one_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A channel, a subdir and a channel no longer configured, each of one file: "in 1 file"."""
    site = tmp_path / "site"
    for subdir in ("c/x/linux-64", "c/old/linux-64"):
        (site / subdir).mkdir(parents=True)
        (site / subdir / "repodata.json").write_text("{}")
    (site / "c/old/index.html").write_text("<html></html>")
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {site}\nchannels:\n"
        "  c/x:\n    url: http://127.0.0.1:1/c\n    subdirs: [linux-64]\n"
    )
    assert main(["status", "-c", str(config)]) == EXIT_OK
    text = capsys.readouterr().out
    assert " in 1 files" not in text
    assert text.count(" in 1 file") == 3


@pytest.mark.unit
def test_lock_holder_reads_the_lock_without_taking_it(tmp_path: Path) -> None:
    state = tmp_path / ".sitegen"
    assert lock_holder(state) is None  # no site yet
    with SiteLock(state):
        assert lock_holder(state) == os.getpid()
    assert lock_holder(state) is None  # released; the file stays
