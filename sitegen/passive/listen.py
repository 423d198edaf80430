"""Running the passive fetcher: the address it listens on, its listeners, and serving them
until cancelled (``sitegen fetcher``)."""

from __future__ import annotations

import logging

import trio

from sitegen.config import SiteConfig
from sitegen.passive.fetcher import Fetcher, FetcherLimits

log = logging.getLogger("sitegen.passive.fetcher")

DEFAULT_LISTEN = ("127.0.0.1", 8901)


def parse_listen(value: str) -> tuple[str, int]:
    """'127.0.0.1:8901', '[::1]:8901' or '8901' -> (host, port); port 0 picks a free one."""
    text = value.strip()
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = DEFAULT_LISTEN[0], text
    host = host.strip("[]") or DEFAULT_LISTEN[0]
    # ASCII digits only: str.isdigit takes others too ("²", which int() refuses; "٣", a 3).
    if not (port.isascii() and port.isdigit()) or not 0 <= int(port) < 65536:
        raise ValueError(f"--listen {value!r} must be HOST:PORT, e.g. 127.0.0.1:8901")
    return host, int(port)


async def open_listeners(host: str, port: int) -> list[trio.SocketListener]:
    """Bind the fetcher's address (raises OSError, e.g. when the port is taken)."""
    return await trio.open_tcp_listeners(port, host=host)


def listener_address(listeners: list[trio.SocketListener]) -> str:
    """'host:port' of the first listener (the real port when 0 was asked for)."""
    host, port = listeners[0].socket.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def serve_fetcher(
    config: SiteConfig,
    listeners: list[trio.SocketListener],
    *,
    limits: FetcherLimits | None = None,
    task_status: trio.TaskStatus[Fetcher] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve on ``listeners`` until cancelled; ``task_status.started(fetcher)``."""
    async with Fetcher.running(config, limits) as fetcher, trio.open_nursery() as nursery:
        channels = fetcher.resolver.channels
        if not channels:
            log.warning("no channel has a passive mirror: every request will be answered 404")
        nursery.start_soon(trio.serve_listeners, fetcher.handle_connection, listeners)
        # Announcing it is the caller's (`sitegen fetcher` says it once, with the address).
        task_status.started(fetcher)
