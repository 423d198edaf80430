"""CEP-16 end to end, as clients see it: a mirrored site serves sharded repodata that a real
client (py-rattler, through real nginx) solves and installs from, reading only shards; every
shard says exactly what ``repodata.json`` says; a rerun after one upstream change writes only
that name's shard; the web servers serve shards immutable and the index short-lived."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
from pathlib import Path
from typing import Any

import pytest
import trio
from rattler import Gateway, SourceConfig, Subdir, install

from sitegen.conda.shards import (
    SHARD_INDEX,
    SHARDS_DIR,
    decode_index,
    decode_shard,
)
from sitegen.tools.example_channel import PackageSpec, example_packages, write_channel
from sitegen.tools.verify import verify_site
from sitegen.tools.webconf import LONG_CACHE, SHORT_CACHE
from sitegen.web.render import render_site
from testkit.apache import require_server, webconf_server
from testkit.client import make_client, make_gateway, solve_records
from testkit.example_mirror import CHANNEL
from testkit.invariant import assert_site_invariant
from testkit.shards import SUBDIRS, assert_shards_match_repodata, shard_names
from testkit.site import channel_config, mirror_checked
from testkit.upstream import ExampleUpstream

pytestmark = pytest.mark.integration


def sharded_gateway(cache_dir: Path, *, sharded: bool) -> Gateway:
    if not sharded:
        return make_gateway(cache_dir)
    return Gateway(
        cache_dir=cache_dir,
        default_config=SourceConfig(sharded_enabled=True),
        client=make_client(),
        max_concurrent_requests=8,
    )


async def test_rattler_solves_and_installs_from_shards_alone(
    example_upstream: ExampleUpstream, nginx_server_factory, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    await mirror_checked(channel_config(site, example_upstream.url))
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
    await mirror_checked(config)
    assert_site_invariant(site)
    for subdir in SUBDIRS:
        assert_shards_match_repodata(site / CHANNEL / subdir)
    linux = site / CHANNEL / "linux-64"
    before = shard_names(linux)
    index_before = (linux / SHARD_INDEX).read_bytes()

    await mirror_checked(config)  # no change upstream
    assert shard_names(linux) == before
    assert (linux / SHARD_INDEX).read_bytes() == index_before

    # Upstream gains one build of zlib: only zlib's shard is new.
    packages = example_upstream.packages
    new_zlib = PackageSpec(name="zlib", version="1.3.2", build="h1234567_0", timestamp_ms=1)
    write_channel(example_upstream.root, [*packages, new_zlib], zst=True)
    await mirror_checked(config)
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
    await mirror_checked(channel_config(site, upstream.url))
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


async def test_a_damaged_shard_of_an_unchanged_name_is_written_again_by_the_next_change(
    example_upstream: ExampleUpstream, nginx_server_factory, tmp_path: Path
) -> None:
    """numpy's shard is cut short on disk; a run after another name changed upstream (which
    reuses the shards of unchanged names) publishes an index whose every shard a client gets
    hashes to its name, and leaves only intact shards, the one in its grace period too."""
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url)
    await mirror_checked(config)
    linux = site / CHANNEL / "linux-64"
    index = decode_index((linux / SHARD_INDEX).read_bytes())
    numpy = linux / SHARDS_DIR / f"{index.shards['numpy'].hex()}.msgpack.zst"
    old_zlib = linux / SHARDS_DIR / f"{index.shards['zlib'].hex()}.msgpack.zst"
    numpy.write_bytes(numpy.read_bytes()[:-7])

    new_zlib = PackageSpec(name="zlib", version="1.3.2", build="h1234567_0", timestamp_ms=1)
    write_channel(example_upstream.root, [*example_upstream.packages, new_zlib], zst=True)
    await mirror_checked(config)
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


@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_webconf_serves_shards_immutable_and_the_index_short_lived(
    server: str, example_upstream: ExampleUpstream, public_dir: Path
) -> None:
    require_server(server)
    site = public_dir / "site"
    config = channel_config(site, example_upstream.url)
    trio.run(mirror_checked, config)
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
    await mirror_checked(config)
    await trio.to_thread.run_sync(render_site, config)
    page = (site / CHANNEL / "linux-64" / "index.html").read_text(encoding="utf-8")
    assert SHARD_INDEX in page
    assert f"{SHARDS_DIR}/" not in page
    assert ".msgpack.zst" not in page.replace(SHARD_INDEX, "")
