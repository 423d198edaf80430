"""Counts and sizes as people read them, in logs, run reports and ``sitegen status``.

A module of its own, importing nothing: the run report and status read them without the
network layer (and trio) that a run's heartbeat lines need.
"""

from __future__ import annotations


def counted(n: int, noun: str) -> str:
    """``1 file``, ``2 files``: a count and its noun, as people write it."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def human_bytes(n: float) -> str:
    # Unrolled: pages print it for each of up to a million package files.
    if -1000 < n < 1000:
        return f"{n:.0f} B"
    n /= 1000
    if -1000 < n < 1000:
        return f"{n:.1f} KB"
    n /= 1000
    if -1000 < n < 1000:
        return f"{n:.1f} MB"
    n /= 1000
    if -1000 < n < 1000:
        return f"{n:.1f} GB"
    return f"{n / 1000:.1f} TB"
