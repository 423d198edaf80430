"""An approval-gated channel, ``internal/approved``, taking its packages from
``cloud/forge``: its channels.yaml, an approvals file of two entries, the candidates its
source offers, and approvals of it built by hand; and the same channel taking the example
channel, ``cloud/example``, from a real upstream (:func:`write_config`)."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path
from typing import Any

from sitegen.config.approval_model import Approval
from testkit.records import JAN_2024, rec

NOW = dt.datetime(2026, 12, 5, tzinfo=dt.UTC).timestamp()
GATED = "internal/approved"
SOURCE = "cloud/example"  # the gated channel's source in write_config

# What cloud/forge offers: numpy with its dependency chain down to zlib, and pip in noarch.
CANDIDATES = {
    "linux-64": {
        r.fn: r
        for r in [
            rec(
                "numpy",
                "2.1.0",
                "py312_0",
                depends=["python >=3.12,<3.13", "libopenblas"],
                timestamp=JAN_2024 + 3,
            ),
            rec("numpy", "2.0.1", "py312_0", depends=["python >=3.12,<3.13"], timestamp=JAN_2024),
            rec("python", "3.12.4", timestamp=JAN_2024 + 1),
            rec("python", "3.11.9", timestamp=JAN_2024),
            rec("libopenblas", "0.3.27", depends=["zlib"], timestamp=JAN_2024 + 2),
            rec("zlib", "1.3.1", timestamp=JAN_2024),
            rec("readline", "8.2", timestamp=JAN_2024 + 5),
        ]
    },
    "noarch": {r.fn: r for r in [rec("pip", "24.0", subdir="noarch", depends=["python >=3.8"])]},
}


# channels.yaml of the site; approvals.yaml beside it, where one is written.
CONFIG = """\
output: site
channels:
  cloud/forge:
    url: https://conda.example.org/forge
    subdirs: [linux-64, osx-64]
  internal/approved:
    approval: {from: cloud/forge}
"""


# An approvals file as people keep it: comments above and between its entries.
FILE = """\
# Reviewed in pull requests.
- channel: internal/approved
  spec: numpy >=2
  by: alice
  when: "2026-11-01T09:00:00Z"
  why: forecasting
# zlib: needed by everything
- channel: internal/approved
  spec: zlib
  by: bob
  when: "2026-11-02T09:00:00Z"
  why: base
  with_dependencies: true
"""


def entry(spec: str, **fields: Any) -> Approval:
    """An approval of ``spec`` in the gated channel, by alice unless ``fields`` say otherwise."""
    values = {"by": "alice", "when": "2026-12-01T10:00:00Z", "why": "needed"} | fields
    return Approval(GATED, spec, **values)


def write_config(tmp_path: Path, upstream: str, max_fraction: float = 1.0) -> Path:
    """``tmp_path/channels.yaml``: the site ``tmp_path/site`` mirrors ``upstream`` as
    :data:`SOURCE` (linux-64) and gates :data:`GATED` on it; ``max_fraction`` is the deletion
    guard's."""
    config = tmp_path / "channels.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            output: {tmp_path / "site"}
            download: {{concurrency: 4, per_host: 4, retries: 1, timeout: 10}}
            prune: {{max_fraction: {max_fraction}}}
            channels:
              {SOURCE}:
                url: {upstream}
                subdirs: [linux-64]
              {GATED}:
                approval: {{from: {SOURCE}}}
            """
        )
    )
    return config
