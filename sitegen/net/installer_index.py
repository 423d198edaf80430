"""An upstream installer folder over HTTP: its index page, and the exact size of a file.

The index (an HTML table, see :mod:`sitegen.sync.installer_listing`) states sizes rounded
(``148.7M``); a download is verified against an exact size and the sha256, so the size of each
file to fetch is asked first, with a one-byte range request (``Content-Range`` tells the whole;
a server without ranges answers 200, whose ``Content-Length`` does, and the body is left
unread). Both are retried like every request upstream.
"""

from __future__ import annotations

import re
from contextlib import aclosing

import httpx
import trio

from sitegen.net.activity import Transfer
from sitegen.net.failures import Pace, UpstreamError, with_retries
from sitegen.net.transit import decoded_body
from sitegen.net.upstream import Upstream

# An index page larger than this is no listing of a folder of installers (repo.anaconda.com's
# largest, /archive/, is about 150 KB).
MAX_INDEX_BYTES = 8 << 20
_WHOLE_SIZE_RE = re.compile(r"^bytes 0-0/(\d{1,20})$")


def file_url(upstream: Upstream, name: str) -> str:
    """Where a file of the folder is fetched (holds the URL's secrets: requests only)."""
    return f"{upstream.base}/{name}"


async def fetch_index(upstream: Upstream) -> bytes:
    """The folder's index page as sent (decoded from its transfer compression); UpstreamError
    for an answer other than 200, or a page past MAX_INDEX_BYTES."""
    url = f"{upstream.base}/"
    what = upstream.safe_url(url)
    timeout = upstream.settings.timeout

    async def attempt(transfer: Transfer) -> tuple[httpx.Response, bytes]:
        with trio.fail_after(timeout * 4) as scope:
            pace = Pace(scope, timeout * 4)
            headers = {"Accept": "text/html", "Accept-Encoding": "gzip, deflate"}
            async with upstream.client.stream(url, headers) as response:
                if response.status_code != 200:
                    return response, b""
                parts: list[bytes] = []
                size = 0
                async with aclosing(decoded_body(response, what)) as pieces:
                    async for piece in pieces:
                        upstream.activity.add(transfer, len(piece))
                        pace.reached(response.num_bytes_downloaded)
                        size += len(piece)
                        if size > MAX_INDEX_BYTES:
                            raise UpstreamError(f"{what}: more than {MAX_INDEX_BYTES} bytes")
                        parts.append(piece)
        return response, b"".join(parts)

    response, body = await with_retries(
        upstream.settings, what, upstream.host_limiter, upstream.activity, attempt
    )
    if response.status_code != 200:
        raise UpstreamError(f"{what}: HTTP {response.status_code}")
    return body


async def file_size(upstream: Upstream, name: str) -> int:
    """The size upstream states for a file of the folder; UpstreamError when it states none
    (or answers other than 200 or 206)."""
    url = file_url(upstream, name)
    what = upstream.safe_url(url)

    async def attempt(transfer: Transfer) -> tuple[httpx.Response, int | None]:
        with trio.fail_after(upstream.settings.timeout):
            async with upstream.client.stream(url, {"Range": "bytes=0-0"}) as response:
                return response, _stated_size(response)

    response, size = await with_retries(
        upstream.settings, what, upstream.host_limiter, upstream.activity, attempt
    )
    if response.status_code not in (200, 206):
        raise UpstreamError(f"{what}: HTTP {response.status_code}")
    if size is None:
        raise UpstreamError(f"{what}: upstream states no size for it")
    return size


def _stated_size(response: httpx.Response) -> int | None:
    if response.status_code == 206:
        found = _WHOLE_SIZE_RE.match(response.headers.get("content-range", "").strip())
        return int(found.group(1)) if found else None
    if response.status_code == 200:
        # Compressed in transit, the length is not the file's (downloads refuse it anyway).
        if response.headers.get("content-encoding", "identity").strip().lower() != "identity":
            return None
        length = response.headers.get("content-length", "").strip()
        if length.isdigit() and len(length) <= 20 and "," not in length:
            return int(length)
    return None
