"""``sitegen remove PATH``: delete a channel, or a channel's subdir, that channels.yaml no
longer configures but that is still published (and served) on disk.

Runs never delete what the configuration stops naming (a mistyped channel name must not wipe a
channel); this command does, on purpose, for one path at a time, and refuses a path the
configuration still names or that is not a published channel or subdir (found as
:func:`sitegen.tools.site_disk.unconfigured_subdirs` finds them). It holds the site lock, so no
run works on the site meanwhile.

The stages go in an order a crash can stop anywhere: what is left is still found as a
published, unconfigured subdir, and the same command finishes it. Before the first deletion the
plan and the counts of what goes are kept in a journal (:mod:`sitegen.sync.removal_journal`),
by which the same command finishes the removal even past its last ``repodata.json``.

1. metadata: the shard index, ``current_repodata.json``, ``repodata.json.zst`` (and ``.bz2``),
   then ``repodata.json`` replaced by one with no record (the file by which web server and
   this command know the subdir: kept, naming nothing, to the end), and with the whole channel
   its ``channeldata.json`` and ``notices.json``. From here clients see no package;
2. files: the package files, the shards, the subdir's listing pages;
3. state: what ``.sitegen/`` keeps for the subdirs and the channel (see
   :mod:`sitegen.tools.remove_state`), and their download counts (then ``stats.json``). A
   ``move: true`` local source's store holds the only copies of the packages it moved out of
   its folder: they go back to that folder first (:mod:`sitegen.sync.local_return`), and
   where they cannot (the folder gone), the removal is refused before anything goes, unless
   told to delete them;
4. pages: the channel's own pages (its index, package pages, approvals, search index);
5. directories: ``repodata.json`` last, then the emptied directories (and empty ones in them).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from sitegen.access.server_files import AccessPaths
from sitegen.access.tokens import TokenError
from sitegen.conda.encode import encode_repodata
from sitegen.config import SiteConfig
from sitegen.layout import (
    REPODATA,
    RESERVED_TOP,
    STATE_DIR,
    approved_page_path,
    channel_index_path,
    channeldata_path,
    notices_path,
    package_pages_dir,
    present_metadata_files,
    removal_journal_path,
    search_index_path,
    shards_dir,
    stats_state_path,
)
from sitegen.stats.run import forget_counts, holds_counts, stats_lock
from sitegen.store.links_out import removal_link_out
from sitegen.store.lock import SiteLock
from sitegen.store.site import Site
from sitegen.sync.history import History, noted_access
from sitegen.sync.local_return import StoreReturn, give_back
from sitegen.sync.removal_journal import (
    REMOVED,
    Removal,
    begin,
    planned,
    read_journal,
    record_removal,
)
from sitegen.sync.report import ChannelSubdirReport, RunAccess
from sitegen.tools.remove_moved import moved_lines, moved_stores, refusal
from sitegen.tools.remove_state import (
    remove_empty_tree,
    remove_state,
    state_link_out_of,
    state_paths,
)
from sitegen.tools.site_disk import installer_folders, unconfigured_subdirs
from sitegen.wording import counted

log = logging.getLogger("sitegen")


class RemovalRefused(Exception):
    """The path is not one this command removes; nothing was touched."""


@dataclass
class RemovalReport:
    removal: Removal
    files: dict[str, int] = field(default_factory=dict)  # subdir -> files deleted
    bytes: int = 0
    state: int = 0  # state files and folders deleted
    record: str = ""  # the run id of its ledger record
    tokens: list[str] = field(default_factory=list)  # tokens no longer scoped to the channel
    # The stores of moved files given back to their folders (or deleted, with delete_moved).
    moved: list[StoreReturn] = field(default_factory=list)


def site_relative(config: SiteConfig, path: str) -> str:
    """``path`` as a path inside the site: site-relative already, or absolute under it."""
    root = Site(config.output).root
    if os.path.isabs(path):
        absolute = Path(os.path.normpath(path))
        if absolute != root and root not in absolute.parents:
            raise RemovalRefused(f"{path} is outside the site {root}")
        path = absolute.relative_to(root).as_posix()
    parts = path.strip("/").split("/")
    if any(p in ("", ".", "..") or p.startswith(".") or "\x00" in p for p in parts):
        raise RemovalRefused(f"{path!r} is not a channel or subdir path inside the site")
    if parts[0] in RESERVED_TOP:
        raise RemovalRefused(f"{path!r} belongs to sitegen itself, not to a channel")
    return "/".join(parts)


def plan_removal(config: SiteConfig, path: str) -> Removal:
    """What removing ``path`` deletes; :class:`RemovalRefused` for a path the configuration
    still names, or that is neither a published channel or subdir it does not name nor one
    an earlier removal left unfinished (its journal, merged with what is still published),
    or that a link leads out of the site from, or from the private state it deletes."""
    removal = _removal_of(config, site_relative(config, path))
    linked = state_link_out_of(
        Site(config.output), config, removal.channel, removal.subdirs, removal.whole_channel
    )
    if linked is not None:
        raise RemovalRefused(linked)
    return removal


def _removal_of(config: SiteConfig, path: str) -> Removal:
    found = _published_removal(config, path)
    linked = removal_link_out(Site(config.output), path)
    if linked is not None:
        raise RemovalRefused(linked)
    journal = read_journal(Site(config.output), path)
    if journal is None:
        if found is None:
            source = str(config.source) if config.source else "channels.yaml"
            raise RemovalRefused(
                f"nothing is published at {path} that {source} does not configure"
                " (`sitegen status` lists the subdirs still published but not configured)"
            )
        return found
    earlier = journal.removal
    if found is None:
        return earlier
    subdirs = tuple(dict.fromkeys(earlier.subdirs + found.subdirs))
    return Removal(path, earlier.channel, subdirs, earlier.whole_channel or found.whole_channel)


def _published_removal(config: SiteConfig, path: str) -> Removal | None:
    """The removal of ``path`` as the site's published subdirs show it (None: nothing is
    published there); :class:`RemovalRefused` for a path the configuration still names."""
    channels = {c.path for c in config.channels}
    configured = config.subdir_paths()
    source = str(config.source) if config.source else "channels.yaml"
    if path in channels or path in configured:
        what = "channel" if path in channels else "subdir"
        raise RemovalRefused(
            f"{source} still configures the {what} {path}: take it out of the configuration"
            " first (a run never deletes it then; this command does)"
        )
    root = Site(config.output).root
    folders = installer_folders(config)
    published = [u.path for u in unconfigured_subdirs(root, configured, False, folders)]
    parent = path.rpartition("/")[0]
    if path in published and parent:
        siblings = [p for p in published if p.rpartition("/")[0] == parent]
        whole = parent not in channels and siblings == [path]
        return Removal(path, parent, (path.rpartition("/")[2],), whole)
    below = [p.rpartition("/")[2] for p in published if p.rpartition("/")[0] == path]
    return Removal(path, path, tuple(below), True) if below else None


def moved_files(config: SiteConfig, removal: Removal, delete_moved: bool) -> list[StoreReturn]:
    """The stores of moved files that go with the removal (see
    :func:`~sitegen.tools.remove_moved.moved_stores`); :class:`RemovalRefused` when some
    cannot go back to their folder and ``delete_moved`` does not say to delete them."""
    plans = moved_stores(config, removal)
    problem = None if delete_moved else refusal(Site(config.output), plans)
    if problem:
        raise RemovalRefused(problem)
    return plans


# ------------------------------------------------------------------ the stages


def named(site: Site, relpath: str) -> Path:
    """A name in the channel's folder, not resolved: a symlink there (someone else's, into
    or out of the site) is itself what goes, never followed."""
    folder, _, name = relpath.rpartition("/")
    return site.path(folder) / name


def remove_metadata(site: Site, removal: Removal) -> None:
    """Stage 1: clients stop seeing the packages; ``repodata.json`` stays, naming nothing."""
    for subdir in removal.subdirs:
        directory = site.path(removal.channel, subdir)
        if not (directory / REPODATA).is_file():
            continue  # past stage 5 in an earlier attempt: not published any more
        for name in reversed(present_metadata_files()):  # run_exports, the shard index first
            if name != REPODATA:
                site.remove(directory / name)
        empty = encode_repodata(subdir, {}, [], [], {"repodata_version": 1})
        site.write_bytes(directory / REPODATA, empty)
    if removal.whole_channel:
        site.remove(named(site, channeldata_path(removal.channel)))
        site.remove(named(site, notices_path(removal.channel)))


def remove_files(site: Site, removal: Removal) -> None:
    """Stage 2: every file of the subdirs but ``repodata.json`` (package files, listing pages,
    leftovers), and their shards. A folder of anything else is left, and so is the subdir."""
    for subdir in removal.subdirs:
        directory = site.path(removal.channel, subdir)
        if not directory.is_dir() or directory.is_symlink():
            continue  # removed by an earlier attempt
        shards = shards_dir(directory)
        if shards.is_dir() and not shards.is_symlink():
            shutil.rmtree(shards)
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.name != REPODATA and not entry.is_dir(follow_symlinks=False):
                    site.remove(Path(entry.path))


def channel_pages(config: SiteConfig, removal: Removal) -> tuple[list[str], list[str]]:
    """The channel's own pages: (files, folders of pages), site-relative. A name that is (or
    holds) a configured channel is that channel's now, not a page of this one: left out
    (``c/packages`` may be configured once ``c`` is not)."""
    channel = removal.channel
    files = [channel_index_path(channel), search_index_path(channel)]
    folders = [
        package_pages_dir(channel),
        str(PurePosixPath(approved_page_path(channel)).parent),
    ]
    configured = [c.path for c in config.channels]

    def pages(relpath: str) -> bool:
        return not any(c == relpath or c.startswith(f"{relpath}/") for c in configured)

    return [f for f in files if pages(f)], [f for f in folders if pages(f)]


def forget_readers(config: SiteConfig, channel: str) -> list[str]:
    """The removed channel leaves the scope of the tokens added for it, so that a channel
    configured later under its path is not readable by them; their names."""
    store = AccessPaths.of(config).store
    try:
        return store.drop_channel(channel)
    except (TokenError, OSError) as exc:
        log.warning(
            "%s: %s; the tokens added for %s keep it in their scope", store.path, exc, channel
        )
        return []


def remove_pages(config: SiteConfig, site: Site, removal: Removal) -> None:
    """Stage 4: the channel's own pages (the next render leaves it off the landing page)."""
    if not removal.whole_channel:
        return
    files, folders = channel_pages(config, removal)
    for relpath in files:
        site.remove(named(site, relpath))
    for relpath in folders:
        folder = named(site, relpath)
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder)


def remove_directories(config: SiteConfig, site: Site, removal: Removal) -> list[str]:
    """Stage 5: ``repodata.json``, then the emptied folders (and the empty folders in them);
    returns those kept (holding something). Another channel's folder nested in the channel's,
    and a subdir published, are left whole, even empty."""
    others = {site.root / c.path for c in config.channels}

    def another(folder: Path) -> bool:
        if folder in others or (folder / REPODATA).exists():
            return True
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            return any(Path(e.path, REPODATA).exists() for e in entries if e.is_dir())
        return False

    kept = []
    for subdir in removal.subdirs:
        directory = site.path(removal.channel, subdir)
        site.remove(directory / REPODATA)
        if not remove_empty_tree(directory, another):
            kept.append(f"{removal.channel}/{subdir}")
    if removal.whole_channel:
        channel = site.path(removal.channel)
        remove_empty_tree(channel, lambda folder: folder != channel and another(folder))
        site.remove_empty_dirs(channel, site.root)  # and the parents it leaves empty
        if channel.exists():
            kept.append(removal.channel)
    return kept


# ------------------------------------------------------------------ the command


def dry_run(config: SiteConfig, removal: Removal, delete_moved: bool = False) -> list[str]:
    """What :func:`remove` would do, one line each, led by its verb (a subdir with its files
    counted), then the summary the removal logs; :class:`RemovalRefused` where it would
    refuse."""
    site = Site(config.output)
    lines = moved_lines(site, moved_files(config, removal, delete_moved), delete_moved)
    counts = planned(site, removal)  # as the removal counts them, for the same summary
    gone = [
        f"{relpath}/ ({counted(counts.files[subdir], 'file')})"
        for subdir, relpath in zip(removal.subdirs, removal.subdir_paths(), strict=True)
    ]
    if removal.whole_channel:
        files, folders = channel_pages(config, removal)
        files += [channeldata_path(removal.channel), notices_path(removal.channel)]
        gone += [p for p in sorted(files) if named(site, p).is_file()]
        gone += [
            f"{p}/" for p in folders if named(site, p).is_dir() and not named(site, p).is_symlink()
        ]
    state = state_paths(site, config, removal.channel, removal.subdirs, removal.whole_channel)
    state = [path for path in state if path.exists()]
    for path in state:
        relpath = path.relative_to(site.root).as_posix()
        gone.append(relpath + ("/" if path.is_dir() else ""))
    if removal.whole_channel:
        store = AccessPaths.of(config).store
        try:
            readers = store.scoped_to(removal.channel)
        except (TokenError, OSError) as exc:
            readers = [f"? ({exc})"]
        if readers:
            gone.append(f"{store.path}: {removal.channel} from the scope of {', '.join(readers)}")
    subdirs = None if removal.whole_channel else removal.subdirs
    if holds_counts(config, removal.channel, subdirs):
        relpath = stats_state_path(site.root).relative_to(site.root).as_posix()
        gone.append(f"{relpath}: the download counts of {removal.path}")
    gone.append(removal.summary(sum(counts.files.values()), counts.bytes, len(state)))
    return lines + [f"remove {line}" for line in gone]


def remove(config: SiteConfig, path: str, delete_moved: bool = False) -> RemovalReport:
    """Remove ``path`` under the site lock (:class:`~sitegen.store.lock.SiteLocked` when a run
    holds it); the plan is made under the lock, so no run changes the site between the two.
    The files a ``move: true`` source moved out of its folder go back to it (``delete_moved``:
    are deleted with their store)."""
    site = Site(config.output)
    if not site.state_dir.is_dir():
        raise RemovalRefused(f"{site.root} holds no site (no {STATE_DIR}/)")
    # The statistics' lock too (a `sitegen stats` of its own takes only that one): their
    # counts of the path go with its state.
    with SiteLock(site.state_dir), stats_lock(site, create=False):
        removal = plan_removal(config, path)
        moved = moved_files(config, removal, delete_moved)  # may refuse: before anything goes
        journal = begin(site, removal)
        report = RemovalReport(removal, journal.files, journal.bytes, moved=moved)
        remove_metadata(site, removal)
        remove_files(site, removal)
        for plan in [] if delete_moved else moved:
            give_back(site, plan)  # before the store goes with the rest of the state
        report.state = remove_state(
            site, config, removal.channel, removal.subdirs, removal.whole_channel
        )
        forget_counts(config, removal.channel, None if removal.whole_channel else removal.subdirs)
        if removal.whole_channel:
            report.tokens = forget_readers(config, removal.channel)
        remove_pages(config, site, removal)
        for kept in remove_directories(config, site, removal):
            log.warning("%s: kept, not empty (a channel nested in it, or files of others)", kept)
        report.record = _record(site, config, report, journal.started)
        if report.record:
            # Kept otherwise, so that the same command can still write the record.
            journal_path = removal_journal_path(site.root, removal.path)
            site.remove(journal_path)
            with contextlib.suppress(OSError):  # not empty: another removal's journal is there
                journal_path.parent.rmdir()
    return report


def _record(site: Site, config: SiteConfig, report: RemovalReport, started: float) -> str:
    """A ledger record of the removal (counts only: file names of a channel that was private
    must not reach the public history pages), for the history pages and their feed."""
    removal = report.removal
    access = RunAccess.of(config)
    # A whole channel removed is configured no more: its access is the one the ledger last
    # noted for it (private when none did, so that its removal stays off the public pages).
    if removal.channel not in access.channels:
        access.channels[removal.channel] = noted_access(History(site).runs(), removal.channel)
    subdirs = [
        ChannelSubdirReport(
            channel=removal.channel,
            subdir=subdir,
            status=REMOVED,
            deleted_files=report.files.get(subdir, 0),
        )
        for subdir in removal.subdirs
    ]
    return record_removal(site, removal.path, started, access, channels=subdirs)
