"""Local sources that move files after a crash: the files a move left set aside in the folder.

A move renames the folder's file to a dot-file beside it first (see
:func:`sitegen.store.take.take_file`); a run killed before the second rename leaves it there,
where indexing never looks. Before the folder is indexed, each such file is put back under its
name, removed when it is there anyway, or moved into the store when the site publishes its
bytes (:func:`sitegen.store.take.recover_aside`), and logged.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import trio

from sitegen.conda.schema import PACKAGE_SUFFIXES
from sitegen.config import ChannelConfig, MirrorConfig
from sitegen.layout import local_index_path, local_store_path
from sitegen.store.site import Site, UnsafePathError
from sitegen.store.take import ASIDE_SUFFIX, name_set_aside, recover_aside
from sitegen.sync.local import folder_of, has_store, is_local, read_or_none
from sitegen.sync.local_index import decode_cache

log = logging.getLogger("sitegen")


async def recover_all(site: Site, mirrors: Iterable[tuple[ChannelConfig, MirrorConfig]]) -> None:
    """Deal with what interrupted moves left in the folders of the mirrors that move files, or
    did (a store holds files moved before ``move: true`` was turned off)."""
    for channel, mirror in mirrors:
        if is_local(mirror) and has_store(site, mirror):
            await trio.to_thread.run_sync(recover_folder, site, channel.path, mirror)


def recover_folder(site: Site, channel: str, mirror: MirrorConfig) -> None:
    folder = folder_of(mirror)
    # A long name is shortened in the aside name: the index cache knows the names it had.
    cached = decode_cache(read_or_none(local_index_path(site.root, mirror.name)))
    store = local_store_path(site.root, mirror.name)
    for prefix in ["", *(f"{subdir}/" for subdir in mirror.subdirs)]:
        directory = folder / prefix
        try:
            with os.scandir(directory) as entries:
                asides = sorted(
                    Path(entry.path)
                    for entry in entries
                    if entry.name.startswith(".")
                    and entry.name.endswith(ASIDE_SUFFIX)
                    and entry.is_file(follow_symlinks=False)
                )
        except OSError:  # no such subdir folder; the folder's own error is for indexing
            continue
        known = [key.removeprefix(prefix) for key in cached if key.startswith(prefix)]
        for aside in asides:
            stem = aside.name.removeprefix(".").removesuffix(ASIDE_SUFFIX)
            name = name_set_aside(
                aside, ([stem] if stem.endswith(PACKAGE_SUFFIXES) else []) + known
            )
            if name is None:
                done = "left there: its name does not say which file it was"
            else:
                try:
                    homes = [
                        (site.path(channel, subdir, name), store / subdir / name)
                        for subdir in mirror.subdirs
                    ]
                    done = recover_aside(site, aside, directory / name, homes)
                except (OSError, UnsafePathError) as exc:
                    done = f"left there: {getattr(exc, 'strerror', None) or exc}"
            log.warning(
                "%s: %s was set aside by a move that did not finish: %s", mirror.name, aside, done
            )
