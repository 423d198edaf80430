"""A request target of the pull-through fetcher as its log shows it: with no secret in it."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from sitegen.config.urls import redact_url

KEPT_ESCAPE_RE = re.compile(r"(%2[36])", re.IGNORECASE)  # '&' and '#', which end a value
SPACE_RE = re.compile(r"\s")  # which also ends one


def shown_target(target: str) -> str:
    """A request target as the log shows it: decoded first, so that no percent-encoding
    (``/%74/<token>/``, ``/t%2F<token>``) hides a path token or query value from
    :func:`redact_url`, then encoded again, so that no decoded control character reaches the
    log. A client may send the path it would send the web server straight to the fetcher.
    ``%26`` and ``%23`` stay (no UTF-8 sequence holds their bytes), and what decodes to white
    space is encoded again before the redaction: ``?k=a%26b`` and ``?k=a%20b`` are hidden whole."""
    pieces = KEPT_ESCAPE_RE.split(target)
    decoded = "".join(p if i % 2 else unquote(p, errors="replace") for i, p in enumerate(pieces))
    decoded = SPACE_RE.sub(lambda space: quote(space.group(), safe=""), decoded)
    return quote(redact_url(decoded), safe="/?&=*:@!$'()+,;~%")
