"""Passive mirrors: metadata only, package files fetched on first request, verified, kept.

A passive mirror of the example upstream (a token channel, ``/t/<token>/...``, the token in the
environment) publishes repodata without package files. The real web server runs the generated
config and hands missing package files to ``sitegen fetcher`` (a real subprocess); py-rattler
installs through it, the files appear in the site, and with the upstream stopped a fresh client
still installs from the stored copies. A hostile upstream gets 502 and nothing stored. The
fetcher in this process answers only for published files, with one download per file.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import secrets
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from sitegen.config import SiteConfig, load_config
from sitegen.passive.listen import listener_address, open_listeners, serve_fetcher
from sitegen.sync.prune import package_files
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import example_packages, write_channel
from testkit.apache import require_server, webconf_server
from testkit.client import solve_and_install
from testkit.fetcher import fetch_one, fetcher_process
from testkit.site import record_fdatasync, sha256_of
from testkit.upstream import UpstreamHandler, UpstreamServer, serve_bytes

pytestmark = pytest.mark.integration

CHANNEL = "cloud/conda-forge"


PREFIX = "/conda"


TOKEN_ENV = "SITEGEN_TEST_TOKEN"


@dataclass
class TokenUpstream:
    """The example channel at ``<server>/t/<token>/forge``."""

    server: UpstreamServer
    root: Path
    token: str
    repodata: dict[str, dict[str, Any]]

    def go_down(self) -> None:
        """Stop the server and take its files away: ``UpstreamServer.stop()`` closes the
        listening socket, but a keep-alive connection already open keeps being served."""
        self.server.stop()
        self.root.rename(self.root.with_name("upstream-gone"))

    def path(self, subdir: str, fn: str) -> str:
        return f"/t/{self.token}/forge/{subdir}/{fn}"

    def package_requests(self) -> list[str]:
        return [
            r.path.rsplit("/", 1)[1]
            for r in self.server.requests
            if r.path.endswith((".conda", ".tar.bz2"))
        ]


@pytest.fixture
def token_upstream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TokenUpstream]:
    token = secrets.token_hex(16)
    monkeypatch.setenv(TOKEN_ENV, token)
    root = tmp_path / "upstream"
    repodata = write_channel(root / "t" / token / "forge", example_packages(seed=0), zst=True)
    with UpstreamServer(root) as server:
        yield TokenUpstream(server, root, token, repodata)


def write_config(path: Path, site: Path, upstream: TokenUpstream, mode: str) -> SiteConfig:
    path.write_text(
        textwrap.dedent(
            f"""\
            output: {site}
            download: {{retries: 0, timeout: 30}}
            channels:
              {CHANNEL}:
                url: {upstream.server.url}/t/${{{TOKEN_ENV}}}/forge
                subdirs: [linux-64]
                mode: {mode}
            """
        )
    )
    return load_config(path)


def published(site: Path) -> dict[str, dict[str, Any]]:
    """subdir/filename -> record, over the channel's published subdirs."""
    out = {}
    for subdir in ("linux-64", "noarch"):
        document = json.loads((site / CHANNEL / subdir / "repodata.json").read_bytes())
        for key in ("packages", "packages.conda"):
            out.update({f"{subdir}/{fn}": r for fn, r in document[key].items()})
    return out


def stored(site: Path) -> set[str]:
    return {
        f"{subdir}/{fn}"
        for subdir in ("linux-64", "noarch")
        for fn in package_files(site / CHANNEL / subdir)
    }


def temp_files(site: Path) -> list[Path]:
    return [p for p in (site / CHANNEL).rglob(".sitegen-tmp-*")]


def _get(address: str, path: str) -> tuple[int, dict[str, str], bytes | None]:
    """Status, headers and body of a GET; the body is None when the answer was cut off."""
    host, port = address.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        headers = {k.lower(): v for k, v in response.getheaders()}
        try:
            return response.status, headers, response.read()
        except http.client.IncompleteRead:
            return response.status, headers, None
    finally:
        conn.close()


@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_passive_mirror_fetches_on_demand_and_keeps_serving_when_upstream_is_down(
    server: str, token_upstream: TokenUpstream, public_dir: Path, tmp_path: Path
) -> None:
    require_server(server)
    site = public_dir / "site"
    config_path = public_dir / "channels.yaml"
    config = write_config(config_path, site, token_upstream, "passive")
    report = trio.run(run_mirror, config, MirrorOptions(progress=False))
    assert not report.failed
    records = published(site)
    assert records and stored(site) == set()  # metadata only
    assert token_upstream.package_requests() == []

    with fetcher_process(config_path, tmp_path / "fetcher.log") as fetcher:
        web = webconf_server(
            server, config, public_dir / "state", prefix=PREFIX, fetcher=fetcher.address
        )
        with web:
            channel_url = f"{web.url}{PREFIX}/{CHANNEL}"
            installed = solve_and_install(
                [channel_url], ["numpy"], tmp_path / "env1", cache_dir=tmp_path / "cache1"
            )
            names = {p.name for p in installed}
            assert {"numpy", "python"} <= names
            fetched = {f"{p.url.rsplit('/', 2)[1]}/{p.file_name}" for p in installed}
            # The installed files are now stored, verified, once each; nothing else.
            assert stored(site) == fetched
            for key in fetched:
                assert sha256_of(site / CHANNEL / key) == records[key]["sha256"]
            assert sorted(token_upstream.package_requests()) == sorted(
                key.split("/")[1] for key in fetched
            )

            # Upstream goes away: what is stored keeps being served to new clients.
            token_upstream.go_down()
            again = solve_and_install(
                [channel_url], ["numpy"], tmp_path / "env2", cache_dir=tmp_path / "cache2"
            )
            assert {p.file_name for p in again} == {p.file_name for p in installed}
            # ... and what is not stored cannot be fetched: 502, nothing stored.
            missing = sorted(set(records) - fetched)[0]
            status, headers, body = _get(web.url, f"{PREFIX}/{CHANNEL}/{missing}")
            assert status == 502
            assert "immutable" not in headers.get("cache-control", "")
            assert token_upstream.token.encode() not in body
            assert stored(site) == fetched and temp_files(site) == []

    # The token lives in the fetcher's environment only: never in its logs, never in the site.
    log_text = fetcher.log_text()
    assert "fetched from mirror" in log_text
    assert token_upstream.token not in log_text
    for path in site.rglob("*"):
        if path.is_file():
            assert token_upstream.token.encode() not in path.read_bytes(), path


def test_hostile_upstream_gets_an_error_or_a_cut_off_body_and_nothing_is_stored(
    token_upstream: TokenUpstream, public_dir: Path, tmp_path: Path
) -> None:
    require_server("nginx")
    site = public_dir / "site"
    config_path = public_dir / "channels.yaml"
    config = write_config(config_path, site, token_upstream, "passive")
    assert not trio.run(run_mirror, config, MirrorOptions(progress=False)).failed
    records = published(site)
    target = next(key for key in sorted(records) if key.startswith("linux-64/numpy"))
    subdir, fn = target.split("/")
    size = records[target]["size"]
    upstream_path = token_upstream.path(subdir, fn)
    url_path = f"{PREFIX}/{CHANNEL}/{target}"

    with (
        fetcher_process(config_path, tmp_path / "fetcher.log") as fetcher,
        webconf_server(
            "nginx", config, public_dir / "state", prefix=PREFIX, fetcher=fetcher.address
        ) as web,
    ):
        # Same size, wrong bytes; then more bytes than the record says: never stored. A
        # client the bytes were already streaming to is cut off before the last one.
        for hostile in (b"\0" * size, b"x" * (size + 100)):
            token_upstream.server.add_fault(upstream_path, serve_bytes(hostile), times=1)
            status, headers, body = _get(web.url, url_path)
            if body is None:
                assert status == 200 and int(headers["content-length"]) == size
            else:
                assert status == 502, body
                assert headers.get("cache-control") == "no-store"
                assert b"checksum mismatch" in body or b"more than the expected" in body
                assert token_upstream.token.encode() not in body
            assert not (site / CHANNEL / target).exists()
            assert temp_files(site) == []
        # A file no published repodata lists is not fetched at all.
        status, _, _ = _get(web.url, f"{PREFIX}/{CHANNEL}/linux-64/evil-1.0-0.conda")
        assert status == 404
        assert token_upstream.package_requests() == [fn, fn]
        # Upstream healthy again: the right bytes are stored under the published name.
        status, headers, body = _get(web.url, url_path)
        assert status == 200 and int(headers["content-length"]) == size
        assert body is not None and hashlib.sha256(body).hexdigest() == records[target]["sha256"]
        assert sha256_of(site / CHANNEL / target) == records[target]["sha256"]
    assert token_upstream.token not in fetcher.log_text()


async def test_fetcher_answers_only_for_published_files(
    token_upstream: TokenUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    config = write_config(tmp_path / "channels.yaml", site, token_upstream, "passive")
    await run_mirror(config, MirrorOptions(progress=False))
    fn = next(iter(token_upstream.repodata["linux-64"]["packages.conda"]))
    listeners = await open_listeners("127.0.0.1", 0)
    async with trio.open_nursery() as nursery:
        fetcher = await nursery.start(serve_fetcher, config, listeners)
        cases = {
            ("POST", f"/{CHANNEL}/linux-64/{fn}"): 405,
            ("GET", "relative/path.conda"): 400,
            ("GET", "/%ff%fe.conda"): 400,
            ("GET", "/../../etc/passwd"): 404,
            ("GET", f"/{CHANNEL}/linux-64/..%2f..%2f.sitegen%2flock.conda"): 404,
            ("GET", f"/{CHANNEL}/linux-64/../../../etc/x.conda"): 404,
            ("GET", f"/{CHANNEL}/linux-64/repodata.json"): 404,
            ("GET", f"/{CHANNEL}/win-64/{fn}"): 404,
            ("GET", f"/{CHANNEL}/linux-64/not-published-1.0-0.conda"): 404,
            ("GET", f"/other/channel/linux-64/{fn}"): 404,
        }
        for (method, target), status in cases.items():
            reply = await fetcher.reply(method, target)
            assert reply.status == status, (method, target, reply.body)
        assert token_upstream.package_requests() == []
        # Over HTTP, on one keep-alive connection: GET fetches, HEAD and GET serve the copy.
        address = listener_address(listeners)
        async with httpx.AsyncClient(base_url=f"http://{address}") as client:
            first = await client.get(f"/{CHANNEL}/linux-64/{fn}")
            head = await client.head(f"/{CHANNEL}/linux-64/{fn}")
            second = await client.get(f"/{CHANNEL}/linux-64/{fn}?x=1")
            bad = await client.request("BREW", "/")
        assert (first.status_code, first.headers["x-sitegen-fetcher"]) == (200, "fetched")
        assert (second.status_code, second.headers["x-sitegen-fetcher"]) == (200, "stored")
        assert first.content == second.content
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) == len(first.content)
        assert bad.status_code == 405
        assert token_upstream.package_requests() == [fn]
        nursery.cancel_scope.cancel()


async def test_a_fetched_file_is_on_disk_before_it_is_named(
    token_upstream: TokenUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fetcher serves a file the moment it is named, and no run flushes after it: each one
    is fdatasynced first. (An active run flushes its downloads once instead, see
    test_mirror_first_run.)"""
    site = tmp_path / "site"
    config = write_config(tmp_path / "channels.yaml", site, token_upstream, "passive")
    await run_mirror(config, MirrorOptions(progress=False))
    fn = next(iter(token_upstream.repodata["linux-64"]["packages.conda"]))
    target = site / CHANNEL / "linux-64" / fn
    synced = record_fdatasync(monkeypatch, lambda fd: (os.fstat(fd).st_ino, target.exists()))
    listeners = await open_listeners("127.0.0.1", 0)
    async with trio.open_nursery() as nursery:
        fetcher = await nursery.start(serve_fetcher, config, listeners)
        reply = await fetcher.reply("GET", f"/{CHANNEL}/linux-64/{fn}")
        assert reply.status == 200
        nursery.cancel_scope.cancel()
    assert synced == [(target.stat().st_ino, False)]


async def test_concurrent_requests_share_one_download(
    token_upstream: TokenUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    config = write_config(tmp_path / "channels.yaml", site, token_upstream, "passive")
    await run_mirror(config, MirrorOptions(progress=False))
    fn, record = next(iter(token_upstream.repodata["linux-64"]["packages.conda"].items()))
    release = threading.Event()

    def slow(handler: UpstreamHandler) -> bool:
        release.wait(30)  # hold the download until every client waits on it
        return False  # then serve the real file

    token_upstream.server.add_fault(token_upstream.path("linux-64", fn), slow)
    listeners = await open_listeners("127.0.0.1", 0)
    results: list[httpx.Response] = []
    async with trio.open_nursery() as nursery:
        fetcher = await nursery.start(serve_fetcher, config, listeners)
        target = fetcher.resolver.site.path(CHANNEL, "linux-64", fn)
        async with httpx.AsyncClient(base_url=f"http://{listener_address(listeners)}") as client:

            async def get() -> None:
                results.append(await client.get(f"/{CHANNEL}/linux-64/{fn}"))

            async with trio.open_nursery() as clients:
                for _ in range(4):
                    clients.start_soon(get)
                with trio.fail_after(20):
                    while (
                        flight := fetcher.resolver.flights.get(target)
                    ) is None or flight.waiters < 4:
                        await trio.sleep(0.01)
                release.set()
        nursery.cancel_scope.cancel()
    assert [r.status_code for r in results] == [200] * 4
    assert {hashlib.sha256(r.content).hexdigest() for r in results} == {record["sha256"]}
    assert token_upstream.package_requests() == [fn]
    assert fetcher.resolver.flights == {}


async def test_missing_token_means_502_not_a_crash(
    token_upstream: TokenUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    config = write_config(tmp_path / "channels.yaml", site, token_upstream, "passive")
    await run_mirror(config, MirrorOptions(progress=False))
    monkeypatch.delenv(TOKEN_ENV)
    fn = next(iter(token_upstream.repodata["linux-64"]["packages.conda"]))
    reply = await fetch_one(config, f"/{CHANNEL}/linux-64/{fn}")
    assert reply.status == 502 and b"not configured" in reply.body
    assert token_upstream.package_requests() == []


async def test_switching_to_active_downloads_only_what_is_not_stored(
    token_upstream: TokenUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    config_path = tmp_path / "channels.yaml"
    config = write_config(config_path, site, token_upstream, "passive")
    await run_mirror(config, MirrorOptions(progress=False))
    records = published(site)
    wanted = sorted(records)[::5]  # a few files of both subdirs, fetched on demand
    listeners = await open_listeners("127.0.0.1", 0)
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_fetcher, config, listeners)
        async with httpx.AsyncClient(base_url=f"http://{listener_address(listeners)}") as client:
            for key in wanted:
                response = await client.get(f"/{CHANNEL}/{key}")
                assert response.status_code == 200, key
        nursery.cancel_scope.cancel()
    before = stored(site)
    assert before == set(wanted)

    token_upstream.server.reset()
    active = write_config(config_path, site, token_upstream, "active")
    report = await run_mirror(active, MirrorOptions(progress=False))
    assert not report.failed
    downloaded = token_upstream.package_requests()
    assert sorted(downloaded) == sorted(key.split("/")[1] for key in set(records) - before)
    assert stored(site) == set(records)
    for key, record in records.items():
        assert sha256_of(site / CHANNEL / key) == record["sha256"]
