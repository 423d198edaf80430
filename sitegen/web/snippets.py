"""The "use this mirror" snippets of the landing page: `.condarc`, pixi, conda/mamba/pixi
command lines, built from the site's base URL."""

from __future__ import annotations

import json
from typing import Any

from sitegen.config import SiteConfig


def _channel_url(base: str, path: str) -> str:
    return f"{base}/{path}"


def usage_snippets(config: SiteConfig, base: str) -> dict[str, Any]:
    """`.condarc`, pixi and mamba/conda snippets for this site, built from ``base``."""
    paths = [c.path for c in config.channels]
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
    custom: dict[str, str] = {}
    defaults = []
    for path in paths:
        prefix, _, name = path.rpartition("/")
        if prefix == "pkgs":
            defaults.append(_channel_url(base, path))
        elif name not in custom:
            custom[name] = f"{base}/{prefix}" if prefix else base
    custom_lines = ["# ~/.condarc: map single channels to the mirror"]
    if custom:
        custom_lines.append("custom_channels:")
        custom_lines += [f"  {name}: {url}" for name, url in custom.items()]
    if defaults:
        custom_lines.append("default_channels:")
        custom_lines += [f"  - {url}" for url in defaults]
    pixi_lines = ["# pixi: ~/.pixi/config.toml or the project's .pixi/config.toml", "[mirrors]"]
    sources: dict[str, list[str]] = {}  # upstream -> channels fed by it, tried in this order
    for channel, mirror in config.mirrors:
        source = mirror.display_url()
        if mirror.secret_env or not source.startswith(("http://", "https://")):
            continue  # a token or a local path is no name clients know the channel by
        urls = sources.setdefault(source, [])
        if _channel_url(base, channel.path) not in urls:
            urls.append(_channel_url(base, channel.path))
    for source, urls in sources.items():
        pixi_lines.append(f"{json.dumps(source)} = {json.dumps(urls)}")  # TOML-compatible
    if len(pixi_lines) == 2:
        pixi_lines.append("# (no public upstream URL to map; use the channel URLs directly)")
    first = paths[0]
    commands = []
    for path in paths:
        url = _channel_url(base, path)
        commands.append(
            {
                "channel": path,
                "url": url,
                "conda": f"conda install --override-channels -c {url} <package>",
                "mamba": f"mamba install --override-channels -c {url} <package>",
                "pixi": f"pixi add --channel {url} <package>",
            }
        )
    return {
        "condarc_alias": "\n".join(alias_lines),
        "condarc_custom": "\n".join(custom_lines),
        "pixi": "\n".join(pixi_lines),
        "commands": commands,
        "example": _channel_url(base, first),
    }
