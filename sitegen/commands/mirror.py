"""``sitegen mirror`` (and what follows a run: statistics, history retention, pages,
notification), ``sitegen stop``, ``sitegen render`` and ``sitegen stats``."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

from sitegen.commands.common import AddCommand, add_site_options, load, render_pages
from sitegen.exit_status import EXIT_CONFIG, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_LOCKED, EXIT_OK
from sitegen.wording import counted

if TYPE_CHECKING:
    from sitegen.config import SiteConfig

log = logging.getLogger("sitegen")


def register(add: AddCommand) -> None:
    mirror = add("mirror", "sync every mirror and publish the site")
    add_site_options(mirror, new_site=True)
    mirror.add_argument("--verify", action="store_true", help="re-hash files already present")
    mirror.add_argument(
        "--force-delete",
        action="store_true",
        help="publish even when a subdir would lose more than prune.max_fraction of its files",
    )
    mirror.add_argument(
        "--dry-run", action="store_true", help="show what would be downloaded and deleted"
    )
    mirror.add_argument(
        "--only", action="append", metavar="NAME", help="run this mirror now (repeatable)"
    )
    mirror.add_argument(
        "--due",
        action="store_true",
        help="run only the mirrors whose schedule came due since their last completed run",
    )
    mirror.add_argument("--no-progress", action="store_true", help="plain log lines only")
    mirror.set_defaults(func=run_mirror_command)

    stop = add("stop", "stop the mirror run in progress on this site (as SIGTERM does)")
    add_site_options(stop)
    stop.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for the run to release the site (default: 60)",
    )
    stop.set_defaults(func=_stop)

    render = add("render", "render the browse pages from the site on disk")
    add_site_options(render)
    render.set_defaults(func=_render)

    stats = add("stats", "count downloads from the web server's access logs")
    add_site_options(stats)
    stats.set_defaults(func=_stats)


def run_mirror_command(args: argparse.Namespace) -> int:
    import trio

    from sitegen.access.refresh import refresh_access
    from sitegen.config import ConfigError
    from sitegen.store.lock import SiteLocked
    from sitegen.sync.report import STOPPED, new_files_text
    from sitegen.sync.run import MirrorOptions, RunError, run_mirror

    config = load(args)
    options = MirrorOptions(
        verify=args.verify,
        force_delete=args.force_delete,
        dry_run=args.dry_run,
        only=tuple(args.only or ()),
        due=args.due,
        progress=False if args.no_progress else None,
    )
    # Readers taken out of channels.yaml lose access at the next scheduled run.
    access_ok = args.dry_run or refresh_access(config)
    started = False  # the run held the lock and began: pages must show it
    downloads_counted = True
    # A run record noting a channel private tells the next count through which day that
    # channel's downloads stay off the public page: records go past the retention only once
    # a count has read them (see sitegen.stats.run.note_private), or, without statistics,
    # once their marks are kept for a count to come.
    noted = False
    rendered = True
    try:
        report = trio.run(run_mirror, config, options)
        started = True
    except SiteLocked as exc:
        log.error("%s", exc)
        return EXIT_LOCKED
    except ConfigError:
        raise  # e.g. --only with an unknown name: nothing ran, nothing to show
    except OSError as exc:
        # Raised before the run began (its errors come as RunError, or grouped by its
        # nursery): the site directory, its lock or its state could not be made or read, as
        # for an `output` the file system refuses (under /proc). Nothing ran or was recorded.
        log.error("the run could not start: %s", exc)
        return EXIT_FAILED
    except RunError as exc:
        # Recorded as failed: rendered, notified and exited as any failed run, not a traceback.
        started = True
        report = exc.report
        log.error("run %s: %s", report.id, exc)
        log.debug("the run ended on an unexpected error", exc_info=exc.__cause__)
    except BaseException:
        started = True
        raise
    else:
        # --- download statistics, when channels.yaml has `stats:`: counted before the
        # pages are rendered, so the statistics and package pages show the new counts in
        # this one render (the reverse order would need a second one). Not after a run that
        # raised (interrupted): its pages come first. ---
        if not args.dry_run and config.stats is not None:
            noted = downloads_counted = count_downloads(config)
        # --- end of download statistics ---
        if report.mirrors and not args.dry_run:
            warn_unconfigured(config)
        if (report.mirrors or report.installers) and not args.dry_run:
            warn_unconfigured_installers(config)
    finally:
        # Pages show every run, failed and stopped ones too; a dry run changes nothing.
        if started and not args.dry_run:
            if config.stats is None:
                from sitegen.stats.run import keep_private_marks

                noted = keep_private_marks(config)
            if noted:
                prune_history_records(config)
            else:
                log.info("history: run records are kept past the retention until a count")
            rendered = render_pages(config)
    # What failed after the run itself fails the exit status; the hook is told why.
    afterwards = [
        why
        for ok, why in (
            (access_ok, "the web server's token files could not be brought in line"),
            (downloads_counted, "counting downloads failed"),
            (rendered, "rendering the pages failed"),
        )
        if not ok
    ]
    rendered = downloads_counted and rendered and access_ok
    if args.dry_run:
        for channel in report.channels:
            new_files = new_files_text(
                (channel.downloaded_files, channel.downloaded_bytes),
                (channel.local_files, channel.local_bytes),
                dry_run=True,
                size=lambda n: f"{n} bytes",
            )
            print(
                f"{channel.channel}/{channel.subdir}: {new_files}, delete {channel.deleted_files},"
                + (f" keep {channel.kept_files} unlisted," if channel.kept_files else "")
                + f" publish {counted(channel.packages, 'file')}"
                + (f" [{channel.status}: {'; '.join(channel.errors)}]" if channel.errors else "")
            )
        for installer in report.installers:
            # The sizes the index rounds count as their least: the exact ones are not asked.
            new_files = new_files_text(
                (installer.downloaded_files, installer.downloaded_bytes),
                (0, 0),
                dry_run=True,
                size=lambda n: f"at least {n} bytes",
            )
            errors = "; ".join(installer.errors)
            print(
                f"{installer.path}/: {new_files}, delete {len(installer.removed)},"
                f" publish {counted(installer.files, 'file')}"
                + (f" [{installer.status}: {errors}]" if errors else "")
            )
    if report.status == STOPPED:
        log.error("run %s stopped; published files are consistent", report.id)
        status = EXIT_INTERRUPTED
    elif report.failed:
        log.error("run %s finished with errors", report.id)
        status = EXIT_FAILED
    else:
        status = EXIT_OK if rendered else EXIT_FAILED
    # A run took place, or failed before it reached its mirrors, or nothing was due but what
    # follows a run failed (pages, token files): every non-zero exit runs on_failure.
    ran = report.mirrors or report.installers
    if (ran or report.failed or status != EXIT_OK) and not args.dry_run:
        from sitegen.sync.notify import notify_run

        notify_run(config, report, status, afterwards)
    return status


def prune_history_records(config: SiteConfig) -> None:
    """Drop run records past the retention before the pages are rendered, so their pages go
    in the same render. Here rather than in the ledger's save path: the run ledger is written
    at the start and end of every run and must stay cheap and config-free, pruning reads every
    record, and a failure here must not touch the run's own record or outcome. Without the
    lock: only finished records are removed, and no run rewrites those."""
    from sitegen.store.site import Site
    from sitegen.sync.retention import prune_history

    try:
        prune_history(Site(config.output), config.history)
    except OSError as exc:
        log.error("history: could not remove old run records: %s", exc.strerror or exc)


def warn_unconfigured(config: SiteConfig) -> None:
    """Name in the run's log every subdir still served that channels.yaml no longer names: runs
    never touch it again, so without this a channel taken out of the file would stay
    installable, unseen, as last published (a run with nothing due says nothing)."""
    from sitegen.tools.site_disk import (
        installer_folders,
        unconfigured_subdirs,
    )

    configured, folders = config.subdir_paths(), installer_folders(config)
    for stale in unconfigured_subdirs(config.output, configured, False, folders):
        log.warning(
            "%s is still published but no channel in the configuration names it: clients can"
            " still install from it; `sitegen remove %s` stops serving it",
            stale.path,
            stale.path,
        )


def warn_unconfigured_installers(config: SiteConfig) -> None:
    """Name in the run's log every installer folder the site still holds (its state says so)
    that channels.yaml no longer names: runs never touch it again, and the web server goes on
    serving its files."""
    from sitegen.tools.site_disk import unconfigured_installers

    for path in unconfigured_installers(config):
        log.warning(
            "installer folder %s is still published but channels.yaml no longer names it:"
            " `sitegen remove %s` stops serving it",
            path,
            path,
        )


def count_downloads(config: SiteConfig) -> bool:
    from sitegen.stats.run import StatsError, run_stats
    from sitegen.store.lock import SiteLocked

    try:
        run_stats(config)
    except (StatsError, SiteLocked, OSError) as exc:
        # SiteLocked: a `sitegen stats` of its own is counting; the lines are left to it.
        log.error("counting downloads failed: %s", exc)
        return False
    return True


def _stats(args: argparse.Namespace) -> int:
    from sitegen.stats.run import StatsError, run_stats
    from sitegen.store.lock import SiteLocked

    try:
        result = run_stats(load(args, upstream=False))
    except SiteLocked as exc:
        log.error("%s", exc)
        return EXIT_LOCKED
    except StatsError as exc:
        print(f"sitegen: stats: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    skipped = sum(result.skipped.values())
    installers = (
        f" (and {result.installer_downloads} of installers)" if result.installer_downloads else ""
    )
    print(
        f"stats: read {counted(result.lines, 'new line')} ({result.bytes_read} bytes) from"
        f" {counted(result.files, 'file')}; {counted(result.downloads, 'download')} counted in"
        f" all{installers}; {counted(skipped, 'line')} skipped in all"
    )
    return EXIT_FAILED if result.errors else EXIT_OK


def _render(args: argparse.Namespace) -> int:
    from sitegen.web.render import render_site

    config = load(args, upstream=False)
    try:
        stats = render_site(config)
    except OSError as exc:  # e.g. an `output` the file system refuses to create (under /proc)
        log.debug("rendering failed", exc_info=True)
        log.error("rendering the pages failed: %s", exc)
        return EXIT_FAILED
    print(f"pages: {stats}")
    # A channel whose pages were left as they were (its folder a link out of the site, named
    # in a warning) is a site not rendered whole.
    return EXIT_FAILED if stats.left_out else EXIT_OK


def _stop(args: argparse.Namespace) -> int:
    from sitegen.tools import stop

    if not args.timeout >= 0:
        print("sitegen: --timeout must be 0 or more seconds", file=sys.stderr)
        return EXIT_CONFIG
    result = stop.stop_run(load(args, upstream=False), args.timeout)
    print(result.describe())
    if result.outcome == stop.STOPPED_RUN:
        return EXIT_OK
    if result.outcome == stop.NOTHING:
        return EXIT_FAILED
    # The site is still held: by a run that goes on, or by something that is not one.
    return EXIT_LOCKED
