"""The ``channels:`` section of channels.yaml: channels, their mirrors and channel settings."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import partial
from typing import Any

from sitegen.config import schedule, sources
from sitegen.config.access import CHANNEL_ACCESS_KEYS, parse_channel_access
from sitegen.config.approvals import check_gates, parse_gate
from sitegen.config.filter_levels import filter_kinds, parse_filters
from sitegen.config.model import ChannelConfig, FilterSpec, MirrorConfig
from sitegen.config.notices import notices_of
from sitegen.config.site_settings import parse_ca_bundle, parse_http_url
from sitegen.config.subdirs import KNOWN_SUBDIRS, parse_subdirs
from sitegen.config.yaml_nodes import ConfigError, ParseState, YamlNode, shown_value
from sitegen.layout import RESERVED_IN_CHANNEL, RESERVED_TOP, TOKEN_SEGMENT

# Up to 100 characters: each becomes a directory (names longer than a file system allows
# would fail only when the site is written). Matched whole (fullmatch): "$" would also let a
# final line end by, which YAML can spell ("a\n", a block scalar).
CHANNEL_SEGMENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
MODES = ("active", "passive")
# Keys of a channel that no mirror has, in both the short and the long form.
CHANNEL_ONLY_KEYS = ("frozen", "keep_removed", "mirror_of", "notices", *CHANNEL_ACCESS_KEYS)


def parse_channels(
    top: YamlNode, keys: dict[str, YamlNode]
) -> list[tuple[ChannelConfig, YamlNode]]:
    """The channels that parsed, each with its node; the others' errors are recorded."""
    if "channels" not in keys:
        raise top.error("missing required key 'channels'")
    node = keys["channels"]
    # `channels: {}` is valid: nothing is mirrored, and what the site still publishes stays
    # as it is until `sitegen remove` takes it (the last channel of a site included).
    children = node.mapping(())
    out = []
    for path, child in children.items():
        if _misplaced_key(path, child):
            continue
        channel = node.state.attempt(partial(_channel, path, child))
        if channel is not None:
            out.append((channel, child))
    _check_unique([channel for channel, _ in out], node)
    out = check_gates(out)
    _check_nested_subdirs([channel for channel, _ in out], node)  # gated ones have theirs now
    _check_nested_access([channel for channel, _ in out], node)
    return out


def _misplaced_key(path: str, node: YamlNode) -> bool:
    """A channel named like a key of a channel that is no channel (no source, no mirrors): a
    key indented too little, which is recorded as such rather than as a broken channel."""
    keys = {*_mirror_keys(), *CHANNEL_ONLY_KEYS, "mirrors"}
    if path not in keys or node.raw_keys() & {"mirrors", "approval", *_source_keys()}:
        return False
    node.state.add(
        node.error(
            f"{path!r} is a key of a channel, read here as a channel's name: indent it under "
            "the channel it belongs to, as far as that channel's other keys"
        )
    )
    return True


def _source_keys() -> tuple[str, ...]:
    return tuple(source.key for source in sources.SOURCES)


def _nested() -> dict[str, tuple[str, ...]]:
    """Keys that belong one level down, for the hint of an unknown key."""
    return {"filters": tuple(kind.key for kind in filter_kinds())}


def _channel(path: str, node: YamlNode) -> ChannelConfig:
    state = node.state
    start = len(state.errors)
    # With an invalid path the channel's mirrors are still checked, under a stand-in name.
    checked = state.attempt(partial(_channel_path, node, path))
    path = checked or path
    default_name = (checked or "mirror").replace("/", "-")
    if "approval" in node.raw_keys():
        return _gated_channel(path, node, default_name)
    if node.raw_keys() & set(_source_keys()):
        # The short form: the channel is its own single mirror.
        keys = node.mapping((*_mirror_keys(), *CHANNEL_ONLY_KEYS), _nested())
        mirror = _mirror(keys, node, default_name)
        settings = state.attempt(partial(_channel_settings, keys))
        state.settle(start)
        assert settings is not None
        return ChannelConfig(
            path=path, filters=FilterSpec(), mirrors=(mirror,), line=node.line, **settings
        )
    keys = node.mapping(("filters", "mirrors", *CHANNEL_ONLY_KEYS), _nested())
    filters = state.attempt(partial(parse_filters, keys.get("filters")))
    settings = state.attempt(partial(_channel_settings, keys))
    if "mirrors" not in keys:
        keys_text = " or ".join(repr(source.key) for source in sources.SOURCES)
        raise node.error(f"a channel needs either {keys_text} (one mirror) or a 'mirrors' list")
    items = keys["mirrors"].items()
    if not items:
        raise keys["mirrors"].error("a channel needs at least one mirror")
    mirrors = [state.attempt(partial(_mirror_item, item, default_name)) for item in items]
    state.settle(start)
    assert filters is not None and settings is not None
    return ChannelConfig(
        path=path,
        filters=filters,
        mirrors=tuple(m for m in mirrors if m is not None),
        line=node.line,
        **settings,
    )


def _channel_settings(keys: dict[str, YamlNode]) -> dict[str, Any]:
    """What a channel sets beside its mirrors (in both the short and the long form)."""
    access, readers = parse_channel_access(keys)
    frozen = keys["frozen"].boolean() if "frozen" in keys else False
    keep_removed = keys["keep_removed"].boolean() if "keep_removed" in keys else False
    # The upstream URL it stands in for in pixi's `[mirrors]`, when not one unfiltered mirror.
    mirror_of = parse_http_url(keys["mirror_of"]) if "mirror_of" in keys else None
    return {
        "frozen": frozen,
        "keep_removed": keep_removed,
        "access": access,
        "readers": readers,
        "mirror_of": mirror_of,
        "notices": notices_of(keys),
    }


def _gated_channel(path: str, node: YamlNode, default_name: str) -> ChannelConfig:
    """An approval-gated channel: one mirror reading the source channel of this site (its
    subdirs are the source's, filled in by check_gates once every channel is read)."""
    state = node.state
    start = len(state.errors)
    keys = node.mapping(("approval", "filters", *CHANNEL_ONLY_KEYS))
    filters = state.attempt(partial(parse_filters, keys.get("filters")))
    settings = state.attempt(partial(_channel_settings, keys))
    gate = state.attempt(partial(parse_gate, keys["approval"], path))
    if filters is not None and filters.include_dependencies:
        # It would publish what no one approved; an entry's with_dependencies does it.
        state.add(
            keys["filters"].error(
                "include_dependencies does not apply to an approval-gated channel;"
                " approve with with_dependencies (sitegen approve --with-dependencies)"
            )
        )
    if settings is not None and settings["keep_removed"]:
        # An approval revoked must take the file with it; a gate is an allowlist, which a kept
        # file outlives (see sitegen.sync.keep).
        state.add(
            keys["keep_removed"].error(
                "keep_removed does not apply to an approval-gated channel: what is no longer"
                " approved must go; set it on the source channel instead"
            )
        )
    state.settle(start)
    assert filters is not None and gate is not None and settings is not None
    mirror = MirrorConfig(
        name=default_name, url=gate.source, subdirs=("noarch",), line=node.line, kind="site"
    )
    return ChannelConfig(
        path=path,
        filters=filters,
        mirrors=(mirror,),
        line=node.line,
        approval=gate,
        **settings,
    )


def _channel_path(node: YamlNode, path: str) -> str:
    segments = site_path_segments(node, path, "channel path", "cloud/conda-forge or pkgs/main")
    if any(s in KNOWN_SUBDIRS for s in segments):
        raise node.error(f"channel path {shown_value(path)} has a subdir name as a segment")
    return "/".join(segments)


def site_path_segments(node: YamlNode, path: str, kind: str, examples: str) -> list[str]:
    """The segments of ``path``, a folder of the site a ``kind`` of the config names (a
    channel path, an installer folder); a config error when it cannot be one."""
    segments = path.strip("/").split("/")
    if not path.strip("/") or any(not CHANNEL_SEGMENT_RE.fullmatch(s) for s in segments):
        raise node.error(
            f"invalid {kind} {shown_value(path)}: use segments of letters, digits, '.', '_', '-'"
            f" (up to 100 each) such as {examples}"
        )
    if segments[0] in RESERVED_TOP:
        raise node.error(f"{kind} {shown_value(path)} collides with the site's own {segments[0]!r}")
    if TOKEN_SEGMENT in segments:
        # The servers' log masks and the statistics take `t/<next segment>` for a token
        # wherever it appears: a/t/b would be logged masked and counted as a.
        raise node.error(
            f"{kind} {shown_value(path)} has {TOKEN_SEGMENT!r} as a segment, which is conda's path"
            " token (/t/<token>/) wherever it appears"
        )
    return segments


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
    for channel, outer, segment in _enclosing(channels):
        if segment in RESERVED_IN_CHANNEL:
            _inside_error(
                state, channel, outer, f"{segment!r} holds that channel's own pages or files"
            )
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


def _check_nested_subdirs(channels: list[ChannelConfig], node: YamlNode) -> None:
    """A channel inside another may not take a subdir name of that one right below it: it would
    live in that subdir's directory (at `outer/<subdir>`, the subdir's listing page would be
    its index.html). _channel_path refuses the known subdir names anywhere; this catches the
    others SUBDIR_RE accepts (linux-loong64), and a subdir's name with a suffix (linux-64.json),
    which the site's state keeps files under."""
    for channel, outer, segment in _enclosing(channels):
        stem = segment.split(".", 1)[0]
        if segment in outer.subdirs:
            _inside_error(node.state, channel, outer, f"{segment!r} is one of its subdirs")
        elif stem in outer.subdirs:
            # The state of a channel's subdir is kept per file, `<channel>/<subdir>.json` and
            # the like, beside the folders of the channels inside it.
            why = f"{segment!r} is named like the state files of its subdir {stem!r}"
            _inside_error(node.state, channel, outer, why)


def _check_nested_access(channels: list[ChannelConfig], node: YamlNode) -> None:
    """A private channel neither holds another channel nor lies inside one. nginx and Apache
    guard a private channel's folder whole, sitegen serve and the fetcher take a file to the
    innermost channel: a public channel inside a private one would be open on one, closed on
    the other. Two private ones each have their own tokens (readers, `token add --channel`):
    which guards the inner folder would be one more rule for every server to agree on."""
    for channel, outer, _ in _enclosing(channels):
        if not (channel.private or outer.private):
            continue
        if channel.private and outer.private:
            which = "and both are private"
        else:
            which = "which is private" if outer.private else "and this one is private"
        beside = f"{outer.path}-{channel.path[len(outer.path) + 1 :].replace('/', '-')}"
        why = (
            f"{which}: a private channel's folder is guarded whole, by its own readers, so it"
            f" can neither hold a channel nor lie inside one; give this one a path outside"
            f" {outer.path + '/'!r}, such as {beside!r}"
        )
        _inside_error(node.state, channel, outer, why)


def _enclosing(channels: list[ChannelConfig]) -> Iterator[tuple[ChannelConfig, ChannelConfig, str]]:
    """(channel, a channel it is inside, the segment of its path right below that one)."""
    by_path: dict[str, ChannelConfig] = {}
    for channel in channels:
        by_path.setdefault(channel.path, channel)  # the first of a path given twice
    for channel in channels:
        segments = channel.path.split("/")
        for depth in range(1, len(segments)):
            outer = by_path.get("/".join(segments[:depth]))
            if outer is not None:
                yield channel, outer, segments[depth]


def _inside_error(
    state: ParseState, channel: ChannelConfig, outer: ChannelConfig, why: str
) -> None:
    state.add(
        ConfigError(
            f"{state.filename}:{channel.line}: channels.{channel.path}: inside channel"
            f" {outer.path!r} (line {outer.line}), {why}",
            line=channel.line,
        )
    )


# --------------------------------------------------------------------------- mirrors


def _mirror_keys() -> tuple[str, ...]:
    return (
        "name",
        *_source_keys(),
        "subdirs",
        "mode",
        "verify_tls",
        "filters",
        "schedule",
        "ca_bundle",
        "move",
    )


def _mirror_item(item: YamlNode, default_name: str) -> MirrorConfig:
    return _mirror(item.mapping(_mirror_keys(), _nested()), item, default_name)


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
    cron = state.attempt(partial(parse_schedule, keys["schedule"])) if "schedule" in keys else None
    ca = state.attempt(partial(parse_ca_bundle, keys["ca_bundle"])) if "ca_bundle" in keys else None
    if source is not None and mode == "passive" and not source.passive:
        state.add(keys["mode"].error(f"a mirror with {source.key!r} cannot be passive"))
    move = state.attempt(keys["move"].boolean) if "move" in keys else False
    if move and source is not None and not source.movable:
        state.add(keys["move"].error(f"a mirror with {source.key!r} has no files to move"))
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
        ca_bundle=ca,
        line=node.line,
        kind=source.kind,
        move=bool(move),
    )


def _mirror_name(keys: dict[str, YamlNode], node: YamlNode, default_name: str) -> str:
    name = keys["name"].string() if "name" in keys else default_name
    if not NAME_RE.fullmatch(name):
        raise (keys.get("name") or node).error(f"invalid mirror name {shown_value(name)}")
    return name


def _mode(node: YamlNode) -> str:
    mode = node.string()
    if mode not in MODES:
        raise node.error(f"expected 'active' or 'passive', got {shown_value(mode)}")
    return mode


def parse_schedule(node: YamlNode) -> str:
    expression = node.string()
    backwards = schedule.backwards_range(expression)
    if backwards is not None:
        raise node.error(
            f"backwards range {shown_value(backwards)} in cron expression"
            f" {shown_value(expression)}: a range runs"
            " from low to high (one that wraps around is two, e.g. '30-59,0-10')"
        )
    if not schedule.is_valid(expression):
        raise node.error(
            f"invalid cron expression {shown_value(expression)} (e.g. '0 2 * * *' or '@daily')"
        )
    return expression
