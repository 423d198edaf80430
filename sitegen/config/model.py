"""The typed, immutable settings a channels.yaml describes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from sitegen.conda.notices import ChannelNotice
from sitegen.config.approval_model import ApprovalGate
from sitegen.config.site_settings import (
    DEFAULT_SHARD_GRACE_DAYS,
    DownloadSettings,
    HistoryRetention,
    NotifySettings,
    StatsSettings,
)
from sitegen.config.urls import ENV_REF_RE, credential_names, fill_url, redact_url, scrub_names


def real_path(path: Path) -> Path | None:
    """``path`` with its symbolic links resolved; None when they loop (Python raises
    RuntimeError for that before 3.13, OSError after)."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):
        return None


LINK_LOOP = "a loop of symbolic links"


@dataclass(frozen=True)
class FilterSpec:
    """One level of filters (site defaults, channel or mirror); every level must pass.

    Each filter kind (see :mod:`sitegen.filters.registry`) parses its key of ``filters:`` into
    some of these fields; a kind without fields here keeps its settings in ``extra``.
    """

    include_names: tuple[str, ...] = ()
    exclude_names: tuple[str, ...] = ()
    include_specs: tuple[str, ...] = ()
    exclude_specs: tuple[str, ...] = ()
    include_builds: tuple[str, ...] = ()
    exclude_builds: tuple[str, ...] = ()
    include_licenses: tuple[str, ...] = ()
    exclude_licenses: tuple[str, ...] = ()
    exclude_license_families: tuple[str, ...] = ()
    allow_missing_license: bool = True
    subdirs: tuple[str, ...] | None = None
    after_ms: int | None = None
    before_ms: int | None = None
    newest_versions: int | None = None
    max_size: int | None = None
    formats: str = "both"
    include_dependencies: bool | None = None
    # (name, value) pairs, sorted, so that a spec stays hashable and comparable.
    extra: tuple[tuple[str, object], ...] = ()

    @classmethod
    def from_values(cls, values: Mapping[str, object]) -> FilterSpec:
        """A spec from setting names and values: fields by name, anything else in ``extra``."""
        known = {k: v for k, v in values.items() if k in FILTER_FIELDS}
        extra = tuple(sorted((k, v) for k, v in values.items() if k not in FILTER_FIELDS))
        return cls(**known, extra=extra)  # type: ignore[arg-type]

    def setting(self, name: str) -> object:
        """A setting by name, from the fields or ``extra``; None when it is not set."""
        for key, value in self.extra:
            if key == name:
                return value
        return getattr(self, name) if name in FILTER_FIELDS else None

    @property
    def secret_env(self) -> tuple[str, ...]:
        """The ${ENV} names the URLs of this level's settings use: a kind's setting that names
        URLs (advisory feeds) lists them as its own ``secret_env``; their values are secrets,
        as a mirror URL's are."""
        return tuple(
            name for _key, value in self.extra for name in getattr(value, "secret_env", ())
        )

    @property
    def has_allowlist(self) -> bool:
        return bool(self.include_names or self.include_specs)

    @property
    def drops_records(self) -> bool:
        """Whether this level can leave out an upstream record (``include_dependencies`` alone
        only adds to an allowlist)."""
        return replace(self, include_dependencies=None) != FilterSpec()


# The settings FilterSpec has a field for.
FILTER_FIELDS = frozenset(f.name for f in fields(FilterSpec)) - {"extra"}


@dataclass(frozen=True)
class MirrorConfig:
    """One upstream source feeding a channel.

    ``kind`` names the source kind that reads it (see :mod:`sitegen.config.sources`); ``url``
    is where that source is, as written in channels.yaml.
    """

    name: str
    url: str  # may hold ${ENV} references; use source_url() / display_url()
    subdirs: tuple[str, ...]
    mode: str = "active"
    verify_tls: bool = True
    filters: FilterSpec = field(default_factory=FilterSpec)
    schedule: str | None = None  # cron expression; None means the default (daily)
    ca_bundle: str | None = None  # PEM file of the CAs trusted for it (else the site's)
    line: int = 0
    kind: str = "channel"
    # A local source's files are moved out of its folder once published (`move: true`).
    move: bool = False

    def source_url(self, environ: Mapping[str, str] | None = None) -> str:
        """The URL with ${ENV} references filled in (contains secrets: never log it)."""
        return fill_url(self.url, os.environ if environ is None else environ)

    def display_url(self) -> str:
        """The URL safe to show anywhere: tokens and ${ENV} values replaced by ***."""
        return redact_url(self.url).rstrip("/")

    @property
    def secret_env(self) -> tuple[str, ...]:
        """Every ${ENV} name the URL uses: their values are kept out of messages and of what
        is stored of its upstream, whatever part of the URL they fill."""
        return tuple(ENV_REF_RE.findall(self.url))

    @property
    def credential_env(self) -> tuple[str, ...]:
        """The ${ENV} names of :attr:`secret_env` that fill a credential (see
        :func:`credential_names`): an upstream record holding one of their values is refused."""
        return credential_names(self.url)


@dataclass(frozen=True)
class ChannelConfig:
    """A destination channel in the site, fed by one or more mirrors."""

    path: str
    filters: FilterSpec
    mirrors: tuple[MirrorConfig, ...]
    line: int = 0
    # Publish nothing new: the channel keeps its published state until unfrozen (by the YAML
    # key, or by `sitegen freeze`, which run.py folds in here when a run starts).
    frozen: bool = False
    # Package files whose records the upstream no longer lists stay downloadable (unlisted)
    # while the channel's filters would still take their records (see sitegen.sync.keep).
    keep_removed: bool = False
    # Set on an approval-gated channel: its one mirror reads the source channel of this site,
    # and only what an approval entry matches is published (see sitegen.config.approvals).
    approval: ApprovalGate | None = None
    # "public" (anyone) or "private" (only tokens; see sitegen.access). ``readers``: the token
    # names and group names of ``access.groups`` that may read a private channel.
    access: str = "public"
    readers: tuple[str, ...] = ()
    # The upstream URL this channel stands in for in pixi's `[mirrors]` (`mirror_of:`); None:
    # the one unfiltered mirror's upstream, if any (see sitegen.web.snippets).
    mirror_of: str | None = None
    notices: tuple[ChannelNotice, ...] = ()  # published as the channel's notices.json (CEP-6)

    @property
    def private(self) -> bool:
        return self.access == "private"

    @property
    def subdirs(self) -> tuple[str, ...]:
        seen = dict.fromkeys(s for m in self.mirrors for s in m.subdirs)
        seen.setdefault("noarch")
        return tuple(seen)


# MirrorConfig.kind of the source an installer folder is read from (see InstallerConfig).
INSTALLER_KIND = "installers"


@dataclass(frozen=True)
class InstallerConfig:
    """A folder of installers (Miniconda, Anaconda) published at ``path`` in the site, mirrored
    from an upstream folder whose index page is an HTML table of its files (``installers:``):
    the files the ``include``/``exclude`` globs select (of each include glob, the ``newest``
    most recently modified only, when set), each verified against the sha256 the index lists."""

    path: str
    url: str  # the upstream folder, as written: may hold ${ENV} references; no trailing slash
    include: tuple[str, ...] = ()  # fnmatch globs of file names; none: every file
    exclude: tuple[str, ...] = ()
    newest: int | None = None
    schedule: str | None = None  # cron expression for --due; None means the default (daily)
    line: int = 0

    def display_url(self) -> str:
        """The URL safe to show anywhere: tokens and ${ENV} values replaced by ***."""
        return redact_url(self.url).rstrip("/")

    @property
    def secret_env(self) -> tuple[str, ...]:
        return tuple(ENV_REF_RE.findall(self.url))

    def source(self) -> MirrorConfig:
        """The upstream its index and files are read from, for the upstream client (which
        opens one per mirror): a mirror of no subdir, named by the folder's path."""
        return MirrorConfig(
            name=self.path, url=self.url, subdirs=(), line=self.line, kind=INSTALLER_KIND
        )


@dataclass(frozen=True)
class AccessSettings:
    """Where the token store and the web server's token files live, and who reads them.

    ``dir`` holds ``tokens.json`` (names, scopes and one-way hashes only, mode 0600) and the
    files ``sitegen webconf`` makes the web server read; None means beside the site
    (:func:`sitegen.layout.access_dir`), never inside it. ``group``: the web server's group,
    which may read the generated files (mode 0640); ``reload``: the command that makes the web
    server re-read them (``sitegen token ... --reload``). ``site``: "private" makes every path
    of the site answer only to a token of the store (any, unless revoked or expired), on top of
    what each private channel's ``readers`` restrict.
    """

    site: str = "public"
    dir: Path | None = None
    group: str | None = None
    groups: tuple[tuple[str, tuple[str, ...]], ...] = ()  # group name -> token names
    reload: tuple[str, ...] = ()

    def members(self, name: str) -> tuple[str, ...]:
        """The token names a reader entry stands for: a group's members, or the name itself."""
        for group, names in self.groups:
            if group == name:
                return names
        return (name,)

    @property
    def site_private(self) -> bool:
        return self.site == "private"


@dataclass(frozen=True)
class SiteConfig:
    output: Path
    channels: tuple[ChannelConfig, ...]
    filters: FilterSpec = field(default_factory=FilterSpec)
    base_url: str | None = None
    title: str = "conda mirror"
    download: DownloadSettings = field(default_factory=DownloadSettings)
    max_delete_fraction: float = 0.5
    source: Path | None = None
    # CEP-16: how long a shard the index no longer names stays served (`shards: {grace_days}`)
    shard_grace_days: float = DEFAULT_SHARD_GRACE_DAYS
    # Also publish repodata.json.bz2 per subdir (`repodata: {bz2: true}`); see parse_repodata
    repodata_bz2: bool = False
    min_free_space: int = 0  # bytes a run must leave free on the site's filesystem
    history: HistoryRetention = field(default_factory=HistoryRetention)
    notify: NotifySettings = field(default_factory=NotifySettings)
    stats: StatsSettings | None = None  # None: no download statistics
    access: AccessSettings = field(default_factory=AccessSettings)
    installers: tuple[InstallerConfig, ...] = ()  # folders of installers (``installers:``)

    @property
    def mirrors(self) -> list[tuple[ChannelConfig, MirrorConfig]]:
        return [(c, m) for c in self.channels for m in c.mirrors]

    def filter_levels(self, channel: ChannelConfig, mirror: MirrorConfig) -> tuple[FilterSpec, ...]:
        return (self.filters, channel.filters, mirror.filters)

    def subdir_paths(self) -> set[str]:
        """Every ``<channel>/<subdir>`` a run of this configuration publishes."""
        return {f"{c.path}/{subdir}" for c in self.channels for subdir in c.subdirs}

    @property
    def secret_env(self) -> tuple[str, ...]:
        """The ${ENV} names whose values are secrets: those of the mirrors' URLs, of the URLs
        filters name (advisory feeds) and of the installer folders' URLs, each once."""
        levels = [self.filters, *(c.filters for c in self.channels)]
        levels += [m.filters for _c, m in self.mirrors]
        names = [name for _c, m in self.mirrors for name in m.secret_env]
        names += [name for level in levels for name in level.secret_env]
        names += [name for installer in self.installers for name in installer.secret_env]
        return tuple(dict.fromkeys(names))


def child_environment(config: SiteConfig) -> dict[str, str]:
    """The environment for a command sitegen starts (a notification hook, a web server reload):
    its own, without the variables that hold the tokens and passwords of the configured URLs."""
    secret = set(config.secret_env)
    return {name: value for name, value in os.environ.items() if name not in secret}


def make_scrub(config: SiteConfig) -> Callable[[str], str]:
    """Hide tokens in text that came from a run (errors name URLs): URL tokens and the values
    of every ${ENV} the configured URLs use."""
    return scrub_names(config.secret_env)


def scrub_of(mirrors: Iterable[tuple[Any, MirrorConfig]]) -> Callable[[str], str]:
    """:func:`make_scrub` for the given (channel, mirror) pairs' secrets."""
    return scrub_names(name for _channel, mirror in mirrors for name in mirror.secret_env)
