"""CEP-16 end to end: ``sitegen verify`` finds and repairs damaged shards, minds their grace
period, and reports an index that no longer matches repodata.json."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from sitegen.conda.shards import (
    SHARD_INDEX,
    SHARDS_DIR,
    compress,
    decode_index,
)
from sitegen.tools.example_channel import PackageSpec, write_channel
from sitegen.tools.verify import verify_site
from testkit.example_mirror import CHANNEL
from testkit.invariant import assert_site_invariant
from testkit.shards import SUBDIRS, assert_shards_match_repodata
from testkit.site import channel_config, mirror_checked
from testkit.upstream import ExampleUpstream

pytestmark = pytest.mark.integration


async def test_verify_finds_and_repairs_damaged_shards(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url)
    await mirror_checked(config)
    linux = site / CHANNEL / "linux-64"
    index = decode_index((linux / SHARD_INDEX).read_bytes())
    missing = linux / SHARDS_DIR / f"{index.shards['zlib'].hex()}.msgpack.zst"
    corrupt = linux / SHARDS_DIR / f"{index.shards['numpy'].hex()}.msgpack.zst"
    missing.unlink()
    corrupt.write_bytes(bytes(b ^ 0xFF for b in corrupt.read_bytes()))
    noarch_index = site / CHANNEL / "noarch" / SHARD_INDEX
    noarch_index.unlink()

    report = await verify_site(config)
    found = {p.path: p.detail for p in report.problems}
    assert not report.ok
    assert set(found) == {
        f"{CHANNEL}/linux-64/{SHARDS_DIR}/{missing.name}",
        f"{CHANNEL}/linux-64/{SHARDS_DIR}/{corrupt.name}",
        f"{CHANNEL}/noarch/{SHARD_INDEX}",
    }, found
    assert "missing" in found[f"{CHANNEL}/linux-64/{SHARDS_DIR}/{missing.name}"]

    report = await verify_site(config, repair=True)
    assert report.ok and report.problems
    assert (await verify_site(config)).problems == []
    assert_site_invariant(site)
    for subdir in SUBDIRS:
        assert_shards_match_repodata(site / CHANNEL / subdir)


async def test_verify_finds_a_damaged_shard_in_its_grace_period_and_repair_removes_it(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    """A shard the index no longer names stays served for clients holding the previous index:
    damaged, they would get bytes that do not hash to its name. The current index needs it
    not, so --repair removes it; an intact one stays."""
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url)
    await mirror_checked(config)
    linux = site / CHANNEL / "linux-64"
    index = decode_index((linux / SHARD_INDEX).read_bytes())
    old_zlib = linux / SHARDS_DIR / f"{index.shards['zlib'].hex()}.msgpack.zst"
    old_numpy = linux / SHARDS_DIR / f"{index.shards['numpy'].hex()}.msgpack.zst"
    packages = example_upstream.packages
    new = [
        PackageSpec(name="zlib", version="1.3.2", build="h1234567_0", timestamp_ms=1),
        PackageSpec(name="numpy", version="9.9.9", build="h7654321_0", timestamp_ms=1),
    ]
    write_channel(example_upstream.root, [*packages, *new], zst=True)
    await mirror_checked(config)
    assert old_zlib.is_file() and old_numpy.is_file()  # in their grace period
    old_zlib.write_bytes(old_zlib.read_bytes()[:-7])

    report = await verify_site(config)
    relative = f"{CHANNEL}/linux-64/{SHARDS_DIR}/{old_zlib.name}"
    assert [(p.path, p.kind) for p in report.problems] == [(relative, "metadata")]
    assert "does not hash to its name" in report.problems[0].detail

    report = await verify_site(config, repair=True)
    assert report.ok and [p.path for p in report.problems] == [relative]
    assert not old_zlib.exists() and old_numpy.is_file()
    assert (await verify_site(config)).problems == []
    assert_site_invariant(site)
    await mirror_checked(config)  # the intact one stays for the rest of its grace period
    assert old_numpy.is_file()


async def test_a_stale_index_is_reported(example_upstream: ExampleUpstream, tmp_path: Path) -> None:
    """An index that does not match repodata.json (a record changed behind its back)."""
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url)
    await mirror_checked(config)
    linux = site / CHANNEL / "linux-64"
    document = json.loads((linux / "repodata.json").read_bytes())
    record = next(iter(document["packages.conda"].values()))
    record["depends"] = [*record.get("depends", []), "extra-dep"]
    (linux / "repodata.json").write_bytes(json.dumps(document).encode())
    report = await verify_site(config)
    details = [p.detail for p in report.problems if p.path.endswith(SHARD_INDEX)]
    assert details and "does not match repodata.json" in details[0], report.problems
    assert record["name"] in details[0]


async def test_an_index_naming_packages_elsewhere_is_reported_and_repaired(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    """conda and rattler fetch a package from the index's ``info.base_url`` joined to the
    index's own URL: one that is not the "" sitegen writes (packages beside the index) sends
    every install elsewhere, though the shards themselves match repodata.json."""
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url)
    await mirror_checked(config)
    path = site / CHANNEL / "linux-64" / SHARD_INDEX
    published = decode_index(path.read_bytes())
    document = {
        "version": 1,
        "info": {
            "base_url": "https://elsewhere.example.org/linux-64/",
            "shards_base_url": published.shards_base_url,
            "subdir": published.subdir,
            "created_at": published.created_at,
        },
        "shards": published.shards,
    }
    path.write_bytes(compress(msgspec.msgpack.encode(document)))

    report = await verify_site(config)
    found = {p.path: p.detail for p in report.problems}
    assert list(found) == [f"{CHANNEL}/linux-64/{SHARD_INDEX}"], found
    assert "https://elsewhere.example.org/linux-64/" in found[f"{CHANNEL}/linux-64/{SHARD_INDEX}"]

    assert (await verify_site(config, repair=True)).ok
    assert decode_index(path.read_bytes()).base_url == ""
    assert (await verify_site(config)).problems == []


async def test_repair_writes_no_shard_through_a_link_out_of_the_site(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    """A subdir's shards folder made a link to a directory out of the site: verify --repair
    rebuilds nothing through it (the site's writer writes only within the site), and the
    missing shard stays reported."""
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url)
    await mirror_checked(config)
    linux = site / CHANNEL / "linux-64"
    outside = tmp_path / "outside"
    (linux / SHARDS_DIR).rename(outside)
    (linux / SHARDS_DIR).symlink_to(outside)
    index = decode_index((linux / SHARD_INDEX).read_bytes())
    missing = outside / f"{index.shards['zlib'].hex()}.msgpack.zst"
    missing.unlink()
    before = sorted(outside.iterdir())

    report = await verify_site(config, repair=True)
    assert not report.ok
    assert [p.path for p in report.problems if not p.repaired] == [
        f"{CHANNEL}/linux-64/{SHARDS_DIR}/{missing.name}"
    ]
    assert sorted(outside.iterdir()) == before
    assert (linux / SHARDS_DIR).is_symlink()
