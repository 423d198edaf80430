"""Which versions an OSV ``affected`` entry names, looked up by one binary search.

An entry names versions by listing them and by ranges of events (see
:class:`sitegen.filters.osv.VersionRange`), and a feed's entry may hold hundreds of thousands of
either within the file size cap. Checking a version against each in turn would make every
record of the package, and every version on its page, cost as much as the whole entry. Instead,
the distinct versions the entry mentions (listed, or as an event) cut conda's version order into
cells: each of those versions itself, and the stretch strictly between two neighbours. A listed
version names one cell, and a range is constant over every cell (it only compares a version
with its events), so which cells the entry names is worked out once, in a pass over its events;
then a version is looked up by finding its cell. The answers are those of walking each range
as the schema describes, and of comparing each listed version for conda equality.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from itertools import accumulate
from operator import itemgetter
from typing import TYPE_CHECKING

from sitegen.conda.version import parse_version

if TYPE_CHECKING:
    from rattler import Version

INTRODUCED = "introduced"
FIXED = "fixed"
LAST_AFFECTED = "last_affected"
LIMIT = "limit"

# Events as a range holds them: (kind, version text), in the file's order.
Events = Sequence[tuple[str, str]]


class VersionIndex:
    """The versions named by ``listed`` and by ``ranges`` (each its events; ``GIT`` ranges name
    commits, not versions, and are not given)."""

    def __init__(self, listed: Iterable[str], ranges: Iterable[Events]) -> None:
        listed = tuple(listed)
        ranges = tuple(ranges)
        self._points, point_of = _points(listed, ranges)
        # Runs of named cells are added up as +1 where a run starts and -1 where it ends.
        cells = 2 * len(self._points) + 1
        changes = [0] * (cells + 1)
        for start, end in _named_cells(listed, ranges, point_of, cells):
            changes[start] += 1
            changes[end] -= 1
        self._named = bytes(count > 0 for count in accumulate(changes[:cells]))

    def contains(self, version: str) -> bool:
        return bool(self._named[self._cell(parse_version(version))])

    def among(self, versions: Sequence[Version]) -> list[tuple[int, int]]:
        """Which of these versions (parsed, in conda order) it names, as runs of their
        positions (start, end): two binary searches among them per run of named cells, or one
        among the points per version where the versions are fewer. A package page asks once
        per entry for all its versions, rather than once per version and entry."""
        if len(self._runs) > len(versions):
            named = [bool(self._named[self._cell(v)]) for v in versions]
            return [m.span() for m in re.finditer(b"\x01+", bytes(named))]
        spans = [
            (self._first_in(start, versions), self._first_in(end, versions))
            for start, end in self._runs
        ]
        return [(start, end) for start, end in spans if start < end]

    def _cell(self, parsed: Version) -> int:
        return _cell_of(self._points, parsed)

    @cached_property
    def _runs(self) -> list[tuple[int, int]]:
        """The runs of named cells (start, end)."""
        return [m.span() for m in re.finditer(b"\x01+", self._named)]

    def _first_in(self, cell: int, versions: Sequence[Version]) -> int:
        """The position of the first of these versions (in conda order) in this cell or above."""
        if cell == len(self._named):
            return len(versions)
        i, on_point = divmod(cell, 2)
        if on_point:
            return bisect_left(versions, self._points[i])
        return bisect_right(versions, self._points[i - 1]) if i else 0


class FirstNaming:
    """Of several groups of versions named alike (each its ``listed`` and ``ranges``, as
    :class:`VersionIndex` takes them), the position of the first naming a version, looked up
    by one binary search: however many groups a package has (the entries of a flood of
    advisories), a version costs one look-up rather than one per group."""

    def __init__(self, groups: Iterable[tuple[Sequence[str], Sequence[Events]]]) -> None:
        groups = tuple(groups)
        self._points, point_of = _points(
            (text for listed, _ranges in groups for text in listed),
            (events for _listed, ranges in groups for events in ranges),
        )
        cells = 2 * len(self._points) + 1
        first = [-1] * cells
        # The next cell at or above each that no group has named yet (path-halved), so each
        # cell is given a group once, whatever the runs of the later groups cover.
        unnamed = list(range(cells + 1))

        def next_unnamed(cell: int) -> int:
            while unnamed[cell] != cell:
                unnamed[cell] = unnamed[unnamed[cell]]
                cell = unnamed[cell]
            return cell

        for position, (listed, ranges) in enumerate(groups):
            for start, end in _named_cells(listed, ranges, point_of, cells):
                cell = next_unnamed(start)
                while cell < end:
                    first[cell] = position
                    unnamed[cell] = cell + 1
                    cell = next_unnamed(cell + 1)
        self._first = first

    def first(self, version: str) -> int | None:
        """The position of the first group naming ``version``; None when none does."""
        position = self._first[_cell_of(self._points, parse_version(version))]
        return None if position < 0 else position


def _cell_of(points: Sequence[Version], parsed: Version) -> int:
    i = bisect_left(points, parsed)
    on_point = i < len(points) and points[i] == parsed
    return 2 * i + 1 if on_point else 2 * i


def _points(
    listed: Iterable[str], ranges: Iterable[Events]
) -> tuple[list[Version], dict[str, int]]:
    """The distinct versions of these (conda-equal texts share one) in conda order, and where
    each text sits among them. Cell 2i is then the stretch just below point i, cell 2i + 1 the
    point itself; the last cell is above every point."""
    texts = {*listed}
    texts.update(text for events in ranges for kind, text in events if (kind, text) != (LIMIT, "*"))
    points: list[Version] = []
    point_of: dict[str, int] = {}
    for version, text in sorted(((parse_version(t), t) for t in texts), key=itemgetter(0)):
        if not points or points[-1] < version:
            points.append(version)
        point_of[text] = len(points) - 1
    return points, point_of


def _named_cells(
    listed: Iterable[str], ranges: Iterable[Events], point_of: Mapping[str, int], cells: int
) -> Iterator[tuple[int, int]]:
    """The runs of cells (start, end) that listed versions and ranges name, overlapping."""
    for text in listed:
        cell = 2 * point_of[text] + 1
        yield cell, cell + 1
    for events in ranges:
        yield from _range_cells(events, point_of, cells)


def _range_cells(
    events: Events, point_of: Mapping[str, int], cells: int
) -> Iterator[tuple[int, int]]:
    """The runs of cells (start, end) one range names, by the schema's evaluation: a version
    at or above the highest ``limit`` (other than ``*``) is outside; otherwise the events but
    limits are walked in version order ("0" first, ties in the file's order), and the last
    that applies to the version decides: ``introduced`` at or below it (``0``: any) makes it
    affected, ``fixed`` at or below it and ``last_affected`` below it make it not. None
    applying: not affected."""
    limits = [point_of[text] for kind, text in events if kind == LIMIT and text != "*"]
    below_limit = 2 * max(limits) + 1 if limits else cells
    walked = [(kind, text) for kind, text in events if kind != LIMIT]
    zero = [kind for kind, text in walked if text == "0"]  # walked before every other event
    ordered = sorted(
        ((point_of[text], kind) for kind, text in walked if text != "0"), key=itemgetter(0)
    )
    # Whether "0" events apply depends on where a version stands against Version("0"), which
    # is a point then; so every run below lies wholly below it, on it, or above it.
    zero_point = point_of["0"] if zero else None
    zero_last = [_last_applying(zero, side) for side in (-1, 0, 1)]

    def runs() -> Iterator[tuple[int, int, str | None]]:
        """(start, end, the last of the ordered events applying there) over every cell."""
        breaks = {point for point, _kind in ordered}
        if zero_point is not None:
            breaks.add(zero_point)
        last: str | None = None  # of the events at points below the current one: all apply
        start, position = 0, 0
        for point in sorted(breaks):
            yield start, 2 * point + 1, last
            on_point = last
            while position < len(ordered) and ordered[position][0] == point:
                kind = ordered[position][1]
                if kind != LAST_AFFECTED:  # applies to the version equal to its own
                    on_point = kind
                last = kind
                position += 1
            yield 2 * point + 1, 2 * point + 2, on_point
            start = 2 * point + 2
        yield start, cells, last

    for start, end, last in runs():
        if last is None:
            side = 0 if zero_point is None else _side(start, zero_point)
            last = zero_last[side + 1]
        end = min(end, below_limit)
        if last == INTRODUCED and start < end:
            yield start, end


def _last_applying(kinds: Sequence[str], side: int) -> str | None:
    """The last of these "0" events applying to a version below (-1), equal to (0) or above
    (1) Version("0"): an ``introduced`` "0" applies to any."""
    last = None
    for kind in kinds:
        if (
            kind == INTRODUCED
            or (kind == FIXED and side >= 0)
            or (kind == LAST_AFFECTED and side > 0)
        ):
            last = kind
    return last


def _side(cell: int, point: int) -> int:
    return (cell > 2 * point + 1) - (cell < 2 * point + 1)
