"""Advisory feeds: an OSV zip archive at a URL, fetched into the site's state on each run.

A feed is asked for with the validators of the copy kept (``If-None-Match``,
``If-Modified-Since``), so an unchanged feed costs one 304 and no download; with the download
settings' timeouts and retries, through the upstreams' client (proxies, the site's
``ca_bundle``, credentials from the URL sent to its own host only). A new body is streamed
into a temporary file beside the kept copy, at most :data:`MAX_FEED_BYTES`; the caller reads
it whole, then :meth:`FeedCopies.keep` writes what it read over the copy (a reader sees the
old copy or the new one, never half of one) and the validators after it, so they never
describe a copy that is not there. The archive itself is not kept: it holds whatever the feed
echoed of the secrets of its URL, which the copy holds hidden (see
:func:`sitegen.filters.feeds.read_served`).

The URL holds secrets once its ``${ENV}`` references are filled in: it is only ever used for
the request; messages name the feed by its ``display`` form.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import AsyncExitStack, aclosing
from dataclasses import dataclass
from pathlib import Path

import httpx
import trio

from sitegen.config import DownloadSettings
from sitegen.config.urls import redact_url
from sitegen.filters.feeds import kept_copy
from sitegen.layout import (
    FEED_VALIDATORS,
    advisory_feed_dir,
    advisory_feeds_dir,
    is_feed_copy,
    is_legacy_feed_file,
    legacy_feed_archive,
)
from sitegen.net.activity import Activity, Transfer
from sitegen.net.client import UpstreamClient, proxy_problem
from sitegen.net.failures import Pace, UpstreamError, with_retries
from sitegen.net.transit import decoded_body
from sitegen.net.transport import trusted_cas
from sitegen.net.upstream import (
    ca_bundle_problem,
    conditional_headers,
    make_client,
    validator,
)
from sitegen.net.upstream_secrets import UpstreamSecrets
from sitegen.store.interface import SiteStorage
from sitegen.store.links_out import LeadsOutError, state_link_out

# OSV's largest per-ecosystem archives are a few hundred MB; its archive of every ecosystem
# at once is larger, and is not what a conda mirror's filter needs.
MAX_FEED_BYTES = 1 << 30
LATEST_TIME = 253402300800.0  # 10000-01-01 UTC
# Feeds are few and large: fetched one host connection at a time each.
FEEDS_AT_ONCE = 4


@dataclass(frozen=True)
class FeedValidators:
    """What the answer that brought the kept copy said of it, and when it was last current."""

    etag: str | None = None
    last_modified: str | None = None
    checked: float = 0.0  # when the copy was last found current (fetched, or answered 304)


@dataclass(frozen=True)
class FeedAnswer:
    changed: bool  # a new body is in the file given to fetch
    validators: FeedValidators


class FeedClient:
    """GETs of advisory feeds, for one run."""

    def __init__(
        self,
        client: UpstreamClient | None,
        settings: DownloadSettings,
        activity: Activity,
        unusable: str = "",
    ) -> None:
        self.client = client
        self.settings = settings
        self.activity = activity
        # Why no feed can be fetched (the CA bundle is missing, the proxy is no URL).
        self.unusable = unusable
        self.limiter = trio.CapacityLimiter(FEEDS_AT_ONCE)

    async def fetch(
        self, url: str, display: str, previous: FeedValidators | None, into: Path
    ) -> FeedAnswer:
        """GET the feed at ``url`` (secrets filled in), conditionally on ``previous``; a new
        body goes into the file ``into``. UpstreamError (naming ``display``) when no usable
        answer came."""
        if self.client is None:
            raise UpstreamError(f"{display}: {self.unusable}")
        try:
            httpx.URL(url).host  # noqa: B018 (parsed on access: a bad port or IDNA label raises)
        except (httpx.InvalidURL, ValueError):
            # Valid as written, not once its ${ENV} values are in: which value, untold.
            raise UpstreamError(
                f"{display}: not a valid URL once its ${{ENV}} values are filled in"
            ) from None
        headers = conditional_headers(previous.etag, previous.last_modified) if previous else {}
        response, _size = await with_retries(
            self.settings,
            display,
            self.limiter,
            self.activity,
            lambda transfer: self._get(url, headers, display, into, transfer),
        )
        current = FeedValidators(
            etag=validator(response.headers, b"etag"),
            last_modified=validator(response.headers, b"last-modified"),
            checked=time.time(),
        )
        if response.status_code == 304 and previous is not None:
            return FeedAnswer(
                changed=False,
                validators=FeedValidators(
                    current.etag or previous.etag,
                    current.last_modified or previous.last_modified,
                    current.checked,
                ),
            )
        if response.status_code != 200:
            raise UpstreamError(f"{display}: HTTP {response.status_code}")
        return FeedAnswer(changed=True, validators=current)

    async def _get(
        self,
        url: str,
        headers: dict[str, bytes],
        display: str,
        into: Path,
        transfer: Transfer,
    ) -> tuple[httpx.Response, int]:
        """One GET; a 200's body written into ``into`` (from its start: an attempt after a
        failed one starts over), in four timeouts and the time its bytes earn at MIN_RATE."""
        assert self.client is not None
        size = 0
        with trio.fail_after(self.settings.timeout * 4) as scope:
            pace = Pace(scope, self.settings.timeout * 4)
            async with self.client.stream(url, headers) as response:
                if response.status_code != 200:
                    return response, 0
                async with (
                    await trio.open_file(into, "wb") as out,
                    aclosing(decoded_body(response, display)) as pieces,
                ):
                    async for piece in pieces:
                        self.activity.add(transfer, len(piece))
                        pace.reached(response.num_bytes_downloaded)
                        size += len(piece)
                        if size > MAX_FEED_BYTES:
                            raise UpstreamError(f"{display}: more than {MAX_FEED_BYTES} bytes")
                        await out.write(piece)
        return response, size


async def open_feed_client(
    settings: DownloadSettings, stack: AsyncExitStack, activity: Activity
) -> FeedClient:
    """The client for the run's feeds, closed with ``stack``: TLS verified against the site's
    ``ca_bundle`` (or the environment's, or the system's CAs)."""
    cas = trusted_cas(settings.ca_bundle, os.environ)
    if (why := proxy_problem() or (ca_bundle_problem(*cas) if cas else None)) is not None:
        return FeedClient(None, settings, activity, why)
    client = make_client(settings, verify=True, ca_bundle=cas[0] if cas else None)
    stack.push_async_callback(client.aclose)
    return FeedClient(client, settings, activity)


class FeedCopies:
    """The last good copy of each feed in the site's state, with its validators.

    A feed's folder reached through a link planted in the state (the feeds' folder or its
    own, see :func:`~sitegen.store.links_out.state_link_out`) holds no copy of it: nothing is
    read, written or deleted through the link, as what it leads to is not the state's."""

    def __init__(self, site: SiteStorage) -> None:
        self.site = site

    def copy(self, url: str) -> Path:
        return kept_copy(self.site.root, url)

    def link_out(self, url: str) -> str | None:
        """``<folder>: <why>`` when the feed's folder is reached through such a link."""
        return state_link_out(self.site, advisory_feed_dir(self.site.root, url))

    def folders_link_out(self) -> str | None:
        """``<folder>: <why>`` when the feeds' folder is reached through such a link."""
        return state_link_out(self.site, advisory_feeds_dir(self.site.root))

    def _folder(self, url: str) -> Path:
        """The feed's folder, to write in; LeadsOutError when it is behind such a link."""
        why = self.link_out(url)
        if why is not None:
            raise LeadsOutError(why)
        return advisory_feed_dir(self.site.root, url)

    def validators(self, url: str) -> FeedValidators | None:
        """The validators of the kept copy; None without one this sitegen reads (they are
        useless without it: the feed is fetched whole)."""
        if self.link_out(url) is not None:
            return None
        return self._recorded(url) if self.copy(url).is_file() else None

    def _recorded(self, url: str) -> FeedValidators | None:
        """The validators recorded of the feed's copy, whether it is there or not."""
        directory = advisory_feed_dir(self.site.root, url)
        try:
            data = json.loads((directory / FEED_VALIDATORS).read_bytes())
            checked = float(data.get("checked", 0.0))
            etag, last_modified = _text(data.get("etag")), _text(data.get("last_modified"))
            if data.get("secrets_hidden") is True:
                secrets = UpstreamSecrets.of_url(url)
                etag, last_modified = map(secrets.reveal_validator, (etag, last_modified))
            return FeedValidators(
                etag=etag,
                last_modified=last_modified,
                # A time a date can be made of (the warnings name the day), else unknown.
                checked=checked if 0.0 <= checked < LATEST_TIME else 0.0,
            )
        except (OSError, ValueError, TypeError, AttributeError):
            return None

    def scratch(self, url: str) -> Path:
        """A temporary file beside the kept copy, for a new body (removed if the run dies)."""
        return self.site.temp_for(self._folder(url) / self.copy(url).name)

    def keep(self, url: str, data: bytes, validators: FeedValidators) -> None:
        """Make ``data`` (the advisories read of a new body) the kept copy, on disk before it
        has the name, then the validators that describe it; the copies another sitegen kept
        go."""
        target = self._folder(url) / self.copy(url).name
        self.site.write_bytes(target, data)
        with os.scandir(target.parent) as entries:
            others = [e.path for e in entries if is_feed_copy(e.name) and e.name != target.name]
        for path in others:
            self.site.remove(Path(path))
        self.confirm(url, validators)

    def legacy_archive(self, url: str) -> Path | None:
        """The archive an earlier version kept as the feed's last good copy, when there is no
        copy as read (this sitegen's or another's, which is then the last good one, and the
        archive only goes)."""
        if self.link_out(url) is not None:
            return None
        directory = advisory_feed_dir(self.site.root, url)
        try:
            with os.scandir(directory) as entries:
                names = {e.name for e in entries}
        except FileNotFoundError:
            return None
        archive = legacy_feed_archive(directory)
        if archive.name not in names or any(is_feed_copy(name) for name in names):
            return None
        return archive

    def adopt(self, url: str, data: bytes) -> None:
        """Make ``data`` (the advisories read of the archive an earlier version kept) the
        feed's copy. Its validators keep when it was last current, for the warnings of the runs
        that use it, but not what would make the feed answer 304: the archive may echo a value
        of the URL's secrets since rotated, which nothing hides, so the copy only stands in
        until the feed is fetched whole. They are written first: the copy is never described
        by those of the archive."""
        previous = self._recorded(url)
        self.confirm(url, FeedValidators(checked=previous.checked if previous else 0.0))
        self.site.write_bytes(self._folder(url) / self.copy(url).name, data)

    def forget_unnamed(self, urls: list[str]) -> list[str]:
        """Delete the kept copies (their folders) of the feeds that are none of ``urls``; the
        names of the folders deleted."""
        if self.folders_link_out() is not None:
            return []
        named = {advisory_feed_dir(self.site.root, url).name for url in urls}
        try:
            with os.scandir(advisory_feeds_dir(self.site.root)) as entries:
                folders = [
                    Path(e.path)
                    for e in entries
                    if e.name not in named and e.is_dir(follow_symlinks=False)
                ]
        except FileNotFoundError:
            return []
        for folder in folders:
            with os.scandir(folder) as entries:
                files = [Path(e.path) for e in entries if not e.is_dir(follow_symlinks=False)]
            for path in files:
                self.site.remove(path)
            folder.rmdir()
        return [folder.name for folder in folders]

    def drop_legacy(self) -> int:
        """Delete what earlier versions kept in the feeds' folders (the archive as served and
        its advisories as read, with whatever the feed echoed of its URL's secrets); returns
        how many files went. A feed left without a copy is fetched whole by the run."""
        if self.folders_link_out() is not None:
            return 0
        try:
            with os.scandir(advisory_feeds_dir(self.site.root)) as entries:
                folders = [e.path for e in entries if e.is_dir(follow_symlinks=False)]
        except FileNotFoundError:
            return 0
        dropped = 0
        for folder in folders:
            with os.scandir(folder) as entries:
                legacy = [Path(e.path) for e in entries if is_legacy_feed_file(e.name)]
            dropped += sum(self.site.remove(path) for path in legacy)
        return dropped

    def confirm(self, url: str, validators: FeedValidators) -> None:
        """Record the validators of the kept copy (found current again, after a 304): with
        the secrets of the feed's URL, which the feed may echo in them, as their references
        (see upstream_secrets)."""
        secrets = UpstreamSecrets.of_url(url)
        document = {
            "url": redact_url(url),  # for a person looking in the state directory
            "etag": secrets.hide_validator(validators.etag),
            "last_modified": secrets.hide_validator(validators.last_modified),
            "checked": validators.checked,
            "secrets_hidden": True,
        }
        target = self._folder(url) / FEED_VALIDATORS
        self.site.write_bytes(target, json.dumps(document).encode())


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
