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
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rattler import Client, Gateway, SourceConfig, Subdir, install
from rattler.networking import AuthenticationMiddleware

from testkit.client import solve_records
from testkit.server_process import free_port, terminate, wait_for_port


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
    """``sitegen fetcher -c config`` on a free port; yields its ``host:port``."""
    port = free_port()
    command = [sys.executable, "-m", "sitegen", "fetcher", "-c", str(config)]
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(
            [*command, "--listen", f"127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL,
            stderr=log_file,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        if not wait_for_port("127.0.0.1", port, proc, time.monotonic() + 30):
            raise RuntimeError(f"the fetcher did not start:\n{log_path.read_text()}")
        yield f"127.0.0.1:{port}"
    finally:
        terminate(proc, ((signal.SIGTERM, 15),))
