"""What the pages say of a frozen channel: that runs keep what it publishes, and, for a freeze by
``sitegen freeze``, since when, by whom and why, as ``sitegen status`` says it.

The note is part of the inputs of the channel's page and of its approval pages (see
:mod:`sitegen.web.channel_pages`, :mod:`sitegen.web.render`), so a freeze or an unfreeze renders
them again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sitegen.config import SiteConfig
from sitegen.store.frozen import FrozenChannels, FrozenStateError
from sitegen.store.site import Site


def frozen_notes(
    config: SiteConfig, site: Site, scrub: Callable[[str], str]
) -> dict[str, dict[str, Any]]:
    """Channel path -> what its pages say of its freeze, for the frozen channels only.

    ``frozen: true`` in channels.yaml names no one (``sitegen status`` says the same); a freeze
    file that cannot be read freezes every channel, as runs then keep them all. The freeze's
    text is the operator's, from the command line: ``scrub`` hides what the configuration
    holds as secrets in it."""
    try:
        freezes = FrozenChannels(site).load()
        unreadable = False
    except FrozenStateError:
        freezes, unreadable = {}, True
    notes: dict[str, dict[str, Any]] = {}
    for channel in config.channels:
        entry = freezes.get(channel.path)
        if channel.frozen:
            notes[channel.path] = {"how": "config"}
        elif entry is not None:
            notes[channel.path] = {
                "how": "command",
                "by": scrub(entry.by),
                "since": entry.when,
                "reason": scrub(entry.reason),
            }
        elif unreadable:
            notes[channel.path] = {"how": "unknown"}
    return notes
