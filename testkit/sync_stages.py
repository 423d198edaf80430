"""Plain data for the pure stages of a mirror run (planning, merging, report assembly).

Records :data:`A`, :data:`B` and :data:`C` as one mirror offers them, :func:`plan` over lists
of records, :func:`repodata` of a linux-64 subdir and the deletion guard :data:`GUARD` the
merges run under.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sitegen.conda.records import Record, Repodata
from sitegen.sync.merge import DeletionGuard
from sitegen.sync.plan import DiskSnapshot, Plan, plan_subdir
from testkit.records import rec


def at(record: Record, origin: str = "m", **raw: Any) -> Record:
    """``record`` as offered by mirror ``origin``, with some repodata fields changed."""
    return dataclasses.replace(record, raw={**record.raw, **raw}, origin=origin)


def by_fn(*records: Record) -> dict[str, Record]:
    """``records`` by file name, as the stages take them."""
    return {r.fn: r for r in records}


A = at(rec("a"))
B = at(rec("b"))
C = at(rec("c"))

# Half the published files may go in one run: the merges here stay under it unless told.
GUARD = DeletionGuard(max_fraction=0.5)


def plan(
    records: Sequence[Record],
    published: Sequence[Record] = (),
    present: Mapping[str, int] | None = None,
    checked: Mapping[str, bool] | None = None,
    passive: Collection[str] = (),
    verify: bool = False,
) -> Plan:
    """plan_subdir of ``records`` over ``published`` ones, the subdir directory holding
    ``present`` (fn -> size) with the checksum checks' outcomes ``checked``."""
    snapshot = DiskSnapshot(present or {}, checked or {})
    return plan_subdir(by_fn(*records), by_fn(*published), snapshot, set(passive), verify)


def repodata(*records: Record, removed: tuple[str, ...] = (), **info: Any) -> Repodata:
    """A linux-64 Repodata of ``records``, with ``removed`` and ``info`` fields."""
    return Repodata(subdir="linux-64", info=info, records=by_fn(*records), removed=list(removed))
