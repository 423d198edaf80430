"""An upstream installer folder over real HTTP on 127.0.0.1: its index page (retried, capped)
and the exact size of a file, from a server with byte ranges and from one without."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TypeVar

import pytest
import trio

from sitegen.config import DownloadSettings, InstallerConfig
from sitegen.net.failures import UpstreamError
from sitegen.net.installer_index import MAX_INDEX_BYTES, fetch_index, file_size
from sitegen.net.upstream import Upstream, open_upstreams
from sitegen.sync.installer_listing import parse_listing
from testkit.installers import write_folder
from testkit.upstream import UpstreamHandler, UpstreamServer, respond

pytestmark = pytest.mark.integration

T = TypeVar("T")
SETTINGS = DownloadSettings(retries=2, timeout=5)


def with_upstream(url: str, use: Callable[[Upstream], Awaitable[T]]) -> T:
    async def run() -> T:
        async with AsyncExitStack() as stack:
            installer = InstallerConfig(path="miniconda", url=url)
            upstreams, unusable = await open_upstreams([installer.source()], SETTINGS, stack)
            assert not unusable
            return await use(upstreams["miniconda"])

    return trio.run(run)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "upstream" / "miniconda"
    write_folder(folder, {"Miniconda3-latest-Linux-x86_64.sh": b"#!/bin/sh\n" * 300})
    return folder


def test_the_index_page_is_fetched_and_retried(folder: Path, upstream_server_factory) -> None:
    server: UpstreamServer = upstream_server_factory(folder.parent)
    page_bytes = (folder / "index.html").read_bytes()
    answers = iter([respond(503), respond(200, page_bytes, {"Content-Type": "text/html"})])
    server.add_fault("/miniconda/", lambda handler: next(answers)(handler))
    page = with_upstream(f"{server.url}/miniconda", fetch_index)
    assert list(parse_listing(page.decode()).files) == ["Miniconda3-latest-Linux-x86_64.sh"]
    assert [r.status for r in server.wait_for_requests(2)] == [503, 200]


def test_an_index_page_past_its_cap_or_missing_fails(folder: Path, upstream_server_factory):
    server: UpstreamServer = upstream_server_factory(folder.parent)
    server.add_fault("/miniconda/", respond(200, b"<tr>" * (MAX_INDEX_BYTES // 4 + 1)))
    with pytest.raises(UpstreamError, match="more than"):
        with_upstream(f"{server.url}/miniconda", fetch_index)
    with pytest.raises(UpstreamError, match="HTTP 404"):
        with_upstream(f"{server.url}/elsewhere", fetch_index)


def test_the_size_of_a_file_from_content_length_or_content_range(
    folder: Path, upstream_server_factory
) -> None:
    server: UpstreamServer = upstream_server_factory(folder.parent)
    name = "Miniconda3-latest-Linux-x86_64.sh"
    size = (folder / name).stat().st_size

    async def both(upstream: Upstream) -> tuple[int, int]:
        plain = await file_size(upstream, name)  # no range support: 200 and its length

        def ranged(handler: UpstreamHandler) -> None:
            assert handler.headers["Range"] == "bytes=0-0"
            handler.respond(206, b"#", {"Content-Range": f"bytes 0-0/{size}"})

        server.add_fault(f"/miniconda/{name}", ranged, times=1)
        return plain, await file_size(upstream, name)

    assert with_upstream(f"{server.url}/miniconda", both) == (size, size)
    server.add_fault(f"/miniconda/{name}", respond(206, b"#", {"Content-Range": "bytes 0-0/*"}))
    with pytest.raises(UpstreamError, match="states no size"):
        with_upstream(f"{server.url}/miniconda", lambda u: file_size(u, name))
    with pytest.raises(UpstreamError, match="HTTP 404"):
        with_upstream(f"{server.url}/miniconda", lambda u: file_size(u, "gone.sh"))
