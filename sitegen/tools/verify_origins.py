"""``sitegen verify`` over a published subdir's origins map (:mod:`sitegen.store.origins`):
which mirror supplied each file its ``repodata.json`` lists.

The pull-through fetcher fetches a missing file of a passive mirror from the mirror the map
names for it (any file of a channel with one mirror from that mirror), and ``--repair`` fetches
a missing or corrupt file from there too. A map that cannot be read, or that names no mirror
of the channel for a listed file (lost, an entry dropped, a mirror channels.yaml no longer
gives the channel), leaves such a file with nowhere to come from. Reported, not repaired: which
mirror supplied what is upstream's to say, and a run writes the map again, so the report names
the run. A map wider than the publication (a run killed while it published) is sound: only
the listed files are judged.
"""

from __future__ import annotations

from collections.abc import Collection

import msgspec

from sitegen.config import ChannelConfig
from sitegen.layout import origins_path
from sitegen.store.interface import SiteStorage
from sitegen.store.origins import Origins, read_origins
from sitegen.tools.verify_channel import Found, run_command


def origins_problems(
    site: SiteStorage, channel: ChannelConfig, subdir: str, listed: Collection[str], frozen: bool
) -> tuple[Origins, list[Found]]:
    """The subdir's origins map (empty when it is lost or cannot be read) and what is wrong
    with it for the files ``listed``."""
    path = origins_path(site.root, channel.path, subdir)
    relative = path.relative_to(site.root).as_posix()
    unreadable = ""
    try:
        origins = read_origins(path)
    except FileNotFoundError:
        origins, unreadable = Origins(), "missing"
    except (OSError, msgspec.DecodeError) as exc:
        origins, unreadable = Origins(), f"cannot be read ({exc})"
    mirrors = {mirror.name for mirror in channel.mirrors}
    # As the fetcher resolves a file: the mirror named, or a channel's only one.
    only = channel.mirrors[0].name if len(channel.mirrors) == 1 else None
    named = origins.files.get
    nowhere = sorted(fn for fn in listed if (named(fn) or only) not in mirrors)
    # A lost map of a channel with one mirror loses only CEP-15 base_urls, which a run
    # writes only where upstream sets one: no sign of damage by itself.
    if not nowhere and unreadable in ("", "missing"):
        return origins, []
    why = [unreadable] if unreadable else []
    if nowhere:
        some = f"{len(nowhere)} files, e.g. {nowhere[0]}" if len(nowhere) > 1 else nowhere[0]
        why.append(f"names no mirror of the channel for {some} (listed in repodata.json)")
    detail = (
        "; ".join(why) + "; the pull-through fetcher and --repair fetch each file from the"
        f" mirror it names: run {run_command(channel, frozen)}"
    )
    return origins, [(relative, "metadata", detail, False)]
