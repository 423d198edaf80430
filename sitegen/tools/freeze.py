"""``sitegen freeze`` / ``unfreeze``: hold a channel at its published state, or release it.

A channel is frozen when channels.yaml says ``frozen: true`` or when ``sitegen freeze`` froze it
(recorded in the site's state, see :mod:`sitegen.store.frozen`); it is unfrozen only when neither
holds. ``unfreeze`` lifts the command's freeze; a freeze written in channels.yaml is lifted by
editing the file, and ``unfreeze`` says so instead of pretending.
"""

from __future__ import annotations

from sitegen.config import ChannelConfig, ConfigError, SiteConfig, make_scrub
from sitegen.store.frozen import FrozenChannels
from sitegen.store.site import Site


def find_channel(config: SiteConfig, path: str) -> ChannelConfig:
    wanted = path.strip("/")
    for channel in config.channels:
        if channel.path == wanted:
            return channel
    known = ", ".join(c.path for c in config.channels)
    raise ConfigError(f"no channel {path!r} in the configuration; channels are: {known}")


def freeze(config: SiteConfig, path: str, by: str, reason: str) -> str:
    channel = find_channel(config, path)
    site = Site(config.output)
    # The text is the operator's, kept in the site and shown by status and the pages: the
    # secrets the configuration holds (a leaked token named in the reason) are hidden in it.
    scrub = make_scrub(config)
    added = FrozenChannels(site).freeze(channel.path, scrub(by), scrub(reason))
    if not added:
        return f"{channel.path} was already frozen"
    also = " (channels.yaml freezes it as well)" if channel.frozen else ""
    return f"{channel.path} is frozen: runs keep its published state until unfrozen{also}"


def unfreeze(config: SiteConfig, path: str) -> str:
    channel = find_channel(config, path)
    lifted = FrozenChannels(Site(config.output)).unfreeze(channel.path)
    if channel.frozen:
        source = str(config.source) if config.source else "channels.yaml"
        raise ConfigError(
            f"{source}:{channel.line}: channels.{channel.path}.frozen: the channel is frozen in"
            f" the configuration; remove 'frozen: true' there to unfreeze it"
            + (" (the freeze by command was lifted)" if lifted else "")
        )
    if not lifted:
        return f"{channel.path} was not frozen"
    return f"{channel.path} is unfrozen: the next run publishes it again"
