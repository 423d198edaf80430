"""The advisories of the ``feeds`` the advisory filters name, joined to their policies.

A feed's last good copy is a zip archive in the site's state (:func:`sitegen.layout.
advisory_feed_dir`), which a run refreshes before it selects (:mod:`sitegen.sync.
advisory_feeds`). :func:`with_feeds` gives each policy the advisories of its feeds'
copies (:attr:`~sitegen.filters.advisories.AdvisoryPolicy.fed`), in a configuration of its
own; the run filters with that one, and the renderer reads the same copies offline
(:func:`with_kept_feeds`) for the advisories the package pages list.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Iterable, Mapping
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
from sitegen.config.urls import ENV_REF_RE, MIN_SECRET
from sitegen.filters import json_nodes, osv, osv_archive, purls
from sitegen.filters.advisories import KEY, AdvisoryPolicy, policy_of
from sitegen.filters.osv import Advisory
from sitegen.filters.osv_archive import ArchiveError, read_archive
from sitegen.layout import FEED_ARCHIVE, advisory_feed_dir, feed_parsed_copy

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
    (a feed not there adds none), the secrets of each feed's URL hidden in them (see
    :func:`_hidden`). A level without feeds stays the very same object."""
    found = {url: _hidden(url, advisories) for url, advisories in found.items()}

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


def _hidden(url: str, advisories: tuple[Advisory, ...]) -> tuple[Advisory, ...]:
    """The advisories of the feed at ``url`` (as written) with the values of its ${ENV}
    references hidden in what is shown of them: the id (a record left out for one is counted
    under ``advisory <id>`` in the log, the run records and pages), the aliases and the
    summary (on the package pages). A feed may echo the token it is reached with, as any
    upstream may. The advisory still applies: refusing it would let through what it names."""
    environ = (os.environ.get(name, "") for name in ENV_REF_RE.findall(url))
    search = SecretSearch(value for value in environ if len(value) >= MIN_SECRET)
    if not search:
        return advisories
    return tuple(
        replace(
            advisory,
            id=search.hide(advisory.id),
            aliases=tuple(map(search.hide, advisory.aliases)),
            summary=search.hide(advisory.summary),
        )
        if search.holds([advisory.id, *advisory.aliases, advisory.summary])
        else advisory
        for advisory in advisories
    )


def _with_policy(spec: FilterSpec, policy: AdvisoryPolicy) -> FilterSpec:
    return replace(spec, extra=tuple((k, policy if k == KEY else v) for k, v in spec.extra))


def kept_archive(root: Path, url: str) -> Path:
    """Where the last good copy of the feed at ``url`` (as written) is kept."""
    return advisory_feed_dir(root, url) / FEED_ARCHIVE


def kept_advisories(archive: Path) -> tuple[Advisory, ...] | None:
    """The advisories of a feed's kept copy; None when there is none, or it cannot be read."""
    try:
        return read_copy(archive)
    except (ArchiveError, OSError):
        return None


# A run reads its feeds' copies, then the render after it in the same process reads them again:
# a large archive is parsed (seconds) once per file as it is on disk, by its identity, which a
# rename into place keeps. An entry goes once the name it was last read under holds another
# file, so a long-lived process (sitegen watch) keeps about one copy per feed.
Identity = tuple[int, int, int, int]
_READ: dict[Identity, tuple[Path, tuple[Advisory, ...]]] = {}
_READ_KEPT = 16


def read_copy(archive: Path) -> tuple[Advisory, ...]:
    """The advisories of a copy of a feed (ArchiveError when it cannot be used, OSError when it
    cannot be opened): from its parsed copy when that is current (see :func:`parsed_copy`),
    else read from the archive."""
    identity = _identity(archive)
    if identity in _READ:
        advisories = _READ[identity][1]
    else:
        parsed = _decode_parsed(parsed_copy(archive, identity))
        advisories = read_archive(archive) if parsed is None else parsed
        for known, (path, _advisories) in list(_READ.items()):
            if _identity_or_none(path) not in (known, None):  # None: renamed into place
                del _READ[known]
        while len(_READ) >= _READ_KEPT:
            del _READ[next(iter(_READ))]
    _READ[identity] = (archive, advisories)
    return advisories


# The code that decides what an archive reads as: a parsed copy made by other code (another
# sitegen, another release of cvss or of py-rattler, whose versions decide which are valid) is
# not used.
_READER = (osv, osv_archive, purls, json_nodes, operator_files, version)
_PARSED = msgspec.msgpack.Decoder(tuple[Advisory, ...])


@functools.cache
def _reader_digest() -> bytes:
    libraries = (__version__, cvss.__version__, metadata.version("py-rattler"))
    digest = hashlib.sha256(repr(libraries).encode())
    for module in _READER:
        digest.update(Path(module.__file__ or "").read_bytes())
    return digest.digest()


def parsed_copy(archive: Path, identity: Identity | None = None) -> Path:
    """Where the advisories of ``archive`` as read are kept (beside it): a run that finds its
    feed unchanged (a 304), and the renders, decode them there in a tenth of the time parsing
    the archive takes, which at tens of thousands of advisories is seconds. Named by the
    archive's identity (which renaming a checked new copy into place keeps) and the reader's
    code; :mod:`sitegen.sync.advisory_feeds` writes it."""
    identity = identity or _identity(archive)
    key = hashlib.sha256(_reader_digest() + repr(identity).encode()).hexdigest()[:24]
    return feed_parsed_copy(archive.parent, key)


def encode_parsed(advisories: tuple[Advisory, ...]) -> bytes:
    return msgspec.msgpack.encode(advisories)


def _decode_parsed(path: Path) -> tuple[Advisory, ...] | None:
    """The advisories kept at ``path``; None when there are none (or they cannot be read: the
    archive is read instead)."""
    try:
        return _PARSED.decode(path.read_bytes())
    except (OSError, msgspec.DecodeError):
        return None


def _identity(path: Path) -> Identity:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _identity_or_none(path: Path) -> Identity | None:
    try:
        return _identity(path)
    except OSError:
        return None


def with_kept_feeds(config: SiteConfig, root: Path) -> SiteConfig:
    """``config`` with the advisories of the feeds' kept copies in the site at ``root`` (read
    offline: for the pages)."""
    urls = site_feeds(config)
    if not urls:
        return config
    found = {url: kept for url in urls if (kept := kept_advisories(kept_archive(root, url)))}
    return with_feeds(config, found)
