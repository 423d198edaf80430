"""Counts and sizes as people read them, in logs, run reports and ``sitegen status``.

A module of its own, importing nothing: the run report and status read them without the
network layer (and trio) that a run's heartbeat lines need.
"""

from __future__ import annotations


def counted(n: int, noun: str) -> str:
    """``1 file``, ``2 files``: a count and its noun, as people write it."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"
