"""Per-mirror cron schedules: which mirrors are due, given when each last completed.

A single frequent cron line or systemd timer running ``sitegen mirror --due`` then honours each
mirror's own frequency, as mirror managers with a per-mirror "frequency" do.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from croniter import croniter

# Mirrors without a schedule run once a day.
DEFAULT_SCHEDULE = "@daily"

# The names cron reads for numbers, per field (minute, hour, day of month, month, day of week).
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_NAMES: tuple[dict[str, int], ...] = (
    {},
    {},
    {},
    {name: number for number, name in enumerate(_MONTHS, 1)},
    {name: number for number, name in enumerate(_WEEKDAYS)},
)


def is_valid(expression: str) -> bool:
    """A cron expression that parses and fires (``0 0 31 2 *`` parses, but February never
    has a 31st): five fields or an ``@`` keyword, as cron reads them."""
    fields = expression.split()
    if fields and fields[0].startswith("@"):
        if len(fields) != 1:
            return False
    elif len(fields) != 5:
        # croniter also reads a sixth field as seconds and a seventh as the year: a
        # seconds-first expression (``0 0 2 * * *``, daily at 02:00 where it is written so)
        # would silently fire at other times than meant.
        return False
    if backwards_range(expression) is not None:
        return False
    # croniter's ``R`` (a random value, drawn anew on each reading: the schedule would be
    # another each time --due asks) and ``H`` (hashed): no cron reads either. No month or day
    # name starts with either letter.
    if any(item[:1] in ("h", "r") for field in fields for item in field.lower().split(",")):
        return False
    # Its CroniterError is a ValueError (and is exported from the package only since croniter 6).
    try:
        _times(expression, datetime.fromtimestamp(0.0)).get_next(float)
    except (ValueError, OverflowError):
        return False
    return True


def backwards_range(expression: str) -> str | None:
    """The first range of a five-field expression written high to low (``30-10``,
    ``fri-mon``): croniter reads it wrapped around (30 to 59, then 0 to 10), cron refuses it."""
    fields = expression.split()
    if len(fields) != 5:
        return None
    for names, field in zip(_NAMES, fields, strict=True):
        for item in field.split(","):
            low, dash, high = item.split("/")[0].partition("-")
            start, stop = _number(low, names), _number(high, names)
            if dash and start is not None and stop is not None and start > stop:
                return item
    return None


def _number(text: str, names: dict[str, int]) -> int | None:
    """A field's value as a number (a name read as cron reads it), or None for another form
    (``*``, ``L``), which croniter judges."""
    # No field goes past two digits: a longer number is left for croniter to refuse (int()
    # refuses one of thousands of digits with a ValueError of its own).
    if text.isascii() and text.isdigit() and len(text) <= 9:
        return int(text)
    return names.get(text.lower())


def next_due(expression: str, last_completed: float) -> float:
    """The first time the schedule fires after the last completed run (epoch seconds). The
    expression is read in the machine's local time (``TZ``), as cron and systemd timers read
    theirs: ``0 2 * * *`` is 02:00 where the mirror runs, also across daylight saving."""
    times = _times(expression, datetime.fromtimestamp(last_completed))  # local wall-clock time
    due = times.get_next(datetime).timestamp()
    # In the hour that comes twice when the clocks go back, the wall-clock times after a run
    # in the second one are read as the first one's (fold 0), already past: those fired
    # before the run, so the schedule goes on to the first time still to come.
    while due <= last_completed:
        due = times.get_next(datetime).timestamp()
    return due


def is_due(expression: str | None, last_completed: float | None, now: float) -> bool:
    """A mirror that never completed is due; otherwise when its schedule fired since then."""
    if last_completed is None:
        return True
    return next_due(expression or DEFAULT_SCHEDULE, last_completed) <= now


def _times(expression: str, start: datetime) -> croniter:
    """The times ``expression`` fires after ``start``. Day of month and day of week both
    restricted fire on either, except where one of them starts with ``*`` (``*/2``): then
    both must match, as Vixie cron and cronie read it (croniter would take either)."""
    # On use: it costs ~0.1 s at start-up.
    from croniter import croniter

    return croniter(expression, start, implement_cron_bug=True)
