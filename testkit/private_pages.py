"""A site with one public and one private channel, for the tests of what the pages show of
private channels."""

from __future__ import annotations

from pathlib import Path

from sitegen.config import SiteConfig
from testkit.site import site_config

PUBLIC, PRIVATE = "cloud/example", "internal/licensed"
BASE = "https://mirror.example.org/conda"


def private_config(
    site: Path,
    upstream: str,
    folder: Path,
    base_url: str = BASE,
    access: str = "private",
    site_access: str = "public",
) -> SiteConfig:
    """The config of a site at ``site`` (``base_url``, the site's own access): PUBLIC mirrors
    the upstream at ``upstream``, PRIVATE (``access``) the local folder ``folder``."""
    return site_config(
        site,
        f"""
        base_url: {base_url}
        access: {{site: {site_access}}}
        channels:
          {PUBLIC}:
            url: {upstream}
            subdirs: [linux-64, noarch]
          {PRIVATE}:
            access: {access}
            mirrors:
              - name: licensed
                path: {folder}
                subdirs: [linux-64, noarch]
        """,
    )
