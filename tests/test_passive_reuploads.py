"""Passive files against reuploads upstream: a stored file goes with the record naming it,
never before."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
import trio

from sitegen.config import SiteConfig, load_config
from sitegen.passive.resolver import Reply
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import write_channel
from testkit.fetcher import fetch_one
from testkit.site import sha256_of
from testkit.small_channel import small_packages
from testkit.upstream import UpstreamHandler, UpstreamServer

pytestmark = pytest.mark.integration

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
        reply = await fetch_one(config, f"/{passive}/linux-64/{fn}")
        assert (reply.status, reply.outcome) == (200, "fetched"), reply.body
        stored_file = site / passive / "linux-64" / fn

        def listed_sha256() -> str:
            document = json.loads((stored_file.parent / "repodata.json").read_bytes())
            return str(document["packages.conda"][fn]["sha256"])

        old = listed_sha256()
        assert sha256_of(stored_file) == old
        write_channel(root, small_packages(seed=1), zst=True)  # other bytes under every name
        server.add_fault(f"/linux-64/{fn}", hold, times=1)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_mirror, config, MirrorOptions(progress=False))
            try:
                with trio.fail_after(20):
                    await trio.to_thread.run_sync(arrived.wait)
                # The active channel's download is under way: nothing is published yet.
                assert listed_sha256() == old
                assert stored_file.is_file() and sha256_of(stored_file) == old
            finally:
                release.set()
        new = listed_sha256()
        assert new != old
        assert not stored_file.exists()
        reply = await fetch_one(config, f"/{passive}/linux-64/{fn}")
        assert (reply.status, reply.outcome) == (200, "fetched"), reply.body
        assert sha256_of(stored_file) == new


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
                reply = await fetch_one(config, f"/{passive}/linux-64/{fn}")
                assert (reply.status, reply.outcome) == (200, "fetched"), reply.body
                assert sha256_of(stored_file) == old
                upstream_file.write_bytes(new_bytes)  # the upstream serves the new bytes now
            finally:
                release.set()
        new = listed_sha256()
        assert new != old
        assert not stored_file.exists() or sha256_of(stored_file) == new
        reply = await fetch_one(config, f"/{passive}/linux-64/{fn}")
        assert (reply.status, reply.outcome) == (200, "fetched"), reply.body
        assert sha256_of(stored_file) == new


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
    named: list[str] = []  # the sha256_of of what the name held after each link or rename

    def noting(real: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            result = real(*args, **kwargs)
            if target.exists():
                named.append(sha256_of(target))
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
                replies.append(await fetch_one(config, f"/{passive}/linux-64/{fn}"))

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
        reply = await fetch_one(config, f"/{passive}/linux-64/{fn}")
        assert (reply.status, reply.outcome) == (200, "fetched"), reply.body
        assert target.read_bytes() == new_bytes
