"""sitegen's own token check, for the processes a request can reach: the fetcher and the
preview server (``sitegen serve``).

The web server checks every request for a private channel before it hands one to the fetcher;
the fetcher checks again, so that a local user who talks to it directly on 127.0.0.1 gets no
private file either. The preview server, on 127.0.0.1 too, checks every request itself. The
credential comes as the client sent it (``Authorization: Bearer`` or ``Basic``, the password
being the token) or as the web server forwards a path token (``X-Sitegen-Token``, or
``X-Sitegen-Uri``: the original request path holding ``/t/<token>/``).
The token is found in the store by comparing hashes in constant time
(:meth:`~sitegen.access.tokens.TokenStore.find`).

Which tokens may read a channel is what channels.yaml says *now* (``access``, ``readers``,
``access.groups``, ``access.site``): each run rewrites the web server's token files from them, and the fetcher
runs on from one run to the next, so it reads the file again whenever it changes.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import re
import threading
from collections.abc import Iterable
from pathlib import Path

from sitegen.access.server_files import AccessPaths, readers_of
from sitegen.access.tokens import TOKEN_RE, TokenError
from sitegen.config import ChannelConfig, ConfigError, SiteConfig, load_config

log = logging.getLogger("sitegen")

_PATH_TOKEN_RE = re.compile(r"/t/([0-9a-f]{12}-[0-9a-f]{40})/")


def credential(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The token a request carries, in whichever form; None when it carries none."""
    values = {name.lower(): value.decode("latin-1") for name, value in headers}
    candidates = [values.get(b"x-sitegen-token", "").strip()]
    authorization = values.get(b"authorization", "").strip()
    scheme, _, rest = authorization.partition(" ")
    if scheme.lower() == "bearer":
        candidates.append(rest.strip())
    elif scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(rest.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        candidates.append(decoded.partition(":")[2])
    match = _PATH_TOKEN_RE.search(values.get(b"x-sitegen-uri", ""))
    if match:
        candidates.append(match.group(1))
    return next((c for c in candidates if TOKEN_RE.match(c)), None)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What tells a changed file: inode, modification time, size (None: unreadable)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


class TokenCheck:
    """Whether a request may read a channel: a public one needs nothing (any token of the
    store when the whole site is private), a private one a token of one of its readers, all
    as channels.yaml says now."""

    def __init__(self, config: SiteConfig) -> None:
        self.store = AccessPaths.of(config).store
        self._config = config
        self._stamp = _stamp(config.source) if config.source else None
        self._lock = threading.Lock()  # allows() runs in worker threads

    def current(self) -> SiteConfig:
        """channels.yaml as last read, read again when the file has changed. One that does not
        load leaves the settings read before (a run refuses it as well, and leaves the web
        server's token files as they were)."""
        source = self._config.source
        if source is None:
            return self._config
        with self._lock:
            stamp = _stamp(source)
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    self._config = load_config(source)
                except ConfigError as exc:
                    log.error("access settings as read before kept: %s", exc)
            return self._config

    def refusal(
        self, channel: ChannelConfig, headers: Iterable[tuple[bytes, bytes]], now: dt.datetime
    ) -> int | None:
        """None when the request may read ``channel``, else the status the web servers answer
        it with: 401 without the right token (none, a wrong one, one that may not read the
        channel), 403 with the right one revoked or expired (their token files list the dead
        tokens of a channel's readers too). A private channel takes a token of its readers; a
        public one of a private site (``access: {site: private}``) any token of the store.

        Blocking (reads channels.yaml when it changed, and the store): call it from a
        thread. ``channel``: as configured when the fetcher started."""
        config = self.current()
        site_private = config.access.site_private
        now_configured = next((c for c in config.channels if c.path == channel.path), None)
        if now_configured is None:
            # Taken out of channels.yaml: a run took a private one's token files away.
            return 401 if channel.private or site_private else None
        channel = now_configured
        if not channel.private and not site_private:
            return None
        return self._token_refusal(config, channel, headers, now)

    def site_refusal(self, headers: Iterable[tuple[bytes, bytes]], now: dt.datetime) -> int | None:
        """:meth:`refusal` for a path of the site outside every channel (pages, history,
        assets): None on a public site, else as for a public channel of a private one."""
        config = self.current()
        if not config.access.site_private:
            return None
        return self._token_refusal(config, None, headers, now)

    def _token_refusal(
        self,
        config: SiteConfig,
        channel: ChannelConfig | None,
        headers: Iterable[tuple[bytes, bytes]],
        now: dt.datetime,
    ) -> int | None:
        token = credential(headers)
        if token is None:
            return 401
        try:
            record = self.store.find(token)
        except TokenError as exc:
            # A store this sitegen cannot read (e.g. from an older format) denies every
            # request, each logged; the message names tokens, never holds one.
            log.error("%s: %s", self.store.path, exc)
            return 401
        if record is None:
            return 401
        if channel is not None and channel.private and not readers_of(config, channel, [record]):
            return 401
        return None if record.state(now) == "active" else 403
