"""What the site's directory holds on disk, for ``sitegen status``: the space each channel
uses, and the published subdirs (and their channels) that no configured channel names any more.

A run only ever touches the channels and subdirs channels.yaml names. A channel taken out of
the file, or a subdir taken out of its mirrors' ``subdirs``, therefore stays on disk exactly
as last published, and the web server keeps serving it to clients (its pages go with the next
render, so the landing page no longer shows it). Nothing here deletes it: a name mistyped in
channels.yaml would otherwise throw away a whole channel. It is reported, so the operator can
delete it on purpose with ``sitegen remove`` (:mod:`sitegen.tools.remove`).
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from sitegen.config import SiteConfig
from sitegen.layout import installer_of_state, installer_states_dir
from sitegen.web.unconfigured import published_subdirs


@dataclass(frozen=True)
class UnconfiguredSubdir:
    """A directory of the site holding a ``repodata.json`` that no configured channel owns."""

    path: str  # relative to the site, e.g. "internal/old/linux-64"
    bytes: int
    files: int


@dataclass(frozen=True)
class UnconfiguredChannel:
    """The files of a channel no configured one is, outside its subdirs (counted apart, as
    :class:`UnconfiguredSubdir`): its ``channeldata.json``, ``notices.json``, pages and search
    index."""

    path: str  # relative to the site, e.g. "internal/old"
    bytes: int
    files: int


def disk_usage(directory: Path, skip: set[Path]) -> tuple[int, int]:
    """(bytes allocated, files) below ``directory``, as du counts them (hard links once),
    leaving out the directories in ``skip`` (channels nested inside this one, and subdirs
    ``sitegen status`` counts apart)."""
    total = files = 0
    seen: set[tuple[int, int]] = set()
    pending = [directory]
    while pending:
        for entry in _listing(pending.pop()):
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if entry.is_dir(follow_symlinks=False):
                if Path(entry.path) not in skip:
                    pending.append(Path(entry.path))
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
            files += 1
    return total, files


def _listing(directory: Path) -> list[os.DirEntry[str]]:
    """The entries of ``directory``; none when it cannot be listed (gone meanwhile, or not
    readable): the walks report what they can see."""
    try:
        with os.scandir(directory) as entries:
            return list(entries)
    except OSError:
        return []


def unconfigured_subdirs(
    root: Path, configured: set[str], measure: bool = True, folders: Collection[str] = ()
) -> list[UnconfiguredSubdir]:
    """The published subdirs under ``root`` (directories holding a ``repodata.json``) whose
    site-relative path (``<channel>/<subdir>``) is not in ``configured``, sorted by path;
    with ``measure``, with the disk each uses (else 0 bytes in 0 files). The installer
    folders ``folders`` (see :func:`installer_folders`) are none, whatever files they hold.

    Found by :func:`~sitegen.web.unconfigured.published_subdirs` (their package files are not
    listed unless measured).
    """
    found: list[UnconfiguredSubdir] = []
    for path in published_subdirs(root, folders):
        if path not in configured:
            used = disk_usage(root / path, set()) if measure else (0, 0)
            found.append(UnconfiguredSubdir(path, *used))
    return sorted(found, key=lambda u: u.path)


def unconfigured_channels(
    subdirs: Collection[UnconfiguredSubdir], channels: Collection[str]
) -> list[str]:
    """The channels of these unconfigured subdirs that are not configured channels ``channels``
    themselves, sorted: those ``sitegen remove`` takes whole."""
    parents = {u.path.rpartition("/")[0] for u in subdirs}
    return sorted(p for p in parents if p and p not in channels)


def installer_folders(config: SiteConfig) -> set[str]:
    """The installer folders of the site: those configured, and those a run mirrored (their
    state says so) that channels.yaml names no more."""
    return {i.path for i in config.installers} | set(unconfigured_installers(config))


def unconfigured_installers(config: SiteConfig) -> list[str]:
    """The installer folders a run mirrored into the site (their state says so) that are
    still there though channels.yaml names them no more, sorted."""
    configured = {i.path for i in config.installers}
    found = []
    for entry in _listing(installer_states_dir(config.output)):
        path = installer_of_state(entry.name)
        if path is None or path in configured:
            continue
        try:
            folder = (config.output / path).resolve()
        except (OSError, RuntimeError):
            continue
        if folder.is_relative_to(config.output.resolve()) and folder.is_dir():
            found.append(path)
    return sorted(found)
