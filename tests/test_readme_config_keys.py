"""README.md documents every key channels.yaml accepts.

The keys come from the loader itself: most sections list their keys inline where they are read,
so each section is asked by parsing a configuration with an unknown key in it and reading the
error's ``expected one of: ...``. The walk starts at the top level and at each form of a section
whose own keys are names (a channel in its short form, with ``mirrors:``, approval-gated; an
installer folder), and goes down every key whose value is read as a mapping, or as a list of
mappings. Where the loader does name its keys (``INSTALLER_KEYS``, ...), the walk must find them.

A key counts as documented when README.md has it as ```key```, as ``key:``, or as a word of a
``{...}`` YAML flow example.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from sitegen.config.channels import CHANNEL_ONLY_KEYS
from sitegen.config.installers import INSTALLER_KEYS
from sitegen.config.load import parse_config
from sitegen.config.notices import NOTICE_KEYS
from sitegen.config.sources import SOURCES
from sitegen.config.yaml_nodes import ConfigError
from sitegen.filters.exceptions import KEYS as EXCEPTION_KEYS

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parent.parent
PROBE = "zz_not_a_key"
SITE = "/srv/sitegen-config-keys/site"  # only checked, never created: nothing is run
CHANNEL = {"url": "https://conda.example.org/main", "subdirs": ["noarch"]}
Step = str | int

# Section label -> a configuration that parses, and the path in it of a mapping of that section.
ROOTS: dict[str, tuple[dict[str, Any], list[Step]]] = {
    "": ({"output": SITE, "channels": {"main": CHANNEL}}, []),
    "channels.<channel>": ({"output": SITE, "channels": {"main": CHANNEL}}, ["channels", "main"]),
    "channels.<channel with mirrors>": (
        {"output": SITE, "channels": {"main": {"mirrors": [CHANNEL]}}},
        ["channels", "main"],
    ),
    "channels.<gated channel>": (
        {"output": SITE, "channels": {"main": CHANNEL, "gated": {"approval": {"from": "main"}}}},
        ["channels", "gated"],
    ),
    "installers.<folder>": (
        {
            "output": SITE,
            "channels": {},
            "installers": {"miniconda": {"url": "https://repo.example.org/miniconda/"}},
        },
        ["installers", "miniconda"],
    ),
}


def errors(doc: dict[str, Any]) -> tuple[str, ...]:
    try:
        parse_config(yaml.safe_dump(doc, sort_keys=False))
    except ConfigError as exc:
        return exc.errors
    return ()


def with_value(doc: dict[str, Any], path: list[Step], value: object) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    node: Any = doc
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return doc


def dotted(path: list[Step]) -> str:
    """The key path as the loader's errors spell it: ``channels.main.mirrors[0].filters``."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else f".{step}" if text else step
    return text


def allowed_keys(doc: dict[str, Any], path: list[Step]) -> tuple[str, ...] | None:
    """The keys the loader allows in the mapping at ``path`` of ``doc`` (which has a mapping
    or, to be tried as one, a placeholder there), or None when it reads no mapping there."""
    node: Any = doc
    for step in path:
        node = node[step]
    mapping = node if isinstance(node, dict) else {}
    probe = with_value(doc, path, {**mapping, PROBE: 1}) if path else {**doc, PROBE: 1}
    where = re.escape(dotted([*path, PROBE]))
    for error in errors(probe):
        found = re.search(rf": {where}: unknown key .*expected one of: (.*)$", error)
        if found:
            return tuple(found[1].split(", "))
    return None


def section_keys() -> dict[str, tuple[str, ...]]:
    """Section label -> the keys the loader accepts there, for every section it reads."""
    sections: dict[str, tuple[str, ...]] = {}

    def walk(label: str, doc: dict[str, Any], path: list[Step]) -> None:
        keys = allowed_keys(doc, path)
        assert keys is not None, f"{label or '(top level)'}: no list of allowed keys"
        sections[label] = keys
        for key in keys:
            name = f"{label}.{key}" if label else key
            for value, inner, suffix in (({}, [key], ""), ([{}], [key, 0], "[]")):
                changed = with_value(doc, [*path, key], value)
                if allowed_keys(changed, [*path, *inner]) is not None:
                    walk(name + suffix, changed, [*path, *inner])
                    break

    for label, (doc, path) in ROOTS.items():
        walk(label, doc, path)
    return sections


def documented(key: str, readme: str) -> bool:
    if f"`{key}`" in readme or re.search(rf"(?<![\w.-]){re.escape(key)}:", readme):
        return True
    word = re.compile(rf"(?<![\w-]){re.escape(key)}(?![\w-])")
    return any(word.search(flow) for flow in re.findall(r"\{[^{}\n]*\}", readme))


def undocumented(sections: dict[str, tuple[str, ...]], readme: str) -> list[str]:
    return sorted(
        {
            f"{label}.{key}" if label else key
            for label, keys in sections.items()
            for key in keys
            if not documented(key, readme)
        }
    )


@pytest.fixture(scope="module")
def sections() -> dict[str, tuple[str, ...]]:
    return section_keys()


def test_every_key_channels_yaml_accepts_is_in_the_readme(
    sections: dict[str, tuple[str, ...]],
) -> None:
    assert undocumented(sections, (REPO / "README.md").read_text()) == []


def test_the_walk_finds_the_keys_the_loader_names(sections: dict[str, tuple[str, ...]]) -> None:
    assert sections["installers.<folder>"] == INSTALLER_KEYS
    assert sections["channels.<channel>.notices[]"] == NOTICE_KEYS
    assert sections["filters.except[]"] == EXCEPTION_KEYS
    assert sections["channels.<channel with mirrors>.mirrors[].filters.except[]"] == EXCEPTION_KEYS
    for label in ("channels.<channel>", "channels.<channel with mirrors>"):
        assert set(CHANNEL_ONLY_KEYS) <= set(sections[label])
    source_keys = {source.key for source in SOURCES}
    assert source_keys <= set(sections["channels.<channel with mirrors>.mirrors[]"])
    assert {"download", "access", "channels.<gated channel>.approval"} <= set(sections)


def test_an_undocumented_key_is_found() -> None:
    readme = "Set `max_fraction` to 0.2.\n\n    history:\n      keep_runs: 20\n"
    readme += "\n    filters: {names: {include, exclude}}\n"
    sections = {
        "prune": ("max_fraction", "max_count"),
        "history": ("keep_runs", "keep_days"),
        "filters.names": ("include", "exclude", "exclude_all"),
        "": ("history", "filters", "names", "runs"),
    }
    assert undocumented(sections, readme) == [
        "filters.names.exclude_all",
        "history.keep_days",
        "prune.max_count",
        "runs",
    ]
