"""The passive resolver alone (which files it fetches, once each, what it serves), and the
fetcher command saying where it listens."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import trio

from sitegen.config import SiteConfig, load_config
from sitegen.passive.resolver import Reply, Resolver, passive_channels
from sitegen.store.site import Site
from testkit.fetcher import FakeFetch, fetcher_process

pytestmark = pytest.mark.integration

CHANNEL = "cloud/conda-forge"


def test_the_fetcher_says_once_where_it_listens(tmp_path: Path) -> None:
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {tmp_path / 'site'}\n"
        f"channels:\n  {CHANNEL}: {{url: https://up.invalid/forge, subdirs: [linux-64],"
        " mode: passive}\n"
    )
    with fetcher_process(config_path, tmp_path / "fetcher.log") as fetcher:
        assert "listening" not in fetcher.log_text()  # on stderr: not a second time
        assert fetcher.announcement == (
            f"sitegen fetcher: 1 passive channel of {tmp_path / 'site'};"
            f" listening on http://{fetcher.address}"
        )


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
