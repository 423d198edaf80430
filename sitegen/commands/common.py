"""What every subcommand shares: the -c/--out options, free text from the
command line checked, the login name, loading the configuration, rendering the pages after
a run."""

from __future__ import annotations

import argparse
import ctypes
import gc
import getpass
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sitegen.config import SiteConfig

# add(name, help) -> the subcommand's parser (with the shared -v/-q and a description).
AddCommand = Callable[[str, str], argparse.ArgumentParser]

log = logging.getLogger("sitegen")


def add_site_options(parser: argparse.ArgumentParser, *, new_site: bool = False) -> None:
    """``-c`` and ``--out``. ``new_site``: ``--out`` may name a directory that holds no site
    yet (the command publishes one, or only describes it); for every other command it must
    name a site (see :func:`load`)."""
    parser.add_argument("-c", "--config", default="channels.yaml", help="path to channels.yaml")
    parser.add_argument("--out", help="site directory (overrides 'output' in the config)")
    parser.set_defaults(new_site=new_site)


def whole_number(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high`` (no upper bound when None).
    One out of range is a usage error (exit 2) here rather than a traceback where it is used
    (a port past 65535) or a service that turns everything away (no connections allowed)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f"{low} or more"
            raise argparse.ArgumentTypeError(f"must be {bounds}, not {value}")
        return value

    return parse


def check_text(option: str, value: str) -> None:
    """Text from the command line is kept as UTF-8 (who and why: in the approvals file, the
    freeze file, the run's history) or names what sitegen published under UTF-8 names.
    Bytes that are not (a name typed in a Latin-1 terminal) reach Python as lone
    surrogates, which none of them can hold: refused here, naming the option, before
    anything is written."""
    from sitegen.config import ConfigError

    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raw = value.encode("utf-8", "surrogateescape")
        raise ConfigError(f"{option} {raw!r}: not UTF-8 text (is the terminal's?)") from None


def login_name() -> str:
    """Who runs the command, the default of an option such as ``--by``. A login name that is
    not UTF-8 reaches Python as lone surrogates: the bytes are replaced (U+FFFD) rather than
    refused, as the user typed nothing to correct. A user without one (a container's user id
    that the password file does not list, no ``USER`` in the environment) is named by the id."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # KeyError up to Python 3.12, OSError from 3.13
        return f"uid {os.getuid()}"
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def load(args: argparse.Namespace, *, upstream: bool = True) -> SiteConfig:
    """The configuration ``args`` name; ``upstream`` False for a command that reaches no
    upstream, which runs without the secrets its ``${VAR}`` references name."""
    from sitegen.config import ConfigError, load_config
    from sitegen.config.load import folders_in_site, unfit_output
    from sitegen.layout import STATE_DIR, state_dir

    config = load_config(args.config, upstream=upstream)
    if getattr(args, "out", None):
        output = Path(args.out).absolute()
        why = unfit_output(output)  # as for `output` in the file
        if why is not None:
            raise ConfigError(f"--out: {why}")
        # A command that works on a site would otherwise create the directory a mistyped
        # --out names, and write its state and pages there.
        if not getattr(args, "new_site", False) and not state_dir(output).is_dir():
            raise ConfigError(
                f"--out: {str(output)!r} holds no site (no {STATE_DIR}/ in it);"
                " `sitegen mirror --out` makes one"
            )
        config = replace(config, output=output)
        inside = [
            f"--out: channel {channel.path!r}, mirror {mirror.name!r}: {why}"
            for channel, mirror, why in folders_in_site(config.channels, output)
        ]
        if inside:
            raise ConfigError(*inside)
    return config


def release_memory() -> None:
    """Give the memory of objects already freed back to the system, where the C library can
    (glibc's malloc_trim): a mirror run leaves hundreds of MB free but held (~0.3 GB at
    800,000 records) in the process that renders the pages next."""
    gc.collect()
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if trim is not None:
        trim(0)


def render_pages(config: SiteConfig, stop: threading.Event | None = None) -> bool:
    """Render the pages after a run in this process, with the run's freed memory returned;
    ``stop`` as for render_site. False when the render failed or left pages out."""
    from sitegen.store.lock import Stopped
    from sitegen.web.render import render_site

    release_memory()
    try:
        stats = render_site(config, stop=stop)
    except Stopped:
        log.info("rendering the pages stopped")
        return False
    except Exception as exc:
        log.debug("rendering failed", exc_info=True)
        log.error("rendering the pages failed: %s: %s", type(exc).__name__, exc)
        return False
    # Pages left as they were (a folder or page leading out of the site, each named in a
    # warning) make a site not rendered whole, as for `sitegen render`.
    if stats.left_out:
        log.error("rendering the pages left %d as they were (named above)", len(stats.left_out))
        return False
    return True
