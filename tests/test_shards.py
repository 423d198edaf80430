"""CEP-16 end to end: a mirrored site serves sharded repodata that a real client (py-rattler,
through real nginx) solves and installs from, reading only shards; every shard says exactly
what ``repodata.json`` says; a rerun after one upstream change writes only that name's shard;
``sitegen verify`` finds and repairs damaged shards."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import http.client
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from rattler import Gateway, SourceConfig, Subdir, install

from sitegen.conda.record_check import REASON_UNMIRRORED_SECTION
from sitegen.conda.shards import (
    REASON_UNSHARDABLE,
    SHARD_INDEX,
    SHARDS_DIR,
    decode_index,
    decode_shard,
)
from sitegen.store.site import Site
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import PackageSpec, example_packages, write_channel
from sitegen.tools.verify import verify_site
from sitegen.tools.webconf import LONG_CACHE, SHORT_CACHE
from sitegen.web.render import render_site
from testkit.apache import require_server, webconf_server, world_readable_dir
from testkit.client import make_client, make_gateway, solve_records
from testkit.invariant import assert_site_invariant
from testkit.site import channel_config, read_repodata, record_filenames, rewrite_repodata
from testkit.upstream import ExampleUpstream

pytestmark = pytest.mark.integration

OPTIONS = MirrorOptions(progress=False)

CHANNEL = "cloud/example"
SUBDIRS = ("linux-64", "noarch")


async def mirror(config: Any) -> Any:
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert not report.failed
    return report


def sharded_gateway(cache_dir: Path, *, sharded: bool) -> Gateway:
    if not sharded:
        return make_gateway(cache_dir)
    return Gateway(
        cache_dir=cache_dir,
        default_config=SourceConfig(sharded_enabled=True),
        client=make_client(),
        max_concurrent_requests=8,
    )


def shard_names(directory: Path) -> set[str]:
    return {p.name for p in (directory / SHARDS_DIR).iterdir()}


def assert_shards_match_repodata(directory: Path) -> None:
    """Every name of repodata.json has a shard in the index holding exactly its records."""
    repodata = read_repodata(directory)
    by_name: dict[str, dict[str, dict[str, Any]]] = {}
    for key in ("packages", "packages.conda"):
        for fn, record in repodata[key].items():
            by_name.setdefault(record["name"], {"packages": {}, "packages.conda": {}})
            by_name[record["name"]][key][fn] = record
    index = decode_index((directory / SHARD_INDEX).read_bytes())
    assert index.subdir == directory.name
    assert set(index.shards) == set(by_name)
    for name, digest in index.shards.items():
        data = (directory / SHARDS_DIR / f"{digest.hex()}.msgpack.zst").read_bytes()
        assert hashlib.sha256(data).digest() == digest
        assert decode_shard(data) == by_name[name], name


async def test_rattler_solves_and_installs_from_shards_alone(
    example_upstream: ExampleUpstream, nginx_server_factory, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    await mirror(channel_config(site, example_upstream.url))
    nginx = nginx_server_factory(site)
    url = f"{nginx.url}/{CHANNEL}"

    def solve(sharded: bool) -> list[Any]:
        gateway = sharded_gateway(tmp_path / f"cache-{sharded}", sharded=sharded)
        return asyncio.run(
            solve_records([url], ["numpy", "pip"], cache_dir=tmp_path, gateway=gateway)
        )

    sharded = await trio.to_thread.run_sync(solve, True)
    log = nginx.access_log_lines()
    for subdir in SUBDIRS:
        assert any(f"200 GET /{CHANNEL}/{subdir}/{SHARD_INDEX} " in line for line in log), log
    shard_gets = [line for line in log if f"/{SHARDS_DIR}/" in line]
    assert shard_gets and all(line.startswith("200 ") for line in shard_gets), log
    assert not [line for line in log if "repodata.json" in line], log

    monolithic = await trio.to_thread.run_sync(solve, False)
    assert any("/linux-64/repodata.json" in line for line in nginx.access_log_lines())

    def chosen(records: list[Any]) -> list[tuple[str, str, str, str]]:
        return sorted((r.name.normalized, str(r.version), r.build, r.url) for r in records)

    assert chosen(sharded) == chosen(monolithic)
    assert {r.name.normalized for r in sharded} >= {"numpy", "python", "pip", "zlib"}

    prefix = tmp_path / "env"
    await trio.to_thread.run_sync(
        lambda: asyncio.run(
            install(
                sharded,
                target_prefix=prefix,
                cache_dir=tmp_path / "pkgs",
                platform=Subdir("linux-64"),
                execute_link_scripts=False,
                show_progress=False,
                client=make_client(),
            )
        )
    )
    assert (prefix / "conda-meta").is_dir()
    for record in sharded:
        assert (
            prefix / "conda-meta" / f"{record.name.normalized}-{record.version}-{record.build}.json"
        ).is_file()


async def test_every_shard_says_what_repodata_says_and_a_rerun_writes_one_shard(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url, subdirs="[linux-64, noarch]")
    await mirror(config)
    assert_site_invariant(site)
    for subdir in SUBDIRS:
        assert_shards_match_repodata(site / CHANNEL / subdir)
    linux = site / CHANNEL / "linux-64"
    before = shard_names(linux)
    index_before = (linux / SHARD_INDEX).read_bytes()

    await mirror(config)  # no change upstream
    assert shard_names(linux) == before
    assert (linux / SHARD_INDEX).read_bytes() == index_before

    # Upstream gains one build of zlib: only zlib's shard is new.
    packages = example_upstream.packages
    new_zlib = PackageSpec(name="zlib", version="1.3.2", build="h1234567_0", timestamp_ms=1)
    write_channel(example_upstream.root, [*packages, new_zlib], zst=True)
    await mirror(config)
    assert_site_invariant(site)
    added = shard_names(linux) - before
    assert len(added) == 1
    index = decode_index((linux / SHARD_INDEX).read_bytes())
    assert f"{index.shards['zlib'].hex()}.msgpack.zst" in added
    assert shard_names(linux) >= before  # the old zlib shard stays for the grace period
    for subdir in SUBDIRS:
        assert_shards_match_repodata(site / CHANNEL / subdir)


async def test_odd_names_and_unicode_fields(
    upstream_server_factory, nginx_server_factory, tmp_path: Path
) -> None:
    """Names that are reserved words elsewhere (msgpack/JSON literals, Windows devices,
    the index's own keys) and non-ASCII field values round-trip and solve."""
    odd = ["nul", "con", "true", "null", "packages", "shards", "version", "info", "a.b_c-d"]
    specs = [
        PackageSpec(
            name=name,
            version="1.0",
            build="h0_0",
            license="Lizenz: MIT — © Ünïcødé 日本",
            timestamp_ms=1_700_000_000_000,
            extra={"summary": "Ärger ✓"},
        )
        for name in odd
    ]
    root = tmp_path / "upstream"
    write_channel(root, [*example_packages(seed=0), *specs], zst=True)
    upstream = upstream_server_factory(root)
    site = tmp_path / "site"
    await mirror(channel_config(site, upstream.url))
    linux = site / CHANNEL / "linux-64"
    assert_shards_match_repodata(linux)
    index = decode_index((linux / SHARD_INDEX).read_bytes())
    assert set(odd) <= set(index.shards)
    shard = decode_shard(
        (linux / SHARDS_DIR / f"{index.shards['nul'].hex()}.msgpack.zst").read_bytes()
    )
    (record,) = shard["packages.conda"].values()
    assert record["license"] == "Lizenz: MIT — © Ünïcødé 日本"

    nginx = nginx_server_factory(site)
    gateway = sharded_gateway(tmp_path / "cache", sharded=True)
    records = await trio.to_thread.run_sync(
        lambda: asyncio.run(
            solve_records([f"{nginx.url}/{CHANNEL}"], odd, cache_dir=tmp_path, gateway=gateway)
        )
    )
    assert {r.name.normalized for r in records} == set(odd)
    assert not [line for line in nginx.access_log_lines() if "repodata.json" in line]


async def test_verify_finds_and_repairs_damaged_shards(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url)
    await mirror(config)
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
    await mirror(config)
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
    await mirror(config)
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
    await mirror(config)  # the intact one stays for the rest of its grace period
    assert old_numpy.is_file()


async def test_a_damaged_shard_of_an_unchanged_name_is_written_again_by_the_next_change(
    example_upstream: ExampleUpstream, nginx_server_factory, tmp_path: Path
) -> None:
    """numpy's shard is cut short on disk; a run after another name changed upstream (which
    reuses the shards of unchanged names) publishes an index whose every shard a client gets
    hashes to its name, and leaves only intact shards, the one in its grace period too."""
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url)
    await mirror(config)
    linux = site / CHANNEL / "linux-64"
    index = decode_index((linux / SHARD_INDEX).read_bytes())
    numpy = linux / SHARDS_DIR / f"{index.shards['numpy'].hex()}.msgpack.zst"
    old_zlib = linux / SHARDS_DIR / f"{index.shards['zlib'].hex()}.msgpack.zst"
    numpy.write_bytes(numpy.read_bytes()[:-7])

    new_zlib = PackageSpec(name="zlib", version="1.3.2", build="h1234567_0", timestamp_ms=1)
    write_channel(example_upstream.root, [*example_upstream.packages, new_zlib], zst=True)
    await mirror(config)
    nginx = nginx_server_factory(site)
    status, _, body = _get(nginx.url, f"/{CHANNEL}/linux-64/{SHARD_INDEX}")
    assert status == 200
    served = decode_index(body)
    assert served.shards["zlib"] != index.shards["zlib"]
    for name, digest in served.shards.items():
        status, _, data = _get(
            nginx.url, f"/{CHANNEL}/linux-64/{SHARDS_DIR}/{digest.hex()}.msgpack.zst"
        )
        assert (status, hashlib.sha256(data).digest()) == (200, digest), name
    gateway = sharded_gateway(tmp_path / "cache", sharded=True)
    records = await trio.to_thread.run_sync(
        lambda: asyncio.run(
            solve_records(
                [f"{nginx.url}/{CHANNEL}"], ["numpy"], cache_dir=tmp_path, gateway=gateway
            )
        )
    )
    assert "numpy" in {r.name.normalized for r in records}
    assert old_zlib.is_file()  # unnamed, in its grace period: intact, so not reported
    assert (await verify_site(config)).problems == []


async def test_a_stale_index_is_reported(example_upstream: ExampleUpstream, tmp_path: Path) -> None:
    """An index that does not match repodata.json (a record changed behind its back)."""
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url)
    await mirror(config)
    linux = site / CHANNEL / "linux-64"
    document = json.loads((linux / "repodata.json").read_bytes())
    record = next(iter(document["packages.conda"].values()))
    record["depends"] = [*record.get("depends", []), "extra-dep"]
    (linux / "repodata.json").write_bytes(json.dumps(document).encode())
    report = await verify_site(config)
    details = [p.detail for p in report.problems if p.path.endswith(SHARD_INDEX)]
    assert details and "does not match repodata.json" in details[0], report.problems
    assert record["name"] in details[0]


# --------------------------------------------------------------------------- serving


def _get(url: str, path: str) -> tuple[int, dict[str, str], bytes]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


@pytest.fixture
def public_dir() -> Iterator[Path]:
    with world_readable_dir() as path:
        yield path


@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_webconf_serves_shards_immutable_and_the_index_short_lived(
    server: str, example_upstream: ExampleUpstream, public_dir: Path
) -> None:
    require_server(server)
    site = public_dir / "site"
    config = channel_config(site, example_upstream.url)
    trio.run(mirror, config)
    prefix = "/conda"
    running = webconf_server(server, config, public_dir / "state", prefix=prefix)
    linux = site / CHANNEL / "linux-64"
    index = decode_index((linux / SHARD_INDEX).read_bytes())
    shard = f"{index.shards['numpy'].hex()}.msgpack.zst"
    (site / CHANNEL / "noarch" / SHARD_INDEX).unlink()
    with running:
        base = f"{prefix}/{CHANNEL}/linux-64"
        status, headers, body = _get(running.url, f"{base}/{SHARD_INDEX}")
        assert status == 200 and body == (linux / SHARD_INDEX).read_bytes()
        assert headers["content-type"] == "application/octet-stream"
        assert headers["cache-control"] == SHORT_CACHE
        assert "content-encoding" not in headers
        status, headers, body = _get(running.url, f"{base}/{SHARDS_DIR}/{shard}")
        assert status == 200 and hashlib.sha256(body).hexdigest() == shard.split(".")[0]
        assert headers["content-type"] == "application/octet-stream"
        assert headers["cache-control"] == LONG_CACHE
        assert "content-encoding" not in headers
        # Absent: 404 (clients fall back to repodata.json on 404 only), never cached long.
        for path in (
            f"{prefix}/{CHANNEL}/noarch/{SHARD_INDEX}",
            f"{base}/{SHARDS_DIR}/{'0' * 64}.msgpack.zst",
        ):
            status, headers, _ = _get(running.url, path)
            assert status == 404, path
            assert "immutable" not in headers.get("cache-control", ""), path
        # repodata.json keeps its type and cache.
        status, headers, _ = _get(running.url, f"{base}/repodata.json")
        assert (status, headers["content-type"], headers["cache-control"]) == (
            200,
            "application/json",
            SHORT_CACHE,
        )


async def test_the_subdir_page_lists_the_shard_index_not_the_shards(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url)
    await mirror(config)
    await trio.to_thread.run_sync(render_site, config)
    page = (site / CHANNEL / "linux-64" / "index.html").read_text(encoding="utf-8")
    assert SHARD_INDEX in page
    assert f"{SHARDS_DIR}/" not in page
    assert ".msgpack.zst" not in page.replace(SHARD_INDEX, "")


async def test_a_v3_section_is_not_published_and_the_run_says_why(
    tmp_path: Path, upstream_server_factory
) -> None:
    root = tmp_path / "upstream"
    v3_record = {"name": "numpy", "version": "3.0.0", "build": "0", "size": 1, "sha256": "0" * 64}
    extra = {
        "info": {"repodata_revisions": {"v3": {"n_packages": 1}}},
        "v3": {"conda": {"numpy-3.0.0-0": v3_record}},
        "x_future_key": {"list": [1, 2]},
    }
    write_channel(root, example_packages(seed=0), extra, zst=True)
    server = upstream_server_factory(root)
    site = tmp_path / "site"
    report = await mirror(channel_config(site, server.url))
    for subdir in SUBDIRS:
        document = read_repodata(site / CHANNEL / subdir)
        assert "v3" not in document and "repodata_revisions" not in document["info"]
        assert document["x_future_key"] == {"list": [1, 2]}
        rejected = report.mirrors[0].subdirs[subdir].rejected
        assert rejected == {REASON_UNMIRRORED_SECTION: 1}, rejected
        assert_shards_match_repodata(site / CHANNEL / subdir)


async def test_a_passive_mirror_publishes_shards_too(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    await mirror(channel_config(site, example_upstream.url, extra="mode: passive"))
    for subdir in SUBDIRS:
        assert_shards_match_repodata(site / CHANNEL / subdir)
    index = decode_index((site / CHANNEL / "linux-64" / SHARD_INDEX).read_bytes())
    assert {"numpy", "python", "zlib"} <= set(index.shards)


async def test_new_shards_reach_the_disk_in_one_flush_before_the_index(
    example_upstream: ExampleUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No fsync per shard: each subdir's new shards are written, then put on disk by one flush
    of their filesystem (here a passive mirror's, which downloads nothing: no other flush),
    and only then is the index naming them published."""
    site = tmp_path / "site"
    linux = site / "cloud/example" / "linux-64"
    flushes: list[tuple[list[str], int, bool]] = []
    real_sync = Site.sync

    def record_flush(self: Site, directories: list[Path]) -> None:
        shards = len(list((linux / SHARDS_DIR).iterdir())) if (linux / SHARDS_DIR).is_dir() else 0
        names = sorted(str(d.relative_to(site)) for d in directories)
        flushes.append((names, shards, (linux / SHARD_INDEX).exists()))
        real_sync(self, directories)

    fsynced: list[str] = []
    real_fsync = os.fsync

    def record_fsync(fd: int) -> None:
        fsynced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", record_fsync)
    monkeypatch.setattr(Site, "sync", record_flush)
    await mirror(channel_config(site, example_upstream.url, extra="mode: passive\n"))
    names = shard_names(linux)
    assert names
    assert sorted(directories for directories, _shards, _index in flushes) == [
        ["cloud/example/linux-64/shards"],
        ["cloud/example/noarch/shards"],
    ]
    (linux_flush,) = [f for f in flushes if f[0] == ["cloud/example/linux-64/shards"]]
    assert linux_flush[1:] == (len(names), False)
    index = decode_index((linux / SHARD_INDEX).read_bytes())
    assert {f"{d.hex()}.msgpack.zst" for d in index.shards.values()} == names
    # The metadata files and the run's state are fsynced one by one, the shards are not.
    assert fsynced and not [path for path in fsynced if f"/{SHARDS_DIR}/" in path]


@pytest.mark.parametrize(
    "patch",
    [
        lambda record: record.update(x=2**64),
        lambda record: record.update(extra={"build_number": [-(2**63) - 1]}),
    ],
    ids=["unknown field", "nested"],
)
async def test_a_record_no_shard_can_hold_is_refused_alone(
    example_upstream: ExampleUpstream, tmp_path: Path, patch: Any
) -> None:
    """One upstream record with an integer beyond 64 bits (JSON carries it, msgpack cannot):
    that record is refused and named as such, never downloaded; the rest of its subdir is
    published, the next run too."""
    zlib: list[str] = []

    def rewrite(doc: dict[str, Any]) -> None:
        fn, record = next((f, r) for f, r in doc["packages.conda"].items() if r["name"] == "zlib")
        patch(record)
        zlib.append(fn)

    rewrite_repodata(example_upstream.root, "linux-64", rewrite)
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url)
    for _run in range(2):
        report = await run_mirror(config, OPTIONS)
        linux = next(c for c in report.channels if c.subdir == "linux-64")
        assert linux.status != "failed" and not report.failed, (linux.errors, report.errors)
        (mirror,) = report.mirrors
        sub = mirror.subdirs["linux-64"]
        assert sub.rejected_examples == {zlib[0]: REASON_UNSHARDABLE}
        assert sub.rejected == {REASON_UNSHARDABLE: 1}
        published = read_repodata(site / "cloud/example/linux-64")
        assert zlib[0] not in published["packages.conda"]
        assert len(record_filenames(published)) == sub.records == sub.kept > 0
        assert not (site / "cloud/example/linux-64" / zlib[0]).exists()
        assert (site / "cloud/example/linux-64" / SHARD_INDEX).is_file()
        assert_site_invariant(site)
    assert example_upstream.server.count(zlib[0]) == 0


async def test_shards_left_by_a_failed_flush_are_flushed_before_an_index_names_them(
    example_upstream: ExampleUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first run's flush of its shards fails (nothing is published); the next finds them
    there, whole in size, and still flushes them before publishing an index that names them."""
    site = tmp_path / "site"
    linux = site / "cloud/example/linux-64"
    config = channel_config(site, example_upstream.url, extra="mode: passive\n")
    real_sync = Site.sync
    flushed: list[Path] = []

    def full_disk(self: Site, directories: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Site, "sync", full_disk)
    assert (await run_mirror(config, OPTIONS)).failed
    left = {p.name for p in (linux / SHARDS_DIR).iterdir()}
    assert left and not (linux / SHARD_INDEX).exists()

    def recorded(self: Site, directories: Any) -> None:
        flushed.extend(directories)
        real_sync(self, directories)

    monkeypatch.setattr(Site, "sync", recorded)
    assert not (await run_mirror(config, OPTIONS)).errors
    index = decode_index((linux / SHARD_INDEX).read_bytes())
    assert {f"{d.hex()}.msgpack.zst" for d in index.shards.values()} <= left
    assert linux / SHARDS_DIR in flushed
