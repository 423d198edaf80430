"""Shared fixtures (the example upstream and a small one over real HTTP, a site with private
channels, real nginx, a directory the web servers can read, ``sitegen watch`` processes) and the two kinds of tests.

Every test is marked ``unit`` or ``integration`` (see :mod:`testkit.kinds`): collection stops
when one is marked neither or both, and a unit test fails when it binds or connects a socket or
starts a process.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from sitegen.tools.example_channel import example_packages, write_channel
from testkit.apache import world_readable_dir
from testkit.kinds import UnitGuard, kind_problem
from testkit.nginx import NginxServer, nginx_binary
from testkit.private_site import PrivateSite
from testkit.private_site import private_site as open_private_site
from testkit.require import require_tool
from testkit.small_channel import small_packages
from testkit.upstream import ExampleUpstream, UpstreamServer
from testkit.watch import Watch

UNIT_GUARD = UnitGuard()


def pytest_configure() -> None:
    sys.addaudithook(UNIT_GUARD)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Before ``-m`` deselects any: an unmarked test would drop out of ``make test-fast``."""
    problems = [
        f"  {item.nodeid}: {problem}"
        for item in items
        if (problem := kind_problem(mark.name for mark in item.iter_markers()))
    ]
    if problems:
        raise pytest.UsageError(
            "every test is marked unit or integration (testkit/kinds.py):\n" + "\n".join(problems)
        )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("unit") is not None:
        UNIT_GUARD.start()  # fixtures count: a unit test's fixtures start no servers either


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    result = yield
    if forbidden := UNIT_GUARD.stop():
        pytest.fail(
            f"a unit test opened a socket or started a process ({'; '.join(forbidden)}): "
            "mark it integration",
            pytrace=False,
        )
    return result


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    UNIT_GUARD.stop()  # after a failed call, which skipped the check above


@pytest.fixture
def example_upstream(tmp_path: Path) -> Iterator[ExampleUpstream]:
    root = tmp_path / "upstream"
    packages = example_packages(seed=0)
    repodata = write_channel(root, packages, zst=True)
    with UpstreamServer(root) as server:
        yield ExampleUpstream(root=root, server=server, repodata=repodata, packages=packages)


@pytest.fixture
def private_site(example_upstream: ExampleUpstream) -> Iterator[PrivateSite]:
    """A site of a public channel and private ones, tokens issued (:mod:`testkit.private_site`)."""
    with open_private_site(example_upstream) as site:
        yield site


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


@pytest.fixture
def small_upstream(tmp_path: Path) -> Iterator[tuple[Path, UpstreamServer]]:
    """(root, server): :func:`testkit.small_channel.small_packages` served over HTTP, .zst too."""
    root = tmp_path / "upstream"
    write_channel(root, small_packages(), zst=True)
    with UpstreamServer(root) as server:
        yield root, server


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory nginx and Apache, running as another user, can read: the tests serving a
    site through a real web server build it there rather than in ``tmp_path``."""
    with world_readable_dir() as path:
        yield path


@pytest.fixture
def watch_factory(tmp_path: Path) -> Iterator[Callable[..., Watch]]:
    """Starts ``sitegen watch`` processes (:class:`testkit.watch.Watch`), stopped after the test."""
    started: list[Watch] = []

    def factory(
        folder: Path, move: bool = False, site: Path | None = None, prefix: tuple[str, ...] = ()
    ) -> Watch:
        watch = Watch(tmp_path, folder, move, site, prefix)
        started.append(watch)
        return watch

    yield factory
    for watch in started:
        watch.stop()
