"""Command line: parses arguments and hands over to the module that does the work.

Exit status: 0 all good, 1 some mirror or file failed, 2 bad configuration or usage,
3 another run holds the site lock, 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import trio

from sitegen import __version__
from sitegen.config import ConfigError, SiteConfig, load_config

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_LOCKED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

log = logging.getLogger("sitegen")


def _load(args: argparse.Namespace) -> SiteConfig:
    config = load_config(args.config)
    if getattr(args, "out", None):
        config = replace(config, output=Path(args.out).absolute())
    return config


def _cmd_mirror(args: argparse.Namespace) -> int:
    from sitegen.store.lock import SiteLocked
    from sitegen.sync.report import STOPPED
    from sitegen.sync.run import MirrorOptions, run_mirror

    config = _load(args)
    options = MirrorOptions(
        verify=args.verify,
        force_delete=args.force_delete,
        dry_run=args.dry_run,
        only=tuple(args.only or ()),
        due=args.due,
        progress=False if args.no_progress else None,
    )
    started = False  # the run held the lock and began: pages must show it
    rendered = True
    try:
        report = trio.run(run_mirror, config, options)
        started = True
    except SiteLocked as exc:
        log.error("%s", exc)
        return EXIT_LOCKED
    except ConfigError:
        raise  # e.g. --only with an unknown name: nothing ran, nothing to show
    except BaseException:
        started = True
        raise
    finally:
        # Pages show every run, failed and stopped ones too; a dry run changes nothing.
        if started and not args.dry_run:
            _prune_history(config)
            rendered = _render_pages(config)
    if args.dry_run:
        for channel in report.channels:
            print(
                f"{channel.channel}/{channel.subdir}: would download {channel.downloaded_files}"
                f" files ({channel.downloaded_bytes} bytes), delete {channel.deleted_files},"
                f" publish {channel.packages} files"
                + (f" [{channel.status}: {'; '.join(channel.errors)}]" if channel.errors else "")
            )
    if report.status == STOPPED:
        log.error("run %s stopped; published files are consistent", report.id)
        status = EXIT_INTERRUPTED
    elif report.failed:
        log.error("run %s finished with errors", report.id)
        status = EXIT_FAILED
    else:
        status = EXIT_OK if rendered else EXIT_FAILED
    if report.mirrors and not args.dry_run:  # a run took place (not: nothing was due)
        from sitegen.sync.notify import notify_run

        notify_run(config, report, status)
    return status


def _prune_history(config: SiteConfig) -> None:
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


def _render_pages(config: SiteConfig) -> bool:
    from sitegen.web.render import render_site

    try:
        render_site(config)
    except Exception as exc:
        log.debug("rendering failed", exc_info=True)
        log.error("rendering the pages failed: %s: %s", type(exc).__name__, exc)
        return False
    return True


def _cmd_render(args: argparse.Namespace) -> int:
    from sitegen.web.render import render_site

    stats = render_site(_load(args))
    print(f"pages: {stats}")
    return EXIT_OK


def _cmd_status(args: argparse.Namespace) -> int:
    import json

    from sitegen.tools.status import collect_status, format_status, status_json

    status = collect_status(_load(args))
    if args.json:
        print(json.dumps(status_json(status), indent=1))
    else:
        sys.stdout.write(format_status(status))
    return EXIT_OK


def _cmd_serve(args: argparse.Namespace) -> int:
    from sitegen.tools.serve import ServeError, serve

    _load(args)  # a configuration error exits with status 2 before anything starts
    try:
        serve(lambda: _load(args), Path(args.config), port=args.port, watch=args.watch)
    except ServeError as exc:
        print(f"sitegen: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("sitegen: preview server stopped", file=sys.stderr)
    return EXIT_OK


def _cmd_verify(args: argparse.Namespace) -> int:
    from sitegen.tools.verify import verify_site

    report = trio.run(verify_site, _load(args), args.repair)
    for problem in report.problems:
        state = " (repaired)" if problem.repaired else ""
        print(f"{problem.kind}: {problem.path}: {problem.detail}{state}")
    print(f"checked {report.files} files, {report.bytes} bytes; {len(report.problems)} problems")
    if any(p.kind == "locked" for p in report.problems):
        return EXIT_LOCKED
    return EXIT_OK if report.ok else EXIT_FAILED


def _cmd_demo(args: argparse.Namespace) -> int:
    from sitegen.tools.demo import run_demo

    return run_demo(Path(args.dir))


def _cmd_webconf(args: argparse.Namespace) -> int:
    from sitegen.tools.webconf import WebconfError, WebconfOptions, render_webconf

    config = _load(args)
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
        text = render_webconf(args.server, config, options)
    except WebconfError as exc:
        print(f"sitegen: webconf: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    sys.stdout.write(text)
    return EXIT_OK


def _cmd_fetcher(args: argparse.Namespace) -> int:
    import signal

    from sitegen.passive.fetcher import (
        listener_address,
        open_listeners,
        parse_listen,
        serve_fetcher,
    )

    config = _load(args)
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
            async with trio.open_nursery() as nursery:
                await nursery.start(serve_fetcher, config, listeners)
                print(f"sitegen fetcher: listening on http://{listener_address(listeners)}")
                sys.stdout.flush()
                async for signum in signals:
                    log.info("fetcher: %s received, stopping", signal.Signals(signum).name)
                    nursery.cancel_scope.cancel()
                    break
        return EXIT_OK

    return trio.run(run)


def _cmd_add(args: argparse.Namespace) -> int:
    from sitegen.tools.add import AddError, add_files

    try:
        mirror = add_files(_load(args), args.channel, [Path(p) for p in args.files])
    except AddError as exc:
        for line in exc.lines:
            print(f"sitegen: add: {line}", file=sys.stderr)
        return EXIT_CONFIG if exc.usage else EXIT_FAILED
    # Publishing is a mirror run of that source, with the same exit statuses.
    run = argparse.Namespace(
        config=args.config,
        out=args.out,
        verify=False,
        force_delete=False,
        dry_run=False,
        only=[mirror.name],
        due=False,
        no_progress=True,
    )
    return _cmd_mirror(run)


def _cmd_watch(args: argparse.Namespace) -> int:
    from sitegen.sync.local import is_local
    from sitegen.tools.watch import run_watch

    config = _load(args)
    if not any(is_local(m) for _c, m in config.mirrors):
        print("sitegen: watch: no local source (a mirror with `path:`) to watch", file=sys.stderr)
        return EXIT_CONFIG

    async def render() -> None:
        await trio.to_thread.run_sync(_render_pages, config)

    trio.run(run_watch, config, render)
    return EXIT_OK


class _Subcommands:
    """Adds subcommands that share the verbosity flags and describe themselves in --help."""

    def __init__(self, action: Any, common: argparse.ArgumentParser) -> None:
        self.action = action
        self.common = common

    def add(self, name: str, help: str) -> argparse.ArgumentParser:
        description = help[0].upper() + help[1:] + "."
        return self.action.add_parser(
            name, help=help, description=description, parents=[self.common]
        )


def _add_verbosity(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=default, help="debug logging"
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", default=default, help="warnings and errors only"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sitegen", description="Filtered, verified static mirrors of conda channels."
    )
    parser.add_argument("--version", action="version", version=f"sitegen {__version__}")
    _add_verbosity(parser, argparse.SUPPRESS)
    # -v/-q also after the subcommand; SUPPRESS keeps a flag given before it.
    common = argparse.ArgumentParser(add_help=False)
    _add_verbosity(common, argparse.SUPPRESS)
    sub = _Subcommands(parser.add_subparsers(dest="command", required=True), common)

    mirror = sub.add("mirror", help="sync every mirror and publish the site")
    mirror.add_argument("-c", "--config", default="channels.yaml", help="path to channels.yaml")
    mirror.add_argument("--out", help="site directory (overrides 'output' in the config)")
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
    mirror.set_defaults(func=_cmd_mirror)

    verify = sub.add("verify", help="re-hash every published file against repodata")
    verify.add_argument("-c", "--config", default="channels.yaml", help="path to channels.yaml")
    verify.add_argument("--out", help="site directory (overrides 'output' in the config)")
    verify.add_argument(
        "--repair", action="store_true", help="download missing or corrupt files again"
    )
    verify.set_defaults(func=_cmd_verify)

    render = sub.add("render", help="render the browse pages from the site on disk")
    render.add_argument("-c", "--config", default="channels.yaml", help="path to channels.yaml")
    render.add_argument("--out", help="site directory (overrides 'output' in the config)")
    render.set_defaults(func=_cmd_render)

    status = sub.add(
        "status",
        help="show each mirror's last run and next due time, a running run, disk per channel",
    )
    status.add_argument("-c", "--config", default="channels.yaml", help="path to channels.yaml")
    status.add_argument("--out", help="site directory (overrides 'output' in the config)")
    status.add_argument("--json", action="store_true", help="print JSON for programs")
    status.set_defaults(func=_cmd_status)

    serve = sub.add("serve", help="preview the site on 127.0.0.1")
    serve.add_argument("-c", "--config", default="channels.yaml", help="path to channels.yaml")
    serve.add_argument("--out", help="site directory (overrides 'output' in the config)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0: any)")
    serve.add_argument(
        "--watch",
        action="store_true",
        help="render again when the templates or channels.yaml change",
    )
    serve.set_defaults(func=_cmd_serve)

    webconf = sub.add(
        "webconf", help="print an nginx or Apache config serving the site (and the fetcher)"
    )
    webconf.add_argument("server", choices=["nginx", "apache"])
    webconf.add_argument("-c", "--config", default="channels.yaml", help="path to channels.yaml")
    webconf.add_argument("--out", help="site directory (overrides 'output' in the config)")
    webconf.add_argument(
        "--prefix", default="", help="URL path the site is served at, e.g. /conda (default: /)"
    )
    webconf.add_argument(
        "--root",
        help="directory the web server reads (default: the site directory; for the symlink"
        " deploy, the link, e.g. /var/www/html/anaconda)",
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
    webconf.set_defaults(func=_cmd_webconf)

    fetcher = sub.add(
        "fetcher", help="serve missing package files of passive mirrors, verified (long-running)"
    )
    fetcher.add_argument("-c", "--config", default="channels.yaml", help="path to channels.yaml")
    fetcher.add_argument("--out", help="site directory (overrides 'output' in the config)")
    fetcher.add_argument(
        "--listen", default="127.0.0.1:8901", help="HOST:PORT (default: 127.0.0.1:8901)"
    )
    fetcher.set_defaults(func=_cmd_fetcher)

    add = sub.add(
        "add", help="check package files, copy them into a channel's local source, publish"
    )
    add.add_argument("channel", help="the channel, e.g. internal/builds")
    add.add_argument("files", nargs="+", metavar="FILE", help=".conda or .tar.bz2 files")
    add.add_argument("-c", "--config", default="channels.yaml", help="path to channels.yaml")
    add.add_argument("--out", help="site directory (overrides 'output' in the config)")
    add.set_defaults(func=_cmd_add)

    watch = sub.add("watch", help="publish what lands in the local sources' folders within seconds")
    watch.add_argument("-c", "--config", default="channels.yaml", help="path to channels.yaml")
    watch.add_argument("--out", help="site directory (overrides 'output' in the config)")
    watch.set_defaults(func=_cmd_watch)

    demo = sub.add("demo", help="mirror a bundled example channel, fully offline")
    demo.add_argument("--dir", default="demo", help="where to build the example (default: demo)")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose, quiet = getattr(args, "verbose", False), getattr(args, "quiet", False)
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s")
    for noisy in ("httpx", "httpcore"):  # their request lines would show token URLs
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"sitegen: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        print("sitegen: interrupted; published files are consistent", file=sys.stderr)
        return EXIT_INTERRUPTED
