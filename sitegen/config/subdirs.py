"""Conda platform subdirs: the names channels.yaml accepts for a mirror and its filters."""

from __future__ import annotations

import re

from sitegen.config.yaml_nodes import YamlNode, shown_value

KNOWN_SUBDIRS = frozenset(
    [
        "noarch",
        "linux-32",
        "linux-64",
        "linux-aarch64",
        "linux-armv6l",
        "linux-armv7l",
        "linux-ppc64le",
        "linux-ppc64",
        "linux-riscv64",
        "linux-s390x",
        "osx-64",
        "osx-arm64",
        "win-32",
        "win-64",
        "win-arm64",
        "emscripten-wasm32",
        "wasi-wasm32",
        "zos-z",
    ]
)
# Matched whole (fullmatch): "$" would also let a final line end by.
SUBDIR_RE = re.compile(r"noarch|[a-z0-9]{1,31}-[a-z0-9_]{1,31}")


def parse_subdirs(node: YamlNode) -> tuple[str, ...]:
    """A list of subdir names, duplicates dropped, in the order written."""
    out = []
    for item in node.items():
        subdir = item.string()
        if not SUBDIR_RE.fullmatch(subdir):
            raise item.error(
                f"invalid subdir {shown_value(subdir)} (expected e.g. linux-64, osx-arm64, noarch)"
            )
        out.append(subdir)
    return tuple(dict.fromkeys(out))
