"""Folders of a channel that a symbolic link leads out of the site, or into a loop of links.

The site's writer refuses every path through such a folder (:meth:`Site.path`), so each
command finds them first and leaves the channel alone, naming the folder: a run fails the
channel, a render leaves its pages out, ``verify`` reports it, ``remove`` refuses it. Nothing
is read, written or deleted through them, since what lies at the end of the link is not the
site's.
"""

from __future__ import annotations

import os
from pathlib import Path

from sitegen.config import ChannelConfig
from sitegen.config.model import LINK_LOOP, real_path
from sitegen.layout import REPODATA, STATE_DIR, state_dir
from sitegen.store.interface import SiteStorage
from sitegen.store.site import UnsafePathError


def leads_out(site: SiteStorage, *parts: str) -> str | None:
    """Why the folder ``parts`` of the site is not the site's (a link out of it, or a loop of
    links); None when it is (or is not there)."""
    folder = site.root.joinpath(*parts)
    resolved = real_path(folder)
    if resolved is None:
        return LINK_LOOP
    try:
        site.path(*parts)
    except UnsafePathError:
        return f"a link out of the site, to {resolved}"
    return None


def path_link_out(site: SiteStorage, path: str) -> str | None:
    """``<folder>: <why>`` for the first folder of the site's ``path`` (``path`` itself
    included) that leads out (see :func:`leads_out`); None when none does."""
    parts = path.split("/")
    for end in range(1, len(parts) + 1):
        why = leads_out(site, *parts[:end])
        if why is not None:
            return f"{'/'.join(parts[:end])}: {why}"
    return None


class LeadsOutError(OSError):
    """A path of the site through a link out of it, or a loop of links. An OSError: to its
    readers and writers it is a file that cannot be read or written, as it is not the site's."""


def within(site: SiteStorage, path: str) -> Path:
    """The site's file or folder ``path``; :class:`LeadsOutError`, naming the folder, when a
    folder of it leads out (see :func:`path_link_out`)."""
    why = path_link_out(site, path)
    if why is not None:
        raise LeadsOutError(why)
    return site.root / path


def channel_links_out(site: SiteStorage, channel: ChannelConfig) -> list[tuple[str, str]]:
    """(site-relative folder, why) for the folder of ``channel`` when it leads out, else for
    each of its configured subdirs that does."""
    found = []
    for parts in [(channel.path,)] + [(channel.path, subdir) for subdir in channel.subdirs]:
        why = leads_out(site, *parts)
        if why is None:
            continue
        found.append(("/".join(parts), why))
        if len(parts) == 1:  # its subdirs lead out through it: named once
            break
    return found


def channel_link_out(site: SiteStorage, channel: ChannelConfig) -> str | None:
    """``<folder>: <why>`` for the first folder of ``channel`` that leads out; None when none
    does."""
    found = channel_links_out(site, channel)
    return None if not found else f"{found[0][0]}: {found[0][1]}"


def removal_link_out(site: SiteStorage, path: str) -> str | None:
    """``<folder>: <why>`` for the site's folder ``path`` (a channel or subdir) when it or a
    folder above it leads out, or when a subdir in it does (a link whose end holds a
    ``repodata.json``, which the web server serves as published); None when none does.
    ``sitegen remove`` refuses such a path whole: what lies past the link is not the site's to
    delete, and the channel's state gone with it still served would be found by nothing."""
    why = path_link_out(site, path)
    if why is not None:
        return why
    parts = path.split("/")
    try:
        with os.scandir(site.root.joinpath(*parts)) as listing:
            links = sorted(entry.name for entry in listing if entry.is_symlink())
    except OSError:
        return None  # not a folder (or not there): nothing in it is served
    for name in links:
        why = leads_out(site, *parts, name)
        if why is not None and site.root.joinpath(*parts, name, REPODATA).is_file():
            return f"{path}/{name}: {why}"
    return None


def own_state_folder(site: SiteStorage, folder: Path) -> bool:
    """Whether ``folder`` of the private state is reached through no link planted in it (see
    :func:`state_link_out`): what the rooms that read state beside the store are handed."""
    return state_link_out(site, folder) is None


def state_link_out(site: SiteStorage, folder: Path) -> str | None:
    """``<folder>: <why>`` for the first folder from ``.sitegen/`` down to ``folder`` (a folder
    of the private state, itself included) that is reached through a link, or a loop of links;
    None when none is. ``.sitegen/`` itself may be a link (the state kept on another disk, the
    operator's choice); a link planted below it is never followed, as what it leads to is not
    the state's."""
    top = state_dir(site.root)
    real_top = real_path(top)
    if real_top is None:
        return f"{STATE_DIR}: {LINK_LOOP}"
    parts = folder.relative_to(top).parts
    for end in range(1, len(parts) + 1):
        name = "/".join((STATE_DIR, *parts[:end]))
        resolved = real_path(top.joinpath(*parts[:end]))
        if resolved is None:
            return f"{name}: {LINK_LOOP}"
        if resolved != real_top.joinpath(*parts[:end]):
            ours = resolved.is_relative_to(real_top) or resolved.is_relative_to(site.root.resolve())
            return f"{name}: {'a link' if ours else 'a link out of the site'}, to {resolved}"
    return None
