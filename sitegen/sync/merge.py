"""Merge the kept records of a channel's mirrors into what one channel subdir publishes.

Pure: the published state is read beforehand (`load_previous`) and passed in. The first mirror
in config order that offers a file name wins; a different file under the same name from a later
mirror is reported as a conflict of that mirror. The deletion guard holds back a merge that
would drop too many published packages. A record no shard can hold is refused here, alone
(upstream's JSON carries integers of any size, a shard's msgpack 64 bits).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sitegen.conda.records import Record, Repodata, RepodataError
from sitegen.conda.shards import REASON_UNSHARDABLE, unshardable
from sitegen.layout import REPODATA
from sitegen.sync.prune import deletion_guard
from sitegen.sync.repodata_map import read_published
from sitegen.sync.subdir_metadata import SubdirMetadata

MERGED = "merged"
HELD = "held"
FAILED = "failed"
FROZEN = "frozen"  # the channel is frozen: it keeps its previous state, whatever upstream did

log = logging.getLogger("sitegen")


@dataclass(frozen=True)
class Feed:
    """One mirror's contribution to a channel subdir."""

    mirror: str
    repodata: Repodata | None  # None: not served upstream
    kept: Mapping[str, Record]  # fn -> record, after filters and closure
    # CEP-12: fn -> run_exports upstream serves (sitegen.conda.run_exports); None: none served
    run_exports: Mapping[str, bytes] | None = None


@dataclass(frozen=True)
class MergedSubdir:
    """What one channel subdir should publish, or why it keeps its previous state."""

    channel: str  # channel path
    subdir: str
    status: str  # MERGED, HELD (deletion guard) or FAILED (a mirror could not be read)
    previous: Repodata | None  # the metadata published now, if any
    meta: SubdirMetadata | None = None  # None unless MERGED
    errors: tuple[str, ...] = ()
    conflicts: tuple[tuple[str, str], ...] = ()  # (losing mirror, message)
    refused: tuple[tuple[str, str, str], ...] = ()  # (mirror, file name, reason)

    @property
    def key(self) -> tuple[str, str]:
        return (self.channel, self.subdir)


@dataclass(frozen=True)
class DeletionGuard:
    max_fraction: float
    force: bool = False  # --force-delete


def load_previous(
    directory: Path, subdir: str, feeds: Sequence[Feed] = (), map_path: Path | None = None
) -> Repodata | None:
    """The metadata a subdir directory publishes now; None when absent or unreadable.

    A published record that a feed offers unchanged is read as the feed's record (see
    load_published): the run then holds one copy of it. ``map_path``: where the last run
    kept the parts of the file, to read it a part at a time (see sitegen.sync.repodata_map).
    """
    # The first feed's record wins, as in merge. One dict, not a ChainMap: it is asked once per
    # published record (800,000 at conda-forge scale), and a ChainMap lookup runs in Python.
    known: Mapping[str, Record] = feeds[0].kept if len(feeds) == 1 else {}
    if len(feeds) > 1:
        first_wins: dict[str, Record] = {}
        for feed in reversed(feeds):
            first_wins.update(feed.kept)
        known = first_wins
    try:
        return read_published(directory / REPODATA, subdir, known, map_path)
    except (OSError, RepodataError):
        return None


def merge_subdir(
    channel: str,
    subdir: str,
    feeds: Sequence[Feed],
    broken: Sequence[str],
    previous: Repodata | None,
    guard: DeletionGuard,
) -> MergedSubdir | None:
    """Merge the feeds of one channel subdir, in config order.

    ``broken``: the feeding mirrors that could not be read; the subdir then keeps its previous
    state. None when there is nothing to publish and nothing was published before (no directory
    to create), except for noarch, which every channel has.
    """
    if broken:
        why = f"not updated: mirror {', '.join(broken)} could not be read; kept the previous state"
        return MergedSubdir(channel, subdir, FAILED, previous, errors=(why,))
    records: dict[str, Record] = {}
    conflicts: list[tuple[str, str]] = []
    info: dict = {}
    extra: dict = {}
    removed: list[str] = []
    present_upstream = False
    for feed in feeds:
        if feed.repodata is None:
            continue
        present_upstream = True
        if not info:
            info, extra = dict(feed.repodata.info), dict(feed.repodata.extra)
        removed.extend(feed.repodata.removed)
        _add(records, conflicts, subdir, feed)
    if not present_upstream and subdir != "noarch" and previous is None:
        return None
    extra.setdefault("repodata_version", 1)
    refused = _refuse_unshardable(records, previous)
    meta = SubdirMetadata(
        subdir, records, info, removed, extra, run_exports=_run_exports(records, feeds)
    )
    lost = tuple(conflicts)
    if previous is not None and not guard.force:
        why = deletion_guard(previous.records, records, guard.max_fraction)
        if why:
            return MergedSubdir(channel, subdir, HELD, previous, None, (why,), lost, refused)
    return MergedSubdir(channel, subdir, MERGED, previous, meta, (), lost, refused)


def _run_exports(records: Mapping[str, Record], feeds: Sequence[Feed]) -> dict[str, bytes] | None:
    """Each record's run_exports, as the mirror it came from serves them; None when no mirror
    of the subdir serves a run_exports.json."""
    served = {feed.mirror: feed.run_exports for feed in feeds if feed.run_exports is not None}
    if not served:
        return None
    chosen = {}
    for fn, record in records.items():
        entries = served.get(record.origin)
        entry = entries.get(fn) if entries is not None else None
        if entry is not None:
            chosen[fn] = entry
    return chosen


def _refuse_unshardable(
    records: dict[str, Record], previous: Repodata | None
) -> tuple[tuple[str, str, str], ...]:
    """Take the records no shard can hold out of ``records``: (mirror, file name, reason) for
    each. Only records not published as they are now are checked (a published one is read as
    its feed's record itself, see load_previous, and was sharded): on most runs a few."""
    before = previous.records if previous is not None else {}
    fresh = [record for fn, record in records.items() if before.get(fn) is not record]
    refused = []
    for record in unshardable(fresh):
        del records[record.fn]
        log.warning(
            "%s/%s: skipped %s: %s", record.origin, record.subdir, record.fn, REASON_UNSHARDABLE
        )
        refused.append((record.origin, record.fn, REASON_UNSHARDABLE))
    return tuple(refused)


def _add(
    records: dict[str, Record], conflicts: list[tuple[str, str]], subdir: str, feed: Feed
) -> None:
    for fn, record in feed.kept.items():
        first = records.get(fn)
        if first is None:
            records[fn] = record
        elif not first.same_file(record):
            conflicts.append(
                (
                    feed.mirror,
                    f"{subdir}/{fn}: differs from the copy offered by {first.origin};"
                    f" kept {first.origin}'s",
                )
            )
