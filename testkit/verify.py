"""What ``sitegen verify`` reports, read from its output, and the files the verify tests damage.

:data:`MISSING` is a linux-64 package of :func:`testkit.small_channel.small_packages`;
:data:`TEMP` a temporary no live process wrote, as a killed download leaves it.
"""

from __future__ import annotations

MISSING = "gamma-0.1-h2_0.tar.bz2"
TEMP = ".sitegen-tmp-beta-2.0-h1_0.conda.deadbeef"


def verify_problems(out: str) -> dict[str, str]:
    """path -> kind from verify's output lines ``kind: path: detail``."""
    found = {}
    for line in out.splitlines():
        kind, sep, rest = line.partition(": ")
        if sep and kind in ("corrupt", "missing", "metadata", "temporary"):
            found[rest.split(": ", 1)[0]] = kind
    return found
