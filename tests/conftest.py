"""Shared fixtures: the example upstream over real HTTP, real nginx, a real conda client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import require_tool
from support.nginx import NginxServer, nginx_binary
from support.upstream import ExampleUpstream, UpstreamServer

from sitegen.tools.example_channel import example_packages, write_channel


@pytest.fixture
def example_upstream(tmp_path: Path) -> Iterator[ExampleUpstream]:
    root = tmp_path / "upstream"
    packages = example_packages(seed=0)
    repodata = write_channel(root, packages, zst=True)
    with UpstreamServer(root) as server:
        yield ExampleUpstream(root=root, server=server, repodata=repodata, packages=packages)


@pytest.fixture
def upstream_server_factory() -> Iterator[Callable[..., UpstreamServer]]:
    """``factory(root, **kwargs)`` -> a started :class:`UpstreamServer`, stopped after."""
    servers: list[UpstreamServer] = []

    def factory(root: Path, **kwargs: Any) -> UpstreamServer:
        server = UpstreamServer(root, **kwargs).start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()


@pytest.fixture
def nginx_server_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., NginxServer]]:
    """``factory(root, **kwargs)`` -> a started :class:`NginxServer` serving ``root``.

    Skips when nginx is missing, fails instead when ``CI=true``.
    """
    require_tool(nginx_binary() is not None, "nginx")
    servers: list[NginxServer] = []

    def factory(root: Path, **kwargs: Any) -> NginxServer:
        server = NginxServer(root, tmp_path_factory.mktemp("nginx"), **kwargs).start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()
