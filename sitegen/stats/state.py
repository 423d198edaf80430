"""The private state of ``sitegen stats``: cursors and counts, in one file written atomically.

Cursors and counts live in the same document so that a run interrupted at any point either
counted a stretch of log and remembers having read it, or neither: nothing is lost or counted
twice. Client hashes and salts are in it only for days still open (see
:mod:`sitegen.stats.tally`). MessagePack, decoded straight into the tally's dicts: an
incremental run over a long history spends its time on the new lines, not on the old counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from sitegen.stats.logfiles import Cursor
from sitegen.stats.logline import SEP, join
from sitegen.stats.open_day import OpenDay
from sitegen.stats.tally import Tally

VERSION = 1


class SavedDay(msgspec.Struct):
    # (Older states also hold the pairs of client and tool: each client has one tool, so they
    # tell nothing its clients do not, and are left unread.)
    salt: bytes
    clients: list[bytes]
    ranges: list[tuple[bytes, str]]
    # (client, file, fetcher outcome) of Apache redirects whose 200 has not been read yet: the
    # two lines may fall on either side of the end of a log read (absent in older states).
    redirected: list[tuple[bytes, str, bytes]] = []


class StatsState(msgspec.Struct):
    version: int = VERSION
    cursors: list[Cursor] = []
    files: dict[str, dict[str, list[int]]] = {}
    refreshes: dict[str, dict[str, list[int]]] = {}
    installers: dict[str, dict[str, list[int]]] = {}  # absent in states from before
    missing: dict[str, dict[str, int]] = {}
    # channel|subdir|outcome (channel|outcome in older states: see _passive_by_subdir)
    passive: dict[str, dict[str, int]] = {}
    tools: dict[str, dict[str, int]] = {}
    days: dict[str, list[int]] = {}
    all_time: dict[str, list[int]] = {}
    skipped: dict[str, int] = {}
    open_days: dict[str, SavedDay] = {}
    # absent in older states: their counts of channels private back then are known only as
    # long as the run ledger still notes them
    private: dict[str, str] = {}
    capped: list[str] = []  # absent in older states


class StateError(Exception):
    """The state file exists but cannot be used."""


_DECODER = msgspec.msgpack.Decoder(StatsState)
_ENCODER = msgspec.msgpack.Encoder()


def _non_empty(table: dict[str, dict]) -> dict[str, dict]:
    return {period: rows for period, rows in table.items() if rows}


# Counts are kept as 64-bit integers: a hostile log (a million lines each claiming a petabyte)
# could add up past that; such a count is held at the largest one.
_MAX_COUNT = 2**63 - 1
# The tables of a tally that hold counts.
_COUNTED = ("files", "refreshes", "installers", "missing", "passive", "tools", "days", "all_time")


def _clamped(value: Any) -> Any:
    if type(value) is int:
        return min(value, _MAX_COUNT)
    if type(value) is list:
        return [_clamped(v) for v in value]
    if type(value) is dict:
        return {k: _clamped(v) for k, v in value.items()}
    return value


def encode_state(tally: Tally, cursors: list[Cursor]) -> bytes:
    try:
        return _encode_state(tally, cursors)
    except OverflowError:
        for table in _COUNTED:
            setattr(tally, table, _clamped(getattr(tally, table)))
        return _encode_state(tally, cursors)


def _encode_state(tally: Tally, cursors: list[Cursor]) -> bytes:
    state = StatsState(
        cursors=cursors,
        files=_non_empty(tally.files),
        refreshes=_non_empty(tally.refreshes),
        installers=_non_empty(tally.installers),
        missing=_non_empty(tally.missing),
        passive=_non_empty(tally.passive),
        tools=_non_empty(tally.tools),
        days=tally.days,
        all_time=tally.all_time,
        skipped=tally.skipped,
        private=tally.private,
        capped=sorted(tally.capped),
        open_days={
            day: SavedDay(
                salt=opened.salt,
                clients=list(opened.clients),
                ranges=list(opened.ranges),
                redirected=[(*pair, told) for pair, told in opened.redirected.items()],
            )
            for day, opened in tally.open_days.items()
        },
    )
    return _ENCODER.encode(state)


def decode_state(data: bytes) -> tuple[Tally, list[Cursor]]:
    try:
        state = _DECODER.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise StateError(f"unreadable: {exc}") from None
    if state.version != VERSION:
        raise StateError(f"version {state.version}, expected {VERSION}")
    state.passive = _passive_by_subdir(state.passive)
    _check_shapes(state)
    tally = Tally(
        files=state.files,
        refreshes=state.refreshes,
        installers=state.installers,
        missing=state.missing,
        passive=state.passive,
        tools=state.tools,
        days=state.days,
        all_time=state.all_time,
        skipped=state.skipped,
        private=state.private,
        capped=set(state.capped),
        open_days={
            day: OpenDay(
                salt=saved.salt,
                clients=set(saved.clients),
                ranges=set(saved.ranges),
                redirected={(client, key): told for client, key, told in saved.redirected},
            )
            for day, saved in state.open_days.items()
        },
    )
    return tally, state.cursors


def _passive_by_subdir(passive: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """The fetcher's outcomes of an older state, counted by channel only, as those of no
    subdir (``channel||outcome``): which subdir they were of is not known, so no subdir's
    removal takes them (a channel's does)."""
    return {
        period: {
            join(key.split(SEP)[0], "", key.split(SEP)[1]) if key.count(SEP) == 1 else key: count
            for key, count in rows.items()
        }
        for period, rows in passive.items()
    }


def load_state(path: Path) -> tuple[Tally, list[Cursor]]:
    """The saved counts and cursors; empty ones when there is no state yet."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Tally(), []
    return decode_state(data)


# Per table: how many parts its keys have (see logline.join) and how many counts a row has
# (0: a single count). A state that is msgpack of the right types can still be damaged.
_SHAPES = {
    "files": (3, 3),
    "refreshes": (3, 3),
    "installers": (2, 3),
    "missing": (3, 0),
    "passive": (3, 0),
    "tools": (2, 0),
}


def _check_shapes(state: StatsState) -> None:
    # At C speed (a state holds millions of rows, read on every incremental run): the keys of
    # a table joined hold exactly their separators plus the joins, the rows one length.
    tables = [(getattr(state, t), parts, counts) for t, (parts, counts) in _SHAPES.items()]
    tables += [({"": state.all_time}, 3, 2), ({"": state.days}, 1, 4)]
    for periods, parts, counts in tables:
        for rows in periods.values():
            if not rows:
                continue
            separators = SEP.join(rows).count(SEP)
            shapes = set(map(len, rows.values())) if counts else {0}
            if separators != len(rows) * parts - 1 or shapes != {counts}:
                raise StateError("damaged: a table's keys or rows are not as saved")
