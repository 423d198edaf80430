"""A file fetched on request through real nginx and Apache running the configs ``sitegen
webconf`` prints: each piece passed on as it comes, and a cut-off answer as cut off."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from sitegen.tools.webconf import LONG_CACHE
from testkit.apache import require_server, webconf_server
from testkit.faults import reset_after, slow_drip
from testkit.live_fetcher import (
    DRIP,
    Got,
    Setup,
    assert_cut_off,
    get,
    passive_site,
)
from testkit.upstream import FaultHook

pytestmark = pytest.mark.integration

PREFIX = "/conda"


@asynccontextmanager
async def through_server(
    server: str, root: Path, hook: FaultHook
) -> AsyncIterator[tuple[Setup, str]]:
    """:func:`passive_site` in ``root`` behind ``server`` running the generated config at
    :data:`PREFIX`; the address of the web server."""
    require_server(server)
    async with passive_site(root, hook) as (setup, fetcher):
        web = webconf_server(server, setup.config, root / "state", prefix=PREFIX, fetcher=fetcher)
        with web:
            yield setup, web.url.removeprefix("http://")


@pytest.mark.parametrize("server", ["nginx", "apache"])
async def test_a_slow_download_streams_through_the_web_server(
    server: str, public_dir: Path
) -> None:
    async with through_server(server, public_dir, slow_drip(**DRIP)) as (setup, address):
        got, again = Got(), Got()
        with trio.fail_after(30):
            await get(address, setup.fn, got, PREFIX)
            await get(address, setup.fn, again, PREFIX)  # stored now: a static file
    assert got.error is None, repr(got.error)
    assert got.status == 200
    assert int(got.headers["content-length"]) == setup.record["size"]
    # The server passes on what the fetcher says of an answer that could still have been cut
    # off (once, no cache lifetime of its own added); the stored file has its year.
    assert got.headers["cache-control"] == "no-cache"
    assert again.headers["cache-control"] == LONG_CACHE
    assert again.body == got.body
    assert hashlib.sha256(got.body).hexdigest() == setup.record["sha256"]
    assert hashlib.sha256(setup.target.read_bytes()).hexdigest() == setup.record["sha256"]
    assert setup.package_requests() == [setup.upstream_path()]


@pytest.mark.parametrize("server", ["nginx", "apache"])
@pytest.mark.parametrize(
    "hook",
    [slow_drip(**DRIP, flip=True), reset_after(keep=600, pause=2.5)],
    ids=["mismatch", "broken off"],
)
async def test_a_failed_download_reaches_the_web_servers_client_cut_off(
    server: str, hook: FaultHook, public_dir: Path
) -> None:
    async with through_server(server, public_dir, hook) as (setup, address):
        got = Got()
        with trio.fail_after(30):
            await get(address, setup.fn, got, PREFIX)
    assert_cut_off(got, setup)
