"""Which 404s of package files the counts keep: the most requested files of each period, and
the requests of the others as one count per channel.

Anyone can ask for a package file that is not there, under any name of the right shape: kept
file by file, such requests would grow the state and ``stats.json`` by a row each, for good.
So a period (a UTC day, or a month once its days are rolled up) keeps its :data:`KEEP` most
requested files, and ``stats.json`` lists as many; the requests of the files cut go on
counting in their channel's row of :func:`others`, so that the totals of 404s stay whole. While
a count reads a day, its files are cut back whenever they reach :data:`HELD` (:func:`cut_at`):
one day's flood holds no more than that in memory, besides a row of :func:`others` per channel.
A file cut and asked for again counts from there on.

The versions of the clients' tools are cut the same way: a user agent names any version it
likes. The clients of a version cut count under its tool with no version
(:func:`versionless`), so that each tool's count stays whole.
"""

from __future__ import annotations

from collections.abc import Callable

from sitegen.stats.logline import SEP, join, split

KEEP = 1000  # missing package files per period, and in stats.json
HELD = 2 * KEEP  # a day's rows during a count, at most


def others(channel: str) -> str:
    """The key of the requests of ``channel``'s missing files that were cut: no file's key
    (a file's subdir and name are never empty)."""
    return join(channel, "", "")


def is_file(key: str) -> bool:
    """Whether a key of the 404s is a file's, not a channel's :func:`others`."""
    return not key.endswith(SEP + SEP)


def versionless(key: str) -> str:
    """Where the clients of a cut version of a tool (``tool|version``) count: ``tool|`` (a
    named tool's version is never empty; ``other|``, of the clients of no tool, is its own)."""
    return join(split(key)[0], "")


def cut_at(rows: dict[str, int]) -> int:
    """How many rows a day's 404s ``rows`` hold once their files reach :data:`HELD`, when only
    files are added: the rows of :func:`others` come on top. Counted by the rows alone, a
    site of :data:`KEEP` channels or more would hold as many after each cut, and cut again
    (sorting them all) at each line."""
    return HELD + sum(1 for key in rows if not is_file(key))


def _missing_rest(key: str) -> str:
    return others(split(key)[0])


def cut(rows: dict[str, int], rest: Callable[[str], str] = _missing_rest) -> None:
    """Keep the :data:`KEEP` highest counts of a period's ``rows`` (in place); the count of
    each other row is added to the row ``rest`` names for it (which is never cut): by default
    a missing file's channel's :func:`others`."""
    if len(rows) <= KEEP:
        return
    ranked = sorted((item for item in rows.items() if rest(item[0]) != item[0]), key=_by_requests)
    for key, count in ranked[KEEP:]:
        del rows[key]
        into = rest(key)
        rows[into] = rows.get(into, 0) + count


def _by_requests(item: tuple[str, int]) -> tuple[int, str]:
    return (-item[1], item[0])
