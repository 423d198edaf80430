"""``sitegen verify`` over a channel as a whole, beyond the files of each published subdir.

A configured subdir that was published (its siblings, package files, shards or private state
are still there; for ``noarch``, which every channel serves, any other subdir of the channel
published) but has no ``repodata.json`` now is reported: conda clients fail on it (on a
channel without ``noarch/repodata.json``, every one of them). ``--repair`` does not rebuild
it: the ``.zst`` beside it may be of an older publication, and only upstream says what the
subdir holds now, so the report says to run the channel instead and nothing is deleted. A
configured subdir never published (its upstream serves none) is no problem.

A published channel's CEP-6 ``notices.json`` must be what the publisher makes of its
``notices:`` now (:func:`sitegen.conda.notices.encode_notices`: the expired ones left out, no
file without an active notice), which ``--repair`` writes as a run does. A frozen channel
keeps the one it published, as its runs do.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from sitegen.conda.notices import encode_notices
from sitegen.config import ChannelConfig
from sitegen.layout import (
    REPODATA,
    is_package_file,
    notices_path,
    present_metadata_files,
    shards_dir,
    subdir_state_paths,
)
from sitegen.store.interface import SiteStorage
from sitegen.store.site import Site
from sitegen.sync.publish_channel import write_notices

# (site-relative path, kind of problem, what is wrong, repaired), as
# :class:`sitegen.tools.verify.Problem` takes them.
Found = tuple[str, str, str, bool]

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


def channel_problems(site: Site, channel: ChannelConfig, frozen: bool, repair: bool) -> list[Found]:
    """What is wrong with ``channel`` as a whole (nothing for a channel never published)."""
    lost = lost_repodata(site, channel)
    if not lost and not published_subdirs(site, channel):
        return []
    problems = _lost_problems(channel, lost, frozen)
    if not frozen:
        problems += _notices_problems(site, channel, repair)
    return problems


def _lost_problems(channel: ChannelConfig, lost: list[str], frozen: bool) -> list[Found]:
    """One problem per subdir that lost its repodata.json, saying what publishes it again."""
    mirror = channel.mirrors[0].name  # a run of any mirror of a channel publishes all of it
    run = f"sitegen mirror --only {mirror}"
    if frozen:
        run = f"unfreeze {channel.path}, then {run}"
    why = (
        "missing, though the subdir was published (its files or state remain): conda clients"
        " fail on it, and --repair cannot rebuild it without upstream; run " + run
    )
    return [(f"{channel.path}/{s}/{REPODATA}", "metadata", why, False) for s in lost]


def _notices_problems(site: Site, channel: ChannelConfig, repair: bool) -> list[Found]:
    relative = notices_path(channel.path)
    try:
        published: bytes | None = site.path(*relative.split("/")).read_bytes()
    except FileNotFoundError:
        published = None
    expected = encode_notices(channel.notices, datetime.now(UTC))
    if published == expected:
        return []
    if expected is None:
        why = "published though channels.yaml gives no active notice (conda shows it on install)"
    elif published is None:
        why = "missing, though channels.yaml gives active notices"
    else:
        why = "does not hold the active notices channels.yaml gives"
    repaired = False
    if repair:
        error = write_notices(site, channel)
        repaired = error is None
        why += "" if error is None else f"; repair failed: {error}"
    return [(relative, "metadata", why, repaired)]
