"""Approvals as data: one entry of an approvals file, and a channel's approval gate."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

from sitegen.conda.version import InvalidSpecError, parse_matchspec


@dataclass(frozen=True)
class Approval:
    channel: str
    spec: str
    by: str
    when: str  # ISO 8601, as written
    why: str
    expires: str | None = None  # a date (valid through it) or an ISO 8601 time
    with_dependencies: bool = False
    line: int = 0

    def expiry(self) -> float | None:
        """Seconds since the epoch from which the approval no longer holds; None: never."""
        return None if self.expires is None else parse_expiry(self.expires)

    def active(self, now: float) -> bool:
        expiry = self.expiry()
        return expiry is None or now < expiry

    @property
    def key(self) -> tuple[str, str]:
        return (self.channel, normalize_spec(self.spec))


@dataclass(frozen=True)
class ApprovalGate:
    """A channel's approval setting: where its candidates come from and its approvals."""

    source: str  # channel path of this site
    file: str  # the approvals file
    entries: tuple[Approval, ...]
    # (subdir, fn) of the candidates an active ``with_dependencies`` entry approves, as a run
    # found them when it started (set by :mod:`sitegen.sync.gates`): what they need must be
    # published beside them, or the run reports it unsatisfied.
    dependency_roots: tuple[tuple[str, str], ...] = ()


@lru_cache(maxsize=1 << 12)
def normalize_spec(spec: str) -> str:
    """The spec as conda reads it (``NumPy>=2``, ``numpy >= 2`` and ``numpy[version='>=2']``
    are one ``numpy >=2``): one approval however it is spelled, so that the spelling a revoke
    is given removes the entry an approve wrote in another. A spec that does not parse (never
    one of a file that reads) is compared with its runs of spaces made one."""
    try:
        return str(parse_matchspec(spec))
    except InvalidSpecError:
        return " ".join(spec.split())


def parse_expiry(text: str) -> float:
    """``2027-06-30`` (valid through that day, UTC) or an ISO 8601 time; ValueError if neither
    (or beyond the calendar, as the day after 9999-12-31 is)."""
    try:
        return _expiry(text)
    except OverflowError:
        raise ValueError(f"{text!r} is beyond the calendar") from None


def _expiry(text: str) -> float:
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return moment.timestamp()
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC).timestamp()
