"""``sitegen stats``: read what is new in the access logs, count it, publish ``stats.json``.

One run at a time per site (an advisory lock in the state directory): two runs reading the
same logs would count their lines twice. The cursors and counts are saved together, atomically,
before ``stats.json`` is written from them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sitegen import layout
from sitegen.config import SiteConfig
from sitegen.config.site_settings import StatsSettings
from sitegen.stats.counter import TOO_LONG, line_counter
from sitegen.stats.logfiles import Cursor, ReadReport, read_logs
from sitegen.stats.report import StatsDoc, build_doc, encode_doc
from sitegen.stats.state import StateError, encode_state, load_state
from sitegen.stats.tally import Tally
from sitegen.store.lock import SiteLock, SiteLocked
from sitegen.store.site import Site
from sitegen.sync.history import History, private_through

log = logging.getLogger("sitegen.stats")


class StatsError(Exception):
    """``sitegen stats`` cannot run (not configured, unusable state)."""


@dataclass
class StatsResult:
    files: int = 0  # log files read or checked
    bytes_read: int = 0  # new bytes read this run
    lines: int = 0  # complete lines read this run
    errors: int = 0  # files that could not be read (whole or in part)
    skipped: dict[str, int] = field(default_factory=dict)  # all time, by reason
    downloads: int = 0  # all time (within the counts kept)
    installer_downloads: int = 0  # of the installer folders' files, all time


def passive_channel_paths(config: SiteConfig) -> list[str]:
    return [c.path for c in config.channels if any(m.mode == "passive" for m in c.mirrors)]


def stats_lock(site: Site, *, create: bool = True) -> SiteLock:
    """The statistics' own lock: whoever changes their state holds it."""
    return SiteLock(layout.stats_dir(site.root), create=create)


def note_private(site: Site, config: SiteConfig, tally: Tally, today: date) -> bool:
    """Mark the channels private now, and those the run ledger notes private, as private
    through their last such day (today for the first, as are the lines just counted, or the
    newest day counted if later); whether a mark moved. The marks outlast the ledger's
    retention and the channel itself. StatsError when the ledger, or a record of it, cannot
    be read: it may be the one that notes a channel private."""
    now = today.isoformat()
    newest = max((day for day in tally.days if len(day) == 10), default=now)
    moved = tally.note_private({c.path: max(now, newest) for c in config.channels if c.private})
    try:
        runs = History(site).runs(strict=True)
    except OSError as exc:
        raise StatsError(
            f"the run ledger cannot be read ({exc}), so which channels were private is not"
            " known; nothing was counted"
        ) from None
    return tally.note_private(private_through(runs, now)) or moved


def keep_private_marks(config: SiteConfig) -> bool:
    """Without ``stats:`` configured: mark in the statistics' state the channels private now or
    noted so by the run ledger (:func:`note_private`), before the history retention removes
    the records that say so; the logs may outlast them and be counted once ``stats:`` is
    configured. Whether the marks are kept (nothing to mark counts as kept); the records stay
    past the retention otherwise."""
    site = Site(config.output)
    today = datetime.now(UTC).date()
    try:
        runs = History(site).runs(strict=True)
        if not any(c.private for c in config.channels) and not private_through(
            runs, today.isoformat()
        ):
            return True  # nothing was ever noted private: no state made for nothing
        state_path = layout.stats_state_path(site.root)
        with stats_lock(site):
            tally, cursors = load_state(state_path)
            if note_private(site, config, tally, today):
                site.write_bytes(state_path, encode_state(tally, cursors))
    except (StatsError, StateError, SiteLocked, OSError) as exc:
        log.warning("stats: the private channels' marks could not be kept: %s", exc)
        return False
    return True


def warn_unread(read: ReadReport) -> None:
    """Name each log file that could not be read (in full), and why."""
    for path, reason in read.failed:
        log.warning("stats: %s could not be read in full: %s", path, reason)


def _doc(tally: Tally, config: SiteConfig, today: date) -> StatsDoc:
    private = [c.path for c in config.channels if c.private]
    channels = [c.path for c in config.channels]
    installers = [i.path for i in config.installers]
    return build_doc(tally, channels, passive_channel_paths(config), today, private, installers)


def forget_counts(config: SiteConfig, channel: str, subdirs: Collection[str] | None) -> None:
    """Drop the counts of ``channel`` or of these ``subdirs`` of it (``sitegen remove``, see
    :meth:`~sitegen.stats.tally.Tally.forget`) from the state, with those of the lines the
    logs hold so far (counted first, while ``stats:`` is configured), then write
    ``stats.json`` again from what is left, when there is one; the caller holds
    :func:`stats_lock`. Done again, it finishes what a crash between the two writes left. A
    state that cannot be read takes ``stats.json`` with it (no page shows counts it could not
    rid of the channel; ``sitegen stats`` refuses that state until it is moved away)."""
    _forget(config, lambda tally: tally.forget(channel, subdirs))


def forget_installer_counts(config: SiteConfig, folder: str) -> None:
    """Drop the counts of the installer ``folder`` (``sitegen remove FOLDER``) as
    :func:`forget_counts` drops a channel's."""
    _forget(config, lambda tally: tally.forget_installers(folder))


def _forget(config: SiteConfig, forget: Callable[[Tally], bool]) -> None:
    site = Site(config.output)
    state_path = layout.stats_state_path(site.root)
    try:
        tally, cursors = load_state(state_path)
    except StateError as exc:
        log.warning(
            "%s: %s; %s goes, the pages show no statistics", state_path, exc, layout.STATS_JSON
        )
        site.remove(site.path(layout.STATS_JSON))
        return
    today = datetime.now(UTC).date()
    counted = False
    if config.stats is not None:
        # The lines written before the removal are counted now, to be forgotten with the
        # rest: read by a later count, they would count for the channel still configured (a
        # subdir removed) or for one configured again under the path.
        try:
            cursors, read, _lines = _count(site, config, config.stats, tally, cursors, today)
            counted = True
        except StatsError as exc:
            log.warning("stats: %s; what was served before the removal may count later", exc)
            tally, cursors = load_state(state_path)
        else:
            warn_unread(read)
    forgot = forget(tally)
    try:
        noted = counted or note_private(site, config, tally, today)
    except StatsError as exc:  # the marks kept so far still hold; the next count adds these
        log.warning("stats: %s", exc)
        noted = False
    if noted or forgot:
        site.write_bytes(state_path, encode_state(tally, cursors))
    if counted or site.path(layout.STATS_JSON).exists():
        site.write_bytes(site.path(layout.STATS_JSON), encode_doc(_doc(tally, config, today)))


def holds_counts(config: SiteConfig, channel: str, subdirs: Collection[str] | None) -> bool:
    """Whether :func:`forget_counts` would drop counts of ``channel`` (or these ``subdirs``):
    what ``sitegen remove --dry-run`` tells. A state that cannot be read counts as holding
    some (the removal would take ``stats.json`` with it)."""
    return _holds(config, lambda tally: tally.forget(channel, subdirs))


def holds_installer_counts(config: SiteConfig, folder: str) -> bool:
    """Whether :func:`forget_installer_counts` would drop counts of ``folder``."""
    return _holds(config, lambda tally: tally.forget_installers(folder))


def _holds(config: SiteConfig, forget: Callable[[Tally], bool]) -> bool:
    try:
        tally, _cursors = load_state(layout.stats_state_path(config.output))
    except StateError:
        return True
    return forget(tally)  # on this copy only: nothing is written


def _count(
    site: Site,
    config: SiteConfig,
    stats: StatsSettings,
    tally: Tally,
    cursors: list[Cursor],
    today: date,
) -> tuple[list[Cursor], ReadReport, int]:
    """Count the lines of the ``stats`` logs past ``cursors`` into ``tally``, on ``today``:
    (the cursors after them, what was read, how many lines). The caller holds
    :func:`stats_lock` and saves the two together; StatsError (from :func:`note_private`)
    leaves ``tally`` holding lines the cursors do not: not to be saved."""
    installers = (i.path for i in config.installers)
    counter = line_counter(tally, (c.path for c in config.channels), today, installers)
    cursors, read = read_logs(stats.logs, cursors, counter.add)
    if read.too_long:
        tally.skip(TOO_LONG, read.too_long)
    # Lines of yesterday may still arrive (a log rotated late); older days are over.
    tally.close_days((today - timedelta(days=1)).isoformat())
    tally.roll_up(today, stats.retention_days)
    note_private(site, config, tally, today)
    return cursors, read, counter.lines


def run_stats(config: SiteConfig, today: date | None = None) -> StatsResult:
    """Count the new lines of the configured logs; ``today`` (UTC) decides which days are
    closed (their salts forgotten), which are rolled into months, what "last 7 days" is and
    which lines are dated too far ahead to count (after tomorrow)."""
    if config.stats is None:
        raise StatsError("no 'stats:' section in the configuration (stats: {logs: [...]})")
    today = today or datetime.now(UTC).date()
    site = Site(config.output)
    state_path = layout.stats_state_path(site.root)
    with stats_lock(site):
        try:
            tally, cursors = load_state(state_path)
        except StateError as exc:
            # Starting over would count every line still in the logs a second time.
            raise StatsError(f"{state_path}: {exc}; move it away to count from scratch") from None
        cursors, read, lines = _count(site, config, config.stats, tally, cursors, today)
        site.write_bytes(state_path, encode_state(tally, cursors))
        doc = _doc(tally, config, today)
        site.write_bytes(site.path(layout.STATS_JSON), encode_doc(doc), durable=False)
    warn_unread(read)
    for path in read.absent:
        log.warning("stats: no log at %s, rotated or not: nothing read from it", path)
    return StatsResult(
        files=read.files,
        bytes_read=read.bytes_read,
        lines=lines,
        errors=read.errors,
        skipped=dict(doc.skipped),
        downloads=doc.totals.downloads,
        installer_downloads=sum(row.downloads for row in doc.installers),
    )
