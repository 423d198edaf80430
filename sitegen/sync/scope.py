"""What one mirror run covers: the configuration, the options, the site and the channels
whose mirrors were selected."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sitegen.config import ChannelConfig, InstallerConfig, MirrorConfig, SiteConfig
from sitegen.net.activity import Activity
from sitegen.store.links_out import channel_link_out
from sitegen.store.site import Site
from sitegen.sync.inputs import file_signature
from sitegen.sync.options import MirrorOptions


@dataclass(frozen=True)
class RunScope:
    """What one run covers: channels with a selected mirror are rebuilt, and their other
    mirrors ride along from what their last run fetched; the selected installer folders are
    mirrored after them."""

    config: SiteConfig
    options: MirrorOptions
    site: Site
    selected: frozenset[str]
    channels: tuple[ChannelConfig, ...]
    # The requests in flight upstream, for the heartbeat of a run waiting on the network.
    activity: Activity = field(default_factory=Activity, compare=False)
    installers: tuple[InstallerConfig, ...] = ()

    @classmethod
    def of(
        cls,
        config: SiteConfig,
        options: MirrorOptions,
        site: Site,
        selected: set[str],
        installers: set[str] | frozenset[str] = frozenset(),
    ) -> RunScope:
        channels = tuple(c for c in config.channels if any(m.name in selected for m in c.mirrors))
        folders = tuple(i for i in config.installers if i.path in installers)
        return cls(config, options, site, frozenset(selected), channels, installers=folders)

    def without_links_out(self) -> tuple[RunScope, dict[str, str]]:
        """This scope less the channels whose folder (or a subdir's) a link leads out of the
        site or into a loop, and those channels' ``<folder>: <why>`` by path: the site's
        writer refuses every path through them, so they fail before anything is fetched, and
        the other channels run."""
        linked = {c.path: why for c in self.channels if (why := channel_link_out(self.site, c))}
        if not linked:
            return self, linked
        channels = tuple(c for c in self.channels if c.path not in linked)
        names = {m.name for c in channels for m in c.mirrors}
        return replace(self, channels=channels, selected=self.selected & names), linked

    @property
    def mirrors(self) -> list[tuple[ChannelConfig, MirrorConfig]]:
        return [(c, m) for c in self.channels for m in c.mirrors]

    @property
    def passive(self) -> set[str]:
        return {m.name for _c, m in self.mirrors if m.mode == "passive"}

    def signature(self) -> dict[str, list[int]]:
        return file_signature(self.site, list(self.channels), self.passive)
