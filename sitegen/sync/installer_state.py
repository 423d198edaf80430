"""What an installer folder held when its last run ended (``.sitegen/installers/``): each
file's size and sha256, its date upstream, and the mtime it had on disk then.

A file whose size and mtime are still those is trusted to hold those bytes, so a run re-hashes
only what changed on disk since (or everything, with ``--verify``). The folder's page lists the
files from here. The disk is the truth: an entry whose file is gone is no file of the folder.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from pathlib import Path

import msgspec

from sitegen.config.model import LINK_LOOP, real_path
from sitegen.layout import INSTALLER_PAGE, installer_state_path, state_dir
from sitegen.store.site import Site
from sitegen.sync.installer_listing import NAME_RE


class StoredFile(msgspec.Struct, frozen=True):
    size: int
    sha256: str
    modified: float  # the date upstream lists for it, seconds since the epoch
    mtime_ns: int  # its modification time on disk when it was last checked

    def current(self, path: Path) -> bool:
        """Whether the file at ``path`` still has the size and mtime it was checked with."""
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            return False
        return st.st_size == self.size and st.st_mtime_ns == self.mtime_ns


class InstallerState(msgspec.Struct):
    url: str = ""  # the upstream folder, as shown (no secrets)
    files: dict[str, StoredFile] = msgspec.field(default_factory=dict)


def read_state(root: Path, folder: str) -> InstallerState:
    """The folder's state; an empty one when there is none or it does not read (its files are
    then checked against upstream again)."""
    return kept_state(root, folder) or InstallerState()


def kept_state(root: Path, folder: str) -> InstallerState | None:
    """The folder's state; None when there is none or it does not read."""
    try:
        return msgspec.json.decode(
            installer_state_path(root, folder).read_bytes(), type=InstallerState
        )
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None


def save_state(site: Site, folder: str, state: InstallerState) -> None:
    target = installer_state_path(site.root, folder)
    site.ensure_dir(target.parent)
    site.write_bytes(target, msgspec.json.encode(state))


def stored_names(directory: Path, links: bool = False) -> set[str]:
    """The files of an installer folder on disk: regular files with a plain name, but its
    page (temporaries and anything else hidden start with a dot), and with ``links`` the
    symbolic links so named too (the web server serves what they lead to). None where it is
    missing, or a link that leads nowhere (dangling, or a loop)."""
    try:
        with os.scandir(directory) as entries:
            return {
                e.name
                for e in entries
                if NAME_RE.match(e.name)
                and e.name != INSTALLER_PAGE
                and ((links and e.is_symlink()) or e.is_file(follow_symlinks=False))
            }
    except (FileNotFoundError, NotADirectoryError):
        return set()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return set()
        raise


def linked_elsewhere(
    root: Path, channels: Iterable[str], folder: str, folders: Iterable[str] = ()
) -> str | None:
    """What else the folder of the site ``root`` is, through a link, which neither a run nor
    a render may write through: a directory out of the site (the site's writer never writes
    there, as for a channel's), or the site itself, its state, a channel (of ``channels``) or a
    folder holding one, or another installer folder (of ``folders``), whose files its pruning
    would take for its own and whose pages its page would replace, or a loop of links, which
    leads nowhere; None when it is a folder of its own."""
    real = real_path(root / folder)
    top = real_path(root)
    if real is None or top is None:
        return LINK_LOOP
    if not real.is_relative_to(top):
        return (
            f"{real}, out of the site (sitegen writes only within the site's directory; for"
            " another disk, mount it at the folder's path)"
        )
    if real == top:
        return "the site's own directory"
    state = real_path(state_dir(root))
    if state is not None and real.is_relative_to(state):
        return "the site's private state"
    for channel in channels:
        other = real_path(top / channel)  # a channel's own loop holds no folder
        if other is not None and (real.is_relative_to(other) or other.is_relative_to(real)):
            return f"channel {channel}'s directory, or one holding it"
    if real != top / folder:  # reached through a link: the directory may be another folder's
        for other_folder in folders:
            if other_folder != folder and real_path(top / other_folder) == real:
                return f"installer folder {other_folder}'s directory"
    return None
