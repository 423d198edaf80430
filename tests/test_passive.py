"""Passive mirrors: metadata only, package files fetched on first request, verified, kept.

A passive mirror of the example upstream (a token channel, ``/t/<token>/...``, the token in the
environment) publishes repodata without package files. The real web server runs the generated
config and hands missing package files to ``sitegen fetcher`` (a real subprocess); py-rattler
installs through it, the files appear in the site, and with the upstream stopped a fresh client
still installs from the stored copies. A hostile upstream gets 502 and nothing stored.
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
from sitegen.passive.resolver import Reply, Resolver, passive_channels
from sitegen.store.site import Site
from sitegen.sync.prune import package_files
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import example_packages, write_channel
from testkit.apache import require_server, webconf_server, world_readable_dir
from testkit.client import solve_and_install
from testkit.fetcher import FakeFetch, fetcher_process
from testkit.site import record_fdatasync
from testkit.small_channel import small_packages
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


@pytest.fixture
def public_dir() -> Iterator[Path]:
    with world_readable_dir() as path:
        yield path


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


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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


# --------------------------------------------------------------------------- end to end


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

    with fetcher_process(config_path, tmp_path) as fetcher:
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
                assert sha256(site / CHANNEL / key) == records[key]["sha256"]
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


def test_the_fetcher_says_once_where_it_listens(tmp_path: Path) -> None:
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {tmp_path / 'site'}\n"
        f"channels:\n  {CHANNEL}: {{url: https://up.invalid/forge, subdirs: [linux-64],"
        " mode: passive}\n"
    )
    with fetcher_process(config_path, tmp_path) as fetcher:
        assert "listening" not in fetcher.log_text()  # on stderr: not a second time
        assert fetcher.announcement == (
            f"sitegen fetcher: 1 passive channel of {tmp_path / 'site'};"
            f" listening on http://{fetcher.address}"
        )


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
        fetcher_process(config_path, tmp_path) as fetcher,
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
        assert sha256(site / CHANNEL / target) == records[target]["sha256"]
    assert token_upstream.token not in fetcher.log_text()


# --------------------------------------------------------------------------- the resolver alone


def resolver_site(tmp_path: Path) -> tuple[Site, SiteConfig, dict[str, bytes]]:
    """A passive channel whose published linux-64 repodata lists two files, none stored."""
    contents = {"a-1.0-0.conda": b"a" * 10, "b-1.0-0.tar.bz2": b"b" * 20}
    site = Site(tmp_path / "site")
    directory = site.path(CHANNEL, "linux-64")
    directory.mkdir(parents=True)
    listed = {fn: {"size": len(data)} for fn, data in contents.items()}
    document = {
        "packages": {k: v for k, v in listed.items() if k.endswith(".tar.bz2")},
        "packages.conda": {k: v for k, v in listed.items() if k.endswith(".conda")},
    }
    (directory / "repodata.json").write_text(json.dumps(document))
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {site.root}\n"
        "channels:\n"
        f"  {CHANNEL}:\n"
        "    url: http://upstream.invalid/forge\n"
        "    subdirs: [linux-64]\n"
        "    mode: passive\n"
    )
    return site, load_config(config_path), contents


async def _fetch_one(config: SiteConfig, path: str) -> Reply:
    """One GET through a fetcher serving ``config`` on a port of its own."""
    listeners = await open_listeners("127.0.0.1", 0)
    async with trio.open_nursery() as nursery:
        fetcher = await nursery.start(serve_fetcher, config, listeners)
        reply = await fetcher.reply("GET", path)
        nursery.cancel_scope.cancel()
    return reply


async def test_resolver_fetches_only_listed_files_and_each_once(tmp_path: Path) -> None:
    site, config, contents = resolver_site(tmp_path)
    (site.path(CHANNEL, "linux-64") / "b-1.0-0.tar.bz2").write_bytes(contents["b-1.0-0.tar.bz2"])
    fake = FakeFetch(contents)
    async with Resolver(site, passive_channels(config), fake).running() as resolver:
        not_listed = await resolver.resolve(f"/{CHANNEL}/linux-64/c-1.0-0.conda")
        already = await resolver.resolve(f"/{CHANNEL}/linux-64/b-1.0-0.tar.bz2")
        first = await resolver.resolve(f"/{CHANNEL}/linux-64/a-1.0-0.conda")
        again = await resolver.resolve(f"/{CHANNEL}/linux-64/a-1.0-0.conda")
    assert not_listed.status == 404 and not_listed.file is None
    assert (already.status, already.outcome) == (200, "stored")
    assert (first.status, first.outcome) == (200, "fetched")
    assert (again.status, again.outcome) == (200, "stored")
    assert first.file == again.file == site.path(CHANNEL, "linux-64", "a-1.0-0.conda")
    assert fake.calls == ["a-1.0-0.conda"]


async def test_resolver_runs_one_download_for_concurrent_requests(tmp_path: Path) -> None:
    """Every request for a missing file waits on one download, which a client giving up does
    not abort for the others."""
    site, config, contents = resolver_site(tmp_path)
    fake = FakeFetch(contents, gate=trio.Event())
    fn = "a-1.0-0.conda"
    path = f"/{CHANNEL}/linux-64/{fn}"
    target = site.path(CHANNEL, "linux-64", fn)
    replies: list[Reply] = []
    impatient = trio.CancelScope()

    async with Resolver(site, passive_channels(config), fake).running() as resolver:

        async def get() -> None:
            replies.append(await resolver.resolve(path))

        async def give_up() -> None:
            with impatient:
                await resolver.resolve(path)

        async def waiting(count: int) -> None:
            while (flight := resolver.flights.get(target)) is None or flight.waiters != count:
                await trio.sleep(0.001)

        async with trio.open_nursery() as clients:
            for _ in range(3):
                clients.start_soon(get)
            clients.start_soon(give_up)
            with trio.fail_after(5):
                await waiting(4)
                impatient.cancel()
                await waiting(3)
            assert fake.gate is not None
            fake.gate.set()
        assert resolver.flights == {}
    assert [(r.status, r.outcome) for r in replies] == [(200, "fetched")] * 3
    assert fake.calls == [fn]
    assert target.read_bytes() == contents[fn]


async def test_a_stored_file_of_another_size_is_fetched_again_not_served(tmp_path: Path) -> None:
    """Only a file of exactly the listed size counts as stored: a short or over-long file
    under the published name (a copy cut short, a file the listing has since changed) is
    fetched again, verified, never served as it is."""
    site, config, contents = resolver_site(tmp_path)
    fn = "a-1.0-0.conda"
    target = site.path(CHANNEL, "linux-64", fn)
    target.write_bytes(contents[fn][:3])
    fake = FakeFetch(contents)
    async with Resolver(site, passive_channels(config), fake).running() as resolver:
        reply = await resolver.resolve(f"/{CHANNEL}/linux-64/{fn}")
    assert (reply.status, reply.outcome) == (200, "fetched")
    assert fake.calls == [fn]
    assert target.read_bytes() == contents[fn]


async def test_a_download_that_leaves_no_file_of_the_listed_size_is_a_502(tmp_path: Path) -> None:
    """The fetch reported success but the file is not there with the listed size (pruned or
    replaced meanwhile): the client gets 502, never a file reply for the wrong bytes."""
    site, config, contents = resolver_site(tmp_path)
    fn = "a-1.0-0.conda"
    short = FakeFetch({**contents, fn: contents[fn][:5]})
    async with Resolver(site, passive_channels(config), short).running() as resolver:
        reply = await resolver.resolve(f"/{CHANNEL}/linux-64/{fn}")
    assert reply.status == 502 and reply.file is None
    assert b"gone after download" in reply.body


async def test_the_resolver_follows_the_repodata_a_later_run_publishes(tmp_path: Path) -> None:
    """The published repodata.json is re-read once a run replaces it: a file it no longer
    lists is a 404, not fetched against the record the fetcher read before."""
    site, config, contents = resolver_site(tmp_path)
    directory = site.path(CHANNEL, "linux-64")
    fake = FakeFetch(contents)
    async with Resolver(site, passive_channels(config), fake).running() as resolver:
        first = await resolver.resolve(f"/{CHANNEL}/linux-64/a-1.0-0.conda")
        document = {"packages": {}, "packages.conda": {"a-1.0-0.conda": {"size": 10}}}
        site.write_bytes(directory / "repodata.json", json.dumps(document).encode())
        gone = await resolver.resolve(f"/{CHANNEL}/linux-64/b-1.0-0.tar.bz2")
    assert first.status == 200
    assert gone.status == 404 and gone.file is None
    assert fake.calls == ["a-1.0-0.conda"]
    assert not (directory / "b-1.0-0.tar.bz2").exists()


async def test_a_download_outrun_by_a_new_record_leaves_no_file_under_the_name(
    tmp_path: Path,
) -> None:
    """A file re-uploaded upstream while the fetcher downloads it: a run publishes the new
    record before the download (verified against the record of its start) ends. Those bytes
    are not what the published record names: they do not stay under the name (a size check
    would take them as stored for good), the clients get 502, and the next request fetches
    the file the record names now."""
    site, config, contents = resolver_site(tmp_path)
    fn = "a-1.0-0.conda"
    old, new = contents[fn], b"A" * len(contents[fn])
    directory = site.path(CHANNEL, "linux-64")

    def publish(data: bytes) -> None:
        entry = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        document = {"packages": {}, "packages.conda": {fn: entry}}
        site.write_bytes(directory / "repodata.json", json.dumps(document).encode())

    publish(old)
    fake = FakeFetch(dict(contents), gate=trio.Event())
    path = f"/{CHANNEL}/linux-64/{fn}"
    replies: list[Reply] = []
    async with Resolver(site, passive_channels(config), fake).running() as resolver:

        async def get() -> None:
            replies.append(await resolver.resolve(path))

        async with trio.open_nursery() as clients:
            for _ in range(2):
                clients.start_soon(get)
            with trio.fail_after(5):
                while not resolver.flights or next(iter(resolver.flights.values())).waiters < 2:
                    await trio.sleep(0.001)
            publish(new)  # the next run, while the old bytes are still coming
            assert fake.gate is not None
            fake.gate.set()
        assert [r.status for r in replies] == [502, 502]
        assert not (directory / fn).exists()
        fake.contents[fn], fake.gate = new, None
        again = await resolver.resolve(path)
    assert (again.status, again.outcome) == (200, "fetched")
    assert (directory / fn).read_bytes() == new
    assert fake.calls == [fn, fn]


async def test_requests_for_a_file_in_flight_join_it_even_at_the_limit(tmp_path: Path) -> None:
    """The download limit counts different files: more clients asking for the one file being
    fetched wait on that download instead of getting 503."""
    site, config, contents = resolver_site(tmp_path)
    fake = FakeFetch(contents, gate=trio.Event())
    path = f"/{CHANNEL}/linux-64/a-1.0-0.conda"
    replies: list[Reply] = []
    resolver = Resolver(site, passive_channels(config), fake, max_flights=1)
    async with resolver.running():

        async def get() -> None:
            replies.append(await resolver.resolve(path))

        async with trio.open_nursery() as clients:
            clients.start_soon(get)
            with trio.fail_after(5):
                while not resolver.flights:
                    await trio.sleep(0.001)
            clients.start_soon(get)
            with trio.fail_after(5):
                while next(iter(resolver.flights.values())).waiters != 2:
                    await trio.sleep(0.001)
            assert fake.gate is not None
            fake.gate.set()
    assert [(r.status, r.outcome) for r in replies] == [(200, "fetched")] * 2
    assert fake.calls == ["a-1.0-0.conda"]


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
    reply = await _fetch_one(config, f"/{CHANNEL}/linux-64/{fn}")
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
        assert sha256(site / CHANNEL / key) == record["sha256"]


async def test_passive_file_comes_from_the_cep15_package_host(tmp_path: Path) -> None:
    """Upstream repodata whose ``info.base_url`` (CEP-15) puts the packages on another host: the
    fetcher fetches a passive file from that host, as the origins map of the mirror run says."""
    meta_root, package_root = tmp_path / "meta", tmp_path / "packages"
    records = write_channel(package_root, example_packages(seed=0), zst=False)
    write_channel(meta_root, example_packages(seed=0), zst=False)
    for subdir in ("linux-64", "noarch"):
        for entry in (meta_root / subdir).iterdir():
            if entry.name != "repodata.json":
                entry.unlink()  # the metadata host serves no package
    site = tmp_path / "site"
    fn, record = next(iter(records["linux-64"]["packages.conda"].items()))
    with UpstreamServer(package_root) as packages, UpstreamServer(meta_root) as meta:
        for subdir in ("linux-64", "noarch"):
            path = meta_root / subdir / "repodata.json"
            document = json.loads(path.read_bytes())
            document["info"]["base_url"] = f"{packages.url}/{subdir}/"
            path.write_text(json.dumps(document))
        config_path = tmp_path / "channels.yaml"
        config_path.write_text(
            f"output: {site}\n"
            "download: {retries: 0, timeout: 30}\n"
            "channels:\n"
            f"  {CHANNEL}:\n"
            f"    url: {meta.url}\n"
            "    subdirs: [linux-64]\n"
            "    mode: passive\n"
        )
        config = load_config(config_path)
        assert not (await run_mirror(config, MirrorOptions(progress=False))).failed
        meta.reset()
        reply = await _fetch_one(config, f"/{CHANNEL}/linux-64/{fn}")
        assert (reply.status, reply.outcome) == (200, "fetched"), reply.body
        assert [r.path for r in packages.requests] == [f"/linux-64/{fn}"]
        assert not meta.requests
    assert sha256(site / CHANNEL / "linux-64" / fn) == record["sha256"]


def _two_passive_mirrors(tmp_path: Path, site: Path, **urls: str) -> SiteConfig:
    """A channel fed by passive mirrors named and ordered as ``urls`` says."""
    mirrors = "".join(
        f"      - {{name: {name}, url: {url}, subdirs: [linux-64], mode: passive}}\n"
        for name, url in urls.items()
    )
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {site}\ndownload: {{retries: 0, timeout: 30}}\n"
        f"channels:\n  {CHANNEL}:\n    mirrors:\n{mirrors}"
    )
    return load_config(config_path)


async def test_one_mirrors_odd_base_url_does_not_stop_fetches_from_the_others(
    tmp_path: Path,
) -> None:
    """A channel fed by two passive mirrors; the second one's upstream repodata sets
    ``info.base_url`` to a number. Files the first mirror supplied must still be fetchable:
    the origins map of the subdir must stay readable."""
    good_root, odd_root = tmp_path / "good", tmp_path / "odd"
    records = write_channel(good_root, example_packages(seed=0), zst=False)
    odd = write_channel(odd_root, example_packages(seed=1), zst=False)
    document = odd["linux-64"]
    document["info"]["base_url"] = 5
    (odd_root / "linux-64" / "repodata.json").write_text(json.dumps(document))
    site = tmp_path / "site"
    fn, record = next(iter(records["linux-64"]["packages.conda"].items()))
    with UpstreamServer(good_root) as good, UpstreamServer(odd_root) as bad:
        config = _two_passive_mirrors(tmp_path, site, good=good.url, odd=bad.url)
        assert not (await run_mirror(config, MirrorOptions(progress=False))).failed
        reply = await _fetch_one(config, f"/{CHANNEL}/linux-64/{fn}")
    # (An origins map the fetcher cannot read would answer 502 for every file of the subdir.)
    assert (reply.status, reply.outcome) == (200, "fetched"), reply.body
    assert sha256(site / CHANNEL / "linux-64" / fn) == record["sha256"]


async def test_a_file_is_fetched_from_the_mirror_that_supplied_it_and_checked_by_sha256(
    tmp_path: Path,
) -> None:
    """Two passive mirrors; a file only the second one lists, with a sha256 and no md5. The
    fetcher asks that mirror (the origins map says so), verifies by the published sha256 and
    stores it; the first mirror is never asked for it."""
    one_root, two_root = tmp_path / "one", tmp_path / "two"
    packages = example_packages(seed=0)
    write_channel(one_root, packages, zst=False)
    records = write_channel(two_root, packages, zst=False)
    fn, record = sorted(records["linux-64"]["packages.conda"].items())[-1]  # not the first
    first = json.loads((one_root / "linux-64" / "repodata.json").read_bytes())
    del first["packages.conda"][fn]
    (one_root / "linux-64" / "repodata.json").write_text(json.dumps(first))
    (one_root / "linux-64" / fn).unlink()
    second = json.loads((two_root / "linux-64" / "repodata.json").read_bytes())
    del second["packages.conda"][fn]["md5"]
    (two_root / "linux-64" / "repodata.json").write_text(json.dumps(second))
    site = tmp_path / "site"
    with UpstreamServer(one_root) as one, UpstreamServer(two_root) as two:
        config = _two_passive_mirrors(tmp_path, site, one=one.url, two=two.url)
        assert not (await run_mirror(config, MirrorOptions(progress=False))).failed
        listed = json.loads((site / CHANNEL / "linux-64" / "repodata.json").read_bytes())
        assert "md5" not in listed["packages.conda"][fn]
        one.reset()
        two.reset()
        reply = await _fetch_one(config, f"/{CHANNEL}/linux-64/{fn}")
        assert (reply.status, reply.outcome) == (200, "fetched"), reply.body
        assert [r.path for r in two.requests] == [f"/linux-64/{fn}"]
        assert not one.requests
    assert sha256(site / CHANNEL / "linux-64" / fn) == record["sha256"]


PASSIVE = "cloud/passive"


def _held_until_released() -> tuple[threading.Event, threading.Event, Any]:
    """A fault hook holding a request until ``release`` is set (``arrived`` is set as it comes),
    then letting it be served as usual; returns (arrived, release, hook)."""
    arrived, release = threading.Event(), threading.Event()

    def hold(handler: UpstreamHandler) -> bool:
        arrived.set()
        release.wait(10)
        return False

    return arrived, release, hold


def _passive_beside(tmp_path: Path, site: Path, url: str, active: str | None = None) -> SiteConfig:
    """The configuration of PASSIVE (mode: passive) mirroring linux-64 of ``url``, with an
    ``active`` channel of the same upstream beside it when one is named."""
    lines = [
        f"output: {site}",
        "download: {retries: 0, timeout: 30}",
        "channels:",
        f"  {PASSIVE}: {{url: '{url}', subdirs: [linux-64], mode: passive}}",
    ]
    if active is not None:
        lines.append(f"  {active}: {{url: '{url}', subdirs: [linux-64]}}")
    config_path = tmp_path / "channels.yaml"
    config_path.write_text("\n".join(lines) + "\n")
    return load_config(config_path)


async def test_a_reuploaded_stored_file_stays_until_the_metadata_naming_it_changes(
    tmp_path: Path,
) -> None:
    """A file the passive channel stored is re-uploaded upstream under its name. Its published
    record names the stored bytes until a run publishes the new one: while that run still
    works (here held by a download of an active channel), the stored file is there with the
    bytes its record names; once the new record is published, the old bytes are gone and the
    fetcher gets the new ones on first request."""
    root = tmp_path / "upstream"
    specs = small_packages()
    write_channel(root, specs, zst=True)
    fn = "beta-2.0-h1_0.conda"
    site = tmp_path / "site"
    passive, active = PASSIVE, "cloud/active"
    arrived, release, hold = _held_until_released()
    with UpstreamServer(root) as server:
        config = _passive_beside(tmp_path, site, server.url, active)
        assert not (await run_mirror(config, MirrorOptions(progress=False))).failed
        reply = await _fetch_one(config, f"/{passive}/linux-64/{fn}")
        assert (reply.status, reply.outcome) == (200, "fetched"), reply.body
        stored_file = site / passive / "linux-64" / fn

        def listed_sha256() -> str:
            document = json.loads((stored_file.parent / "repodata.json").read_bytes())
            return str(document["packages.conda"][fn]["sha256"])

        old = listed_sha256()
        assert sha256(stored_file) == old
        write_channel(root, small_packages(seed=1), zst=True)  # other bytes under every name
        server.add_fault(f"/linux-64/{fn}", hold, times=1)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_mirror, config, MirrorOptions(progress=False))
            try:
                with trio.fail_after(20):
                    await trio.to_thread.run_sync(arrived.wait)
                # The active channel's download is under way: nothing is published yet.
                assert listed_sha256() == old
                assert stored_file.is_file() and sha256(stored_file) == old
            finally:
                release.set()
        new = listed_sha256()
        assert new != old
        assert not stored_file.exists()
        reply = await _fetch_one(config, f"/{passive}/linux-64/{fn}")
        assert (reply.status, reply.outcome) == (200, "fetched"), reply.body
        assert sha256(stored_file) == new


async def test_a_reuploaded_file_stored_while_the_run_works_goes_with_its_old_record(
    tmp_path: Path,
) -> None:
    """A file the passive channel has not stored is re-uploaded upstream under its name, but
    the upstream (a CDN, say) still serves the old bytes. After the run looked at the disk and
    before it publishes the new record, a client asks for the file: the fetcher stores the old
    bytes, verified against the record published then. Once the run has published the new
    record, the file on disk is not those old bytes under it: it is gone, and the fetcher gets
    the new bytes on first request."""
    await _reupload_raced_by_the_fetcher(tmp_path, stored_by_hand=False)


async def test_a_file_stored_with_the_new_bytes_of_a_reupload_takes_both_steps(
    tmp_path: Path,
) -> None:
    """A file of the passive channel is re-uploaded upstream under its name, and its new bytes
    are put in the site by hand before the run publishes their record; the upstream (a CDN,
    say) still serves the old ones. Checked against the new record, the stored file passes, yet
    the published record names the old bytes: while the run works, a client asks for the file
    and the fetcher, whose size check fails, stores the old bytes over it. Once the run has
    published the new record, those old bytes are not under it: the file takes the two-step
    publish of any re-upload, and the fetcher gets the new bytes on first request."""
    await _reupload_raced_by_the_fetcher(tmp_path, stored_by_hand=True)


async def _reupload_raced_by_the_fetcher(tmp_path: Path, *, stored_by_hand: bool) -> None:
    """Beta re-uploaded upstream, the old bytes still served, while a run of a passive and an
    active channel of that upstream is held in the active one's download of it (planned, not
    published) and a client of the passive one asks for beta; with ``stored_by_hand``, beta's
    new bytes were put in the passive channel before the run. Checks that the new record never
    has the old bytes under it, and that the next request fetches the new ones."""
    root = tmp_path / "upstream"
    write_channel(root, small_packages(), zst=True)
    fn = "beta-2.0-h1_0.conda"
    upstream_file = root / "linux-64" / fn
    site = tmp_path / "site"
    passive, active = PASSIVE, "cloud/active"
    arrived, release, hold = _held_until_released()
    with UpstreamServer(root) as server:
        config = _passive_beside(tmp_path, site, server.url, active)
        assert not (await run_mirror(config, MirrorOptions(progress=False))).failed
        stored_file = site / passive / "linux-64" / fn
        assert not stored_file.exists()

        def listed_sha256() -> str:
            document = json.loads((stored_file.parent / "repodata.json").read_bytes())
            return str(document["packages.conda"][fn]["sha256"])

        old, old_bytes = listed_sha256(), upstream_file.read_bytes()
        write_channel(root, small_packages(seed=1), zst=True)  # other bytes under every name
        new_bytes = upstream_file.read_bytes()
        if stored_by_hand:
            assert len(new_bytes) != len(old_bytes)
            stored_file.write_bytes(new_bytes)  # put in by hand
        upstream_file.write_bytes(old_bytes)  # still served as it was
        # Holds the active channel's download of the file: the run has planned, not published.
        server.add_fault(f"/linux-64/{fn}", hold, times=1)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_mirror, config, MirrorOptions(progress=False))
            try:
                with trio.fail_after(20):
                    await trio.to_thread.run_sync(arrived.wait)
                reply = await _fetch_one(config, f"/{passive}/linux-64/{fn}")
                assert (reply.status, reply.outcome) == (200, "fetched"), reply.body
                assert sha256(stored_file) == old
                upstream_file.write_bytes(new_bytes)  # the upstream serves the new bytes now
            finally:
                release.set()
        new = listed_sha256()
        assert new != old
        assert not stored_file.exists() or sha256(stored_file) == new
        reply = await _fetch_one(config, f"/{passive}/linux-64/{fn}")
        assert (reply.status, reply.outcome) == (200, "fetched"), reply.body
        assert sha256(stored_file) == new


async def test_a_download_outrun_by_a_new_record_never_takes_the_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run publishes a new record for a file (re-uploaded upstream) while the fetcher
    downloads the old bytes, verified against the record of its start. Those bytes never take
    the name, not even for the moment before the fetcher looks at the record again: the web
    server would serve them under the new record meanwhile."""
    root = tmp_path / "upstream"
    write_channel(root, small_packages(), zst=True)
    fn = "beta-2.0-h1_0.conda"
    upstream_file = root / "linux-64" / fn
    site = tmp_path / "site"
    passive = PASSIVE
    target = site / passive / "linux-64" / fn
    arrived, release, hold = _held_until_released()
    named: list[str] = []  # the sha256 of what the name held after each link or rename

    def noting(real: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            result = real(*args, **kwargs)
            if target.exists():
                named.append(sha256(target))
            return result

        return call

    with UpstreamServer(root) as server:
        config = _passive_beside(tmp_path, site, server.url)
        assert not (await run_mirror(config, MirrorOptions(progress=False))).failed
        old_bytes = upstream_file.read_bytes()
        server.add_fault(f"/linux-64/{fn}", hold, times=1)
        monkeypatch.setattr(os, "link", noting(os.link))
        monkeypatch.setattr(os, "replace", noting(os.replace))
        async with trio.open_nursery() as nursery:
            replies: list[Reply] = []

            async def get() -> None:
                replies.append(await _fetch_one(config, f"/{passive}/linux-64/{fn}"))

            nursery.start_soon(get)
            with trio.fail_after(20):
                await trio.to_thread.run_sync(arrived.wait)
            write_channel(root, small_packages(seed=1), zst=True)  # re-uploaded upstream
            new_bytes = upstream_file.read_bytes()
            upstream_file.write_bytes(old_bytes)  # a CDN still serves the old bytes
            assert not (await run_mirror(config, MirrorOptions(progress=False))).failed
            named.clear()  # what the run itself published
            release.set()
        monkeypatch.undo()
        assert [r.status for r in replies] == [502], replies[0].body
        assert hashlib.sha256(old_bytes).hexdigest() not in named
        assert not target.exists()
        upstream_file.write_bytes(new_bytes)
        reply = await _fetch_one(config, f"/{passive}/linux-64/{fn}")
        assert (reply.status, reply.outcome) == (200, "fetched"), reply.body
        assert target.read_bytes() == new_bytes
