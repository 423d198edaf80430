"""Channel notices (CEP-6): the ``notices.json`` conda reads at a channel's root and shows on
install (``conda notices``).

Pure. The document is ``{"notices": [{id, message, level, created_at, expired_at, interval}]}``
as conda's reader takes it: ``level`` one of ``info``, ``warning``, ``critical`` (conda reads
anything else as ``info``), times as ISO 8601 with their UTC offset (``datetime.fromisoformat``
must read them), ``interval`` in seconds between two showings. A notice whose expiry has passed
is neither published nor shown on the channel's page.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

NOTICES_FILE = "notices.json"
LEVELS = ("info", "warning", "critical")


@dataclass(frozen=True)
class ChannelNotice:
    """One notice an operator posts on a channel (``notices:`` in channels.yaml)."""

    message: str
    level: str = "info"
    created: datetime | None = None  # aware (UTC); shown by conda beside the message
    expires: datetime | None = None  # aware (UTC); gone from the channel after it
    interval: int | None = None  # seconds conda waits before showing it again
    id: str = ""  # stable across runs: conda remembers which ids a user has seen

    @property
    def notice_id(self) -> str:
        """The given id, or one derived from the message (the same text keeps its id)."""
        return self.id or hashlib.sha256(self.message.encode()).hexdigest()[:16]

    def active(self, now: datetime) -> bool:
        return self.expires is None or now < self.expires

    def to_json(self) -> dict[str, Any]:
        notice: dict[str, Any] = {
            "id": self.notice_id,
            "message": self.message,
            "level": self.level,
        }
        if self.created is not None:
            notice["created_at"] = iso(self.created)
        if self.expires is not None:
            notice["expired_at"] = iso(self.expires)
        if self.interval is not None:
            notice["interval"] = self.interval
        return notice


def iso(moment: datetime) -> str:
    """``2026-12-05T10:00:00+00:00``: what every ``datetime.fromisoformat`` reads (the ``Z``
    suffix only from Python 3.11)."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def active_notices(notices: Iterable[ChannelNotice], now: datetime) -> list[ChannelNotice]:
    return [n for n in notices if n.active(now)]


def encode_notices(notices: Iterable[ChannelNotice], now: datetime) -> bytes | None:
    """The channel's ``notices.json``, or None when no notice is active (nothing to publish)."""
    active = active_notices(notices, now)
    if not active:
        return None
    return msgspec.json.encode({"notices": [n.to_json() for n in active]})
