"""The committed channels.yaml offers optional settings as commented-out YAML; each must still
parse once uncommented, with the defaults its comments state.

A commented-out setting is a comment whose text starts right after ``# `` with a lower-case key
and a colon (``# max_size: 200MB``, ``# internal/approved:``); the comment lines right below it
that are indented further (``#   mirrors:``, ``#     - name: ...``) belong to it. Prose comments
start with a capital letter, or sit indented inside a prose comment (an example of a client's
``.condarc``), and are left as they are.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sitegen.config.load import parse_config
from sitegen.config.site_settings import HistoryRetention

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parent.parent
SETTING = re.compile(r"^(?P<indent>\s*)# (?P<yaml>[a-z][\w/-]*:.*)$")
INSIDE = re.compile(r"^(?P<indent>\s*)# (?P<yaml>\s+\S.*)$")


def uncommented(text: str) -> tuple[str, int]:
    """``text`` with every commented-out setting uncommented, and how many lines were."""
    lines, count, in_setting = [], 0, False
    for line in text.splitlines():
        setting = SETTING.match(line)
        inside = INSIDE.match(line) if in_setting else None
        match = setting or inside
        in_setting = match is not None
        if match:
            line, count = match["indent"] + match["yaml"], count + 1
        lines.append(line)
    return "\n".join(lines) + "\n", count


def test_every_commented_out_setting_parses() -> None:
    text, count = uncommented((REPO / "channels.yaml").read_text())
    assert count > 0
    config = parse_config(text)
    assert config.base_url == "https://conda.example.org"
    assert config.repodata_bz2 is True
    # The comment above it says these are the defaults.
    assert config.history == HistoryRetention()
    assert [c.path for c in config.channels] == ["cloud/conda-forge", "internal/approved"]
    assert [i.path for i in config.installers] == ["miniconda", "anaconda"]


def test_a_commented_out_setting_and_what_belongs_to_it_are_found() -> None:
    text = (
        "# A prose comment: with a colon.\n"
        "#   channel_alias: https://example.org   (an example inside prose)\n"
        "# history: {keep_runs: 5}\n"
        "# notify:\n"
        "#   on_failure: [true]\n"
        "channels:\n"
        "  main:\n"
        "    # keep_removed: true   # an end-of-line comment stays\n"
        "    # More prose.\n"
    )
    assert uncommented(text) == (
        "# A prose comment: with a colon.\n"
        "#   channel_alias: https://example.org   (an example inside prose)\n"
        "history: {keep_runs: 5}\n"
        "notify:\n"
        "  on_failure: [true]\n"
        "channels:\n"
        "  main:\n"
        "    keep_removed: true   # an end-of-line comment stays\n"
        "    # More prose.\n",
        4,
    )
