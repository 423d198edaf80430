"""Channel notices (CEP-6): the ``notices.json`` conda reads at a channel's root and shows on
install (``conda notices``).

Pure. The document is ``{"notices": [{id, message, level, created_at, expired_at, interval}]}``
as conda's reader takes it: ``level`` one of ``info``, ``warning``, ``critical`` (conda reads
anything else as ``info``), times as ISO 8601 with their UTC offset (``datetime.fromisoformat``
must read them), ``interval`` in seconds between two showings. A notice whose expiry has passed
is neither published nor shown on the channel's page.

Both times are always written: ``conda notices --json`` formats each with ``isoformat()`` and
fails on a notice without one, and conda's cache of a channel's notices counts one without
``expired_at`` as expired. The expiry keeps the name ``expired_at``, the only one conda reads
up to 26.7.0 (later ones read CEP-6's ``expires_at`` first, then ``expired_at``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

NOTICES_FILE = "notices.json"
LEVELS = ("info", "warning", "critical")
# The expiry published for a notice that has none: the last second of the calendar.
NEVER = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


class _Published(msgspec.Struct):
    id: str
    created_at: str


class _PublishedDoc(msgspec.Struct):
    notices: list[_Published]


_PUBLISHED = msgspec.json.Decoder(_PublishedDoc)


@dataclass(frozen=True)
class ChannelNotice:
    """One notice an operator posts on a channel (``notices:`` in channels.yaml)."""

    message: str
    level: str = "info"
    created: datetime | None = None  # aware (UTC); shown by conda beside the message
    expires: datetime | None = None  # aware (UTC); gone from the channel after it
    interval: int | None = None  # seconds conda waits before showing it again
    id: str = ""  # stable across runs: conda remembers which ids a user has seen
    line: int = field(default=0, compare=False)  # where channels.yaml gives it, for its errors

    @property
    def notice_id(self) -> str:
        """The given id, or one derived from the message (the same text keeps its id)."""
        return self.id or hashlib.sha256(self.message.encode()).hexdigest()[:16]

    def active(self, now: datetime) -> bool:
        return self.expires is None or now < self.expires

    def to_json(self, first_published: str) -> dict[str, Any]:
        """The notice as notices.json holds it; ``first_published``: its ``created_at`` when
        channels.yaml gives no ``created``."""
        notice: dict[str, Any] = {
            "id": self.notice_id,
            "message": self.message,
            "level": self.level,
            "created_at": first_published if self.created is None else iso(self.created),
            "expired_at": iso(self.expires or NEVER),
        }
        if self.interval is not None:
            notice["interval"] = self.interval
        return notice


def iso(moment: datetime) -> str:
    """``2026-12-05T10:00:00+00:00``: what every ``datetime.fromisoformat`` reads (the ``Z``
    suffix only from Python 3.11)."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def active_notices(notices: Iterable[ChannelNotice], now: datetime) -> list[ChannelNotice]:
    return [n for n in notices if n.active(now)]


def encode_notices(
    notices: Iterable[ChannelNotice], now: datetime, published: bytes | None = None
) -> bytes | None:
    """The channel's ``notices.json``, or None when no notice is active (nothing to publish).

    ``published``: the channel's notices.json as it is, if any. A notice without ``created``
    keeps the ``created_at`` it was published with there (the time it was first published,
    which conda shows beside it); one new to it is created ``now``.
    """
    active = active_notices(notices, now)
    if not active:
        return None
    first = first_published(published)
    stamp = iso(now)
    return msgspec.json.encode(
        {"notices": [n.to_json(first.get(n.notice_id, stamp)) for n in active]}
    )


def first_published(published: bytes | None) -> dict[str, str]:
    """id -> ``created_at`` of the notices in a published notices.json; none when there is no
    such file or it is not one sitegen writes (its times are then not to be trusted)."""
    if published is None:
        return {}
    try:
        document = _PUBLISHED.decode(published)
    except msgspec.DecodeError:
        return {}
    return {n.id: n.created_at for n in document.notices if _aware_time(n.created_at)}


def _aware_time(text: str) -> bool:
    try:
        return datetime.fromisoformat(text).tzinfo is not None
    except ValueError:
        return False
