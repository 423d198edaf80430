"""The private state of a channel (or subdir) that ``sitegen remove`` deletes: what runs and
renders kept for it under ``.sitegen/``, so that a channel published later under the same name
starts clean instead of inheriting timestamps, origins, caches or a freeze.

Every path comes from :mod:`sitegen.layout`: the per-subdir files
(:func:`~sitegen.layout.subdir_state_paths`), the records of the inputs of runs that built
the channel, the freeze by command, and the state of the mirrors that fed it and that the
configuration no longer names (their upstream caches, a local source's index and store).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import msgspec

from sitegen.config import SiteConfig
from sitegen.layout import (
    channel_state_dirs,
    inputs_dir,
    local_index_path,
    local_store_index_path,
    local_store_path,
    old_local_cache_paths,
    subdir_state_paths,
    upstream_cache_dir,
)
from sitegen.store.frozen import FrozenChannels, FrozenStateError
from sitegen.store.links_out import state_link_out
from sitegen.store.origins import load_origins
from sitegen.store.site import Site
from sitegen.sync.removal_journal import journals_link_out

log = logging.getLogger("sitegen")


def fed_by(site: Site, channel: str, subdirs: Iterable[str]) -> set[str]:
    """The mirrors the origins maps of these subdirs name (read before they are removed)."""
    names: set[str] = set()
    for subdir in subdirs:
        origins = load_origins(site, channel, subdir)
        names.update(origins.files.values())
        names.update(origins.package_bases)
    return names


def gone_mirrors(site: Site, config: SiteConfig, channel: str, subdirs: Iterable[str]) -> list[str]:
    """The mirrors that fed these subdirs and that the configuration no longer names: all
    their state goes with the whole channel (a ``move: true`` local source's store once its
    files are given back, see :mod:`sitegen.sync.local_return`)."""
    configured = {m.name for _c, m in config.mirrors}
    return [
        name
        for name in sorted(fed_by(site, channel, subdirs))
        # Not a name a configuration accepts: never reach outside the state.
        if _state_name(name) and name not in configured
    ]


def mirror_state_paths(
    site: Site, config: SiteConfig, channel: str, subdirs: Iterable[str], whole_channel: bool
) -> list[Path]:
    """The state of the mirrors that fed these subdirs, where no configured mirror uses it: a
    mirror's upstream cache of a subdir it no longer lists, and when the whole channel goes,
    everything of a mirror the configuration no longer names (a ``move: true`` local source's
    store included, which :mod:`sitegen.tools.remove` empties first)."""
    subdirs = list(subdirs)
    configured = {m.name: m for _c, m in config.mirrors}
    out: list[Path] = []
    for name in sorted(fed_by(site, channel, subdirs)):
        if not _state_name(name):
            continue  # not a name a configuration accepts: never reach outside the state
        mirror = configured.get(name)
        out += [
            upstream_cache_dir(site.root, name, s)
            for s in subdirs
            if mirror is None or s not in mirror.subdirs
        ]
    for name in gone_mirrors(site, config, channel, subdirs) if whole_channel else []:
        out += [
            upstream_cache_dir(site.root, name, "noarch").parent,
            local_index_path(site.root, name),
            local_store_index_path(site.root, name),
            local_store_path(site.root, name),
            # Where earlier versions kept its caches: files only (a folder there is a store).
            *(old for old, _new in old_local_cache_paths(site.root, name) if old.is_file()),
        ]
    return out


def _state_name(name: str) -> bool:
    return bool(name) and "/" not in name and name not in (".", "..") and "\x00" not in name


def inputs_records(site: Site, channel: str, subdirs: Iterable[str]) -> list[Path]:
    """The records of runs' inputs that vouch for files of these subdirs."""
    wanted = {(channel, s) for s in subdirs}
    directory = inputs_dir(site.root)
    out: list[Path] = []
    try:
        entries = sorted(directory.glob("*.json"))
    except OSError:
        return out
    for path in entries:
        try:
            built = msgspec.json.decode(path.read_bytes())
            named = {(c.get("channel"), c.get("subdir")) for c in built.get("channels", [])}
        except (OSError, msgspec.DecodeError, AttributeError, TypeError):
            continue  # not a record a run can match either
        if named & wanted:
            out.append(path)
    return out


def state_paths(
    site: Site, config: SiteConfig, channel: str, subdirs: Iterable[str], whole_channel: bool
) -> list[Path]:
    """Everything under ``.sitegen/`` that goes with these subdirs (and the channel, with
    ``whole_channel``), present or not; the mirrors' state first, as it is found through the
    origins maps, which go later."""
    subdirs = list(subdirs)
    paths = mirror_state_paths(site, config, channel, subdirs, whole_channel)
    paths += inputs_records(site, channel, subdirs)
    for subdir in subdirs:
        paths += subdir_state_paths(site.root, channel, subdir)
    if whole_channel:
        # Files of subdirs deleted by hand before, which nothing else would ever remove.
        for directory in channel_state_dirs(site.root, channel):
            try:
                with os.scandir(directory) as entries:
                    paths += [Path(e.path) for e in entries if not e.is_dir(follow_symlinks=False)]
            except OSError:
                continue
    return list(dict.fromkeys(paths))


def state_link_out_of(
    site: Site, config: SiteConfig, channel: str, subdirs: Iterable[str], whole_channel: bool
) -> str | None:
    """``<folder>: <why>`` for a folder of the private state that the removal of these subdirs
    (and of the channel) would delete from and that a link leads elsewhere, or into a loop
    (see :func:`~sitegen.store.links_out.state_link_out`); None when there is none. The
    journals' folder first (the removal's journal is written there, then deleted), then the
    channel's own folders: the origins maps found through them name the mirrors whose state
    goes too."""
    subdirs = list(subdirs)
    why = journals_link_out(site)
    if why is not None:
        return why
    for directory in channel_state_dirs(site.root, channel):
        why = state_link_out(site, directory)
        if why is not None:
            return why
    for path in state_paths(site, config, channel, subdirs, whole_channel):
        # A link that is itself one of the paths is removed, not followed: its folder counts.
        why = state_link_out(site, path.parent)
        if why is not None:
            return why
    return None


def remove_state(
    site: Site, config: SiteConfig, channel: str, subdirs: Iterable[str], whole_channel: bool
) -> int:
    """Delete the state of these subdirs (and of the channel); returns how many paths went."""
    removed = 0
    paths = state_paths(site, config, channel, subdirs, whole_channel)
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
            removed += 1
        elif site.remove(path):
            removed += 1
    if whole_channel:
        try:
            FrozenChannels(site).unfreeze(channel)
        except FrozenStateError as exc:
            log.warning("%s: its freeze by command is still recorded: %s", channel, exc)
    if whole_channel:
        paths += channel_state_dirs(site.root, channel)
    for path in paths:
        # Up to the folder of its kind (origins/, upstream/, ...), which stays.
        kind = site.state_dir / path.relative_to(site.state_dir).parts[0]
        site.remove_empty_dirs(path if path.is_dir() else path.parent, kind)
    return removed


def remove_empty_tree(directory: Path, keep: Callable[[Path], bool]) -> bool:
    """Remove the folders below ``directory`` that hold nothing but empty folders, then
    ``directory`` itself if it is empty: never through a symlink, never into a folder ``keep``
    says is another's. Whether ``directory`` is gone."""
    if not directory.exists():
        return True
    if directory.is_symlink() or not directory.is_dir() or keep(directory):
        return False
    empty = True
    try:
        with os.scandir(directory) as scan:
            entries = list(scan)
    except OSError:
        return False
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            empty = remove_empty_tree(Path(entry.path), keep) and empty
        else:
            empty = False
    if not empty:
        return False
    try:
        directory.rmdir()
    except FileNotFoundError:
        pass
    except OSError:
        return False  # filled meanwhile
    return True
