"""A response body with its transfer compression (``Content-Encoding``) undone a bounded step
at a time, for callers that cap what they hold or store.

httpx would decode each read of a body in one call, whatever it expands to: a 256 KiB read of
zstd may stand for gigabytes, and gzip applied twice is undone layer upon layer at once. Here
the body is read as sent and inflated by zlib at most :data:`STEP` bytes at a time, so a caller
counting the pieces stops a bomb within one step of its cap. One layer of what sitegen asks
for (gzip or deflate) is accepted; any other coding, or more than one, is refused.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Iterator

import httpx

from sitegen.net.failures import UpstreamError

STEP = 1 << 20  # the most a piece of decoded body holds

# RFC 9110: "x-gzip" is to be taken for "gzip". deflate is the zlib format, which some servers
# send bare (raw deflate): the first piece tells them apart, as browsers and httpx do.
_WINDOW_BITS = {"gzip": zlib.MAX_WBITS | 16, "x-gzip": zlib.MAX_WBITS | 16}
_WINDOW_BITS["deflate"] = zlib.MAX_WBITS

# IANA's registry of content codings: what a message may name of a Content-Encoding. Any other
# value is upstream's own text, which may echo what the request carried (the token of a
# /t/<token>/ URL), and is not quoted.
_REGISTERED = frozenset(
    {"aes128gcm", "br", "compress", "dcb", "dcz", "deflate", "exi", "gzip", "identity"}
    | {"pack200-gzip", "x-compress", "x-gzip", "zstd"}
)
UNREGISTERED = "an unregistered coding"  # what a message says of any other


def registered_codings(codings: list[str]) -> str | None:
    """The codings of a Content-Encoding (lower case) as a message may name them (at most 60
    characters), when each is a registered one; None otherwise (see UNREGISTERED)."""
    if all(coding in _REGISTERED for coding in codings):
        return ", ".join(codings)[:60]
    return None


async def decoded_body(response: httpx.Response, what: str) -> AsyncIterator[bytes]:
    """The body of ``response`` in pieces of at most :data:`STEP` bytes once decoded (reads as
    they come when it is not compressed). UpstreamError (naming ``what``) for a coding not
    accepted; httpx.DecodingError, retried as a transfer that failed, for compressed data that
    is invalid, stops short of its end or goes on past it."""
    values = response.headers.get_list("content-encoding", split_commas=True)
    codings = [c for c in (v.strip().lower() for v in values) if c not in ("", "identity")]
    inflater: _Inflater | None = None
    async for chunk in response.aiter_raw():
        if not codings:
            yield chunk
        elif chunk:
            # Judged on the first bytes: an empty body (a 304's) is nothing whatever its
            # headers name.
            inflater = inflater or _Inflater.of(codings, what)
            for piece in inflater.pieces(chunk):
                yield piece
    if inflater is not None and not inflater.ended:
        raise httpx.DecodingError(f"{inflater.coding} data stops before its end")


class _Inflater:
    """One gzip or deflate stream, inflated a step at a time."""

    @staticmethod
    def of(codings: list[str], what: str) -> _Inflater:
        if len(codings) > 1 or codings[0] not in _WINDOW_BITS:
            named = registered_codings(codings)
            shown = UNREGISTERED if named is None else repr(named)
            raise UpstreamError(
                f"{what}: compressed in transit as {shown}, which sitegen"
                " does not accept (gzip or deflate, once)"
            )
        return _Inflater(codings[0])

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._zlib = zlib.decompressobj(_WINDOW_BITS[coding])
        self._started = False
        self._next_member = False  # a gzip member begun after another, none of it read yet

    @property
    def ended(self) -> bool:
        return self._zlib.eof

    def pieces(self, data: bytes) -> Iterator[bytes]:
        """What ``data``, the next bytes of the stream, inflate to, at most STEP at a time."""
        more = bool(data)
        while more:
            if self._zlib.eof:
                if self.coding == "deflate":
                    raise httpx.DecodingError(f"{self.coding} data goes on past its end")
                # RFC 1952: gzip data may be several members one after another, whose contents
                # join (as gzip(1), curl and Python's gzip read them).
                self._zlib = zlib.decompressobj(_WINDOW_BITS[self.coding])
                self._next_member = True
            try:
                piece = self._zlib.decompress(data, STEP)
            except zlib.error as exc:
                if self._next_member:  # what follows a member is no member's start
                    raise httpx.DecodingError(f"{self.coding} data goes on past its end") from None
                if self._started or self.coding != "deflate":
                    raise httpx.DecodingError(f"invalid {self.coding} data: {exc}") from None
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate
                self._started = True
                continue
            self._started = True
            if piece or self._zlib.eof:
                self._next_member = False
            if piece:
                yield piece
            # At the end, what follows it (zlib leaves it in unconsumed_tail too when a step is
            # given: asked again, it would hand it back for ever).
            data = self._zlib.unused_data if self._zlib.eof else self._zlib.unconsumed_tail
            # A full step may leave output inside zlib though no input is left: asked again.
            more = bool(data) or (len(piece) == STEP and not self._zlib.eof)
