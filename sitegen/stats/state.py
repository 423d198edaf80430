"""The private state of ``sitegen stats``: cursors and counts, in one file written atomically.

Cursors and counts live in the same document so that a run interrupted at any point either
counted a stretch of log and remembers having read it, or neither: nothing is lost or counted
twice. Client hashes and salts are in it only for days still open (see
:mod:`sitegen.stats.tally`).
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from sitegen.stats.logfiles import Cursor
from sitegen.stats.tally import OpenDay, Tally

VERSION = 1


class SavedDay(msgspec.Struct):
    salt: str  # hex
    clients: list[str]
    tool_clients: list[tuple[str, str, str]]
    ranges: list[tuple[str, str, str, str]]


class StatsState(msgspec.Struct):
    version: int = VERSION
    cursors: list[Cursor] = []
    # Rows: the key's fields, then the counts (see Tally).
    files: list[tuple[str, str, str, str, int, int, int]] = []
    refreshes: list[tuple[str, str, str, str, int, int, int]] = []
    missing: list[tuple[str, str, str, str, int]] = []
    passive: list[tuple[str, str, str, int]] = []
    tools: list[tuple[str, str, str, int]] = []
    days: dict[str, tuple[int, int]] = {}
    skipped: dict[str, int] = {}
    open_days: dict[str, SavedDay] = {}


class StateError(Exception):
    """The state file exists but cannot be used."""


_DECODER = msgspec.json.Decoder(StatsState)


def encode_state(tally: Tally, cursors: list[Cursor]) -> bytes:
    state = StatsState(
        cursors=cursors,
        files=[(*k, *v) for k, v in tally.files.items()],  # type: ignore[misc]
        refreshes=[(*k, *v) for k, v in tally.refreshes.items()],  # type: ignore[misc]
        missing=[(*k, v) for k, v in tally.missing.items()],
        passive=[(*k, v) for k, v in tally.passive.items()],
        tools=[(*k, v) for k, v in tally.tools.items()],
        days={k: (v[0], v[1]) for k, v in tally.days.items()},
        skipped=dict(tally.skipped),
        open_days={
            day: SavedDay(
                salt=opened.salt.hex(),
                clients=[c.hex() for c in opened.clients],
                tool_clients=[(c.hex(), t, v) for c, t, v in opened.tool_clients],
                ranges=[(c.hex(), ch, s, f) for c, ch, s, f in opened.ranges],
            )
            for day, opened in tally.open_days.items()
        },
    )
    return msgspec.json.encode(state)


def decode_state(data: bytes) -> tuple[Tally, list[Cursor]]:
    try:
        state = _DECODER.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise StateError(f"unreadable: {exc}") from None
    if state.version != VERSION:
        raise StateError(f"version {state.version}, expected {VERSION}")
    try:
        return _tally_of(state), list(state.cursors)
    except ValueError as exc:  # a salt or hash that is not hex
        raise StateError(f"unreadable: {exc}") from None


def _tally_of(state: StatsState) -> Tally:
    return Tally(
        files={tuple(r[:4]): list(r[4:]) for r in state.files},  # type: ignore[misc]
        refreshes={tuple(r[:4]): list(r[4:]) for r in state.refreshes},  # type: ignore[misc]
        missing={tuple(r[:4]): r[4] for r in state.missing},  # type: ignore[misc]
        passive={tuple(r[:3]): r[3] for r in state.passive},  # type: ignore[misc]
        tools={tuple(r[:3]): r[3] for r in state.tools},  # type: ignore[misc]
        days={k: list(v) for k, v in state.days.items()},
        skipped=dict(state.skipped),
        open_days={
            day: OpenDay(
                salt=bytes.fromhex(saved.salt),
                clients={bytes.fromhex(c) for c in saved.clients},
                tool_clients={(bytes.fromhex(c), t, v) for c, t, v in saved.tool_clients},
                ranges={(bytes.fromhex(c), ch, s, f) for c, ch, s, f in saved.ranges},
            )
            for day, saved in state.open_days.items()
        },
    )


def load_state(path: Path) -> tuple[Tally, list[Cursor]]:
    """The saved counts and cursors; empty ones when there is no state yet."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Tally(), []
    return decode_state(data)
