"""The config of a one-channel site, for the tests of ``sitegen webconf``."""

from __future__ import annotations

import textwrap
from pathlib import Path

from sitegen.config import SiteConfig, parse_config

CHANNEL = "cloud/conda-forge"


def webconf_config(
    site: Path,
    url: str = "http://127.0.0.1:9/forge",
    mode: str = "active",
    base_url: str | None = None,
) -> SiteConfig:
    """A site at ``site`` with the one channel CHANNEL (linux-64, ``mode``) of the upstream at
    ``url`` (by default a port where nothing listens), published at ``base_url`` if given."""
    published = f"base_url: {base_url}" if base_url else ""
    text = f"""\
        output: {site}
        {published}
        download: {{retries: 0}}
        repodata: {{bz2: true}}  # its MIME type is checked too
        channels:
          {CHANNEL}:
            url: {url}
            subdirs: [linux-64]
            mode: {mode}
        """
    return parse_config(textwrap.dedent(text), base_dir=site.parent)
