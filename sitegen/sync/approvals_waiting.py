"""Approval changes that wait for the run publishing them (``.sitegen/approvals-waiting.json``).

``sitegen approve`` and ``revoke`` record their change (who granted or revoked what, and why)
in the history of the run they start. While another run holds the site theirs cannot start, yet
the change is in the approvals file already and the next run of the gated channel publishes it:
the change waits here so that run records it, rather than publishing it with no one's name. The
commands add to the file without the site lock (they could not take it), taking turns; a run
takes the changes of the gated channels it covers, under the site lock (see :func:`take`).

A change taken stays in the file, noted as taken by the run, until that run's last record is
saved (:func:`release`): a run killed before (SIGKILL, a power cut) leaves it to the next run,
which finds the killed run's record without it, and a run killed just after is found to have
recorded it already.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Collection, Iterator, Sequence

import msgspec

from sitegen.layout import approvals_waiting_lock_path, approvals_waiting_path
from sitegen.store.lock import Stopped, taking_turns
from sitegen.store.site import Site
from sitegen.sync.history import History
from sitegen.sync.report import ApprovalChange, RunReport

log = logging.getLogger("sitegen")


class Waiting(msgspec.Struct, omit_defaults=True):
    changes: list[ApprovalChange] = msgspec.field(default_factory=list)
    # Run id -> the changes it took, until its record lists those it published.
    taken: dict[str, list[ApprovalChange]] = msgspec.field(default_factory=dict)


def leave(site: Site, changes: Sequence[ApprovalChange]) -> None:
    """Keep ``changes`` for the next run of their gated channel."""
    with _turn(site, None):
        waiting = _load(site)
        waiting.changes.extend(changes)
        _save(site, waiting)


def take(
    site: Site,
    run_id: str,
    channels: Collection[str],
    own: Sequence[ApprovalChange] = (),
    stop: threading.Event | None = None,
) -> list[ApprovalChange]:
    """The waiting changes of these gated channels, oldest first, then ``own`` (those of the
    `approve` or `revoke` that started the run), taken by run ``run_id`` until it releases them.
    Call under the site lock: the changes any other run took and did not release are those of
    a killed run, back to waiting first but for those its record lists (recorded already).
    Raises Stopped when ``stop`` is set while another holds the file."""
    if not own and not approvals_waiting_path(site.root).exists():
        return []
    with _turn(site, stop):
        waiting = _load(site)
        changed = _recover(site, waiting)
        taken = [c for c in waiting.changes if c.channel in channels]
        if taken or own:
            waiting.changes = [c for c in waiting.changes if c.channel not in channels]
            waiting.taken[run_id] = [*taken, *own]
        if taken or own or changed:
            _save(site, waiting)
    return [*taken, *own]


# What a subdir of a run's report says when the run left it as the approvals file has it now.
CURRENT = ("published", "unchanged")


def settle(report: RunReport, *, finished: bool) -> None:
    """Keep in ``report`` the approval changes it published: those of the gated channels it
    brought up to date, every subdir published or found current (``finished``: the run was
    neither stopped nor ended by an unexpected error, after which a subdir it never reached
    reads as unchanged). The others (the run failed, stopped or was held by the deletion guard
    there, or the channel is frozen) were not published: released, they wait again, and the
    run that publishes them records them."""
    statuses: dict[str, set[str]] = {}
    for subdir in report.channels:
        statuses.setdefault(subdir.channel, set()).add(subdir.status)
    current = {c for c, seen in statuses.items() if finished and seen <= set(CURRENT)}
    report.approvals = [c for c in report.approvals if c.channel in current]


def release(
    site: Site, report: RunReport, *, recorded: bool, stop: threading.Event | None = None
) -> None:
    """The changes the run took are no longer its: those its record lists once it is saved
    (``recorded``) wait no more, the others wait again. Given up when ``stop`` is set while
    another holds the file."""
    try:
        with _turn(site, stop):
            waiting = _load(site)
            taken = waiting.taken.pop(report.id, None)
            if taken is None:
                return
            listed = report.approvals if recorded else []
            waiting.changes[:0] = _unlisted(taken, listed)
            _save(site, waiting)
    except (OSError, Stopped) as exc:
        # Left noted as this run's: the next run settles them from this run's record.
        why = exc if isinstance(exc, OSError) else "the file was not free in time"
        log.error("approval changes of run %s left taken: %s", report.id, why)


def _recover(site: Site, waiting: Waiting) -> bool:
    """Give the changes of runs that took some and ended without releasing them back to
    waiting, but for those each one's record lists; True when there were any."""
    if not waiting.taken:
        return False
    history = History(site)
    back: list[ApprovalChange] = []
    for run_id, taken in waiting.taken.items():
        record = history.record(run_id)
        unlisted = _unlisted(taken, record.approvals if record is not None else [])
        if unlisted:
            log.warning(
                "run %s did not finish: %d approval changes it took wait again",
                run_id,
                len(unlisted),
            )
        back.extend(unlisted)
    waiting.changes[:0] = back
    waiting.taken = {}
    return True


def _unlisted(
    changes: Sequence[ApprovalChange], listed: Sequence[ApprovalChange]
) -> list[ApprovalChange]:
    """``changes`` but for those ``listed`` (each listed one matching one change)."""
    remaining = list(listed)
    out = []
    for change in changes:
        if change in remaining:
            remaining.remove(change)
        else:
            out.append(change)
    return out


@contextlib.contextmanager
def _turn(site: Site, stop: threading.Event | None) -> Iterator[None]:
    lock = approvals_waiting_lock_path(site.root)
    site.ensure_dir(lock.parent)
    with taking_turns(lock, stop=stop):
        yield


def _load(site: Site) -> Waiting:
    path = approvals_waiting_path(site.root)
    try:
        return msgspec.json.decode(path.read_bytes(), type=Waiting)
    except FileNotFoundError:
        return Waiting()
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        # Only the history's account of some changes is at stake, never what is published:
        # the approvals file holds the changes themselves.
        log.warning(
            "%s: cannot be read (%s); the approval changes it held go unrecorded", path, exc
        )
        return Waiting()


def _save(site: Site, waiting: Waiting) -> None:
    path = approvals_waiting_path(site.root)
    if not waiting.changes and not waiting.taken:
        site.remove(path)
        return
    site.write_bytes(path, msgspec.json.format(msgspec.json.encode(waiting)))
