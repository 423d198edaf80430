"""The ``installers:`` section of channels.yaml: folders of installers (Miniconda, Anaconda)
mirrored from an upstream folder's HTML index into a folder of the site each.

An installer folder belongs to the run alone, as a channel's subdir does: it may not be, hold
or lie inside a channel (nor another installer folder), nor take one of the site's own names.
Its path may not be a mirror's name either, since ``--only`` names both.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from functools import partial

from sitegen.config.channel_source import parse_url
from sitegen.config.channels import parse_schedule, site_path_segments
from sitegen.config.model import ChannelConfig, InstallerConfig
from sitegen.config.yaml_nodes import ConfigError, ParseState, YamlNode, shown_reason, shown_value

INSTALLER_KEYS = ("url", "include", "exclude", "newest", "schedule")
MAX_NEWEST = 1000


def parse_installers(node: YamlNode) -> list[InstallerConfig]:
    """The installer folders that parsed; the others' errors are recorded."""
    state = node.state
    out = []
    for path, child in node.mapping(()).items():
        installer = state.attempt(partial(_installer, path, child))
        if installer is not None:
            out.append(installer)
    _check_paths(out, state)
    return out


def _installer(path: str, node: YamlNode) -> InstallerConfig:
    state = node.state
    start = len(state.errors)
    checked = state.attempt(partial(_folder_path, node, path))
    keys = node.mapping(INSTALLER_KEYS)
    if "url" not in keys:
        state.add(
            node.error(
                "missing required key 'url' (the upstream folder, such as"
                " https://repo.anaconda.com/miniconda/)"
            )
        )
    # Only http(s): the files are fetched beside the index page the URL names.
    url = (
        state.attempt(partial(parse_url, keys["url"], ("https", "http"))) if "url" in keys else None
    )
    include = state.attempt(partial(_globs, keys["include"])) if "include" in keys else ()
    exclude = state.attempt(partial(_globs, keys["exclude"])) if "exclude" in keys else ()
    newest = (
        state.attempt(partial(keys["newest"].integer, 1, MAX_NEWEST)) if "newest" in keys else None
    )
    cron = state.attempt(partial(parse_schedule, keys["schedule"])) if "schedule" in keys else None
    state.settle(start)
    assert checked is not None and url is not None and include is not None and exclude is not None
    return InstallerConfig(
        path=checked,
        url=url.rstrip("/"),
        include=include,
        exclude=exclude,
        newest=newest,
        schedule=cron,
        line=node.line,
    )


def _folder_path(node: YamlNode, path: str) -> str:
    examples = "miniconda or installers/anaconda"
    return "/".join(site_path_segments(node, path, "installer folder", examples))


def _globs(node: YamlNode) -> tuple[str, ...]:
    """fnmatch globs of file names (case-sensitive, as the names upstream are)."""
    out = []
    for item in node.items():
        pattern = item.string()
        if "/" in pattern:
            raise item.error(f"invalid glob {shown_value(pattern)}: a file name holds no '/'")
        if pattern.count("[") != pattern.count("]"):
            raise item.error(f"invalid glob {shown_value(pattern)}: unbalanced brackets")
        try:
            re.compile(fnmatch.translate(pattern))
        except re.error as exc:
            raise item.error(
                f"invalid glob {shown_value(pattern)}: {shown_reason(str(exc))}"
            ) from None
        out.append(pattern)
    return tuple(out)


def _check_paths(installers: list[InstallerConfig], state: ParseState) -> None:
    """Two folders may not be one (``a`` and ``a/``), nor one inside the other."""
    seen: list[InstallerConfig] = []
    for installer in installers:
        for other in seen:
            how = _relation(installer.path, other.path)
            if how is not None:
                _add(state, installer, f"{how} installer folder {other.path!r} (line {other.line})")
                break
        else:
            seen.append(installer)


def check_installers(
    installers: Iterable[InstallerConfig], channels: Iterable[ChannelConfig], state: ParseState
) -> None:
    """Record an installer folder that is, holds or lies inside a channel, or that is named like
    a mirror (``--only`` takes both)."""
    channels = list(channels)
    mirrors = {m.name: m.line for c in channels for m in c.mirrors}
    for installer in installers:
        for channel in channels:
            how = _relation(installer.path, channel.path)
            if how is not None:
                _add(state, installer, f"{how} channel {channel.path!r} (line {channel.line})")
                break
        if installer.path in mirrors:
            _add(
                state,
                installer,
                f"is the name of a mirror (line {mirrors[installer.path]}), which --only could"
                " not tell apart from the folder",
            )


def _relation(path: str, other: str) -> str | None:
    """How the folder ``path`` meets ``other``: is it, lies inside it or holds it; None when
    neither holds the other."""
    if path == other:
        return "is also"
    if path.startswith(f"{other}/"):
        return "lies inside"
    if other.startswith(f"{path}/"):
        return "holds"
    return None


def _add(state: ParseState, installer: InstallerConfig, why: str) -> None:
    state.add(
        ConfigError(
            f"{state.filename}:{installer.line}: installers.{installer.path}: the folder {why}",
            line=installer.line,
        )
    )
