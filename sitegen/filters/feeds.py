"""The advisories of the ``feeds`` the advisory filters name, joined to their policies.

A feed is a zip archive at a URL, which a run fetches before it selects (:mod:`sitegen.sync.
advisory_feeds`) and reads (:func:`read_served`); its last good copy is what was read of it,
kept in the site's state (:func:`kept_copy`), with the secrets of the feed's URL hidden.
:func:`with_feeds` gives each policy the advisories of its feeds
(:attr:`~sitegen.filters.advisories.AdvisoryPolicy.fed`), in a configuration of its own; the
run filters with that one, and the renderer reads the same copies offline
(:func:`with_kept_feeds`) for the advisories the package pages list.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from importlib import metadata
from pathlib import Path

import cvss
import msgspec

from sitegen import __version__
from sitegen.conda import version
from sitegen.conda.record_secrets import SecretSearch
from sitegen.config import operator_files
from sitegen.config.model import FilterSpec, SiteConfig
from sitegen.config.urls import ENV_REF_RE, MIN_CREDENTIAL, MIN_SECRET, credential_names
from sitegen.filters import json_nodes, osv, osv_archive, osv_severity, purls
from sitegen.filters.advisories import KEY, AdvisoryPolicy, policy_of
from sitegen.filters.osv import Advisory
from sitegen.filters.osv_archive import ArchiveError, read_archive
from sitegen.layout import advisory_feed_dir, feed_copy, is_feed_copy

FeedAdvisories = Mapping[str, tuple[Advisory, ...]]  # feed URL as written -> its advisories


def level_feeds(level: FilterSpec) -> tuple[str, ...]:
    """The feed URLs one filter level names (as written)."""
    policy = policy_of(level)
    return policy.feeds if policy is not None else ()


def feed_urls(levels: Iterable[FilterSpec]) -> list[str]:
    """The feed URLs these levels name, each once, in order."""
    return list(dict.fromkeys(url for level in levels for url in level_feeds(level)))


def site_feeds(config: SiteConfig) -> list[str]:
    """Every feed URL the configuration names, at any level."""
    levels = [config.filters, *(c.filters for c in config.channels)]
    return feed_urls([*levels, *(m.filters for _c, m in config.mirrors)])


def with_feeds(config: SiteConfig, found: FeedAdvisories) -> SiteConfig:
    """``config`` with each advisory policy holding the advisories of its feeds in ``found``
    (a feed not there adds none). A level without feeds stays the very same object."""

    def level(spec: FilterSpec) -> FilterSpec:
        policy = policy_of(spec)
        if policy is None or not policy.feeds:
            return spec
        fed = tuple(a for url in policy.feeds for a in found.get(url, ()))
        return _with_policy(spec, replace(policy, fed=fed))

    channels = tuple(
        replace(
            channel,
            filters=level(channel.filters),
            mirrors=tuple(replace(m, filters=level(m.filters)) for m in channel.mirrors),
        )
        for channel in config.channels
    )
    return replace(config, filters=level(config.filters), channels=channels)


def _with_policy(spec: FilterSpec, policy: AdvisoryPolicy) -> FilterSpec:
    return replace(spec, extra=tuple((k, policy if k == KEY else v) for k, v in spec.extra))


def read_served(url: str, archive: Path) -> tuple[Advisory, ...]:
    """The advisories of an archive the feed at ``url`` (as written) served (ArchiveError when
    it cannot be used), with the secrets of its URL hidden (see :func:`_hidden`)."""
    return _hidden(url, read_archive(archive))


def _hidden(url: str, advisories: tuple[Advisory, ...]) -> tuple[Advisory, ...]:
    """The advisories of the feed at ``url`` with the values of its ${ENV} references (as they
    are or percent-encoded) written as ``***`` in what is shown or kept of them as text: the id
    (a record left out for one is counted under ``advisory <id>`` in the log, the run records
    and pages), the aliases, the summary (on the package pages), the vectors and the notes of
    what was skipped or unscored. A feed may echo the token it is reached with, as any
    upstream may; hidden before the copy is kept, a value stays hidden once it is rotated.
    The advisory still applies: refusing it would let through what it names.

    What it names (its affected entries' names, versions and events) is not text to hide:
    changed, it would block something else. An entry holding a credential of the URL (see
    :func:`sitegen.config.urls.credential_names`) refuses the archive, as a record holding one
    is refused; shorter values and user names are ordinary text there (``reader``)."""
    environ = (os.environ.get(name, "") for name in ENV_REF_RE.findall(url))
    search = SecretSearch(value for value in environ if len(value) >= MIN_SECRET)
    if not search:
        return advisories
    credentials = (os.environ.get(name, "") for name in credential_names(url))
    named = SecretSearch(value for value in credentials if len(value) >= MIN_CREDENTIAL)
    kept: list[Advisory] = []
    for advisory in advisories:
        if named and named.holds(_names(advisory)):
            raise ArchiveError(
                f"advisory {search.hide(advisory.id)!r}: an affected entry holds a credential of"
                " the feed's URL"
            )
        shown = [advisory.id, *advisory.aliases, advisory.summary, *advisory.vectors]
        if search.holds([*shown, *advisory.skipped, *advisory.unscored]):
            advisory = replace(
                advisory,
                id=search.hide(advisory.id),
                aliases=tuple(map(search.hide, advisory.aliases)),
                summary=search.hide(advisory.summary),
                vectors=tuple(map(search.hide, advisory.vectors)),
                skipped=tuple(map(search.hide, advisory.skipped)),
                unscored=tuple(map(search.hide, advisory.unscored)),
            )
        kept.append(advisory)
    return tuple(kept)


def _names(advisory: Advisory) -> list[str]:
    """The text of what an advisory names: its entries' package keys, versions and events."""
    return [
        text
        for entry in advisory.affected
        for text in (
            entry.name,
            *entry.versions,
            *(version for r in entry.ranges for _kind, version in r.events),
        )
    ]


def kept_copy(root: Path, url: str) -> Path:
    """Where the last good copy of the feed at ``url`` (as written) is kept, as this sitegen
    reads advisories: a run that finds the feed unchanged (a 304), and the renders, decode it
    in a tenth of the time parsing the archive takes, which at tens of thousands of advisories
    is seconds. Its name holds a digest of the reader's code: a copy read by other code
    (another sitegen, another release of cvss, of py-rattler or of packageurl-python, whose
    versions decide which are valid and what their purls read as) is not taken for one, and
    the feed is fetched whole again."""
    key = _reader_digest().hex()[:24]
    return feed_copy(advisory_feed_dir(root, url), key)


def kept_advisories(
    root: Path, url: str, reachable: Callable[[Path], bool]
) -> tuple[Advisory, ...] | None:
    """The advisories of the last good copy of the feed at ``url``: this sitegen's, else one
    another sitegen kept (the newest that can be read), until a run has fetched the feed again;
    None when there is none, as when ``reachable`` refuses the feed's folder (one reached
    through a link planted in the state, which is never read through: the store judges it,
    see :func:`~sitegen.store.links_out.own_state_folder`)."""
    if not reachable(advisory_feed_dir(root, url)):
        return None
    current = kept_copy(root, url)
    advisories = read_copy(current)
    if advisories is not None:
        return advisories
    try:
        with os.scandir(current.parent) as entries:
            others = [
                Path(e.path) for e in entries if is_feed_copy(e.name) and e.name != current.name
            ]
    except OSError:
        return None
    for other in sorted(others, key=_mtime, reverse=True):
        advisories = read_copy(other)
        if advisories is not None:
            return advisories
    return None


def _mtime(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


# A run reads its feeds' copies, then the render after it in the same process reads them again:
# a large copy is decoded (a second at tens of thousands of advisories) once per file as it is
# on disk, by its identity, which a rename into place keeps. An entry goes once the name it was
# last read under holds another file, so a long-lived process (sitegen watch) keeps about one
# copy per feed.
Identity = tuple[int, int, int, int]
_READ: dict[Identity, tuple[Path, tuple[Advisory, ...]]] = {}
_READ_KEPT = 16


def read_copy(path: Path) -> tuple[Advisory, ...] | None:
    """The advisories of a feed's copy kept at ``path``; None when there is none, or it cannot
    be decoded (cut short by a power cut, or written by a sitegen whose advisories differ)."""
    try:
        identity = _identity(path)
        if identity in _READ:
            return _READ[identity][1]
        advisories = _COPY.decode(path.read_bytes())
    except (OSError, msgspec.DecodeError):
        return None
    remember(path, advisories, identity)
    return advisories


def remember(
    path: Path, advisories: tuple[Advisory, ...], identity: Identity | None = None
) -> None:
    """Note that the copy at ``path`` holds ``advisories`` (just written there, or read)."""
    identity = identity or _identity(path)
    for known, (other, _advisories) in list(_READ.items()):
        if _identity_or_none(other) not in (known, None):  # None: renamed into place
            del _READ[known]
    while len(_READ) >= _READ_KEPT:
        del _READ[next(iter(_READ))]
    _READ[identity] = (path, advisories)


# The code that decides what an archive reads as: its scores (osv_severity) and package keys
# (purls) are kept in the copy as read.
_READER = (osv, osv_archive, osv_severity, purls, json_nodes, operator_files, version)
_COPY = msgspec.msgpack.Decoder(tuple[Advisory, ...])


@functools.cache
def _reader_digest() -> bytes:
    libraries = (
        __version__,
        cvss.__version__,
        metadata.version("py-rattler"),
        metadata.version("packageurl-python"),
    )
    digest = hashlib.sha256(repr(libraries).encode())
    for module in _READER:
        digest.update(Path(module.__file__ or "").read_bytes())
    return digest.digest()


def encode_copy(advisories: tuple[Advisory, ...]) -> bytes:
    return msgspec.msgpack.encode(advisories)


def _identity(path: Path) -> Identity:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _identity_or_none(path: Path) -> Identity | None:
    try:
        return _identity(path)
    except OSError:
        return None


def with_kept_feeds(
    config: SiteConfig, root: Path, reachable: Callable[[Path], bool]
) -> SiteConfig:
    """``config`` with the advisories of the feeds' kept copies in the site at ``root`` (read
    offline: for the pages), those in folders ``reachable`` refuses left out."""
    urls = site_feeds(config)
    if not urls:
        return config
    found = {url: kept for url in urls if (kept := kept_advisories(root, url, reachable))}
    return with_feeds(config, found)
