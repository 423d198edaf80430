"""A published passive mirror of the example channel whose largest package upstream serves
through a fault hook, a real fetcher for it on 127.0.0.1, and clients with a short read timeout
(conda's, a proxy's): what each received."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import trio

from sitegen.config import SiteConfig, load_config
from sitegen.passive.fetcher import FetcherLimits
from sitegen.passive.listen import listener_address, open_listeners, serve_fetcher
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import PackageSpec, example_packages, write_channel
from testkit.upstream import FaultHook, UpstreamServer

CHANNEL = "cloud/forge"
# 32 bytes every 0.1 s: a package of the example channel (about 1.3 KB) takes 4 s or more.
DRIP = {"chunk": 32, "interval": 0.1}
READ_TIMEOUT = 2.0


@dataclass
class Setup:
    """A published passive mirror whose file ``fn`` (its ``record``) upstream serves through
    a fault hook."""

    server: UpstreamServer
    config: SiteConfig
    site: Path
    fn: str
    record: dict[str, Any]

    @property
    def target(self) -> Path:
        return self.site / CHANNEL / "linux-64" / self.fn

    def upstream_path(self) -> str:
        return f"/forge/linux-64/{self.fn}"

    def package_requests(self) -> list[str]:
        """The package files asked of upstream, once the first is logged: its handler logs it
        just after the response went out, so the clients may have their file before."""
        self.server.wait_for_count(1, ".conda")
        return [r.path for r in self.server.requests if r.path.endswith(".conda")]

    def leftovers(self) -> list[Path]:
        return list((self.site / CHANNEL).rglob(".sitegen-tmp-*"))


@dataclass
class Got:
    """What one client received."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: Exception | None = None


@asynccontextmanager
async def passive_site(
    tmp_path: Path,
    hook: FaultHook,
    extra: tuple[PackageSpec, ...] = (),
    times: int | None = 1,
    settings: str = "{retries: 0, timeout: 30}",
    limits: FetcherLimits | None = None,
) -> AsyncIterator[tuple[Setup, str]]:
    """A published passive mirror of the example channel (plus ``extra``), its largest linux-64
    package served by ``hook`` (``times`` times; None: always), and the address of a fetcher
    for it (with ``limits``) on a port of its own; ``settings``: its download settings."""
    root = tmp_path / "upstream"
    specs = [*example_packages(seed=0), *extra]
    repodata = write_channel(root / "forge", specs, zst=True)
    packages = repodata["linux-64"]["packages.conda"]
    fn = max(packages, key=lambda name: (packages[name]["size"], name))
    with UpstreamServer(root) as server:
        site = tmp_path / "site"
        config_path = tmp_path / "channels.yaml"
        config_path.write_text(
            textwrap.dedent(
                f"""\
                output: {site}
                download: {settings}
                channels:
                  {CHANNEL}:
                    url: {server.url}/forge
                    subdirs: [linux-64]
                    mode: passive
                """
            )
        )
        config = load_config(config_path)
        assert not (await run_mirror(config, MirrorOptions(progress=False))).failed
        setup = Setup(server, config, site, fn, packages[fn])
        server.add_fault(setup.upstream_path(), hook, times=times)
        listeners = await open_listeners("127.0.0.1", 0)
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(serve_fetcher, config, listeners, limits=limits))
            yield setup, listener_address(listeners)
            nursery.cancel_scope.cancel()


async def get(
    address: str,
    fn: str,
    got: Got,
    prefix: str = "",
    read: float = READ_TIMEOUT,
    headers: Mapping[str, str] | None = None,
    follow: bool = False,
) -> None:
    """GET the file as a client with a short read timeout (``read``) would, with ``headers``
    (a ``Range`` resuming a download, say); ``follow``: follow redirects, as conda does
    (Apache answers for a file the fetcher stored with one, to the same URL)."""
    timeout = httpx.Timeout(30, read=read)
    client = httpx.AsyncClient(
        base_url=f"http://{address}", timeout=timeout, follow_redirects=follow
    )
    async with client:
        try:
            path = f"{prefix}/{CHANNEL}/linux-64/{fn}"
            async with client.stream("GET", path, headers=headers) as response:
                got.status, got.headers = response.status_code, dict(response.headers)
                async for chunk in response.aiter_raw():
                    got.body += chunk
        except httpx.HTTPError as exc:
            got.error = exc


def assert_cut_off(got: Got, setup: Setup) -> None:
    """The client was told the record's size and got less: an error, not a file."""
    assert got.status == 200, got
    assert int(got.headers["content-length"]) == setup.record["size"]
    assert isinstance(got.error, httpx.RemoteProtocolError), repr(got.error)
    assert 0 < len(got.body) < setup.record["size"]
    assert not setup.target.exists() and setup.leftovers() == []
