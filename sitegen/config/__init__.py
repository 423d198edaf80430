"""channels.yaml: parsing, validation with file/line/key errors, the typed site model."""

from __future__ import annotations

from sitegen.config.channels import CHANNEL_SEGMENT_RE
from sitegen.config.load import load_config, parse_config
from sitegen.config.model import (
    AccessSettings,
    ChannelConfig,
    DownloadSettings,
    FilterSpec,
    InstallerConfig,
    MirrorConfig,
    SiteConfig,
    child_environment,
    make_scrub,
)
from sitegen.config.site_settings import HistoryRetention, NotifySettings, parse_size
from sitegen.config.sources import SourceKind, register_source
from sitegen.config.yaml_nodes import ConfigError, YamlNode

__all__ = [
    "CHANNEL_SEGMENT_RE",
    "AccessSettings",
    "ChannelConfig",
    "ConfigError",
    "DownloadSettings",
    "FilterSpec",
    "HistoryRetention",
    "InstallerConfig",
    "MirrorConfig",
    "NotifySettings",
    "SiteConfig",
    "SourceKind",
    "YamlNode",
    "child_environment",
    "load_config",
    "make_scrub",
    "parse_config",
    "parse_size",
    "register_source",
]
