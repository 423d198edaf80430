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
mismatch or an upstream failure answers 502 and stores nothing; an upstream that sends no byte
within ``answer_within`` seconds (retries included) answers 504, before the client stops waiting
(503 when the download spent them waiting for a slot, busy with others). Every waiter then streams the
stored file with its ``Content-Length``. A download slower than that is followed instead (see
:mod:`sitegen.passive.live`): its bytes are sent as they land, all but the last, which goes only
once the file is stored; a failure ends the connection before the body is complete.

Once stored, a file is a static file again and the web server serves it without the fetcher;
files stay stored when the upstream is down later (a proxy feed that keeps serving).

Tokens stay in the fetcher's environment (``${ENV}`` references in ``channels.yaml``); upstream
URLs never appear in responses or logs, which name only the channel, subdir, file and mirror;
a request path is logged with any ``/t/<token>/`` and query value hidden (see :func:`shown`).
Request paths are resolved with :meth:`sitegen.store.site.Site.path`, so no path can leave the
site, and only names listed in published repodata are ever written.

This module is the HTTP side: a minimal HTTP/1.1 server on trio streams with h11 (keep-alive,
GET and HEAD); it only ever talks to the local web server, which checks tokens for private
channels before it passes a request on. It holds under abuse:

* at most ``max_connections`` connections; a new one beyond that closes the longest-waiting
  *idle* one (a keep-alive connection between requests, or one still sending its request
  head), so idle sockets cannot lock real requests out; when none is idle it gets 503;
* a request head must arrive within ``request_timeout`` (slowloris), and so must a request
  body (a fetch has none; one announced and never sent closes the connection); a response body is
  sent within a deadline that grows with its size, and a response head or a short answer within
  ``request_timeout`` (a reader that stalls is dropped: one that pipelines requests and reads
  no answer would otherwise hold its connection for good once the socket buffers are full);
* ``HEAD`` never starts a download (see :class:`~sitegen.passive.resolver.Resolver`);
* the stored file is sent by the web server, not through Python: nginx asks for
  ``X-Accel-Redirect`` (header ``X-Sitegen-Accel: <internal location>``), Apache for a
  redirect back to the same, now static, URL (``X-Sitegen-Redirect: 1``). Without either
  header (a direct client) the file is streamed as before.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import logging
import os
import re
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.utils import formatdate
from urllib.parse import quote, unquote

import h11
import trio

from sitegen.access.check import TokenCheck
from sitegen.config import SiteConfig
from sitegen.passive.following import Following
from sitegen.passive.live import FlightFailed, Follower
from sitegen.passive.logged_target import shown_target
from sitegen.passive.resolver import ANSWER_WITHIN, MAX_FLIGHTS, Reply, Resolver, error_reply
from sitegen.passive.wire import (
    drain_body,
    receive_request,
    send,
    send_deadline,
    send_simple,
    send_within,
    stream_file,
)

log = logging.getLogger("sitegen.passive.fetcher")

MAX_HEAD = 16 * 1024  # request line + headers
REQUEST_TIMEOUT = 15.0  # to receive a request head; an idle keep-alive connection is closed
MAX_CONNECTIONS = 256
ACCEL_RE = re.compile(r"^(?:/[A-Za-z0-9_-][A-Za-z0-9._-]*)+$")
REFUSAL = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


@dataclass(frozen=True)
class FetcherLimits:
    """What one fetcher allows at once (see the module docstring)."""

    max_connections: int = MAX_CONNECTIONS
    request_timeout: float = REQUEST_TIMEOUT
    max_downloads: int = MAX_FLIGHTS  # different files fetched at once
    answer_within: float = ANSWER_WITHIN  # seconds a download may go without a byte (504/503)


def delivery(headers: Iterable[tuple[bytes, bytes]]) -> tuple[str, str]:
    """How the web server wants a stored file: ('accel', internal prefix) for nginx's
    X-Accel-Redirect, ('redirect', '') for a redirect to the static URL, ('stream', '')."""
    values = {name.lower(): value for name, value in headers}
    accel = values.get(b"x-sitegen-accel", b"").decode("ascii", "replace")
    if ACCEL_RE.match(accel):
        return "accel", accel
    if values.get(b"x-sitegen-redirect") == b"1":
        return "redirect", ""
    return "stream", ""


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

    def __init__(
        self,
        resolver: Resolver,
        limits: FetcherLimits | None = None,
        check: TokenCheck | None = None,
        following: Following | None = None,
    ) -> None:
        self.resolver = resolver
        self.following = following  # None: the channels the resolver was made with, for good
        self.check = check  # None: every channel is public, whatever channels.yaml says
        limits = limits or FetcherLimits()
        self.max_connections = limits.max_connections
        self.request_timeout = limits.request_timeout
        self.open_connections = 0
        # Connections waiting for a request head, oldest first: the ones a newcomer evicts.
        self._idle: dict[int, trio.CancelScope] = {}
        self._ids = itertools.count()

    def _evict_idle(self) -> bool:
        """Close the longest-waiting idle connection; False when every one is busy."""
        if not self._idle:
            return False
        key = next(iter(self._idle))
        self._idle.pop(key).cancel()
        return True

    @classmethod
    @asynccontextmanager
    async def running(
        cls, config: SiteConfig, limits: FetcherLimits | None = None
    ) -> AsyncIterator[Fetcher]:
        """A fetcher for the passive channels of ``config`` as channels.yaml says now (see
        :mod:`sitegen.passive.following`), their upstreams open."""
        limits = limits or FetcherLimits()
        # Every channel is checked: one may turn private in channels.yaml meanwhile.
        check = TokenCheck(config)
        running = Following.running(config, check, limits.max_downloads, limits.answer_within)
        async with running as following:
            yield cls(following.resolver, limits, check, following)

    async def reply(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[bytes, bytes]] = (),
        live: bool = False,
    ) -> Reply:
        """The answer to ``method target`` (target: the URL path, prefix already stripped);
        ``live``: a file being downloaded may be answered with its follower (see
        :meth:`Resolver.resolve`), which the caller must close."""
        path = request_path(method, target)
        if isinstance(path, Reply):
            return path
        if self.following is not None:
            await self.following.refresh()
        channel = self.resolver.channel_of(path)
        if channel is not None and self.check is not None:
            when = dt.datetime.now(dt.UTC)
            refusal = await trio.to_thread.run_sync(self.check.refusal, channel, headers, when)
            if refusal == 403:
                return error_reply(403, "this token is revoked or expired")
            if refusal is not None:
                reply = error_reply(401, "a token is required")
                reply.headers.append(("WWW-Authenticate", 'Basic realm="conda mirror"'))
                return reply
        return await self.resolver.resolve(path, head=method == "HEAD", live=live)

    async def handle_connection(self, stream: trio.abc.Stream) -> None:
        """Serve one keep-alive connection (trio.serve_listeners handler)."""
        if self.open_connections >= self.max_connections and not self._evict_idle():
            with contextlib.suppress(Exception), trio.move_on_after(1):
                await stream.send_all(REFUSAL)
            with contextlib.suppress(Exception):
                await stream.aclose()
            return
        self.open_connections += 1
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        key = next(self._ids)
        try:
            while True:
                request = None
                with trio.move_on_after(self.request_timeout) as waiting:
                    self._idle[key] = waiting
                    try:
                        request = await receive_request(conn, stream)
                    finally:
                        self._idle.pop(key, None)
                if request is None:
                    return
                # A body announced and never sent would hold the slot for good: it gets the
                # head's deadline (and the connection is closed when it runs out).
                drained = None
                with trio.move_on_after(self.request_timeout):
                    drained = await drain_body(conn, stream)
                if drained is None:
                    return
                if not drained:
                    too_large = error_reply(413, "request body too large")
                    await send_simple(conn, stream, too_large, within=self.request_timeout)
                    return
                await self._answer(conn, stream, request)
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except h11.RemoteProtocolError:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                with contextlib.suppress(Exception):
                    bad = error_reply(400, "bad request")
                    await send_simple(conn, stream, bad, within=self.request_timeout)
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.LocalProtocolError):
            pass  # the client went away, or the connection cannot go on
        except Exception:  # one connection must never take the service down
            log.exception("error while serving a request")
        finally:
            self.open_connections -= 1
            with contextlib.suppress(Exception):
                await stream.aclose()

    async def _answer(
        self, conn: h11.Connection, stream: trio.abc.Stream, request: h11.Request
    ) -> None:
        method = request.method.decode("ascii", "replace")
        target = request.target.decode("ascii", "replace")
        reply = await self.reply(method, target, request.headers, live=method == "GET")
        within = self.request_timeout  # for a response head or a short answer
        log.debug("%s %s -> %d %s", method, shown_target(target), reply.status, reply.outcome)
        if reply.follow is not None:
            # Not stored yet, whatever the web server would like: it passes the bytes on.
            with reply.follow as follow:
                await _send_live(conn, stream, reply, follow, target, within)
            return
        if reply.file is None:
            await send_simple(conn, stream, reply, within, head=method == "HEAD")
            return
        how, accel = delivery(request.headers)
        path = request_path(method, target)
        if how == "accel" and isinstance(path, str):
            # nginx serves the stored file itself from its internal location; the outcome
            # (fetched now or stored before) rides in that location's path, where the access
            # log finds it after the internal redirect. That location sets Cache-Control, and
            # nginx would keep this answer's as well: a second header.
            headers = [h for h in reply.headers if h[0] != "Cache-Control"]
            headers.append(("X-Accel-Redirect", f"{accel}/{reply.outcome}{path}"))
            await send_simple(conn, stream, Reply(200, headers=headers), within, head=True)
            return
        if how == "redirect":
            # Back to the very URL, relative (prefix and path token stay as the client sent
            # them): the file is stored now, so the web server answers it statically.
            location = quote(reply.file.name)
            headers = [
                ("Location", location),
                ("Cache-Control", "no-store"),
                ("X-Sitegen-Fetcher", reply.outcome),  # for the access log (sitegen stats)
            ]
            await send_simple(conn, stream, Reply(302, headers=headers), within)
            return
        try:
            handle = await trio.open_file(reply.file, "rb")
        except FileNotFoundError:
            await send_simple(conn, stream, error_reply(502, "gone after download"), within)
            return
        async with handle:
            st = os.fstat(handle.fileno())
            headers = [
                *reply.headers,
                ("Content-Length", str(st.st_size)),
                ("Last-Modified", formatdate(st.st_mtime, usegmt=True)),
            ]
            await send_within(conn, stream, within, h11.Response(status_code=200, headers=headers))
            if method != "HEAD":
                with trio.move_on_after(send_deadline(st.st_size)) as sending:
                    await stream_file(conn, stream, handle, st.st_size)
                if sending.cancelled_caught:
                    raise trio.BrokenResourceError("the reader is too slow")
        await send(conn, stream, h11.EndOfMessage())


async def _send_live(
    conn: h11.Connection,
    stream: trio.abc.Stream,
    reply: Reply,
    follow: Follower,
    target: str,
    within: float,
) -> None:
    """A file as its download lands (see :mod:`sitegen.passive.live`), its head sent within
    ``within`` seconds: on failure the connection is ended before the body is complete, and
    the client sees it cut off."""
    await send_within(conn, stream, within, h11.Response(status_code=200, headers=reply.headers))
    while True:
        try:
            chunk = await follow.read()
        except FlightFailed as exc:
            log.warning("%s: cut off after %d bytes: %s", shown_target(target), follow.sent, exc)
            raise trio.BrokenResourceError("the download failed") from exc
        if not chunk:
            break
        # The upstream sets the pace; each piece must still leave within its own deadline.
        await send_within(conn, stream, send_deadline(len(chunk)), h11.Data(data=chunk))
    await send(conn, stream, h11.EndOfMessage())
