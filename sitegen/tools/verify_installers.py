"""``sitegen verify`` over the installer folders (``installers:``): each file a folder's state
describes (what its last run verified: see :mod:`sitegen.sync.installer_state`) must be on disk
as a regular file of that size and sha256, and the folder must hold no other file, since the
web server serves whatever is there.

With ``--repair`` a missing or changed file is downloaded again from the folder's upstream and
verified against the state's size and sha256, as a channel's package file is against its
record (a file whose bytes changed upstream under its name fails that check and is left to the
next run, which reads the index again); its state entry then takes the new file's mtime, so
runs trust it without hashing it again. A file no run verified is removed (the next run
fetches it, verified, if the folder selects it). A folder whose state is missing or unreadable
while it holds files is reported, never emptied: the next run checks its files against the
index and writes the state again.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import stat
from contextlib import AsyncExitStack
from pathlib import Path

import msgspec
import trio

from sitegen.conda.records import Record
from sitegen.config import InstallerConfig, SiteConfig
from sitegen.layout import INSTALLER_PAGE, installer_file_path, installer_state_path
from sitegen.net.download import download_each
from sitegen.net.download_job import DownloadJob, DownloadResult
from sitegen.net.upstream import open_upstreams
from sitegen.store.site import Site, UnsafePathError
from sitegen.sync.installer_listing import NAME_RE
from sitegen.sync.installer_state import (
    InstallerState,
    kept_state,
    linked_elsewhere,
    read_state,
    save_state,
    stored_names,
)
from sitegen.tools.verify_channel import Found
from sitegen.tools.verify_sample import Checked

log = logging.getLogger("sitegen")


@dataclasses.dataclass
class _Refetch:
    """A file of a folder to download again, against its state's entry."""

    installer: InstallerConfig
    name: str
    kind: str  # "missing" or "corrupt"
    detail: str
    repaired: bool = False


def installers_published(config: SiteConfig) -> bool:
    """Whether some configured installer folder has a state (a run mirrored it) or files."""
    return any(
        installer_state_path(config.output, i.path).is_file()
        or stored_names(config.output / i.path, links=True)
        for i in config.installers
    )


async def installer_problems(
    config: SiteConfig, site: Site, checked: Checked, repair: bool
) -> list[Found]:
    """The problems of every configured installer folder a run mirrored, each file on disk
    counted into ``checked`` (with its ``sample``, the files outside it checked by size only);
    with ``repair``, repaired as far as they can be."""
    found: list[Found] = []
    refetch: list[_Refetch] = []
    for installer in config.installers:
        state = kept_state(site.root, installer.path)
        if state is None:
            found += await trio.to_thread.run_sync(_without_state, site, installer)
            continue
        paths = [channel.path for channel in config.channels]
        folders = [other.path for other in config.installers]
        # Asked first: a folder that is a loop of links does not resolve to a path.
        taken = await trio.to_thread.run_sync(
            linked_elsewhere, site.root, paths, installer.path, folders
        )
        if taken is not None:
            why = f"a link to {taken}: left alone"
            found.append((installer.path, "metadata", why, False))
            continue
        try:
            directory = site.path(installer.path)
        except UnsafePathError as exc:  # a link in the site that leads out of it
            found.append((installer.path, "metadata", f"{exc}: left alone", False))
            continue
        for name, stored in state.files.items():
            if not NAME_RE.match(name) or name == INSTALLER_PAGE:
                continue  # no name a run gives (a damaged state): no file of the folder
            path = directory / name
            relative = installer_file_path(installer.path, name)
            record = _record(name, stored.size, stored.sha256)
            if not os.path.lexists(path):
                refetch.append(_Refetch(installer, name, "missing", "file is missing"))
            elif not _regular(path):
                refetch.append(_Refetch(installer, name, "corrupt", "not a regular file"))
            elif not await trio.to_thread.run_sync(checked.matches, path, relative, record, False):
                refetch.append(_Refetch(installer, name, "corrupt", "size or checksum mismatch"))
        for name in sorted(stored_names(directory, links=True) - state.files.keys()):
            removed = repair and site.remove(directory / name)
            why = "a file no run verified (not in the folder's state)"
            found.append((installer_file_path(installer.path, name), "extra", why, removed))
    if repair and refetch:
        await _refetch(config, site, refetch)
    found += [
        (installer_file_path(r.installer.path, r.name), r.kind, r.detail, r.repaired)
        for r in refetch
    ]
    return found


def _without_state(site: Site, installer: InstallerConfig) -> list[Found]:
    """A folder with no state that reads: never mirrored (nothing to check), or its state lost
    or damaged while it holds files, which then cannot be checked."""
    directory = site.root / installer.path
    if directory.is_symlink() or not directory.is_dir() or not stored_names(directory, links=True):
        return []
    state = installer_state_path(site.root, installer.path).relative_to(site.root).as_posix()
    why = (
        "missing or unreadable: the files of the folder cannot be checked; the next run checks"
        " them against the upstream index and writes it again"
    )
    return [(state, "metadata", why, False)]


def _record(name: str, size: int, sha256: str) -> Record:
    return Record(fn=name, subdir="", raw={"size": size, "sha256": sha256}, origin="")


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


async def _refetch(config: SiteConfig, site: Site, refetch: list[_Refetch]) -> None:
    """Download each file again from its folder's upstream, verified against its state's entry,
    then note the new files' mtimes in the states."""
    folders = {r.installer.path: r.installer for r in refetch}
    async with AsyncExitStack() as stack:
        upstreams, unusable = await open_upstreams(
            [i.source() for i in folders.values()], config.download, stack
        )
        states = {path: read_state(site.root, path) for path in folders}
        jobs: list[tuple[_Refetch, DownloadJob]] = []
        for item in refetch:
            upstream = upstreams.get(item.installer.path)
            if upstream is None:
                why = unusable.get(item.installer.path, "no upstream")
                item.detail += f"; cannot repair: {why}"
                continue
            stored = states[item.installer.path].files[item.name]
            # Not resolved (the folder itself was checked): a link found under the name is
            # replaced, never followed.
            target = site.root / installer_file_path(item.installer.path, item.name)
            site.ensure_dir(target.parent)
            record = _record(item.name, stored.size, stored.sha256)
            # Fetched as a run fetches it: the name joined to the folder's URL.
            job = DownloadJob(upstream, record, target, durable=True, base_url=upstream.base)
            jobs.append((item, job))

        def landed(item: _Refetch, result: DownloadResult) -> None:
            item.repaired = result.ok
            if not result.ok:
                item.detail += f"; repair failed: {result.error}"
                log.error("repair failed: %s: %s", item.installer.path, result.error)

        await download_each(jobs, site, config.download, landed)
    for path, state in states.items():
        done = [r.name for r in refetch if r.repaired and r.installer.path == path]
        if done:
            await trio.to_thread.run_sync(_note_mtimes, site, path, state, done)


def _note_mtimes(site: Site, folder: str, state: InstallerState, names: list[str]) -> None:
    for name in names:
        st = os.stat(site.root / folder / name, follow_symlinks=False)
        state.files[name] = msgspec.structs.replace(state.files[name], mtime_ns=st.st_mtime_ns)
    save_state(site, folder, state)
