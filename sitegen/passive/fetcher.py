"""The verifying pull-through cache behind the web server, for channels with passive mirrors.

A passive mirror publishes repodata but downloads no package files. The web server (see
:mod:`sitegen.tools.webconf`) serves every file that is stored and hands a request for a missing
package file of such a channel to this small HTTP/1.1 service (``sitegen fetcher``), with the
site prefix already stripped: ``GET /<channel path>/<subdir>/<filename>``.

What a request gets is decided by :class:`sitegen.passive.resolver.Resolver`: a file no
published repodata lists is a 404; a stored file is streamed; a missing one is downloaded once
(however many ask) from the mirror that supplied it, verified against the published record, and
only then named: the bytes stream into a nameless file in the target's directory while being
hashed, and only when size and sha256 (md5 when the record has no sha256) match does the file
get its published name (atomically). **This is how the site never serves a wrong file under a
published name**: unverified bytes have no name at all (or, on filesystems without O_TMPFILE, a
``.sitegen-tmp-*`` name, which the web server refuses to serve), and are dropped on failure. A
mismatch or an upstream failure answers 502 and stores nothing. Every waiter then streams the
stored file with its ``Content-Length``.

Once stored, a file is a static file again and the web server serves it without the fetcher;
files stay stored when the upstream is down later (a proxy feed that keeps serving).

Tokens stay in the fetcher's environment (``${ENV}`` references in ``channels.yaml``); upstream
URLs never appear in responses or logs, which name only the channel, subdir, file and mirror.
Request paths are resolved with :meth:`sitegen.store.site.Site.path`, so no path can leave the
site, and only names listed in published repodata are ever written.

This module is the HTTP side: a minimal HTTP/1.1 server on trio streams with h11 (keep-alive,
GET and HEAD); it only ever talks to the local web server.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote

import h11
import trio

from sitegen.config import SiteConfig
from sitegen.passive.resolver import MirrorFetch, Reply, Resolver, error_reply, passive_channels
from sitegen.store.site import Site

log = logging.getLogger("sitegen.passive.fetcher")

DEFAULT_LISTEN = ("127.0.0.1", 8901)
CHUNK = 1 << 18
MAX_HEAD = 16 * 1024  # request line + headers
MAX_BODY = 64 * 1024  # GET has no body; tolerate a small one
REQUEST_TIMEOUT = 60.0  # to receive a request head; an idle keep-alive connection is closed


def request_path(method: str, target: str) -> str | Reply:
    """The decoded URL path of a request, or the error reply when it cannot be served."""
    if method not in ("GET", "HEAD"):
        reply = error_reply(405, "only GET and HEAD")
        reply.headers.append(("Allow", "GET, HEAD"))
        return reply
    path = target.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/"):
        return error_reply(400, "bad request target")
    try:
        return unquote(path, errors="strict")
    except UnicodeDecodeError:
        return error_reply(400, "bad request target")


class Fetcher:
    """The HTTP front of a :class:`Resolver`."""

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver

    @classmethod
    @asynccontextmanager
    async def running(cls, config: SiteConfig) -> AsyncIterator[Fetcher]:
        """A fetcher for the passive channels of ``config``, its upstreams open."""
        site = Site(config.output)
        channels = passive_channels(config)
        async with (
            MirrorFetch.open(site, config, channels) as fetch_file,
            Resolver(site, channels, fetch_file).running() as resolver,
        ):
            yield cls(resolver)

    async def reply(self, method: str, target: str) -> Reply:
        """The answer to ``method target`` (target: the URL path, prefix already stripped)."""
        path = request_path(method, target)
        if isinstance(path, Reply):
            return path
        return await self.resolver.resolve(path)

    async def handle_connection(self, stream: trio.abc.Stream) -> None:
        """Serve one keep-alive connection (trio.serve_listeners handler)."""
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        try:
            while True:
                request = None
                with trio.move_on_after(REQUEST_TIMEOUT):
                    request = await _receive_request(conn, stream)
                if request is None:
                    return
                if not await _drain_body(conn, stream):
                    await _send_simple(conn, stream, error_reply(413, "request body too large"))
                    return
                await self._answer(conn, stream, request)
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except h11.RemoteProtocolError:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                with contextlib.suppress(Exception):
                    await _send_simple(conn, stream, error_reply(400, "bad request"))
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.LocalProtocolError):
            pass  # the client went away, or the connection cannot go on
        except Exception:  # one connection must never take the service down
            log.exception("error while serving a request")
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()

    async def _answer(
        self, conn: h11.Connection, stream: trio.abc.Stream, request: h11.Request
    ) -> None:
        method = request.method.decode("ascii", "replace")
        target = request.target.decode("ascii", "replace")
        reply = await self.reply(method, target)
        log.debug("%s %s -> %d %s", method, target, reply.status, reply.outcome)
        if reply.file is None:
            await _send_simple(conn, stream, reply, head=method == "HEAD")
            return
        try:
            handle = await trio.open_file(reply.file, "rb")
        except FileNotFoundError:
            await _send_simple(conn, stream, error_reply(502, "gone after download"))
            return
        async with handle:
            st = os.fstat(handle.fileno())
            headers = [
                *reply.headers,
                ("Content-Length", str(st.st_size)),
                ("Last-Modified", formatdate(st.st_mtime, usegmt=True)),
            ]
            await _send(conn, stream, h11.Response(status_code=200, headers=headers))
            if method != "HEAD":
                remaining = st.st_size
                while remaining > 0:
                    chunk = await handle.read(min(CHUNK, remaining))
                    if not chunk:
                        raise trio.BrokenResourceError("file shorter than announced")
                    remaining -= len(chunk)
                    await _send(conn, stream, h11.Data(data=chunk))
        await _send(conn, stream, h11.EndOfMessage())


async def _send(conn: h11.Connection, stream: trio.abc.Stream, event: Any) -> None:
    data = conn.send(event)
    if data:
        await stream.send_all(data)


async def _send_simple(
    conn: h11.Connection, stream: trio.abc.Stream, reply: Reply, head: bool = False
) -> None:
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(reply.body))),
        *reply.headers,
    ]
    if reply.status >= 400 and reply.status not in (404, 405):
        headers.append(("Connection", "close"))
    await _send(conn, stream, h11.Response(status_code=reply.status, headers=headers))
    if reply.body and not head:
        await _send(conn, stream, h11.Data(data=reply.body))
    await _send(conn, stream, h11.EndOfMessage())


async def _receive_request(conn: h11.Connection, stream: trio.abc.Stream) -> h11.Request | None:
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(CHUNK)
            conn.receive_data(data)  # b"" signals the end of the connection
            continue
        if isinstance(event, h11.Request):
            return event
        return None  # ConnectionClosed, or PAUSED after a response that closes


async def _drain_body(conn: h11.Connection, stream: trio.abc.Stream) -> bool:
    received = 0
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(CHUNK))
            continue
        if isinstance(event, h11.Data):
            received += len(event.data)
            if received > MAX_BODY:
                return False
            continue
        return True  # EndOfMessage (or ConnectionClosed, handled by the caller)


# --------------------------------------------------------------------------- running it


def parse_listen(value: str) -> tuple[str, int]:
    """'127.0.0.1:8901', '[::1]:8901' or '8901' -> (host, port); port 0 picks a free one."""
    text = value.strip()
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = DEFAULT_LISTEN[0], text
    host = host.strip("[]") or DEFAULT_LISTEN[0]
    if not port.isdigit() or not 0 <= int(port) < 65536:
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
    task_status: trio.TaskStatus[Fetcher] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve on ``listeners`` until cancelled; ``task_status.started(fetcher)``."""
    async with Fetcher.running(config) as fetcher, trio.open_nursery() as nursery:
        channels = fetcher.resolver.channels
        if not channels:
            log.warning("no channel has a passive mirror: every request will be answered 404")
        nursery.start_soon(trio.serve_listeners, fetcher.handle_connection, listeners)
        log.info(
            "fetcher for %d passive channel(s) of %s listening on http://%s",
            len(channels),
            fetcher.resolver.site.root,
            listener_address(listeners),
        )
        task_status.started(fetcher)
