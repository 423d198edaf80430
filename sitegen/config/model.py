"""The typed, immutable settings a channels.yaml describes."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from sitegen.conda.notices import ChannelNotice
from sitegen.config.site_settings import (
    DEFAULT_SHARD_GRACE_DAYS,
    HistoryRetention,
    NotifySettings,
)

ENV_REF_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


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
    def has_allowlist(self) -> bool:
        return bool(self.include_names or self.include_specs)


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
    line: int = 0
    kind: str = "channel"

    def source_url(self, environ: Mapping[str, str] | None = None) -> str:
        """The URL with ${ENV} references filled in (contains secrets: never log it)."""
        env = os.environ if environ is None else environ
        return ENV_REF_RE.sub(lambda m: env[m.group(1)], self.url).rstrip("/")

    def display_url(self) -> str:
        """The URL safe to show anywhere: tokens and ${ENV} values replaced by ***."""
        return redact_url(self.url).rstrip("/")

    @property
    def secret_env(self) -> tuple[str, ...]:
        return tuple(ENV_REF_RE.findall(self.url))


@dataclass(frozen=True)
class ChannelConfig:
    """A destination channel in the site, fed by one or more mirrors."""

    path: str
    filters: FilterSpec
    mirrors: tuple[MirrorConfig, ...]
    line: int = 0
    notices: tuple[ChannelNotice, ...] = ()  # published as the channel's notices.json (CEP-6)

    @property
    def subdirs(self) -> tuple[str, ...]:
        seen = dict.fromkeys(s for m in self.mirrors for s in m.subdirs)
        seen.setdefault("noarch")
        return tuple(seen)


@dataclass(frozen=True)
class DownloadSettings:
    concurrency: int = 32
    per_host: int = 32
    retries: int = 4
    timeout: float = 60.0


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
    min_free_space: int = 0  # bytes a run must leave free on the site's filesystem
    history: HistoryRetention = field(default_factory=HistoryRetention)
    notify: NotifySettings = field(default_factory=NotifySettings)

    @property
    def mirrors(self) -> list[tuple[ChannelConfig, MirrorConfig]]:
        return [(c, m) for c in self.channels for m in c.mirrors]

    def filter_levels(self, channel: ChannelConfig, mirror: MirrorConfig) -> tuple[FilterSpec, ...]:
        return (self.filters, channel.filters, mirror.filters)


def redact_url(url: str) -> str:
    """Hide anaconda.org-style tokens, ${ENV} references and user:password parts."""
    url = ENV_REF_RE.sub("***", url)
    url = re.sub(r"/t/[^/]+", "/t/***", url)
    return re.sub(r"//[^/@]+@", "//***@", url)


def make_scrub(config: SiteConfig) -> Callable[[str], str]:
    """Hide tokens in text that came from a run (errors name URLs): URL tokens and the values
    of every ${ENV} the configured URLs use."""
    secrets = sorted(
        {
            value
            for _channel, mirror in config.mirrors
            for name in mirror.secret_env
            if len(value := os.environ.get(name, "")) >= 4
        },
        key=len,
        reverse=True,
    )

    def scrub(text: str) -> str:
        text = redact_url(str(text))
        for secret in secrets:
            text = text.replace(secret, "***")
        return text

    return scrub
