"""A real solve's lockfiles (pixi.lock written by rattler, conda-lock.yml and an @EXPLICIT file
written from the same records) each mirror exactly the files they pin."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import trio
import yaml
from rattler import LockChannel, LockFile, LockPlatform, RepoDataRecord

from sitegen.sync.report import MissingPin
from sitegen.sync.run import MirrorOptions, run_mirror
from testkit.client import solve_records
from testkit.site import assert_channel_consistent, channel_config, published
from testkit.upstream import ExampleUpstream

pytestmark = pytest.mark.integration

CHANNEL = "cloud/example"


def write_pixi_lock(path: Path, channel: str, records: list[RepoDataRecord]) -> None:
    lock = LockFile([LockPlatform("linux-64")])
    lock.set_channels("default", [LockChannel(channel)])
    for record in records:
        lock.add_conda_package("default", LockPlatform("linux-64"), record)
    lock.to_path(path)


def write_conda_lock(path: Path, channel: str, records: list[RepoDataRecord]) -> None:
    packages = [
        {
            "name": r.name.normalized,
            "version": str(r.version),
            "manager": "conda",
            "platform": "linux-64",
            "dependencies": {},
            "url": r.url,
            "hash": {"md5": r.md5.hex(), "sha256": r.sha256.hex()},
            "category": "main",
            "optional": False,
        }
        for r in records
    ]
    metadata = {"channels": [{"url": channel, "used_env_vars": []}], "platforms": ["linux-64"]}
    path.write_text(yaml.safe_dump({"version": 1, "metadata": metadata, "package": packages}))


def write_explicit(path: Path, records: list[RepoDataRecord], extra: str = "") -> None:
    lines = ["# platform: linux-64", "@EXPLICIT", *(f"{r.url}#{r.md5.hex()}" for r in records)]
    path.write_text("\n".join(lines) + "\n" + extra)


async def test_lockfiles_of_a_real_solve_mirror_exactly_their_records(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    url = example_upstream.url
    records = await trio.to_thread.run_sync(
        lambda: asyncio.run(solve_records([url], ["numpy", "pip"], cache_dir=tmp_path / "c"))
    )
    pinned = {(r.subdir, r.file_name) for r in records}
    assert {s for s, _ in pinned} == {"linux-64", "noarch"}
    write_pixi_lock(tmp_path / "pixi.lock", url, records)
    write_conda_lock(tmp_path / "conda-lock.yml", url, records)
    gone = f"{url}/linux-64/numpy-9.9.9-py312h0000000_0.conda#{'0' * 32}\n"
    write_explicit(tmp_path / "explicit.txt", records, extra=gone)

    for lockfile in ("pixi.lock", "conda-lock.yml", "explicit.txt"):
        site = tmp_path / f"site-{lockfile}"
        config = channel_config(
            site,
            url,
            subdirs="[linux-64, noarch]",
            extra=f"filters: {{lockfiles: [{tmp_path / lockfile}]}}",
        )
        report = await run_mirror(config, MirrorOptions(progress=False))
        assert not report.failed, lockfile
        assert_channel_consistent(site, CHANNEL)
        mirrored = {
            (subdir, fn)
            for subdir in ("linux-64", "noarch")
            for fn in published(site, CHANNEL, subdir)
        }
        assert mirrored == pinned, lockfile
        missing = report.mirrors[0].pins_missing
        if lockfile == "explicit.txt":
            assert missing == [
                MissingPin(
                    lockfile=str(tmp_path / lockfile),
                    subdir="linux-64",
                    file="numpy-9.9.9-py312h0000000_0.conda",
                    why="not upstream",
                )
            ]
        else:
            assert missing == [], lockfile
