"""``sitegen verify [--repair]``: damage on disk is found, reported, and repaired.

A mirrored site is damaged the ways disks and people damage it: a package with other bytes of
the same size, a package gone, a ``.zst`` that no longer holds ``repodata.json``, a temporary
file left behind. ``verify`` names each and exits 1; ``--repair`` fixes them (downloading again,
verified as always, and rebuilding metadata from ``repodata.json``), and a second ``verify``
exits 0.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard

from sitegen.cli import main
from sitegen.store.lock import SiteLock
from sitegen.tools import verify as verify_mod
from sitegen.tools.example_channel import PackageSpec, write_channel
from testkit.invariant import assert_site_invariant, make_sandbox, site_digest
from testkit.site import record_fdatasync
from testkit.small_channel import (
    CHANNEL,
    mirrored_by_two,
    mirrored_small,
    small_packages,
    write_config,
)
from testkit.upstream import UpstreamHandler, UpstreamServer, respond

pytestmark = pytest.mark.integration

LINUX = "linux-64"
CORRUPT = "alpha-1.0-h0_0.conda"
MISSING = "gamma-0.1-h2_0.tar.bz2"
TEMP = ".sitegen-tmp-beta-2.0-h1_0.conda.deadbeef"


@pytest.fixture
def mirrored(tmp_path: Path) -> Iterator[tuple[Path, Path, UpstreamServer]]:
    with mirrored_small(tmp_path) as mirrored:
        yield mirrored


def _damage(site: Path) -> dict[str, str]:
    """Damage the site four ways; returns what verify must say, path -> kind."""
    directory = site / CHANNEL / LINUX
    corrupt = directory / CORRUPT
    corrupt.write_bytes(bytes(b ^ 0xFF for b in corrupt.read_bytes()))  # same size
    (directory / MISSING).unlink()
    document = json.loads((directory / "repodata.json").read_bytes())
    document["packages.conda"].pop(CORRUPT)
    stale = zstandard.ZstdCompressor().compress(json.dumps(document).encode())
    (directory / "repodata.json.zst").write_bytes(stale)
    (directory / TEMP).write_bytes(b"half a download")
    prefix = f"{CHANNEL}/{LINUX}"
    return {
        f"{prefix}/{CORRUPT}": "corrupt",
        f"{prefix}/{MISSING}": "missing",
        f"{prefix}/repodata.json.zst": "metadata",
        f"{prefix}/{TEMP}": "temporary",
    }


def _problems(out: str) -> dict[str, str]:
    """path -> kind from verify's output lines ``kind: path: detail``."""
    found = {}
    for line in out.splitlines():
        kind, sep, rest = line.partition(": ")
        if sep and kind in ("corrupt", "missing", "metadata", "temporary"):
            found[rest.split(": ", 1)[0]] = kind
    return found


def test_verify_of_a_sound_site_exits_0(
    mirrored: tuple[Path, Path, UpstreamServer], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _site, _server = mirrored
    capsys.readouterr()
    assert main(["verify", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert _problems(out) == {}
    (summary,) = [line for line in out.splitlines() if line.startswith("checked ")]
    assert re.fullmatch(r"checked 6 files, [0-9.]+ KB; 0 problems", summary)  # sizes for people


def test_verify_of_a_site_that_never_ran_says_nothing_is_published_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing checked is nothing vouched for (a first run still to come, or --out naming
    the wrong directory): said plainly, exit 1; --repair creates no site either."""
    site = tmp_path / "site"
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {site}\nchannels:\n  c/x:\n    url: http://127.0.0.1:1/c\n"
        "    subdirs: [linux-64]\n"
    )
    for args in ([], ["--repair"], ["--sample", "5%"]):
        capsys.readouterr()
        assert main(["verify", "-c", str(config), *args]) == 1, args
        out = capsys.readouterr().out
        assert out == f"nothing to verify: no channel {config} configures is published in {site}\n"
        assert not site.exists()


def test_verify_of_a_site_nothing_was_published_in_still_reports_left_over_temporaries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A first run killed before it published anything leaves its temporaries: verify names
    them as on a published site, beside saying there is nothing to verify (exit 1)."""
    site = tmp_path / "site"
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {site}\nchannels:\n  c/x:\n    url: http://127.0.0.1:1/c\n"
        "    subdirs: [linux-64]\n"
    )
    (site / "c" / "x" / LINUX).mkdir(parents=True)
    (site / "c" / "x" / LINUX / TEMP).write_bytes(b"half a download")
    (site / ".sitegen").mkdir()
    (site / ".sitegen" / TEMP).write_bytes(b"half a state file")
    for args in ([], ["--sample", "5%"]):
        capsys.readouterr()
        assert main(["verify", "-c", str(config), *args]) == 1, args
        out = capsys.readouterr().out
        assert _problems(out) == {
            f"c/x/{LINUX}/{TEMP}": "temporary",
            f".sitegen/{TEMP}": "temporary",
        }
        assert f"nothing to verify: no channel {config} configures is published in {site}" in out
    assert (site / "c" / "x" / LINUX / TEMP).exists()


def test_verify_reports_each_kind_of_damage(
    mirrored: tuple[Path, Path, UpstreamServer], capsys: pytest.CaptureFixture[str]
) -> None:
    config, site, _server = mirrored
    expected = _damage(site)
    before = site_digest(site)
    capsys.readouterr()
    assert main(["verify", "-c", str(config)]) == 1
    out = capsys.readouterr().out
    assert _problems(out) == expected
    assert "4 problems" in out
    assert site_digest(site) == before, "verify without --repair changed the site"
    assert (site / CHANNEL / LINUX / TEMP).exists()


def test_repair_fixes_the_damage_and_verify_passes_again(
    mirrored: tuple[Path, Path, UpstreamServer],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config, site, server = mirrored
    pristine = site_digest(site)
    expected = _damage(site)
    server.reset()
    capsys.readouterr()
    # Sizes of the files flushed to disk before they were named.
    synced = record_fdatasync(monkeypatch, lambda fd: os.fstat(fd).st_size)
    assert main(["verify", "-c", str(config), "--repair"]) == 0
    out = capsys.readouterr().out
    assert _problems(out) == expected
    assert out.count("(repaired)") == 4, out
    repaired = [(site / CHANNEL / LINUX / fn).stat().st_size for fn in (CORRUPT, MISSING)]
    assert sorted(synced) == sorted(repaired)
    # Only the two damaged packages were fetched again.
    gets = sorted(r.path for r in server.requests)
    assert gets == sorted([f"/{LINUX}/{CORRUPT}", f"/{LINUX}/{MISSING}"])
    assert site_digest(site) == pristine
    assert_site_invariant(site)
    capsys.readouterr()
    assert main(["verify", "-c", str(config)]) == 0
    assert "0 problems" in capsys.readouterr().out


@pytest.mark.parametrize("damaged", [b"[]", b'{"packages": 5}', b'{"packages.conda": "x"}'])
def test_a_current_repodata_of_another_shape_is_reported_and_repaired(
    mirrored: tuple[Path, Path, UpstreamServer], capsys: pytest.CaptureFixture[str], damaged: bytes
) -> None:
    config, site, _server = mirrored
    current = site / CHANNEL / LINUX / "current_repodata.json"
    pristine = current.read_bytes()
    current.write_bytes(damaged)
    capsys.readouterr()
    assert main(["verify", "-c", str(config)]) == 1
    assert _problems(capsys.readouterr().out) == {
        f"{CHANNEL}/{LINUX}/current_repodata.json": "metadata"
    }
    assert main(["verify", "-c", str(config), "--repair"]) == 0
    assert current.read_bytes() == pristine
    capsys.readouterr()
    assert main(["verify", "-c", str(config)]) == 0


def test_failed_repair_leaves_no_unverified_file_and_exits_1(
    mirrored: tuple[Path, Path, UpstreamServer], capsys: pytest.CaptureFixture[str]
) -> None:
    config, site, server = mirrored
    directory = site / CHANNEL / LINUX
    (directory / MISSING).unlink()
    server.add_fault(f"/{LINUX}/{MISSING}", respond(200, b"not the package"))
    capsys.readouterr()
    assert main(["verify", "-c", str(config), "--repair"]) == 1
    out = capsys.readouterr().out
    assert f"missing: {CHANNEL}/{LINUX}/{MISSING}" in out and "repair failed" in out
    assert not (directory / MISSING).exists()
    assert not [p for p in directory.iterdir() if p.name.startswith(".sitegen-tmp-")]


def test_repair_does_not_touch_a_site_a_run_is_writing(
    mirrored: tuple[Path, Path, UpstreamServer], capsys: pytest.CaptureFixture[str]
) -> None:
    """A temporary file may belong to a live run: --repair waits for no one and removes
    nothing while another process holds the site lock."""
    config, site, _server = mirrored
    (site / CHANNEL / LINUX / TEMP).write_bytes(b"a live download")
    with SiteLock(site / ".sitegen"):
        code = main(["verify", "-c", str(config), "--repair"])
    assert code != 0
    assert (site / CHANNEL / LINUX / TEMP).exists()


def test_verify_while_a_run_works_on_the_site_says_so_instead_of_reporting_its_files(
    mirrored: tuple[Path, Path, UpstreamServer],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run replacing files makes them read as missing or corrupt: a check made meanwhile
    exits 3 saying a run held the site, whether it held it at the start or took it during
    the check, rather than reporting the run's work as damage."""
    config, site, _server = mirrored
    (site / CHANNEL / LINUX / MISSING).unlink()  # as a run replacing it would leave it
    capsys.readouterr()
    with SiteLock(site / ".sitegen"):
        assert main(["verify", "-c", str(config)]) == 3
    out = capsys.readouterr().out
    assert "locked: .sitegen/lock: a run (pid" in out and _problems(out) == {}

    checking = verify_mod._verify

    async def run_starts_meanwhile(*args: object, **kwargs: object) -> None:
        with SiteLock(site / ".sitegen"):  # a run takes the site and lets it go
            pass
        await checking(*args, **kwargs)

    monkeypatch.setattr(verify_mod, "_verify", run_starts_meanwhile)
    assert main(["verify", "-c", str(config)]) == 3
    out = capsys.readouterr().out
    assert "a run worked on the site during the check" in out
    monkeypatch.undo()
    assert main(["verify", "-c", str(config)]) == 1  # at rest: the file is missing
    assert _problems(capsys.readouterr().out) == {f"{CHANNEL}/{LINUX}/{MISSING}": "missing"}


def test_temporary_of_a_live_writer_is_not_debris(
    mirrored: tuple[Path, Path, UpstreamServer], capsys: pytest.CaptureFixture[str]
) -> None:
    """A temporary named by a running process (a mirror run, the pull-through fetcher) is
    neither reported nor removed."""
    config, site, _server = mirrored
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = site / CHANNEL / LINUX / f".sitegen-tmp-{writer.pid}-beta-2.0-h1_0.conda.0123abcd"
        live.write_bytes(b"being written")
        capsys.readouterr()
        assert main(["verify", "-c", str(config), "--repair"]) == 0
        assert _problems(capsys.readouterr().out) == {}
        assert live.exists()
    finally:
        writer.kill()
        writer.wait()


def test_temporaries_a_killed_run_left_outside_subdirs_are_found_and_removed(
    mirrored: tuple[Path, Path, UpstreamServer], capsys: pytest.CaptureFixture[str]
) -> None:
    """A killed run may leave a temporary beside any file it writes: channeldata.json at the
    channel root, a shard, a page, its run record, its state. verify names each; --repair
    removes them."""
    config, site, _server = mirrored
    places = [
        CHANNEL,
        f"{CHANNEL}/{LINUX}/shards",
        "history/runs",
        ".sitegen",
    ]
    names = [f"{place}/.sitegen-tmp-dead-{index}.deadbeef" for index, place in enumerate(places)]
    for name in names:
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_bytes(b"half written")
    capsys.readouterr()
    assert main(["verify", "-c", str(config)]) == 1
    assert _problems(capsys.readouterr().out) == dict.fromkeys(names, "temporary")
    assert main(["verify", "-c", str(config), "--repair"]) == 0
    assert not [name for name in names if (site / name).exists()]
    assert main(["verify", "-c", str(config)]) == 0


def test_repair_fetches_from_the_cep15_package_host(tmp_path: Path) -> None:
    """Upstream repodata whose ``info.base_url`` (CEP-15) puts the packages on another host:
    a missing file is fetched again from that host, as the mirror run fetched it."""
    meta_root, package_root = tmp_path / "meta", tmp_path / "packages"
    write_channel(package_root, small_packages(), zst=False)
    write_channel(meta_root, small_packages(), zst=False)
    for subdir in (LINUX, "noarch"):
        for entry in (meta_root / subdir).iterdir():
            if entry.name != "repodata.json":
                entry.unlink()  # the metadata host serves no package
    site = make_sandbox(tmp_path)
    with UpstreamServer(package_root) as packages, UpstreamServer(meta_root) as meta:
        for subdir in (LINUX, "noarch"):
            path = meta_root / subdir / "repodata.json"
            document = json.loads(path.read_bytes())
            document["info"]["base_url"] = f"{packages.url}/{subdir}/"
            path.write_text(json.dumps(document))
        config = write_config(tmp_path / "channels.yaml", site, meta.url, retries=1)
        assert main(["mirror", "-c", str(config), "--no-progress"]) == 0
        (site / CHANNEL / LINUX / MISSING).unlink()
        packages.reset()
        meta.reset()
        assert main(["verify", "-c", str(config), "--repair"]) == 0
        assert [r.path for r in packages.requests] == [f"/{LINUX}/{MISSING}"]
        assert not meta.requests
    assert_site_invariant(site)


def test_repair_of_a_missing_file_asks_the_mirror_that_supplied_it(tmp_path: Path) -> None:
    """In a channel fed by two mirrors, a missing file comes back from its own mirror, not
    from the channel's first one."""
    with mirrored_by_two(tmp_path) as (config, site, first, second):
        (site / CHANNEL / LINUX / MISSING).unlink()  # supplied by the second mirror
        first.reset()
        second.reset()
        assert main(["verify", "-c", str(config), "--repair"]) == 0
        assert [r.path for r in second.requests] == [f"/{LINUX}/{MISSING}"]
        assert not first.requests
    assert (site / CHANNEL / LINUX / MISSING).is_file()
    assert_site_invariant(site)


def test_repair_of_many_missing_files_keeps_to_the_download_concurrency(tmp_path: Path) -> None:
    """--repair downloads ``download.concurrency`` files at a time, as a run does, whatever
    ``per_host`` allows: a site missing more files than the process may open at once (a
    service's usual 1024 descriptors, thousands of files gone) is repaired whole."""
    files, fd_limit, concurrency = 120, 64, 2
    specs = [
        PackageSpec(f"pkg{i:03d}", "1.0", "h0_0", license="MIT", formats=("conda",))
        for i in range(files)
    ]
    root = tmp_path / "upstream"
    write_channel(root, specs, zst=True)
    site = make_sandbox(tmp_path)
    in_flight, most = 0, 0
    lock = threading.Lock()

    def counted(handler: UpstreamHandler) -> bool:
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
        time.sleep(0.01)  # long enough for the downloads started at once to overlap
        with lock:
            in_flight -= 1
        return False  # then serve the file

    with UpstreamServer(root) as server:
        config = tmp_path / "channels.yaml"
        config.write_text(
            f"output: {site}\n"
            f"download: {{concurrency: {concurrency}, per_host: 16, retries: 1, timeout: 10}}\n"
            f"channels:\n  {CHANNEL}: {{url: '{server.url}', subdirs: [{LINUX}]}}\n"
        )
        assert main(["mirror", "-c", str(config), "--no-progress"]) == 0
        packages = sorted((site / CHANNEL / LINUX).glob("*.conda"))
        assert len(packages) == files
        for path in packages:
            path.unlink()
            server.add_fault(f"/{LINUX}/{path.name}", counted)

        def limited() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit, fd_limit))

        done = subprocess.run(
            [sys.executable, "-m", "sitegen", "verify", "--repair", "-c", str(config)],
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=limited,
        )
    missing = [p.name for p in packages if not p.is_file()]
    failures = [line for line in done.stdout.splitlines() if "repair failed" in line]
    assert done.returncode == 0 and not missing, f"{len(missing)} missing: {failures[:3]}"
    assert most <= concurrency
    assert_site_invariant(site)


def test_a_package_file_no_record_lists_is_reported_and_repair_removes_it(
    mirrored: tuple[Path, Path, UpstreamServer], capsys: pytest.CaptureFixture[str]
) -> None:
    """A package file in a subdir that neither repodata.json nor the kept records name is served
    by the web server all the same (a run prunes it): verify names it, --repair removes it."""
    config, site, _server = mirrored
    directory = site / CHANNEL / LINUX
    stray = directory / "zeta-9.9-h0_0.conda"
    stray.write_bytes(b"not listed anywhere")
    (directory / "eta-1.0-h0_0.tar.bz2").symlink_to(directory / CORRUPT)
    capsys.readouterr()
    assert main(["verify", "-c", str(config)]) == 1
    out = capsys.readouterr().out
    assert f"extra: {CHANNEL}/{LINUX}/zeta-9.9-h0_0.conda: " in out, out
    assert f"extra: {CHANNEL}/{LINUX}/eta-1.0-h0_0.tar.bz2: " in out, out
    assert "2 problems" in out
    assert main(["verify", "-c", str(config), "--repair"]) == 0
    assert out.count("(repaired)") == 0 and capsys.readouterr().out.count("(repaired)") == 2
    assert not stray.exists() and not (directory / "eta-1.0-h0_0.tar.bz2").is_symlink()
    assert (directory / CORRUPT).is_file()
    assert main(["verify", "-c", str(config)]) == 0


@pytest.mark.parametrize("damage", ["changed", "dropped"])
def test_a_current_repodata_whose_records_differ_from_repodata_is_reported_and_repaired(
    mirrored: tuple[Path, Path, UpstreamServer], capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    """conda reads current_repodata.json first: a record there with other dependencies than
    repodata.json's, or the newest build left out, is the site disagreeing with itself."""
    config, site, _server = mirrored
    current = site / CHANNEL / LINUX / "current_repodata.json"
    pristine = current.read_bytes()
    document = json.loads(pristine)
    if damage == "changed":
        document["packages.conda"][CORRUPT]["depends"] = ["evil"]
    else:
        del document["packages.conda"][CORRUPT]
    current.write_text(json.dumps(document))
    capsys.readouterr()
    assert main(["verify", "-c", str(config)]) == 1
    out = capsys.readouterr().out
    assert _problems(out) == {f"{CHANNEL}/{LINUX}/current_repodata.json": "metadata"}, out
    assert CORRUPT in out
    assert main(["verify", "-c", str(config), "--repair"]) == 0
    assert current.read_bytes() == pristine
    capsys.readouterr()
    assert main(["verify", "-c", str(config)]) == 0
