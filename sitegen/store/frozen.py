"""Channels frozen from the command line: ``<site>/.sitegen/frozen.json``.

``sitegen freeze CHANNEL`` writes here without taking the site lock, so an operator can freeze a
channel while a run is under way; every run reads the file when it starts and again before it
merges, and a frozen channel keeps its published state. The file holds only what the command
line froze: ``frozen: true`` in channels.yaml freezes a channel as well, and only editing
channels.yaml lifts that.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import msgspec

from sitegen.config import SiteConfig
from sitegen.layout import frozen_path
from sitegen.store.site import Site


class FreezeEntry(msgspec.Struct, frozen=True):
    by: str
    reason: str
    when: float  # seconds since the epoch


class FrozenFile(msgspec.Struct):
    channels: dict[str, FreezeEntry] = msgspec.field(default_factory=dict)


@dataclass
class FrozenChannels:
    site: Site

    def load(self) -> dict[str, FreezeEntry]:
        """The channels frozen by command; an absent or unreadable file freezes nothing."""
        try:
            data = frozen_path(self.site.root).read_bytes()
        except OSError:
            return {}
        try:
            return msgspec.json.decode(data, type=FrozenFile).channels
        except (msgspec.DecodeError, msgspec.ValidationError):
            return {}

    def freeze(self, channel: str, by: str, reason: str) -> bool:
        """Freeze a channel; False when it already was."""
        channels = self.load()
        if channel in channels:
            return False
        channels[channel] = FreezeEntry(by=by, reason=reason, when=time.time())
        self._save(channels)
        return True

    def unfreeze(self, channel: str) -> bool:
        """Lift a freeze made by command; False when there was none."""
        channels = self.load()
        if channels.pop(channel, None) is None:
            return False
        self._save(channels)
        return True

    def _save(self, channels: dict[str, FreezeEntry]) -> None:
        path = frozen_path(self.site.root)
        self.site.ensure_dir(path.parent)
        ordered = dict(sorted(channels.items()))
        self.site.write_bytes(path, msgspec.json.format(msgspec.json.encode(FrozenFile(ordered))))


def with_freezes(config: SiteConfig, frozen: set[str] | dict[str, FreezeEntry]) -> SiteConfig:
    """The configuration with the channels frozen by command marked frozen, as if channels.yaml
    said so: a run's inputs then differ from those of a run before the freeze."""
    channels = tuple(
        replace(c, frozen=True) if c.path in frozen and not c.frozen else c for c in config.channels
    )
    return replace(config, channels=channels)
