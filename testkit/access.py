"""py-rattler as a client of a private channel: its own credential lookup, nothing injected.

:func:`install_with_auth` solves and installs with a client carrying rattler's
``AuthenticationMiddleware``, which reads the authentication storage (``RATTLER_AUTH_FILE``,
keyring, ``~/.netrc``) by host, exactly as pixi does; :func:`rattler_auth_file` writes such a
file. Returns the installed package names. :func:`fetcher_subprocess` runs ``sitegen
fetcher`` for passive channels.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rattler import Client, Gateway, SourceConfig, Subdir, install
from rattler.networking import AuthenticationMiddleware

from testkit.client import solve_records
from testkit.fetcher import fetcher_process


def rattler_auth_file(path: Path, host: str, entry: dict[str, Any]) -> Path:
    """``{host: entry}``, e.g. ``{"BearerToken": t}`` or ``{"BasicHTTP": {...}}``."""
    path.write_text(json.dumps({host: entry}))
    path.chmod(0o600)
    return path


def authenticated_client() -> Client:
    return Client(middlewares=[AuthenticationMiddleware()], timeout=30)


async def _install(channel_url: str, specs: Sequence[str], workdir: Path) -> list[str]:
    config = SourceConfig(sharded_enabled=False)
    gateway = Gateway(
        cache_dir=workdir / "cache" / "repodata",
        default_config=config,
        client=authenticated_client(),
        max_concurrent_requests=8,
    )
    records = await solve_records(
        [channel_url], specs, cache_dir=workdir / "cache", gateway=gateway
    )
    await install(
        records,
        target_prefix=workdir / "env",
        cache_dir=workdir / "cache" / "pkgs",
        platform=Subdir("linux-64"),
        execute_link_scripts=False,
        show_progress=False,
        client=authenticated_client(),
    )
    return sorted(r.name.normalized for r in records)


def install_with_auth(channel_url: str, specs: Sequence[str], workdir: Path) -> list[str]:
    return asyncio.run(_install(channel_url, specs, workdir))


@contextlib.contextmanager
def fetcher_subprocess(config: Path, log_path: Path) -> Iterator[str]:
    """``sitegen fetcher -c config`` on a port of its own (see
    :func:`testkit.fetcher.fetcher_process`); yields its ``host:port``."""
    with fetcher_process(config, log_path) as fetcher:
        yield fetcher.address
