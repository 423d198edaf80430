"""The access directory beside a site (never in it): the token store and the files the web
server reads of it."""

from __future__ import annotations

from pathlib import Path


def access_dir(root: Path) -> Path:
    """The token store and the web server's token files by default: beside the site, never in
    it (``/srv/mirror/site`` -> ``/srv/mirror/site-access``)."""
    return root.parent / f"{root.name}-access"


TOKENS_FILE = "tokens.json"  # the token store: names, scopes, hashes; mode 0600
NGINX_TOKENS_MAP = "nginx-tokens.map"  # included by the nginx config (`map` entries)
APACHE_TOKENS_DIR = "apache"  # <scope>/<token id>.sha1|.until, read by Apache per request
# The scope of `access: {site: private}` in the token files, beside the private channels' own
# (their paths): no channel path starts with "_".
SITE_TOKEN_SCOPE = "_site"
ACCESS_LOCK = ".lock"  # held while the web server's files are written from the store
