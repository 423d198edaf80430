"""Time in tests: the process's local time zone, set for the length of a test, and UTC instants."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: at run time only testkit.require imports pytest
    import pytest


@contextlib.contextmanager
def local_zone(monkeypatch: pytest.MonkeyPatch, zone: str) -> Iterator[None]:
    """Local time is ``zone`` (a POSIX zone string needs no tz database: ``JST-9``) inside,
    and what it was outside."""
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        yield
    finally:
        monkeypatch.undo()
        time.tzset()


def ts(text: str) -> float:
    """The POSIX timestamp of ``text``, an ISO date and time read as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()
