"""Pieces for testing sitegen's download transport against :class:`testkit.upstream.UpstreamServer`.

:data:`FILES` to serve, :func:`peers` to see which connection carried each request, an
:class:`UpstreamClient` and an :class:`Upstream` for a server, download jobs for files at its
root, and raw answers.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import trio

from sitegen.conda.records import Record
from sitegen.config import DownloadSettings, MirrorConfig
from sitegen.net.client import UpstreamClient
from sitegen.net.download_job import DownloadJob
from sitegen.net.transport import EventLoopTransport
from sitegen.net.upstream import Upstream, make_client
from sitegen.store.site import TEMP_PREFIX
from testkit.upstream import FaultHook, UpstreamHandler, UpstreamServer

# Six files from 1 kB to about half a megabyte: small ones and ones read in many pieces.
FILES = {f"f{i}.bin": bytes([i]) * (1000 + 100_000 * i) for i in range(6)}


def write_files(root: Path) -> Path:
    """:data:`FILES` written into ``root`` (made here); returns ``root``."""
    root.mkdir()
    for name, data in FILES.items():
        (root / name).write_bytes(data)
    return root


def peers(server: UpstreamServer, paths: list[str]) -> list[tuple[str, int]]:
    """Serve ``paths`` normally while recording the client address of each request."""
    seen: list[tuple[str, int]] = []

    def record(handler: UpstreamHandler) -> bool:
        seen.append(handler.client_address)
        return False  # then serve the file

    for path in paths:
        server.add_fault(path, record)
    return seen


@contextlib.asynccontextmanager
async def upstream_client(
    verify: bool = True, timeout: float = 10
) -> AsyncIterator[UpstreamClient]:
    """An :class:`UpstreamClient` on sitegen's own transport, closed on the way out."""
    client = UpstreamClient(
        EventLoopTransport(verify=verify), user_agent="test", timeout=httpx.Timeout(timeout)
    )
    try:
        yield client
    finally:
        await client.aclose()


async def get(client: UpstreamClient, url: str, headers: dict[str, str] | None = None) -> bytes:
    """The body of a 200 answer to a GET of ``url``, as it came over the wire."""
    async with client.stream(url, headers) as response:
        assert response.status_code == 200, response.status_code
        return b"".join([chunk async for chunk in response.aiter_raw()])


def raw_reply(data: bytes, close: bool = True) -> FaultHook:
    """Answer with exactly these bytes (head and body as given)."""

    def hook(handler: UpstreamHandler) -> None:
        handler.wfile.write(data)
        handler.wfile.flush()
        handler.close_connection = close

    return hook


@contextlib.asynccontextmanager
async def upstream_at(
    server: UpstreamServer, timeout: float = 60, retries: int = 0
) -> AsyncIterator[Upstream]:
    """An Upstream for the server; jobs made by :func:`job_at` fetch files from its root.
    ``retries`` are its requests' (``download`` is given its own)."""
    settings = DownloadSettings(concurrency=8, per_host=8, retries=retries, timeout=timeout)
    mirror = MirrorConfig(name="up", url=server.url, subdirs=("linux-64",))
    client = make_client(settings)
    try:
        upstream = Upstream(mirror, client, settings, trio.CapacityLimiter(8))
        yield upstream
    finally:
        await client.aclose()


def job_at(upstream: Upstream, record: Record, target: Path, durable: bool = False) -> DownloadJob:
    """A download of a file at the upstream's root (a CEP-15 base_url naming the root)."""
    return DownloadJob(upstream, record, target, durable=durable, base_url=upstream.base)


def record_for(fn: str, data: bytes) -> Record:
    """A linux-64 record of ``fn`` (name-version-build.conda) whose size and sha256 are
    ``data``'s."""
    name, version, build = fn.removesuffix(".conda").rsplit("-", 2)
    raw = {"name": name, "version": version, "build": build, "size": len(data)}
    return Record(fn=fn, subdir="linux-64", raw={**raw, "sha256": hashlib.sha256(data).hexdigest()})


def temporaries(directory: Path) -> list[Path]:
    """The temporaries a writer left in ``directory``."""
    return [p for p in directory.iterdir() if p.name.startswith(TEMP_PREFIX)]
