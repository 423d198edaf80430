"""channels.yaml: parsing, validation with file/line/key errors, the typed site model."""

from __future__ import annotations

from sitegen.config.load import CHANNEL_SEGMENT_RE, load_config, parse_config
from sitegen.config.model import (
    AccessSettings,
    ChannelConfig,
    DownloadSettings,
    FilterSpec,
    MirrorConfig,
    SiteConfig,
    redact_url,
)
from sitegen.config.sources import SourceKind, register_source
from sitegen.config.yaml_nodes import ConfigError, YamlNode

__all__ = [
    "CHANNEL_SEGMENT_RE",
    "AccessSettings",
    "ChannelConfig",
    "ConfigError",
    "DownloadSettings",
    "FilterSpec",
    "MirrorConfig",
    "SiteConfig",
    "SourceKind",
    "YamlNode",
    "load_config",
    "parse_config",
    "redact_url",
    "register_source",
]
