"""``sitegen verify`` over a channel as a whole, beyond the files of each published subdir.

A configured subdir that was published (its siblings, package files, shards or private state
are still there; for ``noarch``, which every channel serves, any other subdir of the channel
published) but has no ``repodata.json`` now is reported: conda clients fail on it (on a
channel without ``noarch/repodata.json``, every one of them). ``--repair`` does not rebuild
it: the ``.zst`` beside it may be of an older publication, and only upstream says what the
subdir holds now, so the report says to run the channel instead and nothing is deleted. A
configured subdir never published (its upstream serves none) is no problem.
"""

from __future__ import annotations

import os

from sitegen.config import ChannelConfig
from sitegen.layout import (
    REPODATA,
    is_package_file,
    present_metadata_files,
    shards_dir,
    subdir_state_paths,
)
from sitegen.store.interface import SiteStorage

# (site-relative path, kind of problem, what is wrong), as
# :class:`sitegen.tools.verify.Problem` takes them.
Found = tuple[str, str, str]

NOARCH = "noarch"
_SIBLINGS = frozenset(present_metadata_files()) - {REPODATA}


def published_subdirs(site: SiteStorage, channel: ChannelConfig) -> list[str]:
    """The configured subdirs of ``channel`` with a ``repodata.json``."""
    root = site.path(channel.path)
    return [s for s in channel.subdirs if (root / s / REPODATA).is_file()]


def lost_repodata(site: SiteStorage, channel: ChannelConfig) -> list[str]:
    """The configured subdirs of ``channel`` that were published but have no
    ``repodata.json`` now."""
    published = published_subdirs(site, channel)
    lost = [
        subdir
        for subdir in channel.subdirs
        if subdir not in published and _was_published(site, channel, subdir)
    ]
    # Every run that publishes a channel publishes its noarch.
    if (published or lost) and NOARCH not in published + lost:
        lost.append(NOARCH)
    return lost


def _was_published(site: SiteStorage, channel: ChannelConfig, subdir: str) -> bool:
    """Whether anything a publication leaves is there: a sibling of repodata.json, a package
    file, the shards, or the subdir's private state (a temporary file is no sign: a run
    killed before its first publication leaves those)."""
    if any(path.exists() for path in subdir_state_paths(site.root, channel.path, subdir)):
        return True
    directory = site.path(channel.path, subdir)
    if shards_dir(directory).is_dir():
        return True
    try:
        with os.scandir(directory) as entries:
            return any(e.name in _SIBLINGS or is_package_file(e.name) for e in entries)
    except FileNotFoundError:
        return False


def lost_repodata_problems(site: SiteStorage, channel: ChannelConfig, frozen: bool) -> list[Found]:
    """One problem per subdir of :func:`lost_repodata`, saying what publishes it again."""
    mirror = channel.mirrors[0].name  # a run of any mirror of a channel publishes all of it
    run = f"sitegen mirror --only {mirror}"
    if frozen:
        run = f"unfreeze {channel.path}, then {run}"
    why = (
        "missing, though the subdir was published (its files or state remain): conda clients"
        " fail on it, and --repair cannot rebuild it without upstream; run " + run
    )
    return [
        (f"{channel.path}/{s}/{REPODATA}", "metadata", why) for s in lost_repodata(site, channel)
    ]
