"""``sitegen verify`` over a published subdir's origins map (:mod:`sitegen.store.origins`):
which mirror supplied each file its ``repodata.json`` lists.

The pull-through fetcher fetches a missing file of a passive mirror from the mirror the map
names for it (any file of a channel with one mirror from that mirror), and ``--repair`` fetches
a missing or corrupt file from there too. A map that cannot be read, or that names no mirror
of the channel for a listed file (lost, an entry dropped, a mirror channels.yaml no longer
gives the channel), leaves such a file with nowhere to come from. A lost map of a channel with
one mirror leaves every file its mirror, but not where that mirror's packages live (CEP-15's
``base_url``, which the map alone keeps): every run writes a map, so one missing is reported
too. Reported, not repaired: which mirror supplied what, and where it keeps its packages, is
upstream's to say, and a run writes the map again, so the report names the run. The one map
rebuilt is that of a channel fed by one local source alone: every file is that source's, and a
folder has no ``base_url``. A map wider than the publication (a run killed while it published)
is sound: only the listed files are judged.
"""

from __future__ import annotations

from collections.abc import Collection

import msgspec

from sitegen.config import ChannelConfig
from sitegen.layout import origins_path
from sitegen.store.interface import SiteStorage
from sitegen.store.origins import Origins, read_origins, write_origins
from sitegen.sync.local import is_local
from sitegen.tools.verify_channel import Found, run_command


def origins_problems(
    site: SiteStorage,
    channel: ChannelConfig,
    subdir: str,
    listed: Collection[str],
    frozen: bool,
    repair: bool,
) -> tuple[Origins, list[Found]]:
    """The subdir's origins map (empty when it is lost or cannot be read) and what is wrong
    with it for the files ``listed``; with ``repair``, a map that can be known without
    upstream is written again."""
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
    if not nowhere and not unreadable:
        return origins, []
    why = [unreadable] if unreadable else []
    if nowhere:
        some = f"{len(nowhere)} files, e.g. {nowhere[0]}" if len(nowhere) > 1 else nowhere[0]
        why.append(f"names no mirror of the channel for {some} (listed in repodata.json)")
    elif only is not None:
        why.append("where the mirror keeps its packages (CEP-15 base_url) is lost with it")
    detail = (
        "; ".join(why) + "; the pull-through fetcher and --repair fetch each file from the"
        f" mirror it names: run {run_command(channel, frozen)}"
    )
    if repair and len(channel.mirrors) == 1 and is_local(channel.mirrors[0]):
        # Every file is the local source's, and a folder has no base_url: nothing upstream
        # knows better. As a run writes it, the map names each file's mirror.
        origins = Origins(dict.fromkeys(listed, channel.mirrors[0].name))
        write_origins(site, channel.path, subdir, origins)
        return origins, [(relative, "metadata", "; ".join(why), True)]
    return origins, [(relative, "metadata", detail, False)]
