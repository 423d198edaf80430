"""Transport failures in plain words, the pace a transfer must keep, and the retries of a GET
and their pace: shared by every request upstream."""

from __future__ import annotations

import logging
import math
import random
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import TypeVar

import httpx
import trio

from sitegen.config import DownloadSettings
from sitegen.config.urls import MAX_LABEL, MAX_NAME
from sitegen.net.activity import Activity, Transfer
from sitegen.net.client import InvalidHostName, UnsupportedScheme

log = logging.getLogger("sitegen")

T = TypeVar("T")

# Statuses worth asking again for: the server or a proxy in front of it may answer next time.
RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


class UpstreamError(Exception):
    """A request that failed for good (after retries); the message is safe to show."""


# Below this average rate a transfer is treated as stalled (slow-drip upstreams).
MIN_RATE = 16 * 1024


class Pace:
    """A transfer's deadline as its bytes arrive: ``first`` seconds for the first ones, then
    the time the bytes received earn at MIN_RATE, never beyond ``cap`` seconds. A large file
    on a slow link is not cut off; a server dripping below the minimum rate is, once its
    bytes stop paying for the wait, not after the days a large listed size would grant it."""

    def __init__(self, scope: trio.CancelScope, first: float, cap: float = math.inf) -> None:
        self.scope = scope
        self.start = trio.current_time() + first
        self.cap_at = trio.current_time() + cap
        self.received = 0
        scope.deadline = min(self.cap_at, self.start)

    def add(self, size: int) -> None:
        self.reached(self.received + size)

    def reached(self, total: int) -> None:
        """``total`` bytes received so far."""
        self.received = total
        self.scope.deadline = min(self.cap_at, self.start + total / MIN_RATE)


def describe_error(exc: BaseException, received: int = 0) -> str:
    """A transport failure in plain words, then its kind: what a person reading a cron log
    can act on. ``received``: the bytes of the answer that came before it failed. Never the
    exception text, which may quote a URL with a token."""
    words = _plain_words(exc, received)
    kind = type(exc).__name__
    return f"{words} ({kind})" if words else kind


def _plain_words(exc: BaseException, received: int) -> str | None:
    if isinstance(exc, InvalidHostName):
        return (
            f"not a valid host name: an empty label, a label over {MAX_LABEL} characters"
            f" or a name over {MAX_NAME}"
        )
    if isinstance(exc, UnsupportedScheme):
        url = "redirected to a URL" if exc.redirected else "a URL"
        return f"{url} of scheme {exc.scheme!r}; only http and https are fetched"
    chain: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and len(chain) < 10:  # the OS or TLS error httpx raises from
        chain.append(cause)
        if isinstance(cause, BaseExceptionGroup) and cause.exceptions:
            cause = cause.exceptions[0]  # trio: one error per address tried
        else:
            cause = cause.__cause__ or cause.__context__
    for cause in chain:
        if isinstance(cause, ssl.SSLCertVerificationError):
            why = cause.verify_message or cause.reason or "unknown reason"
            return (
                f"TLS certificate not trusted: {why}; ca_bundle names the CAs to trust"
                " (verify_tls: false skips the check)"
            )
        if isinstance(cause, socket.gaierror):
            return f"name resolution failed: {cause.strerror or cause}"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "connection reset by the server"
        if isinstance(cause, ssl.SSLError):
            return f"TLS handshake failed: {cause.reason or cause.strerror or 'unknown reason'}"
    if isinstance(exc, httpx.ConnectTimeout):
        return "timed out connecting"
    if isinstance(exc, httpx.TimeoutException | trio.TooSlowError):
        if received:
            return f"stalled after {received} bytes"
        return "timed out waiting for an answer"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server broke off or sent a malformed answer"
    for cause in chain:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
    return None


def log_retry(what: str, attempt: int, attempts: int, cause: str, delay: float) -> None:
    """One failed attempt, as it happens: which file, which attempt of how many, why."""
    log.warning(
        "%s: attempt %d of %d failed: %s; trying again in %.1f s",
        what,
        attempt,
        attempts,
        cause,
        delay,
    )


def backoff_delay(attempt: int, base: float = 0.25, cap: float = 10.0) -> float:
    """Exponential backoff with full jitter, so retrying mirrors do not stampede upstream."""
    return random.uniform(0, min(cap, base * (2**attempt)))


# The longest a Retry-After answer makes an attempt wait: a server asking for an hour is told
# no, the run goes on and the next scheduled run tries again.
MAX_RETRY_AFTER = 60.0


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """The wait a 429 or 503 asks for (RFC 9110: seconds, or an HTTP date), at most
    :data:`MAX_RETRY_AFTER`; None when the header is absent or says nothing usable."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    # RFC 9110's delay-seconds are ASCII digits; str.isdigit takes others too (², ①), which
    # float() refuses.
    if value.isascii() and value.isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def retry_delay(attempt: int, asked: float | None) -> float:
    """How long to wait before attempt ``attempt + 1``: the backoff, or what the server asked
    for when that is longer."""
    delay = backoff_delay(attempt)
    return delay if asked is None else max(delay, asked)


async def with_retries(
    settings: DownloadSettings,
    what: str,
    limiter: trio.CapacityLimiter,
    activity: Activity,
    attempt: Callable[[Transfer], Awaitable[tuple[httpx.Response, T]]],
) -> tuple[httpx.Response, T]:
    """One GET made by ``attempt`` (its final response and what it read of the body), made
    again after a transport failure or a transient status (RETRY_STATUS), up to
    ``settings.retries`` more times; the last answer, or UpstreamError saying why none came.
    ``what`` names the request in messages: it must hold no secret."""
    attempts = settings.retries + 1
    last_error = ""
    for number in range(1, attempts + 1):
        asked = None
        async with limiter:
            with activity.transfer(what) as transfer:
                try:
                    response, result = await attempt(transfer)
                except httpx.TooManyRedirects:
                    raise UpstreamError(f"{what}: too many redirects") from None
                except (InvalidHostName, UnsupportedScheme) as exc:
                    # No request left to send: another try ends the same.
                    raise UpstreamError(f"{what}: {describe_error(exc)}") from None
                except (httpx.RequestError, trio.TooSlowError) as exc:
                    # RequestError: transport failures and bodies that do not decode
                    last_error = describe_error(exc, transfer.received)
                else:
                    if response.status_code not in RETRY_STATUS:
                        return response, result
                    last_error = f"HTTP {response.status_code}"
                    asked = retry_after(response.headers, time.time())
        if number < attempts:
            delay = retry_delay(number - 1, asked)
            log_retry(what, number, attempts, last_error, delay)
            await trio.sleep(delay)
    raise UpstreamError(f"{what}: {last_error} after {attempts} attempts")
