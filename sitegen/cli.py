"""Command line: parses arguments and hands each subcommand to the module that does its work
(:mod:`sitegen.commands`; a new subcommand is a module there plus a line in ``COMMANDS``).
Building the parser imports no more than argument definitions need, so that ``--help``,
``--version`` and a quick command start fast (see :mod:`sitegen.commands` for the rule).

Exit status: 0 all good, 1 some mirror or file failed, 2 bad configuration or usage,
3 another run holds the site lock, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from sitegen import __version__
from sitegen.access.commands import add_token_commands
from sitegen.commands import gates, local, mirror, site
from sitegen.commands.common import AddCommand
from sitegen.exit_status import EXIT_CONFIG, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_LOCKED, EXIT_OK

__all__ = [
    "EXIT_CONFIG",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_LOCKED",
    "EXIT_OK",
    "build_parser",
    "main",
]

# Each registers its subcommands; their order is the order of `sitegen --help`.
COMMANDS: tuple[Callable[[AddCommand], None], ...] = (
    mirror.register,
    site.register,
    local.register,
    gates.register,
    add_token_commands,
)


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
    for register in COMMANDS:
        register(sub.add)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose, quiet = getattr(args, "verbose", False), getattr(args, "quiet", False)
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s")
    for noisy in ("httpx", "httpcore"):  # their request lines would show token URLs
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Here, not at the top: the configuration's modules are a large share of start-up, and
    # `--help`, `--version` and a usage error exit in parse_args without them.
    from sitegen.config import ConfigError

    with _terminate_as_interrupt():
        try:
            return args.func(args)
        except ConfigError as exc:
            print(f"sitegen: configuration error: {exc}", file=sys.stderr)
            return EXIT_CONFIG
        except (OSError, BaseExceptionGroup) as exc:
            refused = _refused_by_system(exc)
            if refused is None:
                raise
            # What the system refused where a command does not report it itself (an output
            # directory it may not create, a full disk): one line; -v shows where it was.
            logging.getLogger("sitegen").debug("%s failed", args.command, exc_info=True)
            print(f"sitegen: {args.command}: {refused}", file=sys.stderr)
            return EXIT_FAILED
        except KeyboardInterrupt:
            print("sitegen: interrupted; published files are consistent", file=sys.stderr)
            return EXIT_INTERRUPTED


def _refused_by_system(exc: BaseException) -> OSError | None:
    """The OSError that ended a command: ``exc`` itself, or the first of a group of them (the
    tasks of a nursery); None when anything else is among them."""
    if isinstance(exc, OSError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        matched, rest = exc.split(OSError)
        if rest is None and matched is not None:
            return _refused_by_system(matched.exceptions[0])
    return None


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM stops a command as SIGINT does. Where a run listens for signals it stops
    cleanly on either; elsewhere (a second SIGTERM while the run stops, the pages after it)
    SIGTERM's default action would kill the process before the run's record is saved or its
    pages rendered; as KeyboardInterrupt it ends the command with status 130."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the command is. A type of its own, not KeyboardInterrupt itself:
    CPython 3.11 takes a KeyboardInterrupt raised inside code compiled from a string (a
    dataclass's generated methods as a module is imported) as unhandled even once caught, and
    ends the process by SIGINT instead of with the status the command returned."""


def _interrupt(signum: int, frame: Any) -> None:
    raise Terminated
