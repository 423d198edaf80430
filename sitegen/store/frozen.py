"""Channels frozen from the command line: ``<site>/.sitegen/frozen.json``.

``sitegen freeze CHANNEL`` writes here without taking the site lock, so an operator can freeze a
channel while a run is under way; every run reads the file when it starts and again before it
merges, and a frozen channel keeps its published state. The file holds only what the command
line froze: ``frozen: true`` in channels.yaml freezes a channel as well, and only editing
channels.yaml lifts that.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

import msgspec

from sitegen.config import SiteConfig
from sitegen.layout import frozen_lock_path, frozen_path
from sitegen.store.lock import taking_turns
from sitegen.store.site import Site


class FreezeEntry(msgspec.Struct, frozen=True):
    by: str
    reason: str
    when: float  # seconds since the epoch


class FrozenFile(msgspec.Struct):
    channels: dict[str, FreezeEntry] = msgspec.field(default_factory=dict)


class FrozenStateError(Exception):
    """The freeze file is there but cannot be read: which channels are frozen is unknown."""


@dataclass
class FrozenChannels:
    site: Site

    def load(self) -> dict[str, FreezeEntry]:
        """The channels frozen by command; an absent file freezes nothing. A file that cannot
        be read raises :class:`FrozenStateError`: treating it as empty would publish channels
        an operator froze."""
        path = frozen_path(self.site.root)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise FrozenStateError(f"{path}: cannot read: {exc.strerror or exc}") from None
        try:
            return msgspec.json.decode(data, type=FrozenFile).channels
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise FrozenStateError(
                f"{path}: damaged ({exc}); repair it, or delete it and freeze again"
            ) from None

    def load_or_all(self, channels: Iterable[str]) -> tuple[set[str], str | None]:
        """The channels frozen by command, and why every one of ``channels`` counts as frozen
        instead (None when the file could be read): a run that cannot tell keeps them all."""
        try:
            return set(self.load()), None
        except FrozenStateError as exc:
            return set(channels), (
                f"which channels are frozen is unknown, so every channel is kept as published: {exc}"
            )

    def freeze(self, channel: str, by: str, reason: str) -> bool:
        """Freeze a channel; False when it already was."""
        with self._turn():
            channels = self.load()
            if channel in channels:
                return False
            channels[channel] = FreezeEntry(by=by, reason=reason, when=time.time())
            self._save(channels)
            return True

    def unfreeze(self, channel: str) -> bool:
        """Lift a freeze made by command; False when there was none."""
        with self._turn():
            channels = self.load()
            if channels.pop(channel, None) is None:
                return False
            self._save(channels)
            return True

    @contextlib.contextmanager
    def _turn(self) -> Iterator[None]:
        """Commands changing the file take turns (two operators at once must not lose one's
        freeze); runs only read it, without the site lock, so a freeze applies at once."""
        lock = frozen_lock_path(self.site.root)
        self.site.ensure_dir(lock.parent)
        with taking_turns(lock):
            yield

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
