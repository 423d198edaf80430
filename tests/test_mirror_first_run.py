"""End to end, a first run: sitegen mirrors the example channel over real HTTP into a
consistent site.

Upstream is :class:`testkit.upstream.UpstreamServer` on 127.0.0.1, serving real ``.conda`` and
``.tar.bz2`` files; its request log shows what sitegen asked for.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from sitegen.store.site import Site
from sitegen.tools.example_channel import write_channel
from testkit.example_mirror import (
    CHANNEL,
    LINUX,
    NOARCH,
    PACKAGES,
    channel_report,
    package_gets,
    spec,
)
from testkit.records import as_upstream_section
from testkit.site import (
    assert_channel_consistent,
    channel_config,
    fns,
    mirror_unchecked,
    published,
    read_repodata,
)
from testkit.upstream import ExampleUpstream

pytestmark = pytest.mark.integration


# --------------------------------------------------------------------------- a first run


async def test_mirror_publishes_the_whole_channel(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    report = await mirror_unchecked(channel_config(site, example_upstream.url))

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
    await mirror_unchecked(config)
    downloads, *shards = flushes
    assert downloads == ([f"{CHANNEL}/linux-64", f"{CHANNEL}/noarch"], set(LINUX), False)
    assert sorted(directories for directories, _files, _published in shards) == [
        [f"{CHANNEL}/linux-64/shards"],
        [f"{CHANNEL}/noarch/shards"],
    ]
    assert per_file == []  # no flush per file: one for the run
    assert published(site, CHANNEL, "linux-64") == LINUX

    await mirror_unchecked(config)  # nothing changed upstream
    assert len(flushes) == 3


async def test_a_failed_flush_publishes_nothing(
    example_upstream: ExampleUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_flush(self: Site, directories: list[Path]) -> None:
        raise OSError(errno.EIO, "Input/output error", str(directories[0]))

    monkeypatch.setattr(Site, "sync", failing_flush)
    site = tmp_path / "site"
    report = await mirror_unchecked(channel_config(site, example_upstream.url))
    assert report.failed and report.status == "failed"
    assert any("Input/output error" in e and "nothing was published" in e for e in report.errors)
    assert not (site / CHANNEL / "linux-64" / "repodata.json").exists()

    monkeypatch.undo()  # the disk recovered: the next run publishes, downloading nothing again
    example_upstream.server.reset()
    report = await mirror_unchecked(channel_config(site, example_upstream.url))
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
    report = await mirror_unchecked(channel_config(site, server.url))
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
    report = await mirror_unchecked(config)
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
    report = await mirror_unchecked(config)
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
    report = await mirror_unchecked(channel_config(site, server.url))
    assert not report.failed
    assert report.mirrors[0].subdirs["noarch"].upstream == "missing"
    assert_channel_consistent(site, CHANNEL)
    assert published(site, CHANNEL, "noarch") == set()
    assert published(site, CHANNEL, "linux-64") == fns(PACKAGES, "zlib", "1.3.1")


async def test_subdir_missing_upstream_is_not_a_failure(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    report = await mirror_unchecked(
        channel_config(site, example_upstream.url, subdirs="[linux-64, osx-arm64]")
    )
    assert report.status == "completed" and not report.failed
    subdirs = report.mirrors[0].subdirs
    assert subdirs["osx-arm64"].upstream == "missing"
    assert subdirs["linux-64"].upstream == "fetched"
    assert not (site / CHANNEL / "osx-arm64").exists()
    assert published(site, CHANNEL, "linux-64") == LINUX
    assert_channel_consistent(site, CHANNEL)
