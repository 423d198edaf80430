"""What the browse pages may show of private channels: page-model data for :mod:`sitegen.web`.

Nothing is rendered here. The rule the pages follow:

* a private channel's own pages, search index and package pages live under its path and are
  served behind the same token check as its files (the web server guards the whole path);
* pages outside it (the landing page, history pages, the feed and ``history.json``) are public:
  they list a private channel by path with the label "private" and nothing else: no package
  names, counts, sizes or run details;
* "Use this mirror" snippets for a private channel show the token forms with the placeholder
  ``<TOKEN>``, never a real token (sitegen has none: the store holds hashes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sitegen.config import SiteConfig

TOKEN_PLACEHOLDER = "<TOKEN>"
PRIVATE_LABEL = "private"


@dataclass(frozen=True)
class ChannelVisibility:
    path: str
    private: bool

    @property
    def label(self) -> str:
        """What public pages say of the channel besides its path."""
        return PRIVATE_LABEL if self.private else ""

    @property
    def details_public(self) -> bool:
        """Whether public pages (landing, history, feed) may show its packages and runs."""
        return not self.private


def visibility(config: SiteConfig) -> dict[str, ChannelVisibility]:
    return {c.path: ChannelVisibility(c.path, c.private) for c in config.channels}


@dataclass(frozen=True)
class TokenSnippets:
    """Client set-up for a private channel, with a placeholder for the token."""

    channel_url: str  # plain: for Bearer and Basic credentials
    conda_url: str  # conda's path token, after the channel location
    host: str  # what pixi/rattler and netrc key credentials by: the host name, never a port
    netrc: str
    pixi_login: str
    rattler_auth_file: str
    mamba_auth_file: str  # a line of ~/.mamba/auth/authentication.json


def token_snippets(base_url: str, channel: str) -> TokenSnippets:
    """``base_url``: where the site is served (scheme, host and prefix)."""
    base = base_url.rstrip("/")
    scheme, _, rest = base.partition("://")
    host, _, prefix = rest.partition("/")
    # rattler (pixi) looks credentials up by the URL's host name alone: an entry keyed
    # "host:port" is never found, and the client sends no token. netrc has no port either,
    # and names an IPv6 address without the brackets a URL (and rattler's key) puts round it.
    authority = host.rsplit("@", 1)[-1]
    hostname = authority.split("]")[0] + "]" if "[" in authority else authority.split(":")[0]
    name = hostname.strip("[]")
    # libmamba looks a Bearer token up by the request URL's host, lower-cased, with ":port"
    # when the URL names one: its key is the authority as the channel URLs write it.
    mamba_key = authority.lower()
    prefix_part = f"/{prefix}" if prefix else ""
    return TokenSnippets(
        channel_url=f"{base}/{channel}",
        conda_url=f"{scheme}://{host}{prefix_part}/t/{TOKEN_PLACEHOLDER}/{channel}",
        host=hostname,
        netrc=f"machine {name} login <NAME> password {TOKEN_PLACEHOLDER}",
        pixi_login=f"pixi auth login {hostname} --token {TOKEN_PLACEHOLDER}",
        rattler_auth_file=f'{{"{hostname}": {{"BearerToken": "{TOKEN_PLACEHOLDER}"}}}}',
        mamba_auth_file=json.dumps(
            {mamba_key: {"type": "BearerToken", "token": TOKEN_PLACEHOLDER}}
        ),
    )
