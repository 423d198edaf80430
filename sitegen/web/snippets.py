"""The "use this mirror" snippets of the landing page: `.condarc`, pixi, mamba, conda/mamba/pixi
command lines, built from the site's base URL."""

from __future__ import annotations

import json
import re
from typing import Any

from sitegen.config import ChannelConfig, SiteConfig
from sitegen.config.urls import split_userinfo

# Where the site's address goes in snippets when base_url is not set (site.js fills it in).
BASE_PLACEHOLDER = "http://MIRROR-HOST"


def _channel_url(base: str, path: str) -> str:
    return f"{base}/{path}"


def install_commands(url: str, package: str = "<package>") -> dict[str, str]:
    """conda, mamba and pixi command lines installing ``package`` from the channel at ``url``:
    the same on the landing page and on a package page."""
    return {
        "conda": f"conda install --override-channels -c {url} {package}",
        "mamba": f"mamba install --override-channels -c {url} {package}",
        # `pixi add` takes no channel option: it solves against the workspace's channels.
        "pixi": f"pixi workspace channel add {url} && pixi add {package}",
    }


def upstream_mirrored(config: SiteConfig, channel: ChannelConfig) -> str | None:
    """The public upstream URL ``channel`` can stand in for, record for record, or None.

    pixi's ``[mirrors]`` does not fall back to the upstream on a 404: only a channel with one
    mirror and no filter at any level that leaves out a record (or an explicit ``mirror_of:``)
    serves everything its upstream does. A curated channel is used by its own URL instead.
    """
    if channel.mirror_of:
        return channel.mirror_of
    if len(channel.mirrors) != 1:
        return None
    mirror = channel.mirrors[0]
    if any(level.drops_records for level in config.filter_levels(channel, mirror)):
        return None
    if mirror.secret_env or not mirror.url.startswith(("http://", "https://")):
        return None  # a token or a local path is no name clients know the channel by
    # A login written out in the URL is no part of the name: pixi matches a channel's URL,
    # its credentials kept apart, against these keys (and the pages never show a password).
    start, _userinfo, location = split_userinfo(mirror.url)
    return f"{start}{location}".rstrip("/")


# Where channel names resolve by default (conda's and mamba's channel_alias).
DEFAULT_ALIAS = "https://conda.anaconda.org/"
_PLAIN_YAML_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")


def mamba_channel_name(upstream: str) -> str:
    """The name mamba knows ``upstream`` by, as a ``mirrored_channels`` key.

    mamba matches a channel as written (``-c``, ``channels:``) against these keys, string for
    string: an upstream under the default channel alias goes by its name (``conda-forge``),
    any other by its URL, which is then how it must be written to reach the mirror.
    """
    name = upstream.rstrip("/")
    return name.removeprefix(DEFAULT_ALIAS) if name.startswith(DEFAULT_ALIAS) else name


def mamba_mirrors(sources: dict[str, list[str]]) -> str:
    """``mirrored_channels`` for mamba and micromamba 2.x, or "" when no channel stands in for
    its upstream (an empty mapping would only be a snippet to copy for nothing)."""
    if not sources:
        return ""
    lines = [
        "# mamba, micromamba 2.x: ~/.mambarc (or ~/.condarc)",
        "# mamba loads every entry in each solve: keep those you use",
        "mirrored_channels:",
    ]
    for source, urls in sources.items():
        name = mamba_channel_name(source)
        key = name if _PLAIN_YAML_KEY.fullmatch(name) else json.dumps(name)
        lines.append(f"  {key}: {json.dumps(urls)}")  # a JSON list is a YAML flow sequence
    return "\n".join(lines)


def custom_channels(paths: list[str], base: str) -> tuple[dict[str, str], list[str]]:
    """``custom_channels`` entries (name -> URL the name resolves under) and the
    ``default_channels`` URLs (``pkgs/...``) for the channels at ``paths``.

    conda resolves a name to ``<URL of its key>/<name>``, a key being the name or a leading part
    of it: a channel at the top gets its name; another channel its last segment
    (``conda-forge: BASE/cloud``) unless that is taken, then its whole path
    (``internal/conda-forge: BASE``), which no other entry can take.
    """
    custom: dict[str, str] = {path: base for path in paths if "/" not in path}
    defaults = []
    for path in paths:
        prefix, _, name = path.rpartition("/")
        if prefix == "pkgs":
            defaults.append(_channel_url(base, path))
        elif prefix and name not in custom:
            custom[name] = f"{base}/{prefix}"
        elif prefix:
            custom[path] = base
    return custom, defaults


def usage_snippets(config: SiteConfig, base: str) -> dict[str, Any] | None:
    """`.condarc`, pixi, mamba ``mirrored_channels`` and mamba/conda snippets for the site's
    public channels, built from ``base``; None when every channel is private.

    The landing page is public: a private channel is shown by its path only, and set up with
    its token snippet (sitegen.web.private), so neither its upstream (in pixi's
    ``[mirrors]``, mamba's ``mirrored_channels``) nor a token-less URL of it belongs here.
    """
    channels = [c for c in config.channels if not c.private]
    if not channels:
        return None
    paths = [c.path for c in channels]
    prefixes: dict[str, list[str]] = {}
    for path in paths:
        prefix, _, name = path.rpartition("/")
        prefixes.setdefault(prefix, []).append(name)
    # channel_alias: the prefix holding most channels (conda resolves bare names under it).
    alias_prefix = max(prefixes, key=lambda p: (len(prefixes[p]), p != ""))
    alias_url = f"{base}/{alias_prefix}" if alias_prefix else base
    alias_lines = [
        "# ~/.condarc: channel names resolve under the mirror",
        f"channel_alias: {alias_url}",
        "channels:",
        *[f"  - {name}" for name in prefixes[alias_prefix]],
    ]
    custom, defaults = custom_channels(paths, base)
    custom_lines = ["# ~/.condarc: map single channels to the mirror"]
    if custom:
        custom_lines.append("custom_channels:")
        custom_lines += [f"  {name}: {url}" for name, url in custom.items()]
    if defaults:
        custom_lines.append("default_channels:")
        custom_lines += [f"  - {url}" for url in defaults]
    pixi_lines = ["# pixi: ~/.pixi/config.toml or the project's .pixi/config.toml", "[mirrors]"]
    sources: dict[str, list[str]] = {}  # upstream -> channels fed by it, tried in this order
    curated = []
    for channel in channels:
        source = upstream_mirrored(config, channel)
        if source is None:
            curated.append(_channel_url(base, channel.path))
        else:
            sources.setdefault(source, []).append(_channel_url(base, channel.path))
    for source, urls in sources.items():
        pixi_lines.append(f"{json.dumps(source)} = {json.dumps(urls)}")  # TOML-compatible
    if not sources:
        pixi_lines.append("# (no channel mirrors its upstream unfiltered; use the URLs below)")
    # Filtered channels hold less than their upstream: by their own URL, never as a mirror.
    pixi_channels = [
        "# pixi.toml: curated channels by their own URL",
        "[project]",
        f"channels = {json.dumps(curated)}",
    ]
    first = paths[0]
    commands = []
    for path in paths:
        url = _channel_url(base, path)
        commands.append({"channel": path, "url": url, **install_commands(url)})
    return {
        "condarc_alias": "\n".join(alias_lines),
        "condarc_custom": "\n".join(custom_lines),
        "pixi": "\n".join(pixi_lines),
        "pixi_channels": "\n".join(pixi_channels) if curated else "",
        "mamba": mamba_mirrors(sources),
        "commands": commands,
        "example": _channel_url(base, first),
    }
