"""Read and validate ``channels.yaml`` into typed, immutable settings.

Every error names the offending key path and its line in the file; the whole file is checked
before anything touches the network or the disk, and all its errors are reported at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from sitegen.config.access import parse_access
from sitegen.config.channels import parse_channels
from sitegen.config.filter_levels import check_levels, parse_filters
from sitegen.config.installers import check_installers, parse_installers
from sitegen.config.local_source import folder_in_site, folders_moved_from
from sitegen.config.model import (
    LINK_LOOP,
    AccessSettings,
    ChannelConfig,
    DownloadSettings,
    MirrorConfig,
    SiteConfig,
    real_path,
)
from sitegen.config.notices import check_notice_ids
from sitegen.config.operator_files import OperatorFileError, read_capped
from sitegen.config.site_settings import (
    parse_download,
    parse_free_space,
    parse_history,
    parse_http_url,
    parse_notify,
    parse_repodata,
    parse_shards,
    parse_stats,
)
from sitegen.config.yaml_nodes import ConfigError, ParseState, Reported, YamlNode
from sitegen.config.yaml_syntax import compose_yaml

if TYPE_CHECKING:
    pass


_TOP_KEYS = (
    "output",
    "base_url",
    "title",
    "download",
    "prune",
    "shards",
    "repodata",
    "filters",
    "access",
    "channels",
    "installers",
    "min_free_space",
    "history",
    "notify",
    "stats",
)


# Top-level keys of site-wide settings: key -> (SiteConfig field, parser).
_SETTINGS = {
    "shards": ("shard_grace_days", parse_shards),
    "repodata": ("repodata_bz2", parse_repodata),
    "min_free_space": ("min_free_space", parse_free_space),
    "history": ("history", parse_history),
    "notify": ("notify", parse_notify),
}


def parse_config(
    text: str,
    filename: str = "channels.yaml",
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> SiteConfig:
    """Parse the text of a channels.yaml; relative paths resolve against base_dir.

    With ``environ``, every ``${VAR}`` in a URL must be set there; without, they are only
    resolved when a run starts.
    """
    root = compose_yaml(text, filename)
    if root is None:
        raise ConfigError(f"{filename}:1: the file is empty")
    state = ParseState(filename, environ, base_dir)
    try:
        return _site(YamlNode(root, "", state), base_dir)
    except Reported:
        pass
    except ConfigError as exc:  # a section that cannot be read any further
        state.errors.extend((exc.line, text) for text in exc.errors)
    raise state.failure()


def load_config(
    path: str | Path, environ: Mapping[str, str] | None = None, *, upstream: bool = True
) -> SiteConfig:
    """Read and parse a channels.yaml; ``${VAR}``s must be set in environ (default: ours),
    unless the command will not reach ``upstream``: then they are left as they are written
    (``sitegen status`` run from a shell that lacks a token the timer's service is given)."""
    path = Path(path)
    try:
        # Bounded and checked to be a regular file first: a FIFO or a device given to -c
        # would otherwise block or be read forever before anything was checked.
        data = read_capped(path)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except OperatorFileError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text") from None
    return parse_config(
        text,
        filename=str(path),
        base_dir=path.parent.resolve(),
        environ=None if not upstream else os.environ if environ is None else environ,
    )


# --------------------------------------------------------------------------- the site


def _site(top: YamlNode, base_dir: Path | None) -> SiteConfig:
    state = top.state
    keys = top.mapping(_TOP_KEYS)
    output = state.attempt(partial(_output, top, keys))
    base_url = (
        state.attempt(partial(parse_http_url, keys["base_url"])) if "base_url" in keys else None
    )
    download = (
        state.attempt(partial(parse_download, keys["download"])) if "download" in keys else None
    )
    max_delete = state.attempt(partial(_prune, keys["prune"])) if "prune" in keys else 0.5
    settings = {
        name: state.attempt(partial(parse, keys[key]))
        for key, (name, parse) in _SETTINGS.items()
        if key in keys
    }
    site_filters = state.attempt(partial(parse_filters, keys.get("filters")))
    title = state.attempt(keys["title"].string) if "title" in keys else "conda mirror"
    access = (
        state.attempt(partial(parse_access, keys["access"], base_dir)) if "access" in keys else None
    )
    if "stats" in keys:
        settings["stats"] = state.attempt(partial(parse_stats, keys["stats"], base_dir))
    channels = state.attempt(partial(parse_channels, top, keys)) or []
    installers = (
        state.attempt(partial(parse_installers, keys["installers"])) if "installers" in keys else []
    ) or []
    check_installers(installers, (channel for channel, _ in channels), state)
    check_notice_ids((channel for channel, _ in channels), state)
    refused = folders_moved_from(c for c, _ in channels)
    if output is not None:
        refused += folders_in_site([c for c, _ in channels], output)
    for channel, mirror, why in refused:
        state.add(
            ConfigError(
                f"{state.filename}:{mirror.line}: channels.{channel.path}: mirror"
                f" {mirror.name!r}: {why}",
                line=mirror.line,
            )
        )
    if site_filters is not None:
        for channel, node in channels:
            for mirror in channel.mirrors:
                check_levels((site_filters, channel.filters, mirror.filters), mirror, node)
    state.settle(0)
    assert output is not None and site_filters is not None and title is not None
    assert max_delete is not None and None not in settings.values()
    return SiteConfig(
        output=output,
        channels=tuple(channel for channel, _ in channels),
        filters=site_filters,
        base_url=base_url,
        title=title,
        download=download or DownloadSettings(),
        max_delete_fraction=max_delete,
        **settings,
        source=(base_dir / Path(state.filename).name) if base_dir else None,
        access=access or AccessSettings(),
        installers=tuple(installers),
    )


def _output(top: YamlNode, keys: dict[str, YamlNode]) -> Path:
    if "output" not in keys:
        raise top.error("missing required key 'output' (the site directory)")
    node = keys["output"]
    output = node.file_path()  # ~ expanded, relative to the configuration's directory
    why = unfit_output(output)
    if why is not None:
        raise node.error(why)
    return output


def unfit_output(output: Path) -> str | None:
    """Why ``output`` cannot be a site directory, or None. A site owns its directory: runs
    write pages, history and state at its top and delete what they no longer publish (files
    in its subdirs, pages in ``history/``), so it cannot be a file, the file system's root or
    the home directory, where that would reach files of the system or of the user. Nor can it
    be below a file: a run would fail creating it."""
    if output.exists() and not output.is_dir():
        return f"{str(output)!r} exists and is not a directory"
    # What is missing of the path is created; the nearest part there must be a directory.
    nearest = next((path for path in output.parents if os.path.lexists(path)), None)
    if nearest is not None and not nearest.is_dir():
        return f"{str(output)!r} cannot be created: {str(nearest)!r} is not a directory"
    resolved = real_path(output)
    if resolved is None:
        return f"{str(output)!r} cannot be resolved: {LINK_LOOP}"
    if resolved == Path(resolved.anchor):
        return f"{str(output)!r} is the root of the file system; use a directory of its own"
    try:
        home = Path.home().resolve()
    except (RuntimeError, KeyError):  # no home directory known
        home = None
    if resolved == home:
        return f"{str(output)!r} is the home directory; use a directory of its own"
    return None


def folders_in_site(
    channels: Iterable[ChannelConfig], output: Path
) -> list[tuple[ChannelConfig, MirrorConfig, str]]:
    """The local sources whose folder is inside the site at ``output``, each with why that
    cannot be (see :func:`folder_in_site`)."""
    return [
        (channel, mirror, why)
        for channel in channels
        for mirror in channel.mirrors
        if (why := folder_in_site(mirror, output)) is not None
    ]


def _prune(node: YamlNode) -> float:
    prune = node.mapping(("max_fraction",))
    return prune["max_fraction"].number(0.0, 1.0) if "max_fraction" in prune else 0.5
