"""End to end: sitegen mirrors the example channel over real HTTP into a consistent site.

Upstream is :class:`support.upstream.UpstreamServer` on 127.0.0.1, serving real ``.conda`` and
``.tar.bz2`` files; its request log shows what sitegen asked for. Exit statuses are checked
through ``sitegen.cli.main`` (in process: the upstream thread keeps serving meanwhile).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import socket
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trio
import zstandard

from sitegen.cli import main
from sitegen.config import SiteConfig
from sitegen.store.site import Site
from sitegen.sync.history import History
from sitegen.sync.report import INTERRUPTED, RUNNING, RunReport
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import PackageSpec, example_packages, write_channel
from testkit.records import as_upstream, as_upstream_section
from testkit.site import (
    assert_channel_consistent,
    channel_config,
    files_on_disk,
    fns,
    published,
    read_repodata,
    rewrite_repodata,
    sha256_of,
    site_config,
    snapshot,
)
from testkit.upstream import ExampleUpstream, UpstreamServer, respond, serve_bytes

pytestmark = pytest.mark.integration

CHANNEL = "cloud/example"
PACKAGES = example_packages(seed=0)
LINUX = fns(PACKAGES, subdir="linux-64")
NOARCH = fns(PACKAGES, subdir="noarch")


async def mirror(config: SiteConfig, **options: Any) -> RunReport:
    return await run_mirror(config, MirrorOptions(progress=False, **options))


def channel_report(report: RunReport, subdir: str, channel: str = CHANNEL):
    (found,) = [c for c in report.channels if c.channel == channel and c.subdir == subdir]
    return found


def package_gets(server: UpstreamServer) -> list[str]:
    return [
        r.path
        for r in server.requests
        if r.method == "GET" and r.path.endswith((".conda", ".tar.bz2"))
    ]


def spec(name: str, build_prefix: str = "", version: str | None = None) -> PackageSpec:
    (found,) = [
        p
        for p in PACKAGES
        if p.name == name
        and p.build.startswith(build_prefix)
        and (version is None or p.version == version)
    ]
    return found


# --------------------------------------------------------------------------- a first run


async def test_mirror_publishes_the_whole_channel(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    report = await mirror(channel_config(site, example_upstream.url))

    assert report.status == "completed" and not report.failed
    repodata = assert_channel_consistent(site, CHANNEL)
    assert set(repodata) == {"linux-64", "noarch"}
    assert published(site, CHANNEL, "linux-64") == LINUX
    assert published(site, CHANNEL, "noarch") == NOARCH
    # Formats stay in their own sections, and the records are upstream's, byte for byte.
    for subdir in ("linux-64", "noarch"):
        upstream = example_upstream.repodata[subdir]
        for key in ("packages", "packages.conda"):
            assert as_upstream_section(repodata[subdir][key]) == upstream[key]
    assert all(fn.endswith(".tar.bz2") for fn in repodata["linux-64"]["packages"])
    assert all(fn.endswith(".conda") for fn in repodata["linux-64"]["packages.conda"])

    # current_repodata: the newest version of each name is in it, older ones are not.
    current = read_repodata(site / CHANNEL / "linux-64", "current_repodata.json")
    current_fns = set(current["packages"]) | set(current["packages.conda"])
    assert fns(PACKAGES, "numpy", "2.1.0") <= current_fns
    assert not fns(PACKAGES, "numpy", "1.26.4") & current_fns

    channeldata = json.loads((site / CHANNEL / "channeldata.json").read_bytes())
    assert isinstance(channeldata, dict)
    # Each file was fetched exactly once; repodata came as .zst, never as plain JSON.
    server = example_upstream.server
    assert sorted(package_gets(server)) == sorted(f"/linux-64/{f}" for f in LINUX) + sorted(
        f"/noarch/{f}" for f in NOARCH
    )
    for subdir in ("linux-64", "noarch"):
        assert server.count(f"/{subdir}/repodata.json.zst", status=200) == 1
        assert server.count(f"/{subdir}/repodata.json") == 0
    # The run is recorded.
    (record,) = (site / "history" / "runs").glob("*.json")
    assert json.loads(record.read_bytes())["status"] == "completed"
    linux = channel_report(report, "linux-64")
    assert (linux.status, linux.downloaded_files, linux.packages) == ("published", 42, 42)
    assert sorted(linux.added) == sorted(LINUX)


async def test_new_files_reach_the_disk_before_the_repodata_naming_them(
    example_upstream: ExampleUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One flush per run with downloads, after every file is in place and before any repodata
    is published (each subdir's new shards get one of their own, before their index); a run
    that downloads nothing and changes nothing flushes nothing."""
    site = tmp_path / "site"
    flushes: list[tuple[list[str], set[str], bool]] = []

    def record_flush(self: Site, directories: list[Path]) -> None:
        linux = site / CHANNEL / "linux-64"
        flushes.append(
            (
                sorted(str(d.relative_to(site)) for d in directories),
                {p.name for p in linux.iterdir() if p.name.endswith((".conda", ".tar.bz2"))},
                (linux / "repodata.json").exists(),
            )
        )

    monkeypatch.setattr(Site, "sync", record_flush)
    per_file: list[int] = []
    monkeypatch.setattr(os, "fdatasync", per_file.append)
    config = channel_config(site, example_upstream.url)
    await mirror(config)
    downloads, *shards = flushes
    assert downloads == ([f"{CHANNEL}/linux-64", f"{CHANNEL}/noarch"], set(LINUX), False)
    assert sorted(directories for directories, _files, _published in shards) == [
        [f"{CHANNEL}/linux-64/shards"],
        [f"{CHANNEL}/noarch/shards"],
    ]
    assert per_file == []  # no flush per file: one for the run
    assert published(site, CHANNEL, "linux-64") == LINUX

    await mirror(config)  # nothing changed upstream
    assert len(flushes) == 3


async def test_a_failed_flush_publishes_nothing(
    example_upstream: ExampleUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_flush(self: Site, directories: list[Path]) -> None:
        raise OSError(errno.EIO, "Input/output error", str(directories[0]))

    monkeypatch.setattr(Site, "sync", failing_flush)
    site = tmp_path / "site"
    report = await mirror(channel_config(site, example_upstream.url))
    assert report.failed and report.status == "failed"
    assert any("Input/output error" in e and "nothing was published" in e for e in report.errors)
    assert not (site / CHANNEL / "linux-64" / "repodata.json").exists()

    monkeypatch.undo()  # the disk recovered: the next run publishes, downloading nothing again
    example_upstream.server.reset()
    report = await mirror(channel_config(site, example_upstream.url))
    assert not report.failed
    assert published(site, CHANNEL, "linux-64") == LINUX
    assert package_gets(example_upstream.server) == []


async def test_plain_repodata_json_when_upstream_has_no_zst(
    tmp_path: Path, upstream_server_factory
) -> None:
    root = tmp_path / "upstream"
    write_channel(root, PACKAGES, zst=False)
    server = upstream_server_factory(root)
    site = tmp_path / "site"
    report = await mirror(channel_config(site, server.url))
    assert not report.failed
    assert published(site, CHANNEL, "linux-64") == LINUX
    assert server.count("/linux-64/repodata.json.zst", status=404) == 1
    assert server.count("/linux-64/repodata.json", status=200) == 1
    assert_channel_consistent(site, CHANNEL)


@pytest.mark.parametrize("version", [1, 2, 99])
async def test_info_removed_and_unknown_keys_are_kept(
    tmp_path: Path, upstream_server_factory, version: int
) -> None:
    """The document's other keys survive filtering; its ``repodata_version`` is the one of
    what sitegen writes (1: records beside it, no base_url), not upstream's: a version a
    client does not know (99) would make conda refuse the mirrored subdir."""
    root = tmp_path / "upstream"
    extra = {
        "info": {"arch": "x86_64", "platform": "linux", "x_vendor": "example"},
        "removed": ["zlib-1.2.11-h0_0.tar.bz2", "readline-8.1-h0_0.conda"],
        "repodata_version": version,
        "x_future_key": {"shards": False, "list": [1, 2]},
    }
    write_channel(root, PACKAGES, extra, zst=True)
    server = upstream_server_factory(root)
    site = tmp_path / "site"
    # Filter some records away: the document's other keys must survive that too.
    config = channel_config(site, server.url, extra="filters: {names: {exclude: [readline]}}")
    report = await mirror(config)
    assert not report.failed
    repodata = assert_channel_consistent(site, CHANNEL)
    for subdir in ("linux-64", "noarch"):
        document = repodata[subdir]
        assert document["info"] == {**extra["info"], "subdir": subdir}
        assert document["removed"] == sorted(extra["removed"])
        assert document["repodata_version"] == 1
        assert document["x_future_key"] == extra["x_future_key"]
        current = read_repodata(site / CHANNEL / subdir, "current_repodata.json")
        assert current["x_future_key"] == extra["x_future_key"]
    assert published(site, CHANNEL, "linux-64") == LINUX - fns(PACKAGES, "readline")


async def test_noarch_is_published_even_when_filtered_away(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url, extra="filters: {subdirs: [linux-64]}")
    report = await mirror(config)
    assert not report.failed
    assert_channel_consistent(site, CHANNEL)
    assert published(site, CHANNEL, "noarch") == set()
    assert published(site, CHANNEL, "linux-64") == LINUX
    excluded = report.mirrors[0].subdirs["noarch"].excluded
    assert excluded == {"subdir not selected": len(NOARCH)}
    assert not any(
        r.path.startswith("/noarch/") and r.path.endswith(".conda")
        for r in example_upstream.server.requests
    )


async def test_noarch_is_published_even_when_upstream_lacks_it(
    tmp_path: Path, upstream_server_factory
) -> None:
    root = tmp_path / "upstream"
    write_channel(root, [spec("zlib", version="1.3.1")], zst=True)
    for name in ("repodata.json", "repodata.json.zst"):
        (root / "noarch" / name).unlink()
    server = upstream_server_factory(root)
    site = tmp_path / "site"
    report = await mirror(channel_config(site, server.url))
    assert not report.failed
    assert report.mirrors[0].subdirs["noarch"].upstream == "missing"
    assert_channel_consistent(site, CHANNEL)
    assert published(site, CHANNEL, "noarch") == set()
    assert published(site, CHANNEL, "linux-64") == fns(PACKAGES, "zlib", "1.3.1")


async def test_subdir_missing_upstream_is_not_a_failure(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    report = await mirror(
        channel_config(site, example_upstream.url, subdirs="[linux-64, osx-arm64]")
    )
    assert report.status == "completed" and not report.failed
    subdirs = report.mirrors[0].subdirs
    assert subdirs["osx-arm64"].upstream == "missing"
    assert subdirs["linux-64"].upstream == "fetched"
    assert not (site / CHANNEL / "osx-arm64").exists()
    assert published(site, CHANNEL, "linux-64") == LINUX
    assert_channel_consistent(site, CHANNEL)


# --------------------------------------------------------------------------- the next runs


async def test_rerun_is_a_no_op(example_upstream: ExampleUpstream, tmp_path: Path) -> None:
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url)
    await mirror(config)
    before = snapshot(site / CHANNEL)
    server = example_upstream.server
    server.reset()

    report = await mirror(config)

    assert not report.failed
    assert package_gets(server) == []
    repodata_requests = [r for r in server.requests if "repodata" in r.path]
    assert sorted((r.path, r.status) for r in repodata_requests) == [
        ("/linux-64/repodata.json.zst", 304),
        ("/noarch/repodata.json.zst", 304),
    ]
    assert all(r.header("If-None-Match") for r in repodata_requests)
    assert {s.upstream for s in report.mirrors[0].subdirs.values()} == {"unchanged"}
    assert snapshot(site / CHANNEL) == before  # same bytes and same mtimes: ETags stay valid
    for subdir in ("linux-64", "noarch"):
        cr = channel_report(report, subdir)
        assert (cr.status, cr.downloaded_files, cr.deleted_files) == ("unchanged", 0, 0)
        assert cr.added == cr.removed == cr.updated == []
    assert len(list((site / "history" / "runs").glob("*.json"))) >= 1


async def test_a_run_leaves_no_empty_publishing_folders(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    """A subdir's publishing marker goes once its files are renamed in, and the channel's
    folder of markers with it once that holds nothing; a folder holding anything (the marker
    a stopped run left for another channel, a nested channel's folder) stays."""
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url, subdirs="[linux-64, noarch]")
    publishing = Site(site).state_dir / "publishing"
    others = [publishing / "cloud" / "linux-64", publishing / "old" / "noarch"]
    for marker in others:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_bytes(b"")

    report = await mirror(config)

    assert not report.failed
    left = sorted(p.relative_to(publishing).as_posix() for p in publishing.rglob("*"))
    assert left == ["cloud", "cloud/linux-64", "old", "old/noarch"]


async def test_upstream_changes_are_reflected(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url)
    await mirror(config)
    root, server = example_upstream.root, example_upstream.server

    # Upstream: a new zlib, readline removed, numpy's depends patched in repodata only.
    new_zlib = PackageSpec(
        name="zlib", version="1.3.2", build="h1234567_0", license="Zlib", timestamp_ms=1
    )
    readline = spec("readline")
    numpy = spec("numpy", "py312", "2.1.0")
    changed = [p for p in PACKAGES if p is not readline] + [new_zlib]
    write_channel(root, changed, zst=True)
    for fn in readline.filenames:
        (root / "linux-64" / fn).unlink()
    patched = ["libopenblas >=0.3.27,<1.0a0", "python >=3.12,<3.13.0a0", "zlib >=1.3"]

    def patch(document: dict[str, Any]) -> None:
        for key in ("packages", "packages.conda"):
            for fn, record in document[key].items():
                if fn.startswith(numpy.stem):
                    record["depends"] = patched

    rewrite_repodata(root, "linux-64", patch)
    server.reset()

    report = await mirror(config)

    assert not report.failed
    repodata = assert_channel_consistent(site, CHANNEL)
    expected = (LINUX - set(readline.filenames)) | set(new_zlib.filenames)
    assert published(site, CHANNEL, "linux-64") == expected
    assert files_on_disk(site / CHANNEL / "linux-64") == expected
    for fn in numpy.filenames:
        key = "packages.conda" if fn.endswith(".conda") else "packages"
        assert repodata["linux-64"][key][fn]["depends"] == patched
    zst = zstandard.decompress((site / CHANNEL / "linux-64" / "repodata.json.zst").read_bytes())
    assert json.loads(zst)["packages.conda"][numpy.filename("conda")]["depends"] == patched
    # Only the new files were downloaded; the patch needed no download.
    assert sorted(package_gets(server)) == sorted(f"/linux-64/{f}" for f in new_zlib.filenames)
    linux = channel_report(report, "linux-64")
    assert sorted(linux.added) == sorted(new_zlib.filenames)
    assert sorted(linux.removed) == sorted(readline.filenames)
    assert sorted(linux.updated) == sorted(numpy.filenames)
    assert (linux.downloaded_files, linux.deleted_files) == (2, 2)


# --------------------------------------------------------------------------- deletion guard


def _truncate_upstream(root: Path) -> set[str]:
    """Upstream suddenly lists two packages (a tenth of linux-64, a fifth of noarch)."""
    keep = [spec("python", version="3.12.4"), spec("pip", version="24.0")]
    for path in list(root.glob("*/*")):
        path.unlink()
    write_channel(root, keep, zst=True)
    return {fn for p in keep for fn in p.filenames}


def test_deletion_guard_holds_a_subdir_until_forced(
    example_upstream: ExampleUpstream, tmp_path: Path, capsys
) -> None:
    site = tmp_path / "site"
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {site}\n"
        f"channels:\n  {CHANNEL}:\n    url: {example_upstream.url}\n    subdirs: [linux-64]\n"
    )
    args = ["mirror", "-c", str(config_path), "--no-progress"]
    assert main(args) == 0
    before = snapshot(site / CHANNEL)
    left = _truncate_upstream(example_upstream.root)

    assert main(args) == 1
    assert snapshot(site / CHANNEL) == before  # repodata and every file as they were
    assert published(site, CHANNEL, "linux-64") == LINUX
    runs = [json.loads(p.read_bytes()) for p in (site / "history" / "runs").glob("*.json")]
    (held_run,) = [r for r in runs if r["status"] == "failed"]
    statuses = {(c["subdir"], c["status"]) for c in held_run["channels"]}
    assert statuses == {("linux-64", "held"), ("noarch", "held")}
    assert any("--force-delete" in e for c in held_run["channels"] for e in c["errors"])

    assert main([*args, "--force-delete"]) == 0
    assert_channel_consistent(site, CHANNEL)
    assert published(site, CHANNEL, "linux-64") | published(site, CHANNEL, "noarch") == left
    assert files_on_disk(site / CHANNEL / "linux-64") == {f for f in left if "python" in f}


async def test_deletion_guard_allows_a_small_loss(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url)
    await mirror(config)
    # Losing 38 of 42 linux-64 files is far beyond 50 %, but losing numpy 1.26 (6) is not.
    write_channel(example_upstream.root, [p for p in PACKAGES if p.version != "1.26.4"], zst=True)
    report = await mirror(config)
    assert not report.failed
    assert published(site, CHANNEL, "linux-64") == LINUX - fns(PACKAGES, "numpy", "1.26.4")
    assert_channel_consistent(site, CHANNEL)


# --------------------------------------------------------------------------- failures


def _closed_port() -> int:
    """A loopback port with nothing listening (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_failing_mirror_does_not_stop_the_others(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {site}\n"
        "download: {retries: 0, timeout: 5}\n"
        "channels:\n"
        f"  cloud/broken:\n    url: http://127.0.0.1:{_closed_port()}/gone\n"
        "    subdirs: [linux-64]\n"
        f"  {CHANNEL}:\n    url: {example_upstream.url}\n    subdirs: [linux-64]\n"
    )
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 1
    assert published(site, CHANNEL, "linux-64") == LINUX
    assert_channel_consistent(site, CHANNEL)
    assert not (site / "cloud" / "broken" / "linux-64" / "repodata.json").exists()
    (run,) = [json.loads(p.read_bytes()) for p in (site / "history" / "runs").glob("*.json")]
    broken, good = run["mirrors"]
    assert broken["status"] == "failed" and broken["errors"]
    assert good["status"] == "completed" and not good["errors"]


async def test_a_failing_mirror_keeps_its_previous_state(
    tmp_path: Path, upstream_server_factory
) -> None:
    root = tmp_path / "upstream"
    write_channel(root, PACKAGES, zst=True)
    server = upstream_server_factory(root)
    site = tmp_path / "site"
    config = channel_config(site, server.url)
    await mirror(config)
    before = snapshot(site / CHANNEL)
    server.stop()  # upstream goes away entirely

    report = await mirror(config)

    assert report.failed
    assert all(c.status == "failed" for c in report.channels)
    assert snapshot(site / CHANNEL) == before


async def test_two_mirrors_merge_and_the_first_wins_a_conflict(
    tmp_path: Path, upstream_server_factory
) -> None:
    zlib = spec("zlib", version="1.3.1")
    first_specs = [spec("python", version="3.12.4"), zlib]
    # The second upstream's zlib has the same filenames but other bytes.
    second_specs = [spec("numpy", "py312", "2.1.0"), replace(zlib, seed=1)]
    first_docs = write_channel(tmp_path / "a", first_specs, zst=True)
    second_docs = write_channel(tmp_path / "b", second_specs, zst=True)
    first, second = upstream_server_factory(tmp_path / "a"), upstream_server_factory(tmp_path / "b")
    site = tmp_path / "site"
    config = site_config(
        site,
        f"""
        channels:
          {CHANNEL}:
            mirrors:
              - name: first
                url: {first.url}
                subdirs: [linux-64]
              - name: second
                url: {second.url}
                subdirs: [linux-64]
        """,
    )
    report = await mirror(config)

    repodata = assert_channel_consistent(site, CHANNEL)
    expected = {fn for p in (*first_specs, *second_specs) for fn in p.filenames}
    assert published(site, CHANNEL, "linux-64") == expected
    for fn in zlib.filenames:
        key = "packages.conda" if fn.endswith(".conda") else "packages"
        assert as_upstream(repodata["linux-64"][key][fn]) == first_docs["linux-64"][key][fn]
        assert repodata["linux-64"][key][fn] != second_docs["linux-64"][key][fn]
        assert (
            sha256_of(site / CHANNEL / "linux-64" / fn) == first_docs["linux-64"][key][fn]["sha256"]
        )
    first_report, second_report = report.mirrors
    assert first_report.conflicts == []
    assert sorted(second_report.conflicts) == sorted(
        f"linux-64/{fn}: differs from the copy offered by first; kept first's"
        for fn in zlib.filenames
    )
    # The loser's copy of zlib is never downloaded.
    assert not [p for p in package_gets(second) if "zlib" in p]


async def test_checksum_mismatch_is_not_published(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    bad = spec("numpy", "py311", "2.1.0").filename("conda")
    good_size = (example_upstream.root / "linux-64" / bad).stat().st_size
    server = example_upstream.server
    server.add_fault(f"/linux-64/{bad}", serve_bytes(b"\0" * good_size))  # every attempt
    site = tmp_path / "site"
    report = await mirror(channel_config(site, example_upstream.url))

    assert report.failed and report.status == "failed"
    assert server.count(f"/linux-64/{bad}") == 2  # retried once (retries: 1), then given up
    assert not (site / CHANNEL / "linux-64" / bad).exists()
    assert published(site, CHANNEL, "linux-64") == LINUX - {bad}
    current = read_repodata(site / CHANNEL / "linux-64", "current_repodata.json")
    assert bad not in current["packages.conda"]
    assert_channel_consistent(site, CHANNEL)
    (error,) = channel_report(report, "linux-64").errors
    assert bad in error and "sha256" in error

    # Once upstream serves the right bytes, the next run completes the subdir.
    server.clear_faults()
    report = await mirror(channel_config(site, example_upstream.url))
    assert not report.failed
    assert published(site, CHANNEL, "linux-64") == LINUX
    assert_channel_consistent(site, CHANNEL)


async def test_verify_replaces_a_corrupted_file_of_the_same_size(
    example_upstream: ExampleUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url)
    await mirror(config)
    victim = site / CHANNEL / "linux-64" / spec("zlib", version="1.3.1").filename("tar.bz2")
    good = victim.read_bytes()
    victim.write_bytes(bytes(b ^ 0xFF for b in good))  # same size, other bytes
    server = example_upstream.server
    server.reset()

    await mirror(config)  # trusts the size: nothing fetched
    assert package_gets(server) == []
    assert victim.read_bytes() != good

    with caplog.at_level(logging.INFO, logger="sitegen"):
        report = await mirror(config, verify=True)
    assert not report.failed
    assert f"{victim.name} fails its checksum" in caplog.text  # damaged: a warning
    assert package_gets(server) == [f"/linux-64/{victim.name}"]
    assert victim.read_bytes() == good
    assert_channel_consistent(site, CHANNEL)


async def test_dry_run_changes_nothing_and_counts(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url)
    await mirror(config)
    readline = spec("readline")
    new_zlib = PackageSpec(name="zlib", version="1.3.2", build="h1234567_0", license="Zlib")
    write_channel(
        example_upstream.root, [p for p in PACKAGES if p is not readline] + [new_zlib], zst=True
    )
    before = snapshot(site, exclude={".sitegen/lock"})
    server = example_upstream.server
    server.reset()

    report = await mirror(config, dry_run=True)

    assert snapshot(site, exclude={".sitegen/lock"}) == before
    assert package_gets(server) == []
    linux = channel_report(report, "linux-64")
    assert linux.status == "dry-run"
    assert linux.downloaded_files == 2
    assert linux.downloaded_bytes == sum(
        (example_upstream.root / "linux-64" / fn).stat().st_size for fn in new_zlib.filenames
    )
    assert linux.deleted_files == 2
    assert sorted(linux.added) == sorted(new_zlib.filenames)
    assert sorted(linux.removed) == sorted(readline.filenames)
    noarch = channel_report(report, "noarch")
    assert (noarch.status, noarch.downloaded_files, noarch.deleted_files) == ("dry-run", 0, 0)

    # The real run afterwards still sees upstream as changed (dry-run stored no validators).
    report = await mirror(config)
    assert channel_report(report, "linux-64").downloaded_files == 2
    assert published(site, CHANNEL, "linux-64") == (LINUX - set(readline.filenames)) | set(
        new_zlib.filenames
    )


async def test_a_dry_run_leaves_the_record_of_a_killed_run_to_the_next_run(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    """A run killed outright leaves its record 'running'; a dry run does not rewrite it
    (nothing on disk changes, and pages rendered before would disagree with the ledger): the
    next real run records it as interrupted."""
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url)
    await mirror(config)
    history = History(Site(site))
    killed = RunReport(id="20990101T000000Z-99", started=time.time(), status=RUNNING, pid=99)
    history.save(killed)
    before = snapshot(site, exclude={".sitegen/lock"})

    assert not (await mirror(config, dry_run=True)).failed

    after = snapshot(site, exclude={".sitegen/lock"})
    assert {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)} == set()
    [record] = [r for r in history.runs() if r.id == killed.id]
    assert record.status == RUNNING
    await mirror(config)
    [record] = [r for r in history.runs() if r.id == killed.id]
    assert record.status == INTERRUPTED


def test_dry_run_via_cli_prints_counts(
    example_upstream: ExampleUpstream, tmp_path: Path, capsys
) -> None:
    site = tmp_path / "site"
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {site}\n"
        f"channels:\n  {CHANNEL}:\n    url: {example_upstream.url}\n    subdirs: [linux-64]\n"
    )
    assert main(["mirror", "-c", str(config_path), "--dry-run", "--no-progress"]) == 0
    out = capsys.readouterr().out
    size = sum((example_upstream.root / "linux-64" / fn).stat().st_size for fn in LINUX)
    assert (
        f"{CHANNEL}/linux-64: would download 42 files ({size} bytes), delete 0, publish 42"
        " files" in out
    )
    assert package_gets(example_upstream.server) == []
    assert not (site / CHANNEL).exists()
    assert not (site / "history").exists()


# --------------------------------------------------------------------------- secrets


async def test_token_url_works_and_the_token_stays_secret(
    tmp_path: Path, upstream_server_factory, monkeypatch, caplog
) -> None:
    token = "secret123"
    root = tmp_path / "upstream"
    write_channel(root / "t" / token / "chan", PACKAGES, zst=True)
    server = upstream_server_factory(root)
    monkeypatch.setenv("SITEGEN_TEST_TOKEN", token)
    # Make one subdir fail too, so that error messages are part of what is checked.
    server.add_fault(f"/t/{token}/chan/noarch/repodata.json.zst", respond(503))
    site = tmp_path / "site"
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {site}\n"
        "download: {retries: 0}\n"
        f"channels:\n  {CHANNEL}:\n"
        f"    url: {server.url}/t/${{SITEGEN_TEST_TOKEN}}/chan\n"
        "    subdirs: [linux-64]\n"
    )
    caplog.set_level(logging.DEBUG)

    status = await trio.to_thread.run_sync(
        main, ["-v", "mirror", "-c", str(config_path), "--no-progress"]
    )
    assert status == 1  # noarch failed
    assert server.count(f"/t/{token}/chan/linux-64/repodata.json.zst", status=200) == 1
    (error,) = [r.getMessage() for r in caplog.records if "HTTP 503" in r.getMessage()]
    assert f"{server.url}/t/***/chan/noarch/repodata.json.zst" in error

    server.clear_faults()
    caplog.clear()
    status = await trio.to_thread.run_sync(
        main, ["-v", "mirror", "-c", str(config_path), "--no-progress"]
    )
    assert status == 0
    assert published(site, CHANNEL, "linux-64") == LINUX
    assert published(site, CHANNEL, "noarch") == NOARCH
    assert server.count(f"/t/{token}/chan/linux-64/{sorted(LINUX)[0]}", status=200) == 1

    assert token not in caplog.text
    for path in site.rglob("*"):
        assert token not in path.name
        if path.is_file() and not path.name.endswith((".conda", ".tar.bz2")):
            assert token.encode() not in path.read_bytes(), path
    runs = [json.loads(p.read_bytes()) for p in (site / "history" / "runs").glob("*.json")]
    assert {r["mirrors"][0]["source"] for r in runs} == {f"{server.url}/t/***/chan"}


async def test_unset_token_variable_fails_the_mirror_without_requests(
    example_upstream: ExampleUpstream, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.delenv("SITEGEN_TEST_UNSET", raising=False)
    site = tmp_path / "site"
    config = channel_config(site, f"{example_upstream.url}/t/${{SITEGEN_TEST_UNSET}}/chan")
    report = await mirror(config)
    assert report.failed
    assert any("SITEGEN_TEST_UNSET" in e for e in report.mirrors[0].errors)
    assert example_upstream.server.requests == []


async def test_a_variable_making_the_url_invalid_fails_the_mirror_cleanly(
    example_upstream: ExampleUpstream, tmp_path: Path, monkeypatch
) -> None:
    """Configuration parsed without the environment (a library caller), the variable set to
    a value no URL can hold: the mirror fails with a message naming the variable, not its
    value, and the run ends normally."""
    monkeypatch.setenv("SITEGEN_TEST_HOST", "127.0.0.1:no-port-secret")
    site = tmp_path / "site"
    config = channel_config(site, "http://${SITEGEN_TEST_HOST}/chan")
    report = await mirror(config)
    assert report.failed
    errors = report.mirrors[0].errors
    assert any("not a valid URL once SITEGEN_TEST_HOST" in e for e in errors), errors
    assert not any("no-port-secret" in e for e in errors)
    assert example_upstream.server.requests == []


async def test_a_replaced_upstream_file_of_the_same_size_is_downloaded_again(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    """Upstream swaps a file's bytes under the same name and size (and says so in repodata):
    the mirror must not keep serving the old bytes under the new sha256."""
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url)
    await mirror(config)
    root = example_upstream.root
    fn = spec("zlib", version="1.3.1").filename("tar.bz2")
    old = (root / "linux-64" / fn).read_bytes()
    new = old[:-1] + bytes([old[-1] ^ 0xFF])  # same size, other bytes
    (root / "linux-64" / fn).write_bytes(new)

    def replace_checksums(document: dict[str, Any]) -> None:
        record = document["packages"][fn]
        record["sha256"] = hashlib.sha256(new).hexdigest()
        record["md5"] = hashlib.md5(new).hexdigest()

    rewrite_repodata(root, "linux-64", replace_checksums)
    example_upstream.server.reset()

    report = await mirror(config)

    assert not report.failed
    assert package_gets(example_upstream.server) == [f"/linux-64/{fn}"]
    assert (site / CHANNEL / "linux-64" / fn).read_bytes() == new
    assert channel_report(report, "linux-64").updated == [fn]
    assert_channel_consistent(site, CHANNEL)


async def test_token_stays_out_of_library_logs(
    tmp_path: Path, upstream_server_factory, monkeypatch, caplog
) -> None:
    """run_mirror used as a library (no CLI log setup): not even httpx's request lines, which
    carry every URL at INFO, may show the token. httpx's own client (and its logging) carries
    the requests when a proxy is set in the environment: here the test server plays the proxy."""
    token = "secret456"
    root = tmp_path / "upstream"
    write_channel(root / "t" / token / "chan", [spec("zlib", version="1.3.1")], zst=True)
    server = upstream_server_factory(root)
    monkeypatch.setenv("SITEGEN_TEST_TOKEN", token)
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", server.url)
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore"):
        monkeypatch.setattr(logging.getLogger(name), "level", logging.DEBUG)
    site = tmp_path / "site"
    report = await mirror(
        channel_config(site, "http://upstream.invalid/t/${SITEGEN_TEST_TOKEN}/chan")
    )
    assert not report.failed
    assert published(site, CHANNEL, "linux-64") == fns(PACKAGES, "zlib", "1.3.1")
    assert any(r.name == "httpx" for r in caplog.records)  # the request lines were logged
    assert token not in caplog.text
