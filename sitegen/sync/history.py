"""The run ledger: one JSON file per run under ``<site>/history/runs/``.

A run is recorded as ``running`` when it starts and rewritten when it ends, so a run that was
killed stays ``running`` on disk; the next run (which holds the site lock, so it knows no other
run is alive) marks it ``interrupted``.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from sitegen.config import SiteConfig
from sitegen.layout import filtered_records_path, runs_dir
from sitegen.store.compare import read_regular
from sitegen.store.links_out import within
from sitegen.store.site import Site
from sitegen.sync.report import COMPLETED, INTERRUPTED, PRIVATE, RUNNING, RunReport


def new_run_id(now: float | None = None) -> str:
    """A sortable, unique id: UTC time to the millisecond plus the process id."""
    now = time.time() if now is None else now
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
    return f"{stamp}.{int(now * 1000) % 1000:03d}Z-{os.getpid()}"


# JSON reads a surrogate escape ("\\ud800") as text no page can be written in when it is
# alone (not half of a pair). sitegen writes one for a path that is not UTF-8 quoted in an
# error, and a hand-edited or damaged record may hold any.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")  # once read, a surrogate is a lone one


def _may_hold_surrogate(text: str) -> bool:
    """Whether the JSON ``text`` may read as a lone surrogate: by an escape, or by the bytes of
    a surrogate (which json.loads decodes too). Quick, as a first run's record is ~50 MB."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return True
    return _SURROGATE_ESCAPE.search(text) is not None


def _without_lone_surrogates(value: Any) -> Any:
    """``value`` with each lone surrogate of its text, keys included, as U+FFFD."""
    if isinstance(value, str):
        return value if value.isascii() else _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_without_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_without_lone_surrogates(k): _without_lone_surrogates(v) for k, v in value.items()}
    return value


def _read_record(path: Path) -> RunReport:
    """The record in ``path``, its lone surrogates as U+FFFD (shown, not failing every page
    rendered from the ledger). Its id stays as written: it is matched against the file's name
    (a record is its ``<id>.json``), and the pages show only ids of a run's shape. A named pipe
    or a device under a record's name (or a link to one) is an OSError, not read: it would hold
    every command that reads the ledger, a stop signal included, or never end."""
    raw = read_regular(path)
    text = raw.decode(json.detect_encoding(raw), "surrogatepass")  # as json.loads does
    data = json.loads(text)
    if isinstance(data, dict) and _may_hold_surrogate(text):
        data = {k: v if k == "id" else _without_lone_surrogates(v) for k, v in data.items()}
    return RunReport.from_json(data)


def _ledger_name(run_id: str) -> bool:
    return bool(run_id) and Path(run_id).name == run_id and not run_id.startswith(".")


def newest_first(runs: list[RunReport], now: float) -> list[RunReport]:
    """Runs newest first, except those that start after ``now``, which go last: they were
    recorded while the clock ran ahead (it was set back since), and in start order they would
    stay "the newest" over every run since until the clock catches up, for years maybe."""
    return sorted(runs, key=lambda r: (r.started <= now, r.started, r.id), reverse=True)


def last_completed(runs: list[RunReport], now: float, config: SiteConfig) -> dict[str, float]:
    """Name of each mirror ``config`` names -> start of its newest completed run, which
    ``--due`` counts its schedule from. A run that starts after ``now`` does not count: from it
    the schedule would not fire before that time, and the mirror would silently not run until
    then.

    Nor does a run that built another channel than the one the mirror feeds now (the channel
    renamed, the mirror moved), one that left out a subdir the mirror lists now (added since),
    or one older than a ``sitegen remove`` of that channel (of a subdir the mirror lists now;
    added again since): the channel was never built as it is configured now, and would not be
    until the schedule fired again (a day, by default). A
    mirror's newest completed run decides: an older one into its channel, before the mirror
    fed another, does not count either (the channel has dropped its records since).
    """
    feeds = {m.name: (c.path, m.subdirs) for c, m in config.mirrors}
    last: dict[str, float] = {}
    decided: set[str] = set()
    removed: set[tuple[str, str]] = set()  # (channel, subdir) removed after the runs to come
    for run in newest_first(runs, now):
        if run.started > now:
            break  # these go last; none of the rest counts either
        if run.removal:
            removed.update((c.channel, c.subdir) for c in run.channels)
            continue
        for mirror in run.mirrors:
            if mirror.status != COMPLETED or mirror.name in decided:
                continue
            decided.add(mirror.name)
            fed = feeds.get(mirror.name)
            if fed is None:
                continue  # configured no more
            channel, subdirs = fed
            if (
                mirror.channel == channel
                and set(subdirs) <= mirror.subdirs.keys()
                and not any((channel, s) in removed for s in subdirs)
            ):
                last[mirror.name] = run.started
    return last


def installers_completed(runs: list[RunReport], now: float) -> dict[str, float]:
    """Path of each installer folder -> start of its newest completed run (not one that starts
    after ``now``), which ``--due`` counts its schedule from; none before a ``sitegen remove``
    of the folder (configured again since: it was never mirrored as it is now)."""
    last: dict[str, float] = {}
    removed: set[str] = set()
    for run in newest_first(runs, now):
        if run.started > now:
            break
        for installer in run.installers:
            if run.removal:
                removed.add(installer.path)
            elif installer.status == COMPLETED and installer.path not in removed:
                last.setdefault(installer.path, run.started)
    return last


def noted_access(runs: list[RunReport], channel: str) -> str:
    """The access the newest of ``runs`` (newest first, as :meth:`History.runs` has them) that
    noted one gave ``channel`` (PUBLIC or PRIVATE); PRIVATE when none did: a channel of unknown
    access is kept off the public pages."""
    for run in runs:
        if run.access is not None and channel in run.access.channels:
            return run.access.channels[channel]
    return PRIVATE


def private_through(runs: list[RunReport], today: str) -> dict[str, str]:
    """Per channel a run of ``runs`` (newest first) noted private: the last UTC day (ISO) it
    may have served as private, the day the run after the newest such run started (the
    configuration changed before it), ``today`` when none did. A day too many, not one too
    few: what the public statistics show of a channel starts after it."""
    through: dict[str, str] = {}
    later = today
    for run in runs:
        own = _utc_day(max(run.started, run.ended or run.started))
        if run.access is not None:
            for channel, access in run.access.channels.items():
                if access == PRIVATE:
                    through.setdefault(channel, max(later, own))
        later = _utc_day(run.started)
    return through


def _utc_day(stamp: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(stamp))


class History:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.directory = runs_dir(site.root)

    def _ledger(self) -> Path:
        """The ledger folder; :class:`~sitegen.store.links_out.LeadsOutError` (an OSError)
        when it, or ``history/``, is a link out of the site or a loop of links: what lies past
        it is not the site's, to write records into or to read them from."""
        return within(self.site, self.directory.relative_to(self.site.root).as_posix())

    def save(self, report: RunReport) -> None:
        # Pure ASCII: a path that is not UTF-8 (a lone surrogate, quoted in an error) is kept,
        # escaped, and the record reads back whatever the locale (the surrogate as U+FFFD).
        data = json.dumps(report.to_json(), indent=1, sort_keys=True).encode()
        self.site.write_bytes(self._ledger() / f"{report.id}.json", data)

    def record(self, run_id: str) -> RunReport | None:
        """The record of one run; None when there is none (or none readable) of that id."""
        if not _ledger_name(run_id):
            return None
        try:
            report = _read_record(self._ledger() / f"{run_id}.json")
        except (OSError, ValueError, TypeError, RecursionError):
            return None
        return report if report.id == run_id else None

    def remove(self, run_id: str, keep_filtered: bool = False) -> bool:
        """Delete one run's record (history retention); its pages go at the next render. Its
        filtered-out records go with it (most runs have none) unless ``keep_filtered``: later
        runs that reused its results still point at that list."""
        if not _ledger_name(run_id):
            return False  # not a name this ledger gave: never reach outside it
        if not keep_filtered:
            self.remove_filtered(run_id)
        try:
            return self.site.remove(self._ledger() / f"{run_id}.json")
        except OSError:
            return False  # a ledger linked out: nothing of it is the site's to delete

    def remove_filtered(self, run_id: str) -> bool:
        """Delete the filtered-out records a run wrote (kept past its record while pointed at)."""
        if not _ledger_name(run_id):
            return False
        try:
            return self.site.remove(within(self.site, filtered_records_path(run_id)))
        except OSError:
            return False

    def runs(self, *, strict: bool = False) -> list[RunReport]:
        """Every recorded run, newest first (those dated after now last, see newest_first);
        unreadable records are skipped. ``strict``: as for :meth:`read`."""
        return self.read(strict=strict)[0]

    def read(self, *, strict: bool = False) -> tuple[list[RunReport], list[Path]]:
        """Every recorded run, newest first, and the strays: records under a name that is not
        their own ``<id>.json`` (a copy, a renamed file). A stray is no part of the ledger: read
        as a run it would show that run twice, and outlive it, as retention removes a run's
        record by its id (see prune_history).

        No ledger folder reads as no runs. A folder that cannot be listed (or is a link out of
        the site, or a loop of links) does too, and a record that cannot be read or parsed is passed over, unless ``strict``: then either
        raises OSError, for a caller that must not take "cannot tell" for "no runs" or "names
        nothing" (whether the records may be served: a damaged one may name anything)."""
        out: list[RunReport] = []
        strays: list[Path] = []
        try:
            names = os.listdir(self._ledger())
        except FileNotFoundError:
            return out, strays
        except OSError:
            if strict:
                raise
            return out, strays
        for name in names:
            if not name.endswith(".json"):
                continue
            path = self.directory / name
            try:
                report = _read_record(path)
            except FileNotFoundError:
                continue  # removed since the listing (retention): no record any more
            except (OSError, ValueError, TypeError, RecursionError) as exc:
                if strict:
                    # Not passed over: it may be the one that notes a channel private, which
                    # only a person can tell by looking at it.
                    raise OSError(
                        f"{path}: an unreadable run record (it may be the one that notes a"
                        " channel private); check it, then move it out of history/runs/:"
                        " until then the history retention removes no record"
                    ) from exc
                continue  # damaged or not a record (RecursionError: absurdly nested JSON)
            if path.name == f"{report.id}.json":
                out.append(report)
            else:
                strays.append(path)
        # Every reader takes the first run of a mirror as its last (the landing page, status):
        # one recorded while the clock ran ahead would be that over every run since.
        return newest_first(out, time.time()), sorted(strays)

    def close_interrupted(self) -> list[str]:
        """Mark runs left 'running' by a killed process; call only while holding the lock."""
        closed = []
        for report in self.runs():
            if report.status == RUNNING:
                report.status = INTERRUPTED
                report.errors.append("the run was interrupted before it finished")
                self.save(report)
                closed.append(report.id)
        return closed
