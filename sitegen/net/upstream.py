"""Talking to an upstream channel: conditional repodata fetches and package requests.

Sources are http(s) or file:// channel URLs laid out as ``<channel>/<subdir>/<file>``. Repodata
is fetched as ``repodata.json.zst`` first (a fifth of the bytes), falling back to
``repodata.json``, with the ETag / Last-Modified of the previous run so an unchanged subdir costs
one 304.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, aclosing
from dataclasses import dataclass, replace
from email.utils import formatdate
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import httpx
import trio

from sitegen.config import DownloadSettings, MirrorConfig
from sitegen.config.model import scrub_of
from sitegen.config.operator_files import OperatorFileError, open_regular
from sitegen.config.urls import scrub_names
from sitegen.net.activity import Activity, Transfer
from sitegen.net.client import UpstreamClient, open_client, proxy_problem
from sitegen.net.failures import Pace, UpstreamError, with_retries
from sitegen.net.transit import decoded_body
from sitegen.net.transport import trusted_cas
from sitegen.net.upstream_secrets import UpstreamSecrets
from sitegen.net.zstd_body import MAX_REPODATA_BYTES

log = logging.getLogger("sitegen")


REPODATA_VARIANTS = ("repodata.json.zst", "repodata.json")


class _RedactTokens(logging.Filter):
    """httpx logs every request URL at INFO; keep the values of the ${ENV} references of the
    URLs requested out (see hide_in_request_lines), wherever in a URL they stand (an API key
    as a folder of its path looks like any other), then anaconda.org tokens, passwords and
    query values (an advisory feed's URL may carry a token there)."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = scrub_names(self.names)(record.getMessage()), None
        return True


def _request_lines() -> _RedactTokens:
    logger = logging.getLogger("httpx")
    found = next((f for f in logger.filters if isinstance(f, _RedactTokens)), None)
    if found is None:
        found = _RedactTokens()
        logger.addFilter(found)
    return found


# Whoever configures logging (the CLI, or an application embedding sitegen), token-bearing
# request lines never reach a handler.
_REQUEST_LINES = _request_lines()


def hide_in_request_lines(names: Iterable[str]) -> None:
    """Keep the values of these ${ENV} names (those of a URL about to be requested) out of
    httpx's request lines."""
    _REQUEST_LINES.names.update(names)


class SubdirMissing(UpstreamError):
    """The upstream does not serve this subdir (404 for every repodata variant)."""


@dataclass
class CacheValidators:
    """What the previous fetch of a subdir's repodata returned, for a conditional request."""

    variant: str
    etag: str | None = None
    last_modified: str | None = None
    # etag and last_modified hold the secrets of the mirror's URL as their references, as
    # they are kept (see upstream_secrets); else as upstream sent them.
    hidden: bool = False

    def hidden_by(self, secrets: UpstreamSecrets) -> CacheValidators:
        """These validators as they are kept: upstream may echo the URL asked for in them."""
        if self.hidden or not secrets:
            return self
        etag, last_modified = map(secrets.hide_validator, (self.etag, self.last_modified))
        return replace(self, etag=etag, last_modified=last_modified, hidden=True)

    def revealed_by(self, secrets: UpstreamSecrets) -> CacheValidators:
        """These validators as upstream sent them, to be sent back."""
        if not self.hidden:
            return self
        etag, last_modified = map(secrets.reveal_validator, (self.etag, self.last_modified))
        return replace(self, etag=etag, last_modified=last_modified, hidden=False)


@dataclass
class Answer:
    """An upstream's final answer to a GET, its body read (and decoded from transit)."""

    status: int
    headers: httpx.Headers
    body: bytes


@dataclass
class RepodataResponse:
    changed: bool
    body: bytes | None  # the raw bytes as served (zst-compressed for the .zst variant)
    validators: CacheValidators


async def _read_capped(
    response: httpx.Response, where: str, on_bytes: Callable[[int], None], limit: int
) -> bytes:
    """A response body (decoded from its transfer compression a step at a time), refusing to
    hold more than ``limit`` bytes (what the document may be): a hostile upstream could send
    an endless body, or a small one that inflates without end."""
    parts: list[bytes] = []
    size = 0
    async with aclosing(decoded_body(response, where)) as pieces:
        async for piece in pieces:
            on_bytes(len(piece))
            size += len(piece)
            if size > limit:
                raise UpstreamError(f"{where}: more than {limit} bytes")
            parts.append(piece)
    return b"".join(parts)


def validator(headers: httpx.Headers, name: bytes) -> str | None:
    """A validator (ETag, Last-Modified) one character per byte, sent back as it came: an
    ETag may hold bytes beyond ASCII (obs-text), which httpx would decode as UTF-8."""
    return next((v.decode("latin-1") for k, v in headers.raw if k.lower() == name), None)


def conditional_headers(etag: str | None, last_modified: str | None) -> dict[str, bytes]:
    """The headers of a conditional GET for what an earlier answer's validators were."""
    sent = {"If-None-Match": etag, "If-Modified-Since": last_modified}
    # (a value that is not one byte per character was kept by an older version: unsent)
    return {k: v.encode("latin-1") for k, v in sent.items() if v and max(v) <= "\xff"}


USER_AGENT = "sitegen/0.1 (conda mirror)"


def _timeout(settings: DownloadSettings) -> httpx.Timeout:
    return httpx.Timeout(settings.timeout, connect=min(settings.timeout, settings.connect_timeout))


def ca_bundle_problem(path: str, named_by: str) -> str | None:
    """Why the PEM file of CAs ``named_by`` (``ca_bundle``, REQUESTS_CA_BUNDLE, SSL_CERT_FILE)
    names cannot verify upstreams, or None. Checked as the operator's files are: what is there
    but is no regular file (a FIFO, which TLS would wait on forever; a directory) is said to
    be so, not missing."""
    try:
        open_regular(Path(path)).close()
    except FileNotFoundError:
        why = "no such file"
    except OperatorFileError as exc:
        why = str(exc)
    else:
        return None
    return f"{named_by} {path}: {why} (a PEM file of CAs)"


def make_client(
    settings: DownloadSettings, verify: bool = True, ca_bundle: str | None = None
) -> UpstreamClient:
    """The HTTP client for everything upstream: repodata and package files."""
    return open_client(_timeout(settings), USER_AGENT, verify=verify, ca_bundle=ca_bundle)


# Repodata is text: a plain repodata.json may come compressed in transit (package files not).
_REPODATA_ENCODINGS = {"Accept-Encoding": "gzip, deflate"}


class Upstream:
    """One mirror's source channel."""

    def __init__(
        self,
        mirror: MirrorConfig,
        client: UpstreamClient,
        settings: DownloadSettings,
        host_limiter: trio.CapacityLimiter,
        activity: Activity | None = None,
    ) -> None:
        self.mirror = mirror
        self.client = client
        self.settings = settings
        self.host_limiter = host_limiter
        self.activity = activity or Activity()
        self.base = mirror.source_url()  # holds secrets: only ever used for requests
        self.secrets = UpstreamSecrets.of(mirror)  # kept out of what is stored of upstream
        hide_in_request_lines(mirror.secret_env)
        self._scrub = scrub_of([(None, mirror)])  # for messages (see safe_url)
        self.is_file = urlsplit(self.base).scheme == "file"

    def url(self, subdir: str, filename: str) -> str:
        return f"{self.base}/{subdir}/{filename}"

    def package_url(self, subdir: str, filename: str, base_url: str | None = None) -> str:
        """Where a package file is fetched: beside the repodata, or under the subdir's CEP-15
        ``info.base_url`` (absolute, or relative to the upstream subdir) when it sets one, as
        stored (the mirror's secrets in it as their references: see upstream_secrets)."""
        if not base_url:
            return self.url(subdir, filename)
        base_url = self.secrets.reveal_text(base_url)
        try:
            url = f"{urljoin(self.url(subdir, ''), base_url).rstrip('/')}/{filename}"
            httpx.URL(url).host  # noqa: B018 (what the client parses: IDNA is decoded here)
        except (ValueError, httpx.InvalidURL):
            # Upstream's text (an unclosed IPv6 bracket, a malformed IDNA label): its files
            # cannot be fetched, which fails them, not the run. Not quoted: it may hold a token.
            raise UpstreamError("upstream's info.base_url is not a valid URL") from None
        return url

    def display(self, subdir: str, filename: str = "") -> str:
        tail = f"/{filename}" if filename else ""
        return f"{self.mirror.display_url()}/{subdir}{tail}"

    def local_path(self, subdir: str, filename: str) -> Path:
        return Path(unquote(urlsplit(self.url(subdir, filename)).path))

    async def fetch_repodata(
        self, subdir: str, previous: CacheValidators | None
    ) -> RepodataResponse:
        """Fetch a subdir's repodata, conditionally when validators from a previous run exist."""
        response = await self.fetch_variants(subdir, REPODATA_VARIANTS, previous)
        if response is None:
            raise SubdirMissing(f"{self.display(subdir)}: no repodata.json upstream (404)")
        return response

    async def fetch_variants(
        self, subdir: str, variants: Sequence[str], previous: CacheValidators | None, limit: int = 0
    ) -> RepodataResponse | None:
        """Fetch the first of ``variants`` (names of one document, e.g. its .zst first) that
        upstream serves, the one ``previous`` describes conditionally; None when upstream
        serves none (404). Always in the order given, not the variant kept first: a run that
        fell back to the plain JSON when the .zst was missing (an outage, an index being
        rebuilt) would otherwise fetch the whole JSON from then on, several times the bytes. A
        body beyond ``limit`` bytes (default: a repodata.json's) is refused before it is held."""
        limit = limit or MAX_REPODATA_BYTES
        previous = None if previous is None else previous.revealed_by(self.secrets)
        for variant in variants:
            validators = previous if previous and previous.variant == variant else None
            if self.is_file:
                response = await trio.to_thread.run_sync(
                    self._read_local, subdir, variant, validators, limit
                )
            else:
                response = await self._fetch_http(subdir, variant, validators, limit)
            if response is not None:
                return response
        return None

    def _read_local(
        self, subdir: str, variant: str, validators: CacheValidators | None, limit: int
    ) -> RepodataResponse | None:
        path = self.local_path(subdir, variant)
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise UpstreamError(f"{self.display(subdir, variant)}: {exc.strerror}") from None
        tag = f"{stat.st_mtime_ns:x}-{stat.st_size:x}"
        current = CacheValidators(variant, etag=tag, last_modified=formatdate(stat.st_mtime))
        if validators is not None and validators.etag == tag:
            return RepodataResponse(changed=False, body=None, validators=current)
        if stat.st_size > limit:
            raise UpstreamError(f"{self.display(subdir, variant)}: more than {limit} bytes")
        try:
            body = path.read_bytes()
        except OSError as exc:  # unreadable (permissions, a directory, EIO): this subdir fails
            raise UpstreamError(f"{self.display(subdir, variant)}: {exc.strerror}") from None
        return RepodataResponse(changed=True, body=body, validators=current)

    async def _fetch_http(
        self, subdir: str, variant: str, validators: CacheValidators | None, limit: int
    ) -> RepodataResponse | None:
        headers = (
            conditional_headers(validators.etag, validators.last_modified) if validators else {}
        )
        response = await self.request(self.url(subdir, variant), headers=headers, limit=limit)
        if response.status == 404:
            return None
        current = CacheValidators(
            variant,
            etag=validator(response.headers, b"etag"),
            last_modified=validator(response.headers, b"last-modified"),
        )
        if response.status == 304 and validators is not None:
            current.etag = current.etag or validators.etag
            current.last_modified = current.last_modified or validators.last_modified
            return RepodataResponse(changed=False, body=None, validators=current)
        if response.status != 200:
            raise UpstreamError(f"{self.display(subdir, variant)}: HTTP {response.status}")
        return RepodataResponse(changed=True, body=response.body, validators=current)

    async def request(self, url: str, headers: Mapping[str, str | bytes], limit: int = 0) -> Answer:
        """GET with retries on transient failures; the final answer, body read (of at most
        ``limit`` bytes, by default a repodata.json's)."""
        limit = limit or MAX_REPODATA_BYTES
        what = self.safe_url(url)
        response, body = await with_retries(
            self.settings,
            what,
            self.host_limiter,
            self.activity,
            lambda transfer: self._get(url, headers, what, transfer, limit),
        )
        return Answer(response.status_code, response.headers, body)

    async def _get(
        self, url: str, headers: Mapping[str, str | bytes], what: str, transfer: Transfer, cap: int
    ) -> tuple[httpx.Response, bytes]:
        """One GET and its body, in four timeouts and the time its bytes earn at MIN_RATE:
        a large repodata.json on a slow link is not cut off (counted as sent: a gzip bomb
        earns no time)."""
        with trio.fail_after(self.settings.timeout * 4) as scope:
            pace = Pace(scope, self.settings.timeout * 4)
            async with self.client.stream(url, {**_REPODATA_ENCODINGS, **headers}) as response:

                def received(size: int) -> None:
                    self.activity.add(transfer, size)
                    pace.reached(response.num_bytes_downloaded)

                body = await _read_capped(response, what, received, cap)
        return response, body

    def safe_url(self, url: str) -> str:
        """A URL for messages: the secret-bearing base swapped for its display form, and any
        token or password left elsewhere in it hidden (a CEP-15 ``base_url`` may lead away
        from the base, still under ``/t/<token>/`` or with a ``user:password@``)."""
        return self._scrub(url.replace(self.base, self.mirror.display_url()))


async def open_upstreams(
    mirrors: Iterable[MirrorConfig],
    settings: DownloadSettings,
    stack: AsyncExitStack,
    activity: Activity | None = None,
) -> tuple[dict[str, Upstream], dict[str, str]]:
    """Upstreams for the mirrors: one HTTP client per TLS setting and one connection limiter
    per host, shared by all of them and closed with ``stack``; their requests are entered in
    ``activity``.

    Returns (upstreams by mirror name, why a mirror is unusable by name): a mirror whose URL
    needs an environment variable that is not set, or whose CA bundle is missing, gets no
    upstream; nor does any when the environment's proxy is no URL.
    """
    activity = activity or Activity()
    clients: dict[tuple[bool, str | None], UpstreamClient] = {}
    host_limiters: dict[str, trio.CapacityLimiter] = {}
    upstreams: dict[str, Upstream] = {}
    unusable: dict[str, str] = {}
    proxy = proxy_problem()  # the client reads the proxy settings: none is made past one
    for mirror in mirrors:
        missing = [v for v in mirror.secret_env if v not in os.environ]
        if missing:
            unusable[mirror.name] = f"environment variable {', '.join(missing)} is not set"
            continue
        try:
            source = urlsplit(mirror.source_url())
            source.port  # noqa: B018 (parsed on access: raises for a port that is not a number)
        except ValueError:
            # The names only: a value may be a secret.
            names = ", ".join(dict.fromkeys(mirror.secret_env))
            unusable[mirror.name] = f"not a valid URL once {names} are filled in"
            continue
        cas = trusted_cas(mirror.ca_bundle or settings.ca_bundle, os.environ)
        if not (mirror.verify_tls and source.scheme == "https"):
            cas = None  # nothing to verify
        if (why := proxy or (ca_bundle_problem(*cas) if cas else None)) is not None:
            unusable[mirror.name] = why
            continue
        key = (mirror.verify_tls, cas[0] if cas else None)
        if key not in clients:
            client = make_client(settings, verify=key[0], ca_bundle=key[1])
            stack.push_async_callback(client.aclose)
            clients[key] = client
        # One limit per host and port, whatever credentials each mirror sends there.
        host = source.netloc.rpartition("@")[2] or "file"
        limiter = host_limiters.setdefault(host, trio.CapacityLimiter(settings.per_host))
        upstreams[mirror.name] = Upstream(mirror, clients[key], settings, limiter, activity)
    return upstreams, unusable
