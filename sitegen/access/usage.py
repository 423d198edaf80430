"""When each token was last used, as the web server's access log tells.

The ``sitegen_stats`` log format of the generated configs ends every line with
``token=<id>`` (the public half of a token), ``token=basic<a>:<key>`` (nginx, HTTP Basic: the
public key of the credential's tail, derived from the id, see
:func:`~sitegen.access.tokens.basic_keys`) or ``token=-``; the time is the usual
``[05/Dec/2026:18:51:13 +0000]``. A successful answer (2xx or 304) counts as a use.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from sitegen.access.tokens import TokenRecord, basic_keys

_LINE_RE = re.compile(r'\[(?P<time>[^\]]+)\] "[^"]*" (?P<status>\d{3}) .* token=(?P<token>\S+)\s*$')
_TIME_FORMAT = "%d/%b/%Y:%H:%M:%S %z"


def last_used(lines: Iterable[str], records: Iterable[TokenRecord]) -> dict[str, dt.datetime]:
    """Token name -> the time of its last successful request in ``lines``."""
    by_key: dict[str, str] = {}
    for record in records:
        by_key[record.id] = record.name
        for key in basic_keys(record.id):
            by_key[key] = record.name
    out: dict[str, dt.datetime] = {}
    for line in lines:
        match = _LINE_RE.search(line)
        if match is None or match["token"] not in by_key:
            continue
        status = int(match["status"])
        if not (200 <= status < 300 or status == 304):
            continue
        try:
            when = dt.datetime.strptime(match["time"], _TIME_FORMAT)
        except ValueError:
            continue
        name = by_key[match["token"]]
        if name not in out or when > out[name]:
            out[name] = when
    return out
