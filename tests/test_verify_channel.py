"""``sitegen verify [--repair]`` over what a channel publishes beyond each subdir's files:
a subdir's ``repodata.json`` lost while the rest of the subdir stays, the channel's
``notices.json`` and its ``channeldata.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sitegen.cli import main
from testkit.invariant import site_digest
from testkit.local import drop_all
from testkit.small_channel import CHANNEL, mirrored_small, small_packages, write_config
from testkit.upstream import UpstreamServer

pytestmark = pytest.mark.integration

LINUX = "linux-64"


@pytest.fixture
def mirrored(tmp_path: Path) -> Iterator[tuple[Path, Path, UpstreamServer]]:
    with mirrored_small(tmp_path) as mirrored:
        yield mirrored


def _verify(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["verify", "-c", str(config), *args])
    return code, capsys.readouterr().out


@pytest.mark.parametrize("subdir", ["noarch", LINUX])
def test_a_published_subdir_that_lost_its_repodata_is_reported_and_left_for_a_run(
    mirrored: tuple[Path, Path, UpstreamServer], capsys: pytest.CaptureFixture[str], subdir: str
) -> None:
    """Its .zst, packages and shards stay; without repodata.json (noarch's: every conda client
    of the channel fails) the subdir is broken. Nothing on disk can rebuild it safely, so
    --repair says so and deletes nothing; a run of the channel publishes it again."""
    config, site, _server = mirrored
    (site / CHANNEL / subdir / "repodata.json").unlink()
    before = site_digest(site)
    code, out = _verify(config, capsys)
    assert code == 1, out
    line = f"metadata: {CHANNEL}/{subdir}/repodata.json: missing"
    assert line in out, out
    assert "sitegen mirror --only" in out
    code, out = _verify(config, capsys, "--repair")
    assert code == 1, out
    assert line in out and "(repaired)" not in out, out
    assert "cannot rebuild" in out, out
    assert site_digest(site) == before, "--repair changed a subdir it cannot rebuild"
    assert main(["mirror", "-c", str(config), "--no-progress"]) == 0
    code, out = _verify(config, capsys)
    assert code == 0, out


def test_every_published_subdir_that_lost_its_repodata_is_named(
    mirrored: tuple[Path, Path, UpstreamServer], capsys: pytest.CaptureFixture[str]
) -> None:
    """With no repodata.json left at all the channel is not "nothing published": each lost
    file is named."""
    config, site, _server = mirrored
    for subdir in ("noarch", LINUX):
        (site / CHANNEL / subdir / "repodata.json").unlink()
    code, out = _verify(config, capsys)
    assert code == 1, out
    assert "nothing to verify" not in out, out
    for subdir in ("noarch", LINUX):
        assert f"metadata: {CHANNEL}/{subdir}/repodata.json: missing" in out, out


def test_a_configured_subdir_never_published_is_no_problem(
    tmp_path: Path,
    mirrored: tuple[Path, Path, UpstreamServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A subdir upstream does not serve is never published (but noarch): nothing is lost."""
    _config, site, server = mirrored
    config = write_config(
        tmp_path / "more.yaml", site, server.url, retries=1, subdirs="[linux-64, osx-arm64]"
    )
    code, out = _verify(config, capsys)
    assert code == 0, out
    assert "osx-arm64" not in out


NOTICES = """\
    notices:
      - message: Maintenance tonight.
        level: warning
      - message: An old notice.
        expires: 2020-01-01
"""


@pytest.mark.parametrize("damage", ["tampered", "missing", "stale"])
def test_a_notices_json_other_than_the_configuration_makes_is_reported_and_rewritten(
    mirrored: tuple[Path, Path, UpstreamServer], capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    """conda shows notices.json on install: one someone edited, lost, or that a notice added
    to channels.yaml since the last run is missing from, differs from what the publisher
    writes (the expired notice left out). --repair writes that."""
    config, site, _server = mirrored
    notices = site / CHANNEL / "notices.json"
    if damage == "stale":  # the last run had no notices; channels.yaml has some now
        assert not notices.exists()
        config.write_text(config.read_text() + NOTICES)
    else:
        config.write_text(config.read_text() + NOTICES)
        assert main(["mirror", "-c", str(config), "--no-progress"]) == 0
        published = json.loads(notices.read_bytes())
        assert [n["message"] for n in published["notices"]] == ["Maintenance tonight."]
        if damage == "missing":
            notices.unlink()
        else:
            published["notices"][0]["message"] = "Send your password to evil.example."
            notices.write_text(json.dumps(published))
    code, out = _verify(config, capsys)
    assert code == 1, out
    assert f"metadata: {CHANNEL}/notices.json: " in out, out
    code, out = _verify(config, capsys, "--repair")
    assert code == 0, out
    assert f"metadata: {CHANNEL}/notices.json: " in out and "(repaired)" in out, out
    document = json.loads(notices.read_bytes())
    assert [n["message"] for n in document["notices"]] == ["Maintenance tonight."]
    code, out = _verify(config, capsys)
    assert code == 0, out


def test_a_notices_json_without_active_notices_is_reported_and_removed(
    mirrored: tuple[Path, Path, UpstreamServer], capsys: pytest.CaptureFixture[str]
) -> None:
    """With no active notice the publisher writes none: one left over still shows on every
    install."""
    config, site, _server = mirrored
    notices = site / CHANNEL / "notices.json"
    notices.write_text('{"notices": [{"id": "x", "message": "Gone.", "level": "info"}]}')
    code, out = _verify(config, capsys)
    assert code == 1 and f"metadata: {CHANNEL}/notices.json: " in out, out
    code, out = _verify(config, capsys, "--repair")
    assert code == 0 and "(repaired)" in out, out
    assert not notices.exists()


def test_a_frozen_channel_keeps_the_notices_json_it_published(
    mirrored: tuple[Path, Path, UpstreamServer], capsys: pytest.CaptureFixture[str]
) -> None:
    """Its runs leave notices.json as published: notices added since are no problem."""
    config, site, _server = mirrored
    args = ["-c", str(config)]
    assert main(["freeze", CHANNEL, *args, "--by", "alice", "--reason", "release"]) == 0
    config.write_text(config.read_text() + NOTICES)
    code, out = _verify(config, capsys, "--repair")
    assert code == 0, out
    assert not (site / CHANNEL / "notices.json").exists()


def _entries(channeldata: Path) -> dict[str, tuple[list[str], str]]:
    packages = json.loads(channeldata.read_bytes())["packages"]
    return {name: (entry["subdirs"], entry["version"]) for name, entry in packages.items()}


@pytest.mark.parametrize("damage", ["missing", "stale"])
def test_a_channeldata_json_other_than_repodata_says_is_reported_and_rebuilt(
    mirrored: tuple[Path, Path, UpstreamServer], capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    """Clients and tools read channeldata.json for what a channel holds: one lost, or that
    leaves a package out, names a stale version or other subdirs, disagrees with the
    channel's repodata.json. A mirror's records are all it is built from: --repair builds it
    again as a run does."""
    config, site, _server = mirrored
    channeldata = site / CHANNEL / "channeldata.json"
    pristine = channeldata.read_bytes()
    if damage == "missing":
        channeldata.unlink()
    else:
        document = json.loads(pristine)
        del document["packages"]["beta"]
        document["packages"]["alpha"]["version"] = "0.9"
        document["packages"]["gamma"]["subdirs"] = ["noarch"]
        document["packages"]["zeta"] = {"subdirs": [LINUX], "version": "1.0"}
        channeldata.write_text(json.dumps(document))
    code, out = _verify(config, capsys)
    assert code == 1, out
    line = f"metadata: {CHANNEL}/channeldata.json: "
    assert line in out, out
    if damage == "stale":
        for name in ("alpha", "beta", "gamma", "zeta"):
            assert name in out, out
    code, out = _verify(config, capsys, "--repair")
    assert code == 0 and line in out and "(repaired)" in out, out
    assert channeldata.read_bytes() == pristine
    code, out = _verify(config, capsys)
    assert code == 0, out


def test_a_local_sources_channeldata_is_reported_and_left_for_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A local source's package details (its about.json: summary, home ...) are in
    channeldata.json and in no repodata.json: built from repodata.json alone they would be
    lost, so --repair leaves it and names the run that rebuilds it."""
    folder = tmp_path / "incoming"
    drop_all(folder, small_packages()[:2])
    site = tmp_path / "site"
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {site}\nchannels:\n  internal/own:\n    path: {folder}\n    subdirs: [linux-64]\n"
    )
    assert main(["mirror", "-c", str(config), "--no-progress"]) == 0
    channeldata = site / "internal/own/channeldata.json"
    pristine = channeldata.read_bytes()
    assert b"an example package for sitegen" in pristine  # from about.json
    document = json.loads(pristine)
    document["packages"]["alpha"]["version"] = "0.9"
    channeldata.write_text(json.dumps(document))
    for args in ((), ("--repair",)):
        code, out = _verify(config, capsys, *args)
        assert code == 1, out
        assert "metadata: internal/own/channeldata.json: " in out, out
        assert "sitegen mirror --only" in out and "(repaired)" not in out, out
    assert json.loads(channeldata.read_bytes()) == document
    assert main(["mirror", "-c", str(config), "--no-progress"]) == 0
    assert channeldata.read_bytes() == pristine
    code, out = _verify(config, capsys)
    assert code == 0, out


def test_a_damaged_freeze_file_is_reported_and_left_for_the_operator(
    mirrored: tuple[Path, Path, UpstreamServer], capsys: pytest.CaptureFixture[str]
) -> None:
    """Every run keeps every channel as published while .sitegen/frozen.json cannot be read,
    and fails: verify says so too. Which channels were frozen is the operator's to say, so
    --repair leaves the file as it is."""
    config, site, _server = mirrored
    frozen = site / ".sitegen/frozen.json"
    frozen.write_text("{not json")
    line = "metadata: .sitegen/frozen.json: "
    for args in [(), ("--repair",)]:
        code, out = _verify(config, capsys, *args)
        assert code == 1 and line in out and "(repaired)" not in out, out
    assert frozen.read_text() == "{not json"
    frozen.unlink()
    code, out = _verify(config, capsys)
    assert code == 0, out


@pytest.mark.parametrize("name", ["notices.json", "channeldata.json"])
def test_a_channel_file_that_is_a_link_out_of_the_site_is_reported_and_left_alone(
    mirrored: tuple[Path, Path, UpstreamServer],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
) -> None:
    """A channel's notices.json or channeldata.json made a link to a file out of the site
    (shared between sites, say): the site's writer refuses it, so verify names the link and
    exits 1, with --repair too, writing nothing through it; the rest is checked and repaired."""
    config, site, _server = mirrored
    outside = tmp_path / "shared.json"
    outside.write_text('{"someone": "else"}')
    link = site / CHANNEL / name
    link.unlink(missing_ok=True)
    link.symlink_to(outside)
    stale = site / CHANNEL / LINUX / "repodata.json.zst"
    stale.write_bytes(b"not zstd")
    relative = f"{CHANNEL}/{name}"
    for args in ([], ["--repair"]):
        code, out = _verify(config, capsys, *args)
        assert code == 1, out
        assert f"metadata: {relative}: a link out of the site, to {outside}: left alone" in out
        assert "(repaired)" not in out.split(relative)[1].splitlines()[0], out
        assert outside.read_text() == '{"someone": "else"}' and link.is_symlink()
    code, out = _verify(config, capsys)
    assert f"{CHANNEL}/{LINUX}/repodata.json.zst" not in out, out  # the rest repaired


def test_a_repodata_json_that_is_a_link_out_of_the_site_is_reported_and_left_for_a_run(
    mirrored: tuple[Path, Path, UpstreamServer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The site's repodata.json made a link to a file out of it, even one holding what was
    published: what is checked against it is not the site's. Named, not read; once it is
    removed, a run publishes the subdir's own again."""
    config, site, _server = mirrored
    published = site / CHANNEL / LINUX / "repodata.json"
    outside = tmp_path / "repodata.json"
    outside.write_bytes(published.read_bytes())
    published.unlink()
    published.symlink_to(outside)
    line = f"metadata: {CHANNEL}/{LINUX}/repodata.json: a link out of the site, to {outside}"
    for args in ([], ["--repair"]):
        code, out = _verify(config, capsys, *args)
        assert code == 1, out
        assert line in out and "remove it, then run sitegen mirror --only" in out, out
        assert published.is_symlink()
    published.unlink()
    assert main(["mirror", "-c", str(config), "--no-progress"]) == 0
    assert not published.is_symlink()
    assert _verify(config, capsys)[0] == 0
