"""How one mirror run was asked to behave (the ``sitegen mirror`` flags)."""

from __future__ import annotations

from dataclasses import dataclass

from sitegen.sync.report import ApprovalChange


@dataclass
class MirrorOptions:
    verify: bool = False
    force_delete: bool = False
    dry_run: bool = False
    only: tuple[str, ...] = ()  # run just these mirrors now
    due: bool = False  # run just the mirrors whose schedule came due
    progress: bool | None = None  # None: live display only on a terminal
    # Approvals granted or revoked that this run publishes, for the history (sitegen approve).
    approvals: tuple[ApprovalChange, ...] = ()
