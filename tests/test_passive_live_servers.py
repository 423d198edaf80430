"""A file fetched on request through real nginx and Apache running the configs ``sitegen
webconf`` prints: each piece passed on as it comes, and a cut-off answer as cut off."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
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
from testkit.upstream import FaultHook, UpstreamHandler

pytestmark = pytest.mark.integration

PREFIX = "/conda"


@asynccontextmanager
async def through_server(
    server: str, root: Path, hook: FaultHook, times: int | None = 1
) -> AsyncIterator[tuple[Setup, str]]:
    """:func:`passive_site` in ``root`` behind ``server`` running the generated config at
    :data:`PREFIX`, ``hook`` used ``times`` times; the address of the web server."""
    require_server(server)
    async with passive_site(root, hook, times=times) as (setup, fetcher):
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


def broken_off_then_slow() -> FaultHook:
    """The first request for the file broken off after 600 bytes; every later one dripped, so
    that the fetcher streams it as it lands."""
    calls = itertools.count()
    broken, slow = reset_after(keep=600, pause=2.5), slow_drip(**DRIP)

    def hook(handler: UpstreamHandler) -> bool | None:
        return (broken if next(calls) == 0 else slow)(handler)

    return hook


@pytest.mark.parametrize("server", ["nginx", "apache"])
async def test_a_resume_after_a_broken_off_download_ends_with_the_package(
    server: str, public_dir: Path
) -> None:
    """A client cut off by an upstream that broke off resumes as conda does (``Range:
    bytes=N-``, no ``If-Range``). With nothing stored, the fetcher sends the whole file from
    its first byte (a 200, which conda takes as a new start), never a part of an attempt
    joined to another's; once the file is stored, the web server sends the rest of the
    verified file (206), and joined to what the client had it is the package."""
    hook = broken_off_then_slow()
    async with through_server(server, public_dir, hook, times=None) as (setup, address):
        cut, whole, rest = Got(), Got(), Got()
        with trio.fail_after(60):
            await get(address, setup.fn, cut, PREFIX)
            resume = {"Range": f"bytes={len(cut.body)}-"}
            await get(address, setup.fn, whole, PREFIX, headers=resume, follow=True)
            await get(address, setup.fn, rest, PREFIX, headers=resume, follow=True)
        data = setup.target.read_bytes()
    assert isinstance(cut.error, httpx.RemoteProtocolError), repr(cut.error)
    assert 0 < len(cut.body) < setup.record["size"]
    assert cut.body == data[: len(cut.body)]
    # Nothing stored: a download under way, streamed from its start.
    assert whole.error is None, repr(whole.error)
    assert (whole.status, whole.headers["cache-control"]) == (200, "no-cache")
    assert "content-range" not in whole.headers
    assert hashlib.sha256(whole.body).hexdigest() == setup.record["sha256"]
    # Stored: the rest of the very bytes the client began with.
    assert rest.error is None, repr(rest.error)
    assert rest.status == 206, rest
    assert rest.headers["content-range"] == f"bytes {len(cut.body)}-{len(data) - 1}/{len(data)}"
    assert hashlib.sha256(cut.body + rest.body).hexdigest() == setup.record["sha256"]
