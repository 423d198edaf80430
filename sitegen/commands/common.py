"""What every subcommand shares: exit statuses, the -c/--out options, loading the
configuration, rendering the pages after a run."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from sitegen.config import SiteConfig, load_config

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_LOCKED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

# add(name, help) -> the subcommand's parser (with the shared -v/-q and a description).
AddCommand = Callable[[str, str], argparse.ArgumentParser]

log = logging.getLogger("sitegen")


def add_site_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", default="channels.yaml", help="path to channels.yaml")
    parser.add_argument("--out", help="site directory (overrides 'output' in the config)")


def load(args: argparse.Namespace) -> SiteConfig:
    config = load_config(args.config)
    if getattr(args, "out", None):
        config = replace(config, output=Path(args.out).absolute())
    return config


def render_pages(config: SiteConfig) -> bool:
    from sitegen.web.render import render_site

    try:
        render_site(config)
    except Exception as exc:
        log.debug("rendering failed", exc_info=True)
        log.error("rendering the pages failed: %s: %s", type(exc).__name__, exc)
        return False
    return True
