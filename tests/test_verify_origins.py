"""``sitegen verify`` over a subdir's origins map: which mirror supplied each file
``repodata.json`` lists. The pull-through fetcher and ``verify --repair`` fetch a file from
the mirror it names; one it cannot be read, or that names no mirror of the channel for a listed
file, is reported, and so is a lost one in a channel with one mirror (a run writes it again;
``--repair`` cannot tell which mirror supplied what, but in a channel fed by one mirror: a
local source's, or a remote mirror's from the copy of upstream's repodata a run kept)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import zstandard

from sitegen.cli import main
from sitegen.config import load_config
from sitegen.layout import origins_path, upstream_cache_dir
from sitegen.tools.example_channel import PackageSpec, write_channel
from sitegen.tools.verify import verify_site
from testkit.invariant import assert_site_invariant, make_sandbox
from testkit.local import drop
from testkit.small_channel import (
    CHANNEL,
    mirrored_by_two,
    mirrored_small,
    set_repodata,
    small_packages,
)
from testkit.upstream import UpstreamServer

pytestmark = pytest.mark.integration

LINUX = "linux-64"
SECOND = "gamma-0.1-h2_0.tar.bz2"  # supplied by the second mirror
TOKEN = "tk-5f0c2a9e41d7b3c8"
# Where upstream's CEP-15 base_url puts the linux-64 packages: the token of the mirror's URL
# (written here as its reference) and text of upstream's own that reads as one.
BASE = "/t/${SITEGEN_TEST_TOKEN}/pkgs/${SITEGEN_TEST_TOKEN}/"
BASE_HIDDEN = "/t/${SITEGEN_TEST_TOKEN}/pkgs/${}{SITEGEN_TEST_TOKEN}/"


@pytest.fixture
def two_mirrors(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(config, site) of a channel fed by two mirrors, mirrored once."""
    with mirrored_by_two(tmp_path) as (config, site, _first, _second):
        yield config, site


def _edit(path: Path, damage: str) -> None:
    if damage == "lost":
        path.unlink()
        return
    if damage == "unreadable":
        path.write_bytes(b'{"files": ')
        return
    document = json.loads(path.read_bytes())
    if damage == "dropped":
        del document["files"][SECOND]
    else:  # a mirror channels.yaml does not give the channel
        document["files"][SECOND] = "gone"
    path.write_text(json.dumps(document))


@pytest.mark.parametrize("damage", ["lost", "unreadable", "dropped", "unknown"])
def test_an_origins_map_that_names_no_mirror_of_a_listed_file_is_reported(
    two_mirrors: tuple[Path, Path], capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    config, site = two_mirrors
    path = origins_path(site, CHANNEL, LINUX)
    relative = path.relative_to(site).as_posix()
    assert main(["verify", "-c", str(config)]) == 0
    _edit(path, damage)
    capsys.readouterr()
    assert main(["verify", "-c", str(config)]) == 1
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if relative in line]
    assert line.startswith(f"metadata: {relative}: "), out
    assert "sitegen mirror --only first" in line, line
    if damage in ("dropped", "unknown"):
        assert f"names no mirror of the channel for {SECOND} " in line, line
    else:
        assert "names no mirror of the channel for 5 files" in line, line
    # --repair cannot tell which mirror supplied what: it leaves the map to the run it names.
    assert main(["verify", "-c", str(config), "--repair"]) == 1
    assert "(repaired)" not in capsys.readouterr().out
    assert main(["mirror", "-c", str(config), "--no-progress"]) == 0
    assert main(["verify", "-c", str(config)]) == 0
    assert_site_invariant(site)


def test_a_channel_with_one_mirror_needs_its_map_not_an_entry_per_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With one mirror every file comes from it, whatever the map says of it: a dropped entry
    leaves nothing without a mirror. A lost map loses where that mirror keeps its packages
    (CEP-15 base_url, which only upstream says), and one that cannot be read fails every fetch
    that reads it: both are reported, and left to the run that writes the map again."""
    with mirrored_small(tmp_path) as (config, site, _server):
        path = origins_path(site, CHANNEL, LINUX)
        relative = path.relative_to(site).as_posix()
        command = f"run sitegen mirror --only {CHANNEL.replace('/', '-')}"
        document = json.loads(path.read_bytes())
        del document["files"][SECOND]
        path.write_text(json.dumps(document))
        assert main(["verify", "-c", str(config)]) == 0
        # Without the copy of upstream's repodata a run keeps, where upstream keeps the
        # packages is not known here: --repair leaves the map to the run it names.
        copy = upstream_cache_dir(site, CHANNEL.replace("/", "-"), LINUX) / "validators.json"
        for damage, said in [(b"", "missing; "), (b"\xff", "cannot be read (")]:
            kept = copy.read_bytes()
            copy.unlink()
            if damage:
                path.write_bytes(damage)
            else:
                path.unlink()
            capsys.readouterr()
            assert main(["verify", "-c", str(config)]) == 1
            out = capsys.readouterr().out
            (line,) = [line for line in out.splitlines() if relative in line]
            assert line.startswith(f"metadata: {relative}: {said}"), out
            assert "CEP-15 base_url" in line and command in line, line
            assert main(["verify", "-c", str(config), "--repair"]) == 1
            assert "(repaired)" not in capsys.readouterr().out
            assert main(["mirror", "-c", str(config), "--no-progress"]) == 0
            assert main(["verify", "-c", str(config)]) == 0
            assert copy.read_bytes() == kept  # the run kept it again
        # With the copy, --repair writes it as the run did: upstream sets no base_url.
        written = path.read_bytes()
        path.unlink()
        capsys.readouterr()
        assert main(["verify", "-c", str(config), "--repair"]) == 0
        assert "(it sets no base_url) (repaired)" in capsys.readouterr().out
        assert path.read_bytes() == written
        assert_site_invariant(site)


def _cep15_site(tmp_path: Path, server: UpstreamServer) -> tuple[Path, Path, bytes]:
    """(config, site, its linux-64 origins map) of a channel fed by one mirror whose URL takes
    a token, its upstream's linux-64 packages elsewhere: under a CEP-15 base_url that echoes
    the token and holds text of upstream's own that reads as a reference."""
    site = make_sandbox(tmp_path)
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {site}\n"
        "channels:\n"
        f"  {CHANNEL}:\n"
        f"    url: {server.url}/t/${{SITEGEN_TEST_TOKEN}}/chan\n"
        "    subdirs: [linux-64]\n"
    )
    assert main(["mirror", "-c", str(config), "--no-progress"]) == 0
    written = origins_path(site, CHANNEL, LINUX).read_bytes()
    assert TOKEN not in written.decode() and BASE_HIDDEN in written.decode(), written
    return config, site, written


@pytest.fixture
def cep15_upstream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[UpstreamServer]:
    """An upstream serving :func:`small_packages` under /t/<token>/chan, its linux-64 packages
    under :data:`BASE` (the token filled in)."""
    monkeypatch.setenv("SITEGEN_TEST_TOKEN", TOKEN)
    root = tmp_path / "upstream"
    chan = root / "t" / TOKEN / "chan"
    documents = write_channel(chan, small_packages(), zst=True)
    elsewhere = root / BASE.replace("${SITEGEN_TEST_TOKEN}", TOKEN, 1).strip("/")
    elsewhere.mkdir(parents=True)
    for entry in (chan / LINUX).iterdir():
        if not entry.name.startswith("repodata"):
            entry.rename(elsewhere / entry.name)
    document = documents[LINUX]
    document["info"]["base_url"] = BASE.replace("${SITEGEN_TEST_TOKEN}", TOKEN, 1)
    set_repodata(chan, LINUX, json.dumps(document).encode())
    with UpstreamServer(root) as server:
        yield server


def test_repair_writes_the_lost_map_of_a_channel_fed_by_one_mirror_from_the_kept_copy(
    tmp_path: Path, cep15_upstream: UpstreamServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """The copy of upstream's repodata a run keeps says where upstream keeps the packages
    (its CEP-15 base_url, or none): --repair writes a lost or unreadable map of a channel with
    one mirror from it, as the run wrote it (the token as its reference, upstream's own text
    escaped), says so, and files are fetched from there again."""
    config, site, written = _cep15_site(tmp_path, cep15_upstream)
    path = origins_path(site, CHANNEL, LINUX)
    relative = path.relative_to(site).as_posix()
    for damage in (b"", b"\xff"):
        if damage:
            path.write_bytes(damage)
        else:
            path.unlink()
        capsys.readouterr()
        assert main(["verify", "-c", str(config), "--repair"]) == 0
        out = capsys.readouterr().out
        (line,) = [line for line in out.splitlines() if relative in line]
        assert line.endswith(" (repaired)"), line
        assert "written again from the copy of upstream's repodata" in line, line
        assert path.read_bytes() == written
        assert main(["verify", "-c", str(config)]) == 0
    (site / CHANNEL / LINUX / SECOND).unlink()
    cep15_upstream.reset()
    assert main(["verify", "-c", str(config), "--repair"]) == 0
    fetched = [r.path for r in cep15_upstream.requests]
    assert fetched == [BASE.replace("${SITEGEN_TEST_TOKEN}", TOKEN, 1) + SECOND], fetched
    assert_site_invariant(site)


@pytest.mark.parametrize("unsound", ["no body", "not json", "references untold", "no token"])
def test_repair_leaves_the_map_to_the_run_when_the_kept_copy_is_not_sound(
    tmp_path: Path,
    cep15_upstream: UpstreamServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    unsound: str,
) -> None:
    """A copy whose body is gone or does not decode, one an earlier sitegen kept with its
    references not told apart from upstream's text (the next run fetches it whole again), or
    a token not in the environment to read it by: where upstream keeps the packages is not
    known, and the map is left to the run, as without a copy."""
    config, site, written = _cep15_site(tmp_path, cep15_upstream)
    cache = upstream_cache_dir(site, CHANNEL.replace("/", "-"), LINUX)
    validators = json.loads((cache / "validators.json").read_bytes())
    body = cache / validators["variant"]
    if unsound == "no body":
        body.unlink()
    elif unsound == "not json":
        body.write_bytes(zstandard.ZstdCompressor().compress(b"{"))
    elif unsound == "references untold":
        (cache / "validators.json").write_text(json.dumps({**validators, "secrets_hidden": True}))
    path = origins_path(site, CHANNEL, LINUX)
    path.unlink()
    if unsound == "no token":
        # (The command refuses the configuration then: checked as loaded before.)
        loaded = load_config(config)
        monkeypatch.delenv("SITEGEN_TEST_TOKEN")
        report = trio.run(verify_site, loaded, True)
        (problem,) = [p for p in report.problems if p.path.endswith(path.name)]
        detail = problem.detail
        assert not problem.repaired
    else:
        capsys.readouterr()
        assert main(["verify", "-c", str(config), "--repair"]) == 1
        out = capsys.readouterr().out
        (detail,) = [line for line in out.splitlines() if path.name in line]
        assert not detail.endswith("(repaired)"), detail
    assert "CEP-15 base_url" in detail and "run sitegen mirror --only" in detail, detail
    assert not path.exists()
    monkeypatch.setenv("SITEGEN_TEST_TOKEN", TOKEN)
    if unsound == "not json":
        (cache / "validators.json").unlink()  # for the run to fetch it whole
    assert main(["mirror", "-c", str(config), "--no-progress"]) == 0
    assert path.read_bytes() == written


def test_repair_writes_the_lost_map_of_a_channel_fed_by_one_local_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder has no base_url and supplies every file of a channel it feeds alone: its lost
    map is known without upstream, and --repair writes it as the run wrote it."""
    folder, site = tmp_path / "incoming", tmp_path / "site"
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {site}\nchannels:\n  internal/own:\n    path: {folder}\n    subdirs: [linux-64]\n"
    )
    drop(folder, PackageSpec("foo", "1.0", "h1_0"), "conda")
    assert main(["mirror", "-c", str(config), "--no-progress"]) == 0
    path = origins_path(site, "internal/own", LINUX)
    written = path.read_bytes()
    path.unlink()
    capsys.readouterr()
    assert main(["verify", "-c", str(config)]) == 1
    relative = path.relative_to(site).as_posix()
    assert f"metadata: {relative}: missing; " in capsys.readouterr().out
    assert main(["verify", "-c", str(config), "--repair"]) == 0
    assert f"metadata: {relative}: missing" in capsys.readouterr().out
    assert path.read_bytes() == written
    assert main(["verify", "-c", str(config)]) == 0
    assert_site_invariant(site)
