"""Approval changes that wait for the run publishing them (``.sitegen/approvals-waiting.json``).

``sitegen approve`` and ``revoke`` record their change (who granted or revoked what, and why)
in the history of the run they start. While another run holds the site theirs cannot start, yet
the change is in the approvals file already and the next run of the gated channel publishes it:
the change waits here so that run records it, rather than publishing it with no one's name. The
commands add to the file without the site lock (they could not take it), taking turns; a run
takes the changes of the gated channels it covers, under the site lock.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection, Iterable, Iterator

import msgspec

from sitegen.layout import approvals_waiting_lock_path, approvals_waiting_path
from sitegen.store.lock import taking_turns
from sitegen.store.site import Site
from sitegen.sync.report import ApprovalChange

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
