"""A channels.yaml with one public and one private channel, and a fixed time, for the tests of
tokens and of the access rules made from them."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

# The time tokens are added at, unless a test says otherwise.
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def access_config(tmp_path: Path, extra: str = "", channel: str = "access: private") -> str:
    """The text of a channels.yaml with the channels ``pub`` and ``internal/licensed`` (its
    access settings ``channel``, one per line) and ``extra`` at the top, for a site in
    ``tmp_path``."""
    template = textwrap.dedent("""\
        output: {site}
        {extra}
        channels:
          pub: {{url: https://example.org/pub, subdirs: [noarch]}}
          internal/licensed:
            url: https://example.org/lic
            subdirs: [noarch]
            {channel}
        """)
    channel = channel.replace("\n", "\n    ")
    return template.format(site=tmp_path / "site", extra=extra, channel=channel)
