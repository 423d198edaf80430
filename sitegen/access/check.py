"""sitegen's own token check, for the one process a request can reach: the fetcher.

The web server checks every request for a private channel before it hands one to the fetcher;
the fetcher checks again, so that a local user who talks to it directly on 127.0.0.1 gets no
private file either. The credential comes as the client sent it (``Authorization: Bearer`` or
``Basic``, the password being the token) or as the web server forwards a path token
(``X-Sitegen-Token``, or ``X-Sitegen-Uri``: the original request path holding ``/t/<token>/``).
The token is found in the store by comparing hashes in constant time
(:meth:`~sitegen.access.tokens.TokenStore.find`).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import re
from collections.abc import Iterable

from sitegen.access.server_files import AccessPaths, readers_of
from sitegen.access.tokens import TOKEN_RE, TokenError
from sitegen.config import ChannelConfig, SiteConfig

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


class TokenCheck:
    """Whether a request may read a private channel (public channels need nothing)."""

    def __init__(self, config: SiteConfig) -> None:
        self.config = config
        self.store = AccessPaths.of(config).store

    def allows(
        self, channel: ChannelConfig, headers: Iterable[tuple[bytes, bytes]], now: dt.datetime
    ) -> bool:
        """Blocking (reads the store): call it from a thread."""
        if not channel.private:
            return True
        token = credential(headers)
        if token is None:
            return False
        try:
            record = self.store.verify(token, now)
        except TokenError as exc:
            # A store this sitegen cannot read (e.g. from an older format) denies every
            # request, each logged; the message names tokens, never holds one.
            log.error("%s: %s", self.store.path, exc)
            return False
        return record is not None and bool(readers_of(self.config, channel, [record]))
