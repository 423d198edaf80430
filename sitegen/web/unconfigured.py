"""The pages left on disk of the channels and subdirs channels.yaml no longer names.

A render removes the pages it no longer produces by the list its last manifest kept. Without
that manifest (lost, damaged, of another version) the pages of a channel taken out of
channels.yaml are found by what it published: its subdirs' folders (those holding a
``repodata.json``, which runs never delete when the configuration stops naming them; an
installer folder is none, whatever files it holds) lie in its folder, beside its own pages. Only the pages a render writes there are named: the listing
pages of such a subdir and, where the channel is not configured either, the channel's index,
search index, approval pages and package pages; its metadata and package files are left to
``sitegen remove``. An installer folder taken out is found by its state, which runs keep in
``.sitegen/installers/`` and only ``sitegen remove`` deletes: its page goes, its files stay.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection, Iterator
from pathlib import Path

from sitegen import layout
from sitegen.config import SiteConfig
from sitegen.sync.installer_state import linked_elsewhere


def unconfigured_pages(root: Path, config: SiteConfig) -> set[str]:
    """The site-relative paths of the pages on disk under ``root`` of the subdirs (and their
    channels) that ``config`` does not name."""
    channels = {channel.path for channel in config.channels}
    subdirs = {f"{c.path}/{subdir}" for c in config.channels for subdir in c.subdirs}
    found: set[str] = set()
    # An installer folder may hold a file named repodata.json too: it is no channel's subdir.
    folders = {installer.path for installer in config.installers}
    unconfigured = list(_unconfigured_installers(root, config))
    for subdir in published_subdirs(root, folders | set(unconfigured)):
        channel, _, name = subdir.rpartition("/")
        if not channel or subdir in subdirs:  # (a folder at the top is no channel's subdir)
            continue
        number = 1
        while (root / (page := layout.subdir_page_path(channel, name, number))).is_file():
            found.add(page)
            number += 1
        if channel in channels:
            continue
        own = [
            layout.channel_index_path(channel),
            layout.search_index_path(channel),
            layout.approved_page_path(channel),
            layout.pending_page_path(channel),
        ]
        found.update(page for page in own if (root / page).is_file())
        packages = layout.package_pages_dir(channel)
        with contextlib.suppress(OSError), os.scandir(root / packages) as entries:
            for entry in entries:
                if entry.name.endswith(".html") and entry.is_file(follow_symlinks=False):
                    found.add(f"{packages}/{entry.name}")
    for folder in unconfigured:
        page = layout.installer_page_path(folder)
        if (root / page).is_file():
            found.add(page)
    return found


def _unconfigured_installers(root: Path, config: SiteConfig) -> Iterator[str]:
    """The installer folders a run mirrored (their state says so) that ``config`` does not
    name, but for one that is a link to something else (its page would be another's)."""
    configured = [installer.path for installer in config.installers]
    channels = [channel.path for channel in config.channels]
    try:
        names = os.listdir(layout.installer_states_dir(root))
    except OSError:
        return
    for name in sorted(names):
        folder = layout.installer_of_state(name)
        if folder is None or folder in configured:
            continue
        if linked_elsewhere(root, channels, folder, configured) is None:
            yield folder


def published_subdirs(root: Path, folders: Collection[str]) -> Iterator[str]:
    """The site-relative paths of the folders holding a ``repodata.json``, not looked into
    (their package files are not listed), sitegen's own top-level names, dot-names and the
    installer folders ``folders`` left out: one directory listing per channel level and page
    folder, not one per package file."""
    pending = [root]
    while pending:
        current = pending.pop()
        try:
            with os.scandir(current) as listing:
                entries = list(listing)
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                continue
            if current == root and entry.name in layout.RESERVED_TOP:
                continue
            directory = Path(entry.path)
            if directory.relative_to(root).as_posix() in folders:
                continue
            if (directory / layout.REPODATA).is_file():
                yield directory.relative_to(root).as_posix()
            else:
                pending.append(directory)
