"""The client for upstreams: what httpx's client would add to a transport (default headers,
timeouts, redirects, credentials from the URL) for the few things a GET upstream needs.

Requests go through :class:`~sitegen.net.transport.EventLoopTransport`; with a proxy in the
environment, through httpx's own client instead, which honours HTTP(S)_PROXY / NO_PROXY.
"""

from __future__ import annotations

import base64
import urllib.request
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx

from sitegen.config.urls import is_host_name
from sitegen.net.transport import EventLoopTransport, tls_context

MAX_REDIRECTS = 10
REDIRECT_STATUS = {301, 302, 303, 307, 308}
_SMALL_BODY = 64 * 1024  # redirect bodies up to this size are read so the connection is reused


class InvalidHostName(httpx.ConnectError):
    """A URL's host that is no DNS name: an empty label (a leading dot, two dots in a row or
    at the end, no name at all), a label over 63 characters or a name over 253. No resolver
    looks it up and TLS takes no such server name, but they refuse it with a ValueError
    (UnicodeError from IDNA, ssl.SSLError) that httpx's own client, used with a proxy, lets
    through as it is: refused before any transport, it fails its request like a host that
    does not resolve."""


class UnsupportedScheme(httpx.UnsupportedProtocol):
    """A URL of a scheme other than http and https (ftp, file, data), reached by a redirect
    or given by upstream (a CEP-15 base_url): nothing is fetched from it, and another try
    would be led there again."""

    def __init__(self, scheme: str, request: httpx.Request, *, redirected: bool) -> None:
        super().__init__(f"unsupported scheme {scheme!r}", request=request)
        self.scheme = scheme
        self.redirected = redirected


class ClientTransport(httpx.AsyncBaseTransport):
    """httpx's own client seen as a transport: it applies the environment's proxy settings."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._client.send(request, stream=True)

    async def aclose(self) -> None:
        await self._client.aclose()


class UpstreamClient:
    """GETs upstream through one transport: default headers, timeouts, redirects and
    credentials from the URL (sent to its own origin only)."""

    def __init__(
        self, transport: httpx.AsyncBaseTransport, *, user_agent: str, timeout: httpx.Timeout
    ) -> None:
        self.transport = transport
        # identity: package files are compressed already, and sizes are checked as sent.
        self._headers = {"User-Agent": user_agent, "Accept": "*/*", "Accept-Encoding": "identity"}
        self._timeout = timeout.as_dict()

    @asynccontextmanager
    async def stream(
        self, url: str, headers: Mapping[str, str | bytes] | None = None
    ) -> AsyncIterator[httpx.Response]:
        """The final response to GET ``url``, its body not read yet; closed on exit. A header
        value in bytes is sent as it is (str values must be ASCII)."""
        response = await self._send(httpx.URL(url), headers or {})
        try:
            yield response
        finally:
            await response.aclose()

    async def _send(self, url: httpx.URL, headers: Mapping[str, str | bytes]) -> httpx.Response:
        origin = (url.scheme, url.host, url.port)
        credentials = _basic_auth(url)
        for redirects in range(MAX_REDIRECTS + 1):
            request = httpx.Request(
                "GET",
                url,
                headers={**self._headers, **headers},
                extensions={"timeout": self._timeout},
            )
            if url.scheme not in ("http", "https"):
                raise UnsupportedScheme(url.scheme, request, redirected=redirects > 0)
            if credentials and credentials_go_to(url, origin):
                request.headers["Authorization"] = credentials
            # The URL may come from upstream (a redirect, a CEP-15 base_url) or hold a host
            # an environment variable filled in: a malformed host fails the request only.
            if not is_host_name(url.raw_host):
                raise InvalidHostName("not a valid host name", request=request)
            response = await self.transport.handle_async_request(request)
            response.request = request
            location = response.headers.get("location")
            if response.status_code not in REDIRECT_STATUS or not location:
                return response
            try:
                await _drain(response)
            finally:
                await response.aclose()
            try:
                url = request.url.join(location)
                url.host  # noqa: B018 (decoded from IDNA on access: a malformed label raises)
            except (httpx.InvalidURL, ValueError) as exc:  # ValueError: idna.IDNAError
                raise httpx.RemoteProtocolError(
                    "redirect to an invalid URL", request=request
                ) from exc
        raise httpx.TooManyRedirects("too many redirects", request=request)

    async def aclose(self) -> None:
        await self.transport.aclose()


async def _drain(response: httpx.Response) -> None:
    """Read a small body to its end, so its connection can serve the next request."""
    read = 0
    async for chunk in response.aiter_raw():
        read += len(chunk)
        if read > _SMALL_BODY:
            return  # not worth it: the connection is closed instead


def credentials_go_to(url: httpx.URL, origin: tuple[str, str, int | None]) -> bool:
    """Whether the credentials of a URL of ``origin`` (scheme, host, port) are sent to ``url``,
    where a redirect led: to the same origin, or to the same host made secure (http on its
    default port to https on its own, as browsers and most clients allow); never elsewhere."""
    scheme, host, port = origin
    if url.host != host:
        return False
    if (url.scheme, url.port) == (scheme, port):
        return True
    return (
        scheme == "http"
        and port in (None, 80)
        and url.scheme == "https"
        and url.port in (None, 443)
    )


def _basic_auth(url: httpx.URL) -> str | None:
    if not url.username and not url.password:
        return None
    pair = f"{url.username}:{url.password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


# The schemes of the proxy variables httpx's own client reads (``<scheme>_proxy``, either case,
# as urllib's getproxies finds them).
PROXY_SCHEMES = ("http", "https", "all")


def proxy_configured() -> bool:
    return any(k in urllib.request.getproxies() for k in PROXY_SCHEMES)


def proxy_problem() -> str | None:
    """Why httpx's own client cannot read the environment's proxy settings, or None. Names the
    variable, never its value: a proxy URL holds the proxy's password, and one holding '/' or
    '?' unencoded ends the user:password part early, leaving a part of the password where
    httpx's error then quotes it as the port."""
    proxies = urllib.request.getproxies()
    if "*" in (host.strip() for host in proxies.get("no", "").split(",")):
        return None  # no proxy for any host: httpx reads none of them
    for scheme in PROXY_SCHEMES:
        url = proxies.get(scheme)
        if not url:
            continue
        try:
            httpx.Proxy(url if "://" in url else f"http://{url}")  # as httpx's client reads it
        except (httpx.InvalidURL, ValueError):
            return (
                f"{scheme.upper()}_PROXY in the environment is no proxy URL"
                " (a password holding '/', '?', '#' or '@' is written percent-encoded)"
            )
    return None


def open_client(
    timeout: httpx.Timeout, user_agent: str, verify: bool = True, ca_bundle: str | None = None
) -> UpstreamClient:
    """The client for upstreams: the event-loop transport, or httpx's own client when the
    environment names a proxy; either trusts the CAs of ``ca_bundle`` (a PEM file) when given."""
    if proxy_configured():
        context = tls_context(verify, ca_bundle)
        client = httpx.AsyncClient(verify=context, timeout=timeout, follow_redirects=False)
        transport: httpx.AsyncBaseTransport = ClientTransport(client)
    else:
        transport = EventLoopTransport(verify=verify, ca_bundle=ca_bundle)
    return UpstreamClient(transport, user_agent=user_agent, timeout=timeout)
