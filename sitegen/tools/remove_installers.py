"""``sitegen remove FOLDER``: delete an installer folder that channels.yaml no longer names but
that a run mirrored (its state in ``.sitegen/installers/`` says so) and the web server still
serves, as :mod:`sitegen.tools.remove` deletes a channel.

It refuses a folder channels.yaml still names, and one that is (or lies inside) a channel
configured since. Under the site lock it deletes, in this order, so that a crash anywhere
leaves the state by which the same command finishes: every file of the folder (the installers,
its page, anything else but folders; a folder that is a link goes itself, nothing through it),
the folder and the parents it leaves empty (a folder holding folders of others is kept), its
download counts, the state; then it records the removal in the run history.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from sitegen.config import SiteConfig
from sitegen.layout import INSTALLER_PAGE, REPODATA, installer_state_path, stats_state_path
from sitegen.stats.run import forget_installer_counts, holds_installer_counts, stats_lock
from sitegen.store.lock import SiteLock
from sitegen.store.site import Site, UnsafePathError
from sitegen.sync.installer_listing import NAME_RE
from sitegen.sync.installer_state import read_state
from sitegen.sync.removal_journal import REMOVED, record_removal
from sitegen.sync.report import InstallerReport, RunAccess
from sitegen.tools.remove import RemovalRefused, site_relative
from sitegen.tools.remove_state import remove_empty_tree
from sitegen.wording import counted, human_bytes

log = logging.getLogger("sitegen")


@dataclass(frozen=True)
class FolderRemoval:
    """What removing an installer folder deletes, as found on disk."""

    path: str  # site-relative
    source: str  # its upstream as its state shows it (no secrets)
    names: tuple[str, ...]  # what goes from the folder: its files, page and links, sorted
    bytes: int  # as du counts them (hard links once)
    link: bool  # the folder is a link: it goes itself, nothing through it

    def summary(self) -> str:
        """The words after ``removed`` in the removal's log line (``would remove`` in a dry
        run)."""
        what = (
            "a link"
            if self.link
            else f"{counted(len(self.names), 'file')}, {human_bytes(self.bytes)}"
        )
        return f"the installer folder {self.path} ({what}, 1 file of its state)"


def installer_removal(config: SiteConfig, path: str) -> FolderRemoval | None:
    """The removal of the installer folder at ``path``; None when no run mirrored a folder
    there (it may be a channel's); :class:`RemovalRefused` for a folder channels.yaml still
    names, or one a configured channel is or holds."""
    path = site_relative(config, path)
    source = str(config.source) if config.source else "channels.yaml"
    if path in {i.path for i in config.installers}:
        raise RemovalRefused(
            f"{source} still configures the installer folder {path}: take it out of the"
            " configuration first (a run never deletes it then; this command does)"
        )
    site = Site(config.output)
    if not installer_state_path(site.root, path).is_file():
        return None
    for channel in config.channels:
        if path == channel.path or path.startswith(f"{channel.path}/"):
            raise RemovalRefused(
                f"{path} was an installer folder, but {source} configures the channel"
                f" {channel.path} there now: its files are the channel's"
            )
    directory = _unresolved(site, path)
    link = directory.is_symlink()
    names, used = ((), 0) if link else _contents(directory)
    return FolderRemoval(path, read_state(site.root, path).url, names, used, link)


def _unresolved(site: Site, path: str) -> Path:
    """The folder's own name in the site, not resolved: a link there is itself what goes."""
    parent, _, name = path.rpartition("/")
    try:
        return (site.path(parent) if parent else site.root) / name
    except UnsafePathError as exc:  # a folder above it is a link out of the site
        raise RemovalRefused(str(exc)) from None


def _contents(directory: Path) -> tuple[tuple[str, ...], int]:
    """The names of everything in the folder but folders, and the disk they use."""
    names = []
    used = 0
    seen: set[tuple[int, int]] = set()
    try:
        with os.scandir(directory) as entries:
            found = [e for e in entries if not e.is_dir(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError):
        return (), 0
    for entry in found:
        names.append(entry.name)
        st = entry.stat(follow_symlinks=False)
        if (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            used += st.st_blocks * 512
    return tuple(sorted(names)), used


def folder_dry_run(config: SiteConfig, removal: FolderRemoval) -> list[str]:
    """What :func:`remove_folder` would do, one line each, led by its verb, then the summary
    the removal logs."""
    root = Site(config.output).root
    state = installer_state_path(root, removal.path).relative_to(root).as_posix()
    if removal.link:
        lines = [f"{removal.path} (a link: itself, nothing it leads to)"]
    else:
        lines = [f"{removal.path}/{name}" for name in removal.names]
    if holds_installer_counts(config, removal.path):
        counts = stats_state_path(root).relative_to(root).as_posix()
        lines.append(f"{counts}: the download counts of {removal.path}")
    lines.append(state)
    return [f"remove {line}" for line in [*lines, removal.summary()]]


def remove_folder(config: SiteConfig, path: str) -> tuple[FolderRemoval, list[str]]:
    """Remove the installer folder at ``path`` under the site lock
    (:class:`~sitegen.store.lock.SiteLocked` when a run holds it), planned anew under the
    lock; returns the removal and the folders kept (holding folders of others)."""
    site = Site(config.output)
    if not site.state_dir.is_dir():
        raise RemovalRefused(f"{site.root} holds no site (no .sitegen/)")
    # The statistics' lock too (a `sitegen stats` of its own takes only that one): the
    # folder's counts go with its state.
    with SiteLock(site.state_dir), stats_lock(site, create=False):
        started = time.time()
        removal = installer_removal(config, path)
        if removal is None:
            raise RemovalRefused(f"no installer folder is published at {path}")
        directory = _unresolved(site, removal.path)
        for name in removal.names:
            site.remove(directory / name)
        if removal.link:
            site.remove(directory)
        # Folders in it are others' (a channel configured there since, even empty, or a
        # published subdir): they stay, and the folder with them.
        others = {site.root / c.path for c in config.channels}
        remove_empty_tree(
            directory,
            lambda folder: (
                folder != directory and (folder in others or (folder / REPODATA).exists())
            ),
        )
        kept = [removal.path] if os.path.lexists(directory) else []
        if not kept:
            site.remove_empty_dirs(directory.parent, site.root)
        # Before the state, which is what lets the same command finish after a crash.
        forget_installer_counts(config, removal.path)
        site.remove(installer_state_path(site.root, removal.path))
        _record(site, config, removal, started)
    return removal, kept


def _record(site: Site, config: SiteConfig, removal: FolderRemoval, started: float) -> None:
    """A ledger record of the removal, for the history pages, and for ``--due``: a folder
    configured again later under the path is due at once."""
    folder = InstallerReport(removal.path, removal.source, status=REMOVED)
    # The files a run put there (not its page, nor temporaries), as a run's record names them.
    folder.removed = [n for n in removal.names if NAME_RE.match(n) and n != INSTALLER_PAGE]
    record_removal(site, removal.path, started, RunAccess.of(config), installers=[folder])
