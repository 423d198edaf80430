"""Approval changes that wait for the run publishing them (``.sitegen/approvals-waiting.json``).

``sitegen approve`` and ``revoke`` record their change (who granted or revoked what, and why)
in the history of the run they start. While another run holds the site theirs cannot start, yet
the change is in the approvals file already and the next run of the gated channel publishes it:
the change waits here so that run records it, rather than publishing it with no one's name. The
commands add to the file without the site lock (they could not take it), taking turns; a run
takes the changes of the gated channels it covers, under the site lock, and leaves those it did
not publish (see :func:`settle`) waiting again.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection, Iterable, Iterator

import msgspec

from sitegen.layout import approvals_waiting_lock_path, approvals_waiting_path
from sitegen.store.lock import taking_turns
from sitegen.store.site import Site
from sitegen.sync.report import ApprovalChange, RunReport

log = logging.getLogger("sitegen")


class Waiting(msgspec.Struct):
    changes: list[ApprovalChange] = msgspec.field(default_factory=list)


def leave(site: Site, changes: Iterable[ApprovalChange]) -> None:
    """Keep ``changes`` for the next run of their gated channel."""
    with _turn(site):
        waiting = _load(site)
        waiting.extend(changes)
        _save(site, waiting)


def take(site: Site, channels: Collection[str]) -> list[ApprovalChange]:
    """The waiting changes of these gated channels, oldest first, no longer waiting."""
    if not channels or not approvals_waiting_path(site.root).exists():
        return []
    with _turn(site):
        waiting = _load(site)
        taken = [c for c in waiting if c.channel in channels]
        if taken:
            _save(site, [c for c in waiting if c.channel not in channels])
    return taken


# What a subdir of a run's report says when the run left it as the approvals file has it now.
CURRENT = ("published", "unchanged")


def settle(site: Site, report: RunReport, *, finished: bool) -> None:
    """Keep in ``report`` the approval changes it published: those of the gated channels it
    brought up to date, every subdir published or found current (``finished``: the run was
    neither stopped nor ended by an unexpected error, after which a subdir it never reached
    reads as unchanged). The others (the run failed, stopped or was held by the deletion guard
    there, or the channel is frozen) were not published: they wait again, and the run that
    publishes them records them."""
    if not report.approvals:
        return
    statuses: dict[str, set[str]] = {}
    for subdir in report.channels:
        statuses.setdefault(subdir.channel, set()).add(subdir.status)
    current = {c for c, seen in statuses.items() if finished and seen <= set(CURRENT)}
    unpublished = [c for c in report.approvals if c.channel not in current]
    if not unpublished:
        return
    try:
        leave(site, unpublished)
    except OSError as exc:
        # Listed as this run's rather than lost: the approvals file holds the changes anyway.
        log.error("approval changes left unrecorded for the next run: %s", exc)
        return
    report.approvals = [c for c in report.approvals if c.channel in current]


@contextlib.contextmanager
def _turn(site: Site) -> Iterator[None]:
    lock = approvals_waiting_lock_path(site.root)
    site.ensure_dir(lock.parent)
    with taking_turns(lock):
        yield


def _load(site: Site) -> list[ApprovalChange]:
    path = approvals_waiting_path(site.root)
    try:
        return msgspec.json.decode(path.read_bytes(), type=Waiting).changes
    except FileNotFoundError:
        return []
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        # Only the history's account of some changes is at stake, never what is published:
        # the approvals file holds the changes themselves.
        log.warning(
            "%s: cannot be read (%s); the approval changes it held go unrecorded", path, exc
        )
        return []


def _save(site: Site, changes: list[ApprovalChange]) -> None:
    path = approvals_waiting_path(site.root)
    if not changes:
        site.remove(path)
        return
    site.write_bytes(path, msgspec.json.format(msgspec.json.encode(Waiting(changes))))
