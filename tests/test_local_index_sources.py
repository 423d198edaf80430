"""Local sources as configured: beside upstream mirrors, absent or misplaced folders, and
folders on another filesystem."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from sitegen.config import parse_config
from sitegen.tools.example_channel import PackageSpec, write_channel
from testkit.local import (
    CHANNEL,
    SPECS,
    drop_all,
    local_config,
    run,
)
from testkit.site import assert_channel_consistent, published, read_repodata, sha256_of

pytestmark = pytest.mark.unit


def test_local_builds_beside_an_upstream_subset_first_listed_wins(tmp_path: Path) -> None:
    upstream = tmp_path / "upstream"
    clash = PackageSpec("foo", "1.1", "h2_1", build_number=1, seed=99)
    from_upstream = [clash, PackageSpec("zlib", "1.3", "h0", formats=("conda",))]
    write_channel(upstream, from_upstream)
    folder = tmp_path / "incoming"
    local = drop_all(folder, [SPECS[1], PackageSpec("skipme", "1", "0")])
    site = tmp_path / "site"
    config = parse_config(
        f"""
output: {site}
channels:
  {CHANNEL}:
    mirrors:
      - name: builds
        path: {folder}
        subdirs: [linux-64]
        filters: {{names: {{exclude: [skipme]}}}}
      - name: forge
        url: file://{upstream}
        subdirs: [linux-64]
"""
    )
    report = run(config)
    assert not report.failed
    assert_channel_consistent(site, CHANNEL)
    records = read_repodata(site / CHANNEL / "linux-64")
    listed = {**records["packages"], **records["packages.conda"]}
    assert set(listed) == set(clash.filenames) | {"zlib-1.3-h0.conda"}
    for fn in clash.filenames:
        assert listed[fn]["sha256"] == sha256_of(local[fn])  # the local build wins
    forge = next(m for m in report.mirrors if m.name == "forge")
    assert forge.conflicts
    builds = next(m for m in report.mirrors if m.name == "builds")
    assert sum(builds.subdirs["linux-64"].excluded.values()) == 2
    current = read_repodata(site / CHANNEL / "linux-64", "current_repodata.json")
    assert "foo-1.1-h2_1.conda" in current["packages.conda"]


def test_an_absent_folder_fails_the_mirror_and_keeps_what_was_published(tmp_path: Path) -> None:
    folder = tmp_path / "incoming"
    drop_all(folder, SPECS[:2])
    site = tmp_path / "site"
    config = local_config(site, folder)
    assert not run(config).failed
    before = published(site, CHANNEL, "linux-64")
    shutil.rmtree(folder)
    report = run(config)
    assert report.failed
    assert "cannot list the folder" in report.mirrors[0].errors[0]
    assert published(site, CHANNEL, "linux-64") == before
    assert_channel_consistent(site, CHANNEL)


def test_a_relative_path_is_a_configuration_error() -> None:
    from sitegen.config import ConfigError

    with pytest.raises(ConfigError, match="path must be absolute"):
        parse_config("output: s\nchannels:\n  a/b:\n    path: incoming\n    subdirs: [noarch]\n")


def test_a_folder_inside_the_site_is_a_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The web server serves the site directory whole: a local source's folder inside it had
    every file dropped there served as it was, a package refused as hostile and those of a
    private channel (without a token) alike. Such a folder, reached through a link too, is a
    configuration error naming file, line and key; so is an --out that puts the site around
    it. Beside the site, it is fine."""
    from sitegen.cli import main
    from sitegen.config import ConfigError

    site = tmp_path / "site"
    site.mkdir()
    (tmp_path / "link").symlink_to(site)
    for folder in (site / "incoming", tmp_path / "link" / "incoming", site):
        text = f"output: {site}\nchannels:\n  a/b:\n    path: {folder}\n    subdirs: [noarch]\n"
        with pytest.raises(ConfigError) as caught:
            parse_config(text)
        message = str(caught.value)
        assert message.startswith("channels.yaml:4: channels.a/b: mirror 'a-b': its folder"), (
            message
        )
        assert "inside the site directory" in message
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {tmp_path / 'elsewhere'}\nchannels:\n  a/b:\n"
        f"    path: {site / 'incoming'}\n    subdirs: [noarch]\n"
    )
    assert main(["mirror", "-c", str(config_path), "--out", str(site)]) == 2
    err = capsys.readouterr().err
    assert "configuration error: --out: channel 'a/b', mirror 'a-b': its folder" in err, err
    assert list(site.iterdir()) == []
    beside = tmp_path / "incoming"
    parse_config(f"output: {site}\nchannels:\n  a/b:\n    path: {beside}\n    subdirs: [noarch]\n")


def test_a_local_source_cannot_be_passive() -> None:
    from sitegen.config import ConfigError

    text = "output: s\nchannels:\n  a/b:\n    path: /in\n    subdirs: [noarch]\n    mode: passive\n"
    with pytest.raises(
        ConfigError, match=r"channels.a/b.mode: a mirror with 'path' cannot be passive"
    ):
        parse_config(text)


def test_across_filesystems_the_files_are_copied(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the test's directory")
    folder = Path(tempfile.mkdtemp(dir=shm, prefix="sitegen-local-"))
    try:
        files = drop_all(folder, SPECS[:1])
        site = tmp_path / "site"
        report = run(local_config(site, folder))
        assert not report.failed
        assert_channel_consistent(site, CHANNEL)
        for fn, source in files.items():
            published_file = site / CHANNEL / "linux-64" / fn
            assert os.stat(published_file).st_ino != os.stat(source).st_ino
            assert published_file.read_bytes() == source.read_bytes()
    finally:
        shutil.rmtree(folder)
