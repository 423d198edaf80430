"""Subcommands of local sources: ``add`` (the upload path) and ``watch``."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from sitegen.commands.common import AddCommand, add_site_options, load, render_pages
from sitegen.commands.mirror import run_mirror_command
from sitegen.exit_status import EXIT_CONFIG, EXIT_FAILED, EXIT_OK

if TYPE_CHECKING:
    from sitegen.config import SiteConfig


def register(add: AddCommand) -> None:
    files = add("add", "check package files, copy them into a channel's local source, publish")
    files.add_argument("channel", help="the channel, e.g. internal/builds")
    files.add_argument("files", nargs="+", metavar="FILE", help=".conda or .tar.bz2 files")
    add_site_options(files, new_site=True)
    files.set_defaults(func=_add)

    watch = add("watch", "publish what lands in the local sources' folders within seconds")
    add_site_options(watch, new_site=True)
    watch.set_defaults(func=_watch)


def _add(args: argparse.Namespace) -> int:
    from sitegen.tools.add import AddError, add_files

    try:
        mirror = add_files(load(args), args.channel, [Path(p) for p in args.files])
    except AddError as exc:
        for line in exc.lines:
            print(f"sitegen: add: {line}", file=sys.stderr)
        return EXIT_CONFIG if exc.usage else EXIT_FAILED
    # Publishing is a mirror run of that source, with the same exit statuses.
    run = argparse.Namespace(
        config=args.config,
        out=args.out,
        new_site=True,
        verify=False,
        force_delete=False,
        dry_run=False,
        only=[mirror.name],
        due=False,
        no_progress=True,
    )
    return run_mirror_command(run)


def _watch(args: argparse.Namespace) -> int:
    import trio

    from sitegen.sync.local import is_local
    from sitegen.tools.watch import run_watch

    config = load(args)
    if not any(is_local(m) for _c, m in config.mirrors):
        print("sitegen: watch: no local source (a mirror with `path:`) to watch", file=sys.stderr)
        return EXIT_CONFIG

    render = _StoppableRender(config)
    trio.run(run_watch, config, render)
    render.finish()
    return EXIT_OK


class _StoppableRender:
    """The watch's render, in a worker thread that a signal abandons: it may be waiting for
    another render of the site, or midway. Told to stop, it gives up at its next page (every
    file it writes is replaced whole, its manifest last); the exit waits a moment for that,
    so that it neither writes nor logs while the interpreter shuts down, and no longer (its
    thread, a daemon, does not hold the exit back)."""

    GRACE = 1.0  # seconds

    def __init__(self, config: SiteConfig) -> None:
        self.config = config
        self.done = threading.Event()
        self.done.set()

    async def __call__(self) -> None:
        import trio

        stop, done = threading.Event(), threading.Event()
        self.done = done

        def work() -> None:
            try:
                render_pages(self.config, stop)
            finally:
                done.set()

        try:
            await trio.to_thread.run_sync(work, abandon_on_cancel=True)
        finally:
            stop.set()

    def finish(self) -> None:
        self.done.wait(self.GRACE)
