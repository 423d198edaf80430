"""The access settings of channels.yaml: a private site, private channels, their readers,
token groups.

```yaml
access:                          # optional; everything has a default
  site: private                  # default: public; private: every path answers only to a token
  dir: /var/lib/sitegen/access   # token store + web server token files (default: beside the site)
  group: www-data                # the web server's group: may read the generated files
  reload: [systemctl, reload, nginx]   # run by `sitegen token ... --reload`
  groups:
    data-team: [alice, ci-runner]
channels:
  internal/licensed:
    access: private              # default: public
    readers: [data-team, bob]    # group or token names; `sitegen token add --channel` adds more
```

Tokens themselves never appear here: ``sitegen token add`` writes them (as hashes) to the
token store.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

from sitegen.config.model import AccessSettings
from sitegen.config.yaml_nodes import YamlNode, shown_value

ACCESS_MODES = ("public", "private")
CHANNEL_ACCESS_KEYS = ("access", "readers")
# Matched whole (fullmatch): "$" would also let a final line end by.
TOKEN_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_GROUP_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


def parse_access(node: YamlNode, base_dir: Path | None) -> AccessSettings:
    """The top-level ``access:`` mapping."""
    state = node.state
    start = len(state.errors)
    keys = node.mapping(("site", "dir", "group", "groups", "reload"))
    site = state.attempt(partial(_mode, keys["site"])) if "site" in keys else "public"
    directory = state.attempt(partial(_dir, keys["dir"], base_dir)) if "dir" in keys else None
    group = state.attempt(partial(_group, keys["group"])) if "group" in keys else None
    groups = state.attempt(partial(_groups, keys["groups"])) if "groups" in keys else ()
    reload = state.attempt(partial(_reload, keys["reload"])) if "reload" in keys else ()
    state.settle(start)
    assert groups is not None and reload is not None and site is not None
    return AccessSettings(site=site, dir=directory, group=group, groups=groups, reload=reload)


def parse_channel_access(keys: dict[str, YamlNode]) -> tuple[str, tuple[str, ...]]:
    """A channel's ``access`` and ``readers`` (both optional)."""
    mode = _mode(keys["access"]) if "access" in keys else "public"
    readers: tuple[str, ...] = ()
    if "readers" in keys:
        readers = tuple(token_name(item) for item in keys["readers"].items())
        if mode != "private":
            raise keys["readers"].error("readers only apply to a channel with access: private")
    return mode, readers


def _mode(node: YamlNode) -> str:
    mode = node.string()
    if mode not in ACCESS_MODES:
        raise node.error(f"expected 'public' or 'private', got {shown_value(mode)}")
    return mode


def token_name(node: YamlNode) -> str:
    name = node.string()
    if not TOKEN_NAME_RE.fullmatch(name):
        raise node.error(
            f"invalid token or group name {shown_value(name)}: letters, digits, '.', '_', '-'"
        )
    return name


def _dir(node: YamlNode, base_dir: Path | None) -> Path:
    path = node.local_path()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path


def _group(node: YamlNode) -> str:
    group = node.string()
    if not _GROUP_RE.fullmatch(group):
        raise node.error(f"invalid system group name {shown_value(group)}")
    return group


def _groups(node: YamlNode) -> tuple[tuple[str, tuple[str, ...]], ...]:
    out = []
    for name, child in node.mapping(()).items():
        if not TOKEN_NAME_RE.fullmatch(name):
            raise child.error(f"invalid group name {shown_value(name)}")
        out.append((name, tuple(token_name(item) for item in child.items())))
    return tuple(out)


def _reload(node: YamlNode) -> tuple[str, ...]:
    command = tuple(item.string() for item in node.items())
    if not command:
        raise node.error("expected a command as a list, e.g. [systemctl, reload, nginx]")
    return command
