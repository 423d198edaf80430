"""A mirror subdir's document read against the copy kept of it (see
sitegen.net.upstream_cache), as its repodata (sitegen.sync.fetch) and its CEP-12
run_exports.json (sitegen.sync.run_exports_fetch) both are: the copy read back for a
conditional request, or to stand for a mirror the run does not fetch; upstream's answer made
the body to use (the copy's on 304) without the secrets of the mirror's URL; and that body kept
when it is new, or was kept with them.

What each document does at the edges is its own: an old form of the copy, a mirror with no
copy to stand for it, an upstream that serves none.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import trio

from sitegen.net.upstream import CacheValidators, RepodataResponse, Upstream, UpstreamError
from sitegen.net.upstream_cache import UpstreamCache
from sitegen.net.upstream_secrets import UpstreamSecrets
from sitegen.net.zstd_body import decode_body
from sitegen.store.interface import PendingWrite
from sitegen.sync.metadata_compress import zstd_compress

log = logging.getLogger("sitegen")


@dataclass(frozen=True)
class KeptCopy:
    """The body kept of a mirror subdir's document and the validators that describe it."""

    validators: CacheValidators
    body: bytes
    sha256: str  # of the body, hex
    # Its validators record that sha256; else an earlier sitegen kept it, and it was taken now.
    recorded: bool = True

    def answer(self) -> RepodataResponse:
        """Upstream's answer as this copy gives it, for a mirror the run does not fetch."""
        return RepodataResponse(False, None, self.validators)


async def kept_copy(cache: UpstreamCache, mirror: str, subdir: str) -> KeptCopy | None:
    """The copy kept; None without one (validators without the body they describe are
    useless), or when its body is not the bytes kept (see UpstreamCache.body): upstream is
    then asked for the document whole, never whether the damaged copy is current."""
    validators = cache.validators(mirror, subdir)
    if validators is None:
        return None
    # Tens to hundreds of MB of repodata read from disk: not on the event loop, while the
    # other subdirs' fetches are in flight.
    body = await trio.to_thread.run_sync(cache.body, mirror, subdir)
    if body is None:
        log.warning(
            "%s/%s: the copy kept of upstream's %s is lost or damaged",
            mirror,
            subdir,
            validators.variant,
        )
        return None
    # Recorded when it was kept, and checked as it was read back; else (an earlier sitegen
    # kept it) taken now.
    recorded = cache.sha256(mirror, subdir)
    digest = recorded or await trio.to_thread.run_sync(sha256_of, body)
    return KeptCopy(validators, body, digest, recorded is not None)


def sha256_of(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True)
class Received:
    """Upstream's answer with the body a run uses of it."""

    changed: bool
    validators: CacheValidators
    body: bytes  # as upstream served it, or with the secrets of the mirror's URL hidden
    # The body holds those secrets as their references (see upstream_secrets): they are
    # filled in again to parse it.
    hidden: bool
    # The body was read back as upstream served it, the secrets maybe in it: kept again
    # without them.
    rekeep: bool

    @property
    def to_keep(self) -> bool:
        return self.changed or self.rekeep


async def received(
    upstream: Upstream,
    response: RepodataResponse,
    kept: KeptCopy | None,
    kept_hidden: bool,
    limit: int = 0,
) -> Received:
    """``response`` (upstream's, or the kept copy's) with its body: the kept copy's when
    unchanged, which holds the secrets as their references when ``kept_hidden``. ``limit``:
    what the document may decode to (default: a repodata.json's)."""
    if response.changed:
        body = response.body
    else:
        assert kept is not None
        body = kept.body
    assert body is not None
    hidden = not response.changed and kept_hidden
    # A body kept as served may hold the secrets (kept by an earlier sitegen, or before the
    # URL had them): read back, it is hidden once and kept again, so that an unchanged
    # upstream does not leave them at rest under the site.
    rekeep = False
    if upstream.secrets and not hidden:
        # Stored and hashed without them, as a body read back from the cache is.
        variant = response.validators.variant
        body = await trio.to_thread.run_sync(hide_secrets, upstream.secrets, variant, body, limit)
        hidden, rekeep = True, not response.changed
    # Validators kept as upstream sent them (by an earlier sitegen) may echo a secret too.
    if not response.changed and kept is not None:
        rekeep = rekeep or _echo_secrets(kept.validators, upstream.secrets)
    validators = response.validators.hidden_by(upstream.secrets)
    return Received(response.changed, validators, body, hidden, rekeep)


def _echo_secrets(validators: CacheValidators, secrets: UpstreamSecrets) -> bool:
    """Whether ``validators`` read back are not as they are kept now (see
    CacheValidators.hidden_by)."""
    kept = validators.hidden_by(secrets)
    return (kept.etag, kept.last_modified) != (validators.etag, validators.last_modified)


def hide_secrets(secrets: UpstreamSecrets, variant: str, body: bytes, limit: int = 0) -> bytes:
    """A fetched body with the ``secrets`` of its mirror's URL written as their ${ENV}
    references, and upstream's own text that reads as one escaped (see
    sitegen.net.upstream_secrets; revealed again once decoded, for the parse): the same bytes
    when it holds neither, or cannot be decoded within ``limit`` (see decode_body; the parse
    says why)."""
    try:
        data = decode_body(variant, body, limit)
    except UpstreamError:
        return body
    hidden = secrets.hide_document(data)
    if hidden is data:
        return body
    return zstd_compress(hidden) if variant.endswith(".zst") else hidden


async def keep_copy(
    cache: UpstreamCache,
    key: tuple[str, str],
    validators: CacheValidators,
    body: bytes | PendingWrite,
    hidden: bool,
    sha256: str,
    what: str,
) -> None:
    """Keep ``body`` (or the one staged for it, see UpstreamCache.stage) for the next run's
    conditional request; ``hidden``: as :class:`Received` says; ``sha256``: the body's (hex),
    checked when it is read back; ``what``: the document, for the warning when it cannot be
    kept."""
    keep = cache.store if isinstance(body, bytes) else cache.keep
    try:
        await trio.to_thread.run_sync(keep, *key, validators, body, hidden, sha256)
    except OSError as exc:  # only costs a full fetch next time
        log.warning("%s/%s: could not cache upstream %s: %s", *key, what, exc)


async def record_sha256(cache: UpstreamCache, key: tuple[str, str], sha256: str, what: str) -> None:
    """Record the sha256 of a copy an earlier sitegen kept without it (see
    UpstreamCache.record_sha256), once its body read back parsed; ``what``: the document, for
    the warning when it cannot be recorded (the run goes on: the next one tries again)."""
    try:
        await trio.to_thread.run_sync(cache.record_sha256, *key, sha256)
    except OSError as exc:
        log.warning("%s/%s: could not record the sha256 of upstream %s: %s", *key, what, exc)


def forget_copy(
    cache: UpstreamCache, key: tuple[str, str], what: str, *, served_none: bool = False
) -> None:
    """Forget the copy kept (upstream serves none now; ``served_none``: leave a note that it
    does, see UpstreamCache.forget); ``what``: the document, for the warning when it cannot
    be forgotten (the run goes on: the next one tries again)."""
    try:
        cache.forget(*key, served_none=served_none)
    except OSError as exc:
        log.warning("%s/%s: could not forget upstream %s: %s", *key, what, exc)
