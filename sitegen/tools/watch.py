"""``sitegen watch``: publish what lands in the local sources' folders within seconds.

Each folder is watched with ``watchfiles``. A change marks the site dirty; the publisher then
waits until the folders are quiet (no event and the same name, size and mtime for every
package file across two looks :data:`QUIET` seconds apart), so a file still being copied is not
read until it is complete and a burst of drops is one publish. Then it runs the local mirrors
as ``sitegen mirror --only`` would, under the site lock (waiting while another run holds it),
and renders the pages.

A folder absent at start, or removed and recreated, is waited for and watched again; one the
system will not watch (inotify's limits reached) is polled instead. SIGINT
and SIGTERM stop the watch; a publish under way stops as a mirror run does, and the command's
render (``sitegen watch``: a worker thread) is abandoned and told to stop.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import trio
import watchfiles

from sitegen.config import MirrorConfig, SiteConfig
from sitegen.store.lock import SiteLocked
from sitegen.sync.local import folder_of, is_local
from sitegen.sync.local_index import scan_folder
from sitegen.sync.report import STOPPED, RunReport
from sitegen.sync.run import MirrorOptions, RunError, run_mirror

log = logging.getLogger("sitegen")

QUIET = 0.5  # seconds without a change before a publish
POLL = 0.5  # how often an absent folder is looked for, and a watched one checked
LOCK_RETRY = 0.5
RUST_TIMEOUT_MS = 500  # how long the watcher thread may take to notice a stop


class Trigger:
    """Set by any change; the publisher waits for it and clears it."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def clear(self) -> None:
        if self._event.is_set():
            self._event = trio.Event()

    async def wait(self) -> None:
        await self._event.wait()


def change_filter(site: Path) -> Callable[[watchfiles.Change, str], bool]:
    """Which changes are worth a look. Not dot-files, nor ``*.partial`` copies in progress;
    nor anything in the site directory, should it lie inside a watched folder: each publish
    writes there (its run record at least), which would start the next one, for ever."""
    sites = {str(site), str(site.resolve())}

    def relevant(change: watchfiles.Change, path: str) -> bool:
        if any(path == s or path.startswith(s + os.sep) for s in sites):
            return False
        name = os.path.basename(path)
        return not name.startswith(".") and not name.endswith(".partial")

    return relevant


def _identity(folder: Path) -> tuple[int, int] | None:
    try:
        result = os.stat(folder)
    except OSError:
        return None
    return (result.st_dev, result.st_ino)


@contextmanager
def _held(folder: Path) -> Iterator[tuple[int, int] | None]:
    """The folder's identity (None while it is absent), its inode held open meanwhile. A
    folder removed and made again at once (``rm -rf`` then ``mkdir``) may get the inode number
    just freed (ext4 hands it out again), and would pass for the one watched, whose watch has
    ended; a number still held is not handed out. O_PATH: no read permission is needed."""
    try:
        fd = os.open(folder, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        fd = None
    if fd is None:
        yield None
        return
    try:
        result = os.fstat(fd)
        yield (result.st_dev, result.st_ino)
    finally:
        os.close(fd)


async def watch_folder(
    folder: Path, trigger: Trigger, relevant: Callable[[watchfiles.Change, str], bool]
) -> None:
    """Watch one folder for ever: wait for it to exist, watch it until it is replaced or gone;
    ``relevant`` (see change_filter) picks the changes that set ``trigger``. A folder the
    system will not watch (inotify's limits on watches or instances reached) is polled."""
    unwatchable: str | None = None  # why the folder, still there, could not be watched
    polling = False
    while True:
        with _held(folder) as identity:
            if identity is None:
                await trio.sleep(POLL)
                continue
            if unwatchable is None:
                # There at start, or back: what landed while nothing watched is published too.
                trigger.set()
                log.info("watching %s%s", folder, " by polling" if polling else "")
            failed = await _watch_while_there(folder, identity, trigger, relevant, polling)
        if failed is not None and not polling:
            # The operator learns why (else a limit reached looks like a watch that works),
            # and drops are published all the same, found by looking every POLL seconds.
            log.warning(
                "cannot watch %s: %s; looking for changes every %s s instead (raise"
                " fs.inotify.max_user_watches or fs.inotify.max_user_instances to watch it)",
                folder,
                failed,
                POLL,
            )
            polling = True
            continue
        if failed is not None:
            if failed != unwatchable:  # once, not on every retry
                log.error("cannot watch %s: %s; trying again", folder, failed)
            unwatchable = failed
        else:
            log.warning("%s is gone or was replaced; looking again", folder)
            polling, unwatchable = False, None
        await trio.sleep(POLL)


async def _watch_while_there(
    folder: Path,
    identity: tuple[int, int],
    trigger: Trigger,
    relevant: Callable[[watchfiles.Change, str], bool],
    polling: bool,
) -> str | None:
    """Watch the folder until it is gone or replaced (None), or why the system will not."""
    failed: str | None = None
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_notice_replacement, folder, identity, scope)
            try:
                async for _changes in watchfiles.awatch(
                    folder,
                    watch_filter=relevant,
                    rust_timeout=RUST_TIMEOUT_MS,
                    # None, not False: WATCHFILES_FORCE_POLLING still applies.
                    force_polling=True if polling else None,
                    poll_delay_ms=int(POLL * 1000),
                    # A subfolder it may not read (lost+found) holds nothing it could publish;
                    # else inotify refuses the whole folder.
                    ignore_permission_denied=True,
                ):
                    trigger.set()
            # except*: the watcher's own errors come bare from its start, and wrapped in an
            # exception group from its later looks (by polling: a subfolder it may not read).
            except* (OSError, RuntimeError) as group:
                if _identity(folder) == identity:  # still there, yet not watchable
                    failed = _first(group)
            scope.cancel()
    return failed


def _first(group: BaseExceptionGroup[BaseException]) -> str:
    """What the first error of a (nested) exception group says."""
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else str(first)


async def _notice_replacement(
    folder: Path, identity: tuple[int, int], scope: trio.CancelScope
) -> None:
    while _identity(folder) == identity:
        await trio.sleep(POLL)
    scope.cancel()


def _look(folders: list[Path]) -> dict[str, tuple[int, int]]:
    """Every package file of the folders: path -> (size, mtime_ns)."""
    seen: dict[str, tuple[int, int]] = {}
    for folder in folders:
        try:
            found = scan_folder(folder)
        except OSError:
            continue
        for item in found:
            if item.stat is not None:
                seen[f"{folder}/{item.relpath}"] = (item.stat.size, item.stat.mtime_ns)
    return seen


async def settle(folders: list[Path], trigger: Trigger) -> None:
    """Return once the folders are quiet: no event, and the same files, sizes and mtimes
    across two looks QUIET seconds apart."""
    before = await trio.to_thread.run_sync(_look, folders)
    while True:
        trigger.clear()
        await trio.sleep(QUIET)
        now = await trio.to_thread.run_sync(_look, folders)
        if not trigger.is_set() and now == before:
            return
        before = now


async def publish(
    config: SiteConfig, mirrors: list[MirrorConfig], render: Callable[[], Awaitable[None]]
) -> RunReport | None:
    """One mirror run of the local sources, waiting for the site lock as long as it takes;
    None when a stop signal came as the run ended (the watch is to stop)."""
    options = MirrorOptions(only=tuple(m.name for m in mirrors), progress=False)
    waiting = False
    while True:
        try:
            report = await run_mirror(config, options)
            break
        except SiteLocked as exc:
            if not waiting:
                log.info("%s; waiting for it to finish", exc)
                waiting = True
            await trio.sleep(LOCK_RETRY)
        except RunError as exc:
            # Recorded as failed, like any failed run: the watch goes on (it runs as a
            # service), and the next change publishes again.
            report = exc.report
            log.error("run %s: %s", report.id, exc)
            break
        except KeyboardInterrupt:
            # SIGINT/SIGTERM while the run saved its record (run_mirror raises it once the
            # record is saved): a stop like one that comes a moment later.
            return None
    await render()
    return report


async def watch_site(
    config: SiteConfig,
    render: Callable[[], Awaitable[None]],
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Watch every local source of the site and publish its changes, until cancelled or a
    signal stops a publish under way."""
    mirrors = [m for _c, m in config.mirrors if is_local(m)]
    folders = list(dict.fromkeys(folder_of(m) for m in mirrors))
    trigger = Trigger()
    relevant = change_filter(config.output)
    async with trio.open_nursery() as nursery:
        for folder in folders:
            nursery.start_soon(watch_folder, folder, trigger, relevant)
        task_status.started()
        while True:
            await trigger.wait()
            await settle(folders, trigger)
            report = await publish(config, mirrors, render)
            if report is None:
                log.info("watch: a stop signal came as the run ended; stopping")
                nursery.cancel_scope.cancel()
                return
            log.info("published: run %s %s", report.id, report.status)
            if report.status == STOPPED:
                nursery.cancel_scope.cancel()
                return
            # Not held while the next change is awaited and published: a watch runs for
            # months, and a report may list every file of its channels.
            del report


async def run_watch(config: SiteConfig, render: Callable[[], Awaitable[None]]) -> None:
    """The command: watch until SIGINT or SIGTERM."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def stop_on_signal() -> None:
                async for signum in signals:
                    log.info("watch: %s received, stopping", signal.Signals(signum).name)
                    nursery.cancel_scope.cancel()
                    return

            nursery.start_soon(stop_on_signal)
            await watch_site(config, render)
            nursery.cancel_scope.cancel()
