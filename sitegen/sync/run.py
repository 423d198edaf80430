"""One mirror run: fetch repodata, filter, close dependencies, merge, download, publish, prune.

This module holds the site lock and chooses what runs (``--only``, ``--due``); the run of what
was chosen (its record, signals) is :mod:`sitegen.sync.running`, the stages themselves are in
:mod:`sitegen.sync.pipeline`. Data flows one way through them; each channel
subdir is published only when every mirror feeding it was read successfully and all of its new
files are verified, so a failure anywhere leaves the previously published state of that subdir
untouched.
"""

from __future__ import annotations

import logging
import os
import time

import trio

from sitegen.config import ConfigError, SiteConfig
from sitegen.config.schedule import is_due
from sitegen.store.frozen import FrozenChannels, with_freezes
from sitegen.store.lock import SiteLock
from sitegen.store.site import Site
from sitegen.sync.gates import resolve_gates
from sitegen.sync.history import History, installers_completed, last_completed, new_run_id
from sitegen.sync.options import MirrorOptions
from sitegen.sync.removal_journal import record_unfinished
from sitegen.sync.report import COMPLETED, RunAccess, RunError, RunReport

__all__ = ["MirrorOptions", "RunError", "run_mirror", "select_installers", "select_mirrors"]

log = logging.getLogger("sitegen")


def select_mirrors(
    config: SiteConfig, runs: list[RunReport], options: MirrorOptions, now: float
) -> set[str]:
    """Names of the mirrors this run syncs (``--only`` and ``--due``)."""
    names = [m.name for _c, m in config.mirrors]
    if options.only:
        # An installer folder's path is what --only takes for it (see select_installers).
        folders = {i.path for i in config.installers}
        unknown = sorted(set(options.only) - set(names) - folders)
        if unknown:
            # A channel's path given for its mirror's name: say which mirrors feed it.
            channels = {c.path: [m.name for m in c.mirrors] for c in config.channels}
            hints = "".join(
                f"; {name!r} is a channel, fed by {', '.join(channels[name])}"
                for name in unknown
                if name in channels
            )
            listed = f"; installer folders are: {', '.join(sorted(folders))}" if folders else ""
            raise ConfigError(
                f"--only: no mirror named {', '.join(unknown)}{hints};"
                f" mirrors are: {', '.join(names)}{listed}"
            )
        names = [n for n in names if n in options.only]
    if options.due:
        last = last_completed(runs, now, config)
        schedules = {m.name: m.schedule for _c, m in config.mirrors}
        names = [n for n in names if is_due(schedules[n], last.get(n), now)]
    return set(names)


def select_installers(
    config: SiteConfig, runs: list[RunReport], options: MirrorOptions, now: float
) -> set[str]:
    """Paths of the installer folders this run mirrors (``--only`` names them by path; with
    ``--due``, those whose schedule came due)."""
    folders = [i.path for i in config.installers]
    if options.only:
        folders = [path for path in folders if path in options.only]
    if options.due:
        last = installers_completed(runs, now)
        schedules = {i.path: i.schedule for i in config.installers}
        folders = [path for path in folders if is_due(schedules[path], last.get(path), now)]
    return set(folders)


def _selection(
    config: SiteConfig, history: History, options: MirrorOptions
) -> tuple[set[str], set[str]]:
    """The mirrors and installer folders this run syncs. Only ``--due`` reads the ledger, and
    the records are let go of here: after a first sync of a large channel a record lists every
    file it added (~35 MB of JSON, ~90 MB as objects at 800,000 records), which the whole run
    would otherwise hold."""
    runs = history.runs() if options.due else []
    now = time.time()
    return select_mirrors(config, runs, options, now), select_installers(config, runs, options, now)


async def run_mirror(config: SiteConfig, options: MirrorOptions | None = None) -> RunReport:
    """Run the selected mirrors once; raises SiteLocked when another run holds the site.

    SIGINT and SIGTERM stop the run within seconds: in-flight downloads are cancelled and their
    temporary files removed, nothing half-written is published, and the run is recorded as
    stopped; the next run reuses every file that was already verified.
    """
    options = options or MirrorOptions()
    site = Site(config.output)
    if not options.dry_run:  # a dry run creates nothing, not even the site
        site.ensure_dir(site.root)
    with SiteLock(site.state_dir, writes=not options.dry_run):
        frozen, unreadable = FrozenChannels(site).load_or_all(c.path for c in config.channels)
        config = with_freezes(config, frozen)
        config = await trio.to_thread.run_sync(resolve_gates, config, time.time())
        history = History(site)
        # The ledger is read in worker threads: a record is ~35 MB after a first sync of a
        # large channel, and a watch runs this beside its other tasks, run after run.
        # A dry run changes nothing on disk: a killed run's record is the next real run's.
        if not options.dry_run:
            for run_id in await trio.to_thread.run_sync(history.close_interrupted):
                log.warning("run %s did not finish; recorded as interrupted", run_id)
            configured = config.subdir_paths()
            for path in await trio.to_thread.run_sync(record_unfinished, site, configured):
                log.warning("the removal of %s did not finish; recorded as interrupted", path)
        selected, installers = await trio.to_thread.run_sync(_selection, config, history, options)
        report = RunReport(
            id=new_run_id(),
            started=time.time(),
            pid=os.getpid(),
            options={
                "verify": options.verify,
                "force_delete": options.force_delete,
                "dry_run": options.dry_run,
                "only": sorted(options.only),
                "due": options.due,
            },
            access=RunAccess.of(config),
        )
        if unreadable:
            log.error("%s", unreadable)
            report.errors.append(unreadable)
        if not selected and not installers:
            nothing = config.channels or config.installers
            log.info("no mirror is due" if nothing else "no channel is configured")
            report.status, report.ended = COMPLETED, time.time()
            return report
        # The stages are loaded only now (see sitegen.sync.running).
        from sitegen.sync.running import run_selected

        return await run_selected(config, options, site, history, report, selected, installers)
