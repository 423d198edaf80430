"""``sitegen verify`` over a channel as a whole, beyond the files of each published subdir.

A configured subdir that was published (its siblings, package files, shards or private state
are still there; for ``noarch``, which every channel serves, any other subdir of the channel
published) but has no ``repodata.json`` now is reported: conda clients fail on it (on a
channel without ``noarch/repodata.json``, every one of them). ``--repair`` does not rebuild
it: the ``.zst`` beside it may be of an older publication, and only upstream says what the
subdir holds now, so the report says to run the channel instead and nothing is deleted. A
configured subdir never published (its upstream serves none) is no problem.

A ``repodata.json`` that is a link out of the site (or into a loop of links) is not read
(what it holds is not the site's): reported, its subdir left unchecked, for the operator to
remove and a run to publish again.

A freeze file (``.sitegen/frozen.json``) that cannot be read is reported, never repaired:
every run then keeps every channel as published and fails, and which channels were frozen is
the operator's to say. The check takes them all as frozen meanwhile, as the runs do.

A published channel's CEP-6 ``notices.json`` must be what the publisher makes of its
``notices:`` now (:func:`sitegen.conda.notices.encode_notices`: the expired ones left out, no
file without an active notice, a notice without ``created`` at the time it was first
published), which ``--repair`` writes as a run does. A frozen channel keeps the one it
published, as its runs do.

``channeldata.json`` is checked for what the subdirs' ``repodata.json`` determine of it, as
:func:`sitegen.conda.channeldata.build_channeldata` makes it of them: the channel's subdirs,
and for every package name of their records, its subdirs and newest version, no other name
listed. Its other details are not judged: a local source adds those of its packages'
``about.json``, which no ``repodata.json`` holds, and its run_exports are those of the
subdirs' ``run_exports.json``, checked there. ``--repair`` builds it again as a run does (with
the run_exports of the subdirs' ``run_exports.json``), but only for a channel without a local
source: a local source's channel is left for a run, which the report names.

Either file made a link out of the site (or into a loop of links) is named and left alone,
neither read nor written through: the site's writer refuses it, and so does a run.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

from sitegen.conda.channeldata import build_channeldata
from sitegen.conda.notices import encode_notices
from sitegen.conda.records import Record
from sitegen.config import ChannelConfig, SiteConfig
from sitegen.layout import (
    REPODATA,
    channeldata_path,
    frozen_path,
    is_package_file,
    notices_path,
    present_metadata_files,
    shards_dir,
    subdir_state_paths,
)
from sitegen.store.compare import NotAFileError, read_regular
from sitegen.store.frozen import FrozenChannels
from sitegen.store.interface import SiteStorage
from sitegen.store.links_out import channel_links_out, leads_out
from sitegen.store.site import Site
from sitegen.sync.local import is_local
from sitegen.sync.publish_channel import (
    ChannelContents,
    published_notices,
    published_run_exports,
    write_channeldata,
    write_notices,
)

# (site-relative path, kind of problem, what is wrong, repaired), as
# :class:`sitegen.tools.verify.Problem` takes them.
Found = tuple[str, str, str, bool]

NOARCH = "noarch"
_SIBLINGS = frozenset(present_metadata_files()) - {REPODATA}


def frozen_by_command(site: Site, config: SiteConfig) -> tuple[set[str], list[Found]]:
    """The channels frozen by ``sitegen freeze``: all of them, with the problem, when the
    freeze file cannot be read."""
    frozen, why = FrozenChannels(site).load_or_all(c.path for c in config.channels)
    path = frozen_path(site.root).relative_to(site.root).as_posix()
    return frozen, [(path, "metadata", why, False)] if why else []


def links_out(site: SiteStorage, channel: ChannelConfig) -> list[Found]:
    """The folder of ``channel``, or else those of its configured subdirs, that a link leads
    out of the site or into a loop: the site's writer never writes there (a run fails on
    them), so nothing of the channel is checked or repaired through them; reported, never
    repaired."""
    return [
        (folder, "metadata", f"{why}: left alone", False)
        for folder, why in channel_links_out(site, channel)
    ]


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


def channel_problems(
    site: Site,
    channel: ChannelConfig,
    records: dict[str, dict[str, Record]] | None,
    frozen: bool,
    repair: bool,
) -> list[Found]:
    """What is wrong with ``channel`` as a whole (nothing for a channel never published);
    ``records``: those of each of its published subdirs' ``repodata.json``, None when one
    cannot be read (then channeldata.json is not judged)."""
    lost = lost_repodata(site, channel)
    if not lost and not published_subdirs(site, channel):
        return []
    problems = [
        (f"{channel.path}/{s}/{REPODATA}", "metadata", _lost(channel, frozen), False) for s in lost
    ]
    notices, channeldata = notices_path(channel.path), channeldata_path(channel.path)
    linked = [_file_link_out(site, path) for path in (notices, channeldata)]
    problems += [found for found in linked if found is not None]
    if not frozen and linked[0] is None:
        problems += _notices_problems(site, channel, repair)
    # A lost repodata.json leaves the channel's records unknown.
    if records and not lost and linked[1] is None:
        problems += _channeldata_problems(site, channel, records, frozen, repair)
    return problems


def repodata_link_out(
    site: SiteStorage, channel: ChannelConfig, subdir: str, frozen: bool
) -> Found | None:
    """The problem of a subdir's ``repodata.json`` that is a link out of the site (or into a
    loop of links): what would be checked against it is not the site's, so it is not read;
    reported, never repaired: once the link is removed, a run publishes the subdir's own
    (one holding what the run would write is kept by it, as a file would be)."""
    relative = f"{channel.path}/{subdir}/{REPODATA}"
    why = leads_out(site, *relative.split("/"))
    if why is None:
        return None
    fix = f"remove it, then run {run_command(channel, frozen)}"
    return (relative, "metadata", f"{why}: left alone; {fix}", False)


def _file_link_out(site: Site, relative: str) -> Found | None:
    """The problem of a channel file of the site's that is a link out of it (or into a loop
    of links): the site's writer refuses it, as a run does, so it is named and left alone,
    neither read nor written through; None when it is not."""
    why = leads_out(site, *relative.split("/"))
    return None if why is None else (relative, "metadata", f"{why}: left alone", False)


def run_command(channel: ChannelConfig, frozen: bool) -> str:
    """The command that publishes ``channel`` again."""
    mirror = channel.mirrors[0].name  # a run of any mirror of a channel publishes all of it
    run = f"sitegen mirror --only {mirror}"
    return f"unfreeze {channel.path}, then {run}" if frozen else run


def _lost(channel: ChannelConfig, frozen: bool) -> str:
    return (
        "missing, though the subdir was published (its files or state remain): conda clients"
        " fail on it, and --repair cannot rebuild it without upstream; run "
        + run_command(channel, frozen)
    )


def _notices_problems(site: Site, channel: ChannelConfig, repair: bool) -> list[Found]:
    relative = notices_path(channel.path)
    target = site.path(*relative.split("/"))
    published = published_notices(target)
    expected = encode_notices(channel.notices, datetime.now(UTC), published)
    # Something there that is no file: a directory, a named pipe, a device.
    other = published is None and os.path.lexists(target)
    if published == expected and not other:
        return []
    if other:
        why = "something in its place that is not a file"
    elif expected is None:
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


def _channeldata_problems(
    site: Site,
    channel: ChannelConfig,
    records: dict[str, dict[str, Record]],
    frozen: bool,
    repair: bool,
) -> list[Found]:
    relative = channeldata_path(channel.path)
    made = build_channeldata(records)
    try:
        why = _channeldata_differs(read_regular(site.path(*relative.split("/"))), made)
    except FileNotFoundError:
        why = "missing"
    except NotAFileError as exc:
        why = str(exc)
    if not why:
        return []
    if any(is_local(mirror) for mirror in channel.mirrors):
        # about.json's details are in the file and in no repodata.json: a run keeps them.
        why += (
            "; --repair cannot rebuild it from repodata.json, which lacks a local source's"
            f" package details: run {run_command(channel, frozen)}"
        )
        return [(relative, "metadata", why, False)]
    repaired = False
    if repair:
        # Read after the subdirs' checks, which repair a run_exports.json first.
        exports = {s: published_run_exports(site.path(channel.path, s)) for s in records}
        error = write_channeldata(site, channel.path, ChannelContents(records, exports))
        repaired = error is None
        why += "" if error is None else f"; repair failed: {error}"
    return [(relative, "metadata", why, repaired)]


def _channeldata_differs(data: bytes, made: dict[str, Any]) -> str:
    """How channeldata.json (``data``) differs from ``made`` in what repodata.json determines;
    "" if it does not."""
    try:
        document = json.loads(data)
        packages = document["packages"]
        if not isinstance(packages, dict):
            raise TypeError("packages is not a JSON object")
    except (ValueError, TypeError, KeyError):
        return "unreadable"
    expected = made["packages"]
    differences = []
    if document.get("subdirs") != made["subdirs"]:
        differences.append(f"lists subdirs {document.get('subdirs')}, not {made['subdirs']}")
    left_out = sorted(expected.keys() - packages.keys())
    if left_out:
        differences.append(f"leaves out {_some(left_out)} of repodata.json")
    stray = sorted(packages.keys() - expected.keys())
    if stray:
        differences.append(f"lists {_some(stray)} that no repodata.json holds")
    for key, what in (("version", "newest version"), ("subdirs", "subdirs")):
        other = sorted(
            name
            for name in expected.keys() & packages.keys()
            if not isinstance(packages[name], dict)
            or packages[name].get(key) != expected[name][key]
        )
        if other:
            differences.append(f"gives {_some(other)} another {what} than repodata.json")
    return "; ".join(differences)


def _some(names: list[str]) -> str:
    return f"{len(names)} packages, e.g. {names[0]}" if len(names) > 1 else f"package {names[0]}"
