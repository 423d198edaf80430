"""The channel and the runs of the hostile-upstream tests.

:data:`GOOD` is the small channel with a package of markup-laden fields (:data:`XSS`) and one
of junk fields (:data:`ODD`), all of them to be mirrored; :func:`serialise` writes a repodata
document with the raw bytes of :data:`RAW` in place of its placeholders, which no JSON encoder
writes; :func:`run_config` configures the mirror of it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sitegen.config import SiteConfig, parse_config
from sitegen.tools.example_channel import PackageSpec
from testkit.small_channel import CHANNEL, small_packages

XSS = PackageSpec("xss", "1.0", "h0_0", license="MIT", formats=("conda",))
ODD = PackageSpec("odd", "1.0", "h0_0", license="MIT", formats=("conda", "tar.bz2"))
GOOD = [*small_packages(), XSS, ODD]
LINUX = "linux-64"

# Placeholders replaced by raw bytes once the document is serialised.
RAW = {
    '"@@INF@@"': b"1e999",
    '"@@HUGE@@"': b"1" + b"0" * 40,
    # More digits than Python turns into an int (sys.get_int_max_str_digits(): 4300).
    '"@@VAST@@"': b"1" + b"0" * 5000,
    "@@FF@@": b"\xff\xfe",
}


def serialise(document: dict[str, Any]) -> bytes:
    """``document`` as JSON, each placeholder of :data:`RAW` replaced by its bytes."""
    data = json.dumps(document, indent=1, sort_keys=True).encode()
    for placeholder, raw in RAW.items():
        data = data.replace(placeholder.encode(), raw)
    return data


def run_config(site: Path, url: str) -> SiteConfig:
    """linux-64 and noarch of the channel at ``url`` into ``site``, every metadata file."""
    return parse_config(
        f"""\
output: {site}
download: {{concurrency: 4, per_host: 4, retries: 0, timeout: 5}}
repodata: {{bz2: true}}  # every metadata file, the optional one too
channels:
  {CHANNEL}:
    url: {url}
    subdirs: [linux-64]
    filters:
      licenses: {{exclude: ["*GPL*"]}}
"""
    )
