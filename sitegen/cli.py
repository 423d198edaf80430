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

import trio

from sitegen.config import ConfigError, SiteConfig, load_config

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_LOCKED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

log = logging.getLogger("sitegen")


def _load(args: argparse.Namespace) -> SiteConfig:
    config = load_config(args.config)
    if getattr(args, "out", None):
        config = replace(config, output=Path(args.out).absolute())
    return config


def _cmd_mirror(args: argparse.Namespace) -> int:
    from sitegen.lock import SiteLocked
    from sitegen.mirror import MirrorOptions, run_mirror
    from sitegen.report import STOPPED

    config = _load(args)
    options = MirrorOptions(
        verify=args.verify,
        force_delete=args.force_delete,
        dry_run=args.dry_run,
        only=tuple(args.only or ()),
        due=args.due,
        progress=False if args.no_progress else None,
    )
    try:
        report = trio.run(run_mirror, config, options)
    except SiteLocked as exc:
        log.error("%s", exc)
        return EXIT_LOCKED
    if args.dry_run:
        for channel in report.channels:
            print(
                f"{channel.channel}/{channel.subdir}: would download {channel.downloaded_files}"
                f" files ({channel.downloaded_bytes} bytes), delete {channel.deleted_files},"
                f" publish {channel.packages} packages"
                + (f" [{channel.status}: {'; '.join(channel.errors)}]" if channel.errors else "")
            )
    if report.status == STOPPED:
        log.error("run %s stopped; published files are consistent", report.id)
        return EXIT_INTERRUPTED
    if report.failed:
        log.error("run %s finished with errors", report.id)
        return EXIT_FAILED
    return EXIT_OK


def _cmd_verify(args: argparse.Namespace) -> int:
    from sitegen.verify import verify_site

    report = trio.run(verify_site, _load(args), args.repair)
    for problem in report.problems:
        state = " (repaired)" if problem.repaired else ""
        print(f"{problem.kind}: {problem.path}: {problem.detail}{state}")
    print(f"checked {report.files} files, {report.bytes} bytes; {len(report.problems)} problems")
    return EXIT_OK if report.ok else EXIT_FAILED


def _cmd_demo(args: argparse.Namespace) -> int:
    from sitegen.demo import run_demo

    return run_demo(Path(args.dir))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sitegen", description="Filtered, verified static mirrors of conda channels."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", required=True)

    mirror = sub.add_parser("mirror", help="sync every mirror and publish the site")
    mirror.add_argument("-c", "--config", default="channels.yaml", help="path to channels.yaml")
    mirror.add_argument("--out", help="site directory (overrides 'output' in the config)")
    mirror.add_argument("--verify", action="store_true", help="re-hash files already present")
    mirror.add_argument(
        "--force-delete",
        action="store_true",
        help="publish even when a subdir would lose more than prune.max_fraction of its packages",
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

    verify = sub.add_parser("verify", help="re-hash every published file against repodata")
    verify.add_argument("-c", "--config", default="channels.yaml", help="path to channels.yaml")
    verify.add_argument("--out", help="site directory (overrides 'output' in the config)")
    verify.add_argument(
        "--repair", action="store_true", help="download missing or corrupt files again"
    )
    verify.set_defaults(func=_cmd_verify)

    demo = sub.add_parser("demo", help="mirror a bundled example channel, fully offline")
    demo.add_argument("--dir", default="demo", help="where to build the example (default: demo)")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
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
