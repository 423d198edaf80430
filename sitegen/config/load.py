"""Read and validate ``channels.yaml`` into typed, immutable settings.

Every error names the offending key path and its line in the file; the whole file is checked
before anything touches the network or the disk, and all its errors are reported at once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import yaml

from sitegen.config import schedule, sources
from sitegen.config.model import (
    ChannelConfig,
    DownloadSettings,
    FilterSpec,
    MirrorConfig,
    SiteConfig,
)
from sitegen.config.notices import notices_of
from sitegen.config.site_settings import (
    parse_free_space,
    parse_history,
    parse_notify,
    parse_shards,
)
from sitegen.config.subdirs import KNOWN_SUBDIRS, parse_subdirs
from sitegen.config.yaml_nodes import ConfigError, ParseState, Reported, YamlNode
from sitegen.layout import RESERVED_TOP

if TYPE_CHECKING:
    from sitegen.filters.kind import FilterKind

CHANNEL_SEGMENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# Top-level directories of the site that hold pages or private state, never a channel.
MODES = ("active", "passive")

_TOP_KEYS = (
    "output",
    "base_url",
    "title",
    "download",
    "prune",
    "shards",
    "filters",
    "channels",
    "min_free_space",
    "history",
    "notify",
)


# Top-level keys of site-wide settings: key -> (SiteConfig field, parser).
_SETTINGS = {
    "shards": ("shard_grace_days", parse_shards),
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
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"{mark.line + 1}" if mark else "?"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{filename}:{line}: not valid YAML: {problem}") from None
    if root is None:
        raise ConfigError(f"{filename}:1: the file is empty")
    state = ParseState(filename, environ)
    try:
        return _site(YamlNode(root, "", state), base_dir)
    except Reported:
        pass
    except ConfigError as exc:  # a section that cannot be read any further
        state.errors.extend((exc.line, text) for text in exc.errors)
    raise state.failure()


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> SiteConfig:
    """Read and parse a channels.yaml; ``${VAR}``s must be set in environ (default: ours)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    return parse_config(
        text,
        filename=path.name,
        base_dir=path.parent.resolve(),
        environ=os.environ if environ is None else environ,
    )


# --------------------------------------------------------------------------- the site


def _site(top: YamlNode, base_dir: Path | None) -> SiteConfig:
    state = top.state
    keys = top.mapping(_TOP_KEYS)
    output = state.attempt(partial(_output, top, keys, base_dir))
    base_url = state.attempt(partial(_base_url, keys["base_url"])) if "base_url" in keys else None
    download = state.attempt(partial(_download, keys["download"])) if "download" in keys else None
    max_delete = state.attempt(partial(_prune, keys["prune"])) if "prune" in keys else 0.5
    settings = {
        name: state.attempt(partial(parse, keys[key]))
        for key, (name, parse) in _SETTINGS.items()
        if key in keys
    }
    site_filters = state.attempt(partial(parse_filters, keys.get("filters")))
    title = state.attempt(keys["title"].string) if "title" in keys else "conda mirror"
    channels = state.attempt(partial(_channels, top, keys)) or []
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
        source=(base_dir / state.filename) if base_dir else None,
    )


def _output(top: YamlNode, keys: dict[str, YamlNode], base_dir: Path | None) -> Path:
    if "output" not in keys:
        raise top.error("missing required key 'output' (the site directory)")
    output = Path(keys["output"].string())
    if not output.is_absolute() and base_dir is not None:
        output = base_dir / output
    return output


def _base_url(node: YamlNode) -> str:
    base_url = node.string().rstrip("/")
    if urlsplit(base_url).scheme not in ("http", "https"):
        raise node.error("base_url must be an http(s) URL")
    return base_url


def _download(node: YamlNode) -> DownloadSettings:
    state = node.state
    start = len(state.errors)
    dl = node.mapping(("concurrency", "per_host", "retries", "timeout"))
    concurrency = (
        state.attempt(partial(dl["concurrency"].integer, 1)) if "concurrency" in dl else 32
    )
    per_host = state.attempt(partial(dl["per_host"].integer, 1)) if "per_host" in dl else 32
    retries = state.attempt(partial(dl["retries"].integer, 0)) if "retries" in dl else 4
    timeout = state.attempt(partial(dl["timeout"].number, 0.1)) if "timeout" in dl else 60.0
    state.settle(start)
    assert concurrency is not None and per_host is not None and retries is not None
    assert timeout is not None
    return DownloadSettings(concurrency, per_host, retries, timeout)


def _prune(node: YamlNode) -> float:
    prune = node.mapping(("max_fraction",))
    return prune["max_fraction"].number(0.0, 1.0) if "max_fraction" in prune else 0.5


# --------------------------------------------------------------------------- filters


def filter_kinds() -> tuple[FilterKind, ...]:
    # Imported on use: the filter kinds build on this package's model and YAML walker.
    from sitegen.filters import registry

    return registry.KINDS


def parse_filters(node: YamlNode | None) -> FilterSpec:
    """One level of ``filters:``, each key parsed by its registered filter kind."""
    if node is None or node.is_null:
        return FilterSpec()
    state = node.state
    start = len(state.errors)
    kinds = filter_kinds()
    keys = node.mapping(tuple(kind.key for kind in kinds))
    values: dict[str, object] = {}
    for kind in kinds:
        if kind.key in keys:
            values.update(state.attempt(partial(kind.parse, keys[kind.key])) or {})
    state.settle(start)
    spec = FilterSpec.from_values(values)
    # Settings of one level that contradict each other, so it could mirror nothing.
    for kind in kinds:
        for message in kind.check_level(spec) if kind.check_level else ():
            state.add(node.error(message))
    state.settle(start)
    return spec


def check_levels(levels: tuple[FilterSpec, ...], mirror: MirrorConfig, node: YamlNode) -> None:
    """Record filters of different levels that together leave a mirror with nothing."""
    for kind in filter_kinds():
        for message in kind.check_levels(levels, mirror) if kind.check_levels else ():
            node.state.add(node.error(f"mirror {mirror.name!r}: {message}"))


# --------------------------------------------------------------------------- channels


def _channels(top: YamlNode, keys: dict[str, YamlNode]) -> list[tuple[ChannelConfig, YamlNode]]:
    """The channels that parsed, each with its node; the others' errors are recorded."""
    if "channels" not in keys:
        raise top.error("missing required key 'channels'")
    node = keys["channels"]
    children = node.mapping(())
    if not children:
        raise node.error("no channels configured")
    out = []
    for path, child in children.items():
        channel = node.state.attempt(partial(_channel, path, child))
        if channel is not None:
            out.append((channel, child))
    _check_unique([channel for channel, _ in out], node)
    return out


def _channel(path: str, node: YamlNode) -> ChannelConfig:
    state = node.state
    start = len(state.errors)
    # With an invalid path the channel's mirrors are still checked, under a stand-in name.
    checked = state.attempt(partial(_channel_path, node, path))
    path = checked or path
    default_name = (checked or "mirror").replace("/", "-")
    if any(source.key in node.raw_keys() for source in sources.SOURCES):
        # The short form: the channel is its own single mirror.
        keys = node.mapping((*_mirror_keys(), "notices"))
        mirror = _mirror(keys, node, default_name)
        notices = state.attempt(partial(notices_of, keys))
        state.settle(start)
        return ChannelConfig(path, FilterSpec(), (mirror,), node.line, notices or ())
    keys = node.mapping(("filters", "mirrors", "notices"))
    notices = state.attempt(partial(notices_of, keys))
    filters = state.attempt(partial(parse_filters, keys.get("filters")))
    if "mirrors" not in keys:
        keys_text = " or ".join(repr(source.key) for source in sources.SOURCES)
        raise node.error(f"a channel needs either {keys_text} (one mirror) or a 'mirrors' list")
    items = keys["mirrors"].items()
    if not items:
        raise keys["mirrors"].error("a channel needs at least one mirror")
    mirrors = [state.attempt(partial(_mirror_item, item, default_name)) for item in items]
    state.settle(start)
    assert filters is not None
    return ChannelConfig(
        path=path,
        filters=filters,
        mirrors=tuple(m for m in mirrors if m is not None),
        line=node.line,
        notices=notices or (),
    )


def _channel_path(node: YamlNode, path: str) -> str:
    segments = path.strip("/").split("/")
    if not path.strip("/") or any(not CHANNEL_SEGMENT_RE.match(s) for s in segments):
        raise node.error(
            f"invalid channel path {path!r}: use segments of letters, digits, '.', '_', '-'"
            " such as cloud/conda-forge or pkgs/main"
        )
    if segments[0] in RESERVED_TOP:
        raise node.error(f"channel path {path!r} collides with the site's own {segments[0]!r}")
    if any(s in KNOWN_SUBDIRS for s in segments):
        raise node.error(f"channel path {path!r} has a subdir name as a segment")
    return "/".join(segments)


def _check_unique(channels: list[ChannelConfig], node: YamlNode) -> None:
    # `cloud/x` and `/cloud/x/` name one directory: two channels there would prune each other.
    state = node.state
    paths: dict[str, int] = {}
    for channel in channels:
        if channel.path in paths:
            state.add(
                ConfigError(
                    f"{state.filename}:{channel.line}: channels.{channel.path}: channel path"
                    f" {channel.path!r} is already used (line {paths[channel.path]})",
                    line=channel.line,
                )
            )
        else:
            paths[channel.path] = channel.line
    names: dict[str, int] = {}
    for channel in channels:
        for mirror in channel.mirrors:
            if mirror.name in names:
                state.add(
                    ConfigError(
                        f"{state.filename}:{mirror.line}: channels.{channel.path}: mirror name"
                        f" {mirror.name!r} is already used (line {names[mirror.name]});"
                        " names must be unique",
                        line=mirror.line,
                    )
                )
            else:
                names[mirror.name] = mirror.line


# --------------------------------------------------------------------------- mirrors


def _mirror_keys() -> tuple[str, ...]:
    return (
        "name",
        *(source.key for source in sources.SOURCES),
        "subdirs",
        "mode",
        "verify_tls",
        "filters",
        "schedule",
    )


def _mirror_item(item: YamlNode, default_name: str) -> MirrorConfig:
    return _mirror(item.mapping(_mirror_keys()), item, default_name)


def _mirror(keys: dict[str, YamlNode], node: YamlNode, default_name: str) -> MirrorConfig:
    state = node.state
    start = len(state.errors)
    given = [source for source in sources.SOURCES if source.key in keys]
    if not given:
        keys_text = " or ".join(repr(source.key) for source in sources.SOURCES)
        state.add(node.error(f"missing required key {keys_text}"))
    elif len(given) > 1:
        keys_text = ", ".join(repr(source.key) for source in given)
        state.add(node.error(f"a mirror has one source; got {keys_text}"))
    name = state.attempt(partial(_mirror_name, keys, node, default_name))
    if "subdirs" not in keys:
        state.add(node.error("missing required key 'subdirs' (e.g. [linux-64, noarch])"))
    subdirs = state.attempt(partial(parse_subdirs, keys["subdirs"])) if "subdirs" in keys else ()
    mode = state.attempt(partial(_mode, keys["mode"])) if "mode" in keys else "active"
    source = given[0] if len(given) == 1 else None
    url = state.attempt(partial(source.parse, keys[source.key])) if source else None
    verify_tls = state.attempt(keys["verify_tls"].boolean) if "verify_tls" in keys else True
    filters = state.attempt(partial(parse_filters, keys.get("filters")))
    cron = state.attempt(partial(_schedule, keys["schedule"])) if "schedule" in keys else None
    if source is not None and mode == "passive" and not source.passive:
        state.add(keys["mode"].error(f"a mirror with {source.key!r} cannot be passive"))
    state.settle(start)
    assert source is not None and name is not None and subdirs is not None and url is not None
    assert mode is not None and verify_tls is not None and filters is not None
    if "noarch" not in subdirs:
        subdirs = (*subdirs, "noarch")  # a channel must always serve noarch/repodata.json
    return MirrorConfig(
        name=name,
        url=url,
        subdirs=subdirs,
        mode=mode,
        verify_tls=verify_tls,
        filters=filters,
        schedule=cron,
        line=node.line,
        kind=source.kind,
    )


def _mirror_name(keys: dict[str, YamlNode], node: YamlNode, default_name: str) -> str:
    name = keys["name"].string() if "name" in keys else default_name
    if not NAME_RE.match(name):
        raise (keys.get("name") or node).error(f"invalid mirror name {name!r}")
    return name


def _mode(node: YamlNode) -> str:
    mode = node.string()
    if mode not in MODES:
        raise node.error(f"expected 'active' or 'passive', got {mode!r}")
    return mode


def _schedule(node: YamlNode) -> str:
    expression = node.string()
    if not schedule.is_valid(expression):
        raise node.error(f"invalid cron expression {expression!r} (e.g. '0 2 * * *' or '@daily')")
    return expression
