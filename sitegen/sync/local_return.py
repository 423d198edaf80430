"""The files a ``move: true`` local source moved into its store, given back to their folder.

A store (``.sitegen/local/<mirror>/``) is kept by mirror name, and a channel's default mirror
name comes from its path: once its mirror is gone from the configuration (the channel renamed
or taken out, the mirror renamed), the store holds the only copies of packages that left the
folder, and nothing reads it any more. They go back to the folder the store records (see
:func:`sitegen.sync.local_move.keep_folder`), where whichever source reads that folder now
finds them as it finds any dropped file; ``sitegen remove`` does so before it deletes the
store.

Each file goes to the folder's ``<subdir>/`` folder when there is one, else to its top level,
and never over another file: a name taken already, in the folder or in the store of a
``move: true`` source that reads it, by the same bytes means the file is there already (the
store's copy goes); by another file (a newer build of that name), it is kept aside, beside that
file in the folder, as ``<name>.returned-from-<mirror>`` (see :func:`aside_name`), which
indexing ignores.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import trio

from sitegen.config import ChannelConfig, MirrorConfig, SiteConfig
from sitegen.layout import (
    is_package_file,
    local_store_folder_path,
    local_store_path,
    local_stores,
)
from sitegen.store.compare import same_files
from sitegen.store.site import Site
from sitegen.store.temp_names import short_name
from sitegen.sync.local import folder_of, has_store, is_local
from sitegen.sync.local_move import recorded_folder
from sitegen.wording import counted

log = logging.getLogger("sitegen")


@dataclass(frozen=True)
class Giving:
    """One stored file and where it goes: ``target`` in the folder (None: the folder, or the
    store of a source reading it, holds its bytes already, and the stored copy just goes)."""

    stored: Path
    target: Path | None
    aside: bool = False  # under the name kept aside: another file holds its own


@dataclass
class StoreReturn:
    """A store's files and where each goes; ``problem`` says why they cannot go back (the
    folder not recorded or gone, a name kept aside taken too), "" when they can."""

    mirror: str
    store: Path
    folder: Path | None
    files: list[str] = field(default_factory=list)  # <subdir>/<name>, each stored file
    givings: list[Giving] = field(default_factory=list)  # none when there is a problem
    problem: str = ""


def stored_files(store: Path) -> list[tuple[str, Path]]:
    """(subdir, file) of every package file in a store, by subdir and name."""
    found = []
    try:
        with os.scandir(store) as entries:
            subdirs = sorted(e.name for e in entries if e.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return []
    for subdir in subdirs:
        with os.scandir(store / subdir) as entries:
            names = sorted(
                e.name
                for e in entries
                if is_package_file(e.name)
                and not e.name.startswith(".")
                and e.is_file(follow_symlinks=False)
            )
        found += [(subdir, store / subdir / name) for name in names]
    return found


def aside_name(name: str, mirror: str) -> str:
    """The name a returned file is kept under beside another file of its name (not a package
    name: indexing ignores it; a mirror's name may end in ``.conda``, then ``.aside`` follows);
    it fits a file system's 255 bytes."""
    aside = f"{short_name(name)}.returned-from-{mirror}"
    return f"{aside}.aside" if is_package_file(aside) else aside


def same_folder(one: Path, other: Path) -> bool:
    if one == other:
        return True
    try:
        return os.path.samefile(one, other)
    except OSError:
        return False


def reader_stores(site: Site, config: SiteConfig, folder: Path) -> list[Path]:
    """The stores of the configured sources that read ``folder`` (of those that move files, or
    did, see :func:`sitegen.sync.local.has_store`): a file of the name there is published from
    it, and must not be replaced by an older one given back."""
    return [
        local_store_path(site.root, m.name)
        for _c, m in config.mirrors
        if is_local(m) and has_store(site, m) and same_folder(folder_of(m), folder)
    ]


def plan_return(site: Site, config: SiteConfig, mirror: str) -> StoreReturn:
    """Where each file of the store of ``mirror`` goes (``mirror``: gone from ``config``)."""
    store = local_store_path(site.root, mirror)
    plan = StoreReturn(mirror, store, recorded_folder(site, mirror))
    files = stored_files(store)
    plan.files = [f"{subdir}/{path.name}" for subdir, path in files]
    folder = plan.folder
    if files and folder is None:
        plan.problem = "its folder is not recorded: move them back into it to keep them"
    elif files and folder is not None and not folder.is_dir():
        plan.problem = (
            f"the folder {folder} no longer exists: make it again to have them returned to it"
        )
    if not files or folder is None or plan.problem:
        return plan
    stores = reader_stores(site, config, folder)
    taken = []
    for subdir, stored in files:
        name = stored.name
        holders = [folder / name, folder / subdir / name, *(s / subdir / name for s in stores)]
        holders = [h for h in holders if os.path.lexists(h)]
        directory = folder / subdir if (folder / subdir).is_dir() else folder
        if not holders:
            plan.givings.append(Giving(stored, directory / name))
        elif any(same_files(stored, h) for h in holders):
            plan.givings.append(Giving(stored, None))
        else:
            # Beside the file that holds the name in the folder, where one does.
            beside = holders[0].parent if holders[0].is_relative_to(folder) else directory
            aside = beside / aside_name(name, mirror)
            if not os.path.lexists(aside):
                plan.givings.append(Giving(stored, aside, aside=True))
            elif same_files(stored, aside):
                plan.givings.append(Giving(stored, None))
            else:
                taken.append(f"{subdir}/{name} (both {holders[0]} and {aside} hold other files)")
    if taken:
        plan.problem = (
            f"the names they would take in {folder} are taken: {', '.join(taken)}:"
            " move those away to have them returned"
        )
        plan.givings = []
    return plan


def give_back(site: Site, plan: StoreReturn) -> list[Path]:
    """Give every file of a plan that has no problem back; the targets it wrote (a stored file
    whose bytes the folder holds already just goes). :class:`OSError` (``FileExistsError``
    when a name was taken since the plan) stops it: the files not given back stay stored."""
    assert not plan.problem
    written = []
    for giving in plan.givings:
        if giving.target is None:
            site.remove(giving.stored)
        elif site.give_back(giving.stored, giving.target):
            written.append(giving.target)
    return written


@dataclass
class Returned:
    """What a run gave back to its local sources' folders: a note for the report of the
    mirror reading each folder, and the errors (the files not given back stay stored)."""

    notes: dict[str, list[str]] = field(default_factory=dict)  # by mirror
    errors: list[str] = field(default_factory=list)

    def failed(self, reader: MirrorConfig, error: str) -> None:
        log.error("%s: %s", reader.name, error)
        self.errors.append(f"{reader.name}: {error}")


async def return_orphans(
    site: Site, config: SiteConfig, mirrors: Iterable[tuple[ChannelConfig, MirrorConfig]]
) -> Returned:
    """Before indexing: give the stores of mirrors gone from ``config`` back to the folders
    the run's local sources read, so that this run publishes their packages again."""
    readers = [m for _c, m in mirrors if is_local(m)]
    if not readers:
        return Returned()
    return await trio.to_thread.run_sync(_return_orphans, site, config, readers)


def _return_orphans(site: Site, config: SiteConfig, readers: list[MirrorConfig]) -> Returned:
    done = Returned()
    configured = {m.name for _c, m in config.mirrors}
    try:
        with os.scandir(local_stores(site.root)) as entries:
            names = sorted(e.name for e in entries if e.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return done
    for name in names:
        folder = recorded_folder(site, name) if name not in configured else None
        reader = next((m for m in readers if folder and same_folder(folder_of(m), folder)), None)
        if reader is None:
            continue
        store = local_store_path(site.root, name).relative_to(site.root).as_posix()
        try:
            plan = plan_return(site, config, name)
            if plan.problem:
                done.failed(reader, f"the files of {store}/ stay there: {plan.problem}")
                continue
            give_back(site, plan)
        except OSError as exc:
            done.failed(reader, f"not all of {store}/ went back to {folder}: {exc.strerror or exc}")
            continue
        _drop_emptied(site, plan.store)
        if not plan.files:
            continue
        note = (
            f"{counted(len(plan.files), 'package')} the mirror {name}, no longer configured,"
            f" had moved out of {folder} went back into it from {store}/"
        )
        aside = sum(g.aside for g in plan.givings)
        if aside:
            note += f" ({aside} kept aside as *{aside_name('', name)}: their names are taken)"
        log.warning("%s: %s", reader.name, note)
        done.notes.setdefault(reader.name, []).append(note)
    return done


def _drop_emptied(site: Site, store: Path) -> None:
    """Remove a store whose files were all given back (its record last); one still holding
    anything stays."""
    try:
        with os.scandir(store) as entries:
            subdirs = [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)]
        for subdir in subdirs:
            subdir.rmdir()
        site.remove(local_store_folder_path(site.root, store.name))
        store.rmdir()
    except OSError:
        return
