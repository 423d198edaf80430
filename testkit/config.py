"""channels.yaml text for the configuration tests: written indented in a test, its lines
looked up by what they hold, and written where a CLI run may create nothing beside it."""

from __future__ import annotations

import textwrap
from pathlib import Path

# One channel with one mirror, in the short form (a ``url:`` directly under the channel path).
SHORT = """
output: site
channels:
  cloud/conda-forge:
    url: https://conda.anaconda.org/conda-forge
    subdirs: [linux-64]
"""


def dedent(text: str) -> str:
    """``text`` without its common indentation and its leading line ends."""
    return textwrap.dedent(text).lstrip("\n")


def line_of(text: str, needle: str) -> int:
    """1-based number of the first line of text that contains needle."""
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in the config text")


def write_config(tmp_path: Path, text: str) -> Path:
    """``tmp_path/channels.yaml`` holding ``text``, its ``output: site`` put under
    ``tmp_path/out`` (which a refused run must not create)."""
    site = tmp_path / "out" / "site"
    path = tmp_path / "channels.yaml"
    path.write_text(text.replace("output: site", f"output: {site}"))
    return path
