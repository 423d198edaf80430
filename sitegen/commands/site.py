"""Subcommands around the published site: ``verify``, ``status``, ``remove``, ``serve``,
``webconf``, ``fetcher`` and ``demo``."""

from __future__ import annotations

import argparse
import logging
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from sitegen.commands.common import (
    AddCommand,
    add_site_options,
    check_text,
    load,
    render_pages,
    whole_number,
)
from sitegen.exit_status import EXIT_CONFIG, EXIT_FAILED, EXIT_LOCKED, EXIT_OK

if TYPE_CHECKING:
    from sitegen.config import SiteConfig

log = logging.getLogger("sitegen")


def register(add: AddCommand) -> None:
    verify = add(
        "verify", "re-hash every published file against repodata (installers: their state)"
    )
    add_site_options(verify)
    verify.add_argument(
        "--repair", action="store_true", help="download missing or corrupt files again"
    )
    verify.add_argument(
        "--sample",
        type=_fraction,
        metavar="FRACTION",
        help="hash only this share of the package files (0.05 or 5%%), chosen anew each day;"
        " the others' sizes are checked",
    )
    verify.set_defaults(func=_verify)

    status = add(
        "status",
        "show each mirror's and installer folder's last run and next due time, a running"
        " run, disk per channel and folder",
    )
    add_site_options(status)
    status.add_argument("--json", action="store_true", help="print JSON for programs")
    status.set_defaults(func=_status)

    remove = add(
        "remove",
        "delete a channel, subdir or installer folder that is published but no longer configured",
    )
    remove.add_argument(
        "path",
        help="channel, channel/subdir or installer folder, e.g. cloud/old, cloud/old/osx-64 or"
        " miniconda",
    )
    add_site_options(remove)
    remove.add_argument("--dry-run", action="store_true", help="list what would go; delete nothing")
    remove.add_argument(
        "--delete-moved",
        action="store_true",
        help="delete the packages a `move: true` source moved out of its folder, instead of"
        " returning them to it (they are the only copies)",
    )
    remove.set_defaults(func=_remove)

    serve = add("serve", "preview the site on 127.0.0.1")
    add_site_options(serve)
    serve.add_argument(
        "--port", type=whole_number(0, 65535), default=8000, help="port (default: 8000; 0: any)"
    )
    serve.add_argument(
        "--watch",
        action="store_true",
        help="render again when the templates or channels.yaml change",
    )
    serve.set_defaults(func=_serve)

    webconf = add("webconf", "print an nginx or Apache config serving the site (and the fetcher)")
    webconf.add_argument("server", choices=["nginx", "apache"])
    add_site_options(webconf, new_site=True)  # a server set up before the first run
    webconf.add_argument(
        "--prefix", default="/", help="URL path the site is served at, e.g. /conda (default: /)"
    )
    webconf.add_argument(
        "--root",
        help="directory the web server reads (default: the site directory; for the symlink"
        " deploy, the link, e.g. /var/www/anaconda)",
    )
    webconf.add_argument(
        "--listen", help="HOST:PORT (nginx default: 80; Apache: a <VirtualHost> when given)"
    )
    webconf.add_argument("--server-name", help="host name (default: the host of base_url)")
    webconf.add_argument(
        "--fetcher",
        default="127.0.0.1:8901",
        help="HOST:PORT of `sitegen fetcher`, for channels with a passive mirror",
    )
    webconf.add_argument(
        "--standalone",
        action="store_true",
        help="a complete config to run as is (needs --state-dir for pid, logs, temp files)",
    )
    webconf.add_argument("--state-dir", help="with --standalone: pid file, logs, temp files")
    webconf.add_argument("--user", help="with --standalone: run workers as USER[:GROUP]")
    webconf.add_argument(
        "--apache-modules",
        default="/usr/lib/apache2/modules",
        help="with --standalone: Apache's module directory",
    )
    webconf.set_defaults(func=_webconf)

    fetcher = add(
        "fetcher", "serve missing package files of passive mirrors, verified (long-running)"
    )
    add_site_options(fetcher)
    fetcher.add_argument(
        "--listen", default="127.0.0.1:8901", help="HOST:PORT (default: 127.0.0.1:8901)"
    )
    fetcher.add_argument(
        "--max-connections",
        type=whole_number(1),
        default=256,
        help="open connections at most; a new one closes the longest-idle (default: 256)",
    )
    fetcher.add_argument(
        "--max-downloads",
        type=whole_number(1),
        default=64,
        help="different files fetched at once; more get 503 (default: 64)",
    )
    fetcher.set_defaults(func=_fetcher)

    demo = add("demo", "mirror a bundled example channel, fully offline")
    demo.add_argument("--dir", default="demo", help="where to build the example (default: demo)")
    demo.set_defaults(func=_demo)


def _fraction(text: str) -> float:
    from sitegen.tools.verify_sample import parse_fraction

    try:
        return parse_fraction(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _verify(args: argparse.Namespace) -> int:
    import trio

    from sitegen.tools.verify import verify_site
    from sitegen.tools.verify_sample import Sample
    from sitegen.wording import counted, human_bytes

    sample = None if args.sample is None else Sample.today(args.sample)
    config = load(args)
    report = trio.run(verify_site, config, args.repair, sample)
    if report.nothing_published:
        for problem in report.problems:  # a killed first run's temporaries
            print(f"{problem.kind}: {problem.path}: {problem.detail}")
        source = config.source or "channels.yaml"
        what = "channel or installer folder" if config.installers else "channel"
        print(f"nothing to verify: no {what} {source} configures is published in {config.output}")
        return EXIT_FAILED
    for problem in report.problems:
        state = " (repaired)" if problem.repaired else ""
        print(f"{problem.kind}: {problem.path}: {problem.detail}{state}")
    sampled = ""
    if sample is not None:
        sampled = (
            f" (a sample: {sample.fraction * 100:g}% for {sample.day.isoformat()},"
            f" hashed {counted(report.hashed, 'file')}, {human_bytes(report.hashed_bytes)};"
            " sizes only for the rest)"
        )
    # Kept files are checked against their kept records, files awaiting publication against
    # upstream's, not repodata: said apart.
    unlisted = [f"{report.kept} kept unlisted"] if report.kept else []
    unlisted += [f"{report.awaiting} awaiting publication"] if report.awaiting else []
    apart = f" ({', '.join(unlisted)})" if unlisted else ""
    print(
        f"checked {counted(report.files, 'file')}{apart}, {human_bytes(report.bytes)}{sampled};"
        f" {counted(len(report.problems), 'problem')}"
    )
    if any(p.kind == "locked" for p in report.problems):
        return EXIT_LOCKED
    return EXIT_OK if report.ok else EXIT_FAILED


def _status(args: argparse.Namespace) -> int:
    import json

    from sitegen.tools.status import collect_status
    from sitegen.tools.status_format import format_status, status_json

    status = collect_status(load(args, upstream=False))
    if args.json:
        print(json.dumps(status_json(status), indent=1))
    else:
        sys.stdout.write(format_status(status))
    return EXIT_OK


def _remove(args: argparse.Namespace) -> int:
    from sitegen.store.lock import SiteLocked
    from sitegen.tools.remove import RemovalRefused, dry_run, plan_removal, remove
    from sitegen.tools.remove_installers import folder_dry_run, installer_removal
    from sitegen.wording import counted

    check_text("PATH", args.path)  # what sitegen publishes has UTF-8 names only
    config = load(args, upstream=False)
    try:
        folder = installer_removal(config, args.path)
        if args.dry_run:
            # Without the lock: a plan only reads, and a run working meanwhile only ever
            # touches configured channels and folders.
            if folder is not None:
                lines = folder_dry_run(config, folder)
            else:
                lines = dry_run(config, plan_removal(config, args.path), args.delete_moved)
            for line in lines:
                print(f"would {line}")
            return EXIT_OK
        if folder is not None:
            return _remove_folder(config, args.path)
        report = remove(config, args.path, args.delete_moved)
    except RemovalRefused as exc:
        print(f"sitegen: remove: {exc}; nothing was removed", file=sys.stderr)
        return EXIT_CONFIG
    except SiteLocked as exc:
        log.error("%s; nothing was removed", exc)
        return EXIT_LOCKED
    except OSError as exc:
        log.error("remove: %s; run it again to finish", exc)
        return EXIT_FAILED
    removal = report.removal
    for plan in report.moved:
        if args.delete_moved:
            log.warning(
                "%s: deleted the %s it had moved out of its folder (--delete-moved)",
                plan.mirror,
                counted(len(plan.files), "package file"),
            )
            continue
        log.info(
            "%s: returned the %s it had moved out of %s to that folder",
            plan.mirror,
            counted(len(plan.files), "package file"),
            plan.folder,
        )
        for giving in plan.givings:
            if giving.aside:
                log.warning(
                    "%s: kept aside as %s: its name is taken", giving.stored.name, giving.target
                )
    log.info("removed %s", removal.summary(sum(report.files.values()), report.bytes, report.state))
    if report.tokens:
        log.info("%s no longer in the scope of %s", removal.channel, ", ".join(report.tokens))
    return EXIT_OK if render_pages(config) else EXIT_FAILED


def _remove_folder(config: SiteConfig, path: str) -> int:
    """``sitegen remove`` of an installer folder (refusals and a held lock raise, as for a
    channel's removal)."""
    from sitegen.tools.remove_installers import remove_folder

    removal, kept = remove_folder(config, path)
    for folder in kept:
        log.warning("%s: kept, not empty (folders of others in it)", folder)
    log.info("removed %s", removal.summary())
    return EXIT_OK if render_pages(config) else EXIT_FAILED


def _serve(args: argparse.Namespace) -> int:
    from sitegen.tools.serve import ServeError, serve

    load(args)  # a configuration error exits with status 2 before anything starts
    try:
        serve(lambda: load(args), Path(args.config), port=args.port, watch=args.watch)
    except ServeError as exc:
        print(f"sitegen: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("sitegen: preview server stopped", file=sys.stderr)
    return EXIT_OK


def _webconf(args: argparse.Namespace) -> int:
    from sitegen.access.server_files import AccessError, token_guarded, write_server_files
    from sitegen.tools.webconf import (
        WebconfError,
        WebconfOptions,
        build_webconf,
        default_root_warning,
        render,
    )

    config = load(args)
    if token_guarded(config):
        try:
            write_server_files(config)  # the config includes them: they must exist
        except AccessError as exc:
            print(f"sitegen: webconf: {exc}", file=sys.stderr)
            return EXIT_CONFIG
    options = WebconfOptions(
        prefix=args.prefix,
        root=args.root,
        listen=args.listen,
        server_name=args.server_name,
        fetcher=args.fetcher,
        standalone=args.standalone,
        state_dir=args.state_dir,
        user=args.user,
        apache_modules=args.apache_modules,
    )
    try:
        conf = build_webconf(args.server, config, options)
        text = render(conf)
    except WebconfError as exc:
        print(f"sitegen: webconf: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    warning = default_root_warning(conf)
    if warning:
        print(f"sitegen: webconf: warning: {warning}", file=sys.stderr)
    sys.stdout.write(text)
    return EXIT_OK


def _fetcher(args: argparse.Namespace) -> int:
    import signal

    import trio

    from sitegen.passive.fetcher import FetcherLimits
    from sitegen.passive.listen import (
        listener_address,
        open_listeners,
        parse_listen,
        serve_fetcher,
    )
    from sitegen.wording import counted

    config = load(args)
    try:
        host, port = parse_listen(args.listen)
    except ValueError as exc:
        print(f"sitegen: fetcher: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    async def run() -> int:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            try:
                listeners = await open_listeners(host, port)
            except OSError as exc:
                log.error("fetcher: cannot listen on %s: %s", args.listen, exc.strerror or exc)
                return EXIT_FAILED
            limits = FetcherLimits(
                max_connections=args.max_connections, max_downloads=args.max_downloads
            )
            async with trio.open_nursery() as nursery:
                fetcher = await nursery.start(
                    partial(serve_fetcher, limits=limits), config, listeners
                )
                # The one announcement, on stdout for whatever waits for the address (the
                # URL ends the line).
                channels = counted(len(fetcher.resolver.channels), "passive channel")
                print(
                    f"sitegen fetcher: {channels} of {fetcher.resolver.site.root};"
                    f" listening on http://{listener_address(listeners)}"
                )
                sys.stdout.flush()
                async for signum in signals:
                    log.info("fetcher: %s received, stopping", signal.Signals(signum).name)
                    nursery.cancel_scope.cancel()
                    break
        return EXIT_OK

    return trio.run(run)


def _demo(args: argparse.Namespace) -> int:
    from sitegen.tools.demo import run_demo

    return run_demo(Path(args.dir))
