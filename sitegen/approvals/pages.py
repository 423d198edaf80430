"""What the "pending approval" and "approved" pages of a gated channel show, as plain data.

Pure functions from the selection (:mod:`sitegen.sync.approvals`) to page models; the
templates render them. Nothing here escapes text: the templates do, as for every upstream field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sitegen.conda.records import Record
from sitegen.conda.version import timestamp_ms
from sitegen.config.approval_model import Approval
from sitegen.sync.approvals import Approved, FileKey, PendingItem


@dataclass(frozen=True)
class PendingRow:
    name: str
    version: str
    build: str
    subdir: str
    fn: str
    license: str
    size: int
    timestamp_ms: int  # 0 when the record has none
    depends: tuple[str, ...]
    would_add: tuple[str, ...]  # "subdir/fn" of files approving it with dependencies adds
    would_lack: tuple[str, ...]  # what it needs that the gated channel cannot publish, and why


@dataclass(frozen=True)
class PendingPage:
    channel: str
    source: str
    rows: tuple[PendingRow, ...]  # newest first


@dataclass(frozen=True)
class ApprovedRow:
    spec: str
    by: str
    when: str
    why: str
    expires: str | None
    expired: bool
    with_dependencies: bool
    # ("subdir/fn", why it is not published) of each file the spec matches now; why is the
    # reason the gated channel's own filters leave it out, "" when they let it through.
    files: tuple[tuple[str, str], ...]
    unpublished: int  # how many of them are not published


@dataclass(frozen=True)
class ApprovedPage:
    channel: str
    rows: tuple[ApprovedRow, ...]  # by spec
    dependencies: tuple[tuple[str, str], ...]  # ("subdir/fn", why), approved as dependencies
    # ("subdir/fn", why, the filters' reason): approved as dependencies, but the gated channel's
    # own filters leave them out, so they are not published (what needs them will not install).
    dependencies_left_out: tuple[tuple[str, str, str], ...]


def pending_page(channel: str, source: str, items: Iterable[PendingItem]) -> PendingPage:
    rows = []
    for item in items:
        raw = item.record.raw
        license_text = raw.get("license")
        rows.append(
            PendingRow(
                name=item.record.name,
                version=item.record.version,
                build=item.record.build,
                subdir=item.subdir,
                fn=item.record.fn,
                license=license_text if isinstance(license_text, str) else "",
                size=item.record.size,
                timestamp_ms=timestamp_ms(raw),
                depends=tuple(str(d) for d in raw.get("depends") or ()),
                would_add=tuple(f"{s}/{fn}" for s, fn in item.would_add),
                would_lack=item.would_lack,
            )
        )
    return PendingPage(channel, source, tuple(rows))


def approved_page(
    channel: str,
    entries: Iterable[Approval],
    approved: Approved,
    now: float,
    left_out: Mapping[FileKey, tuple[Record, str]] | None = None,
    *,
    published_only: bool = False,
) -> ApprovedPage:
    """``left_out``: the candidates the gated channel's own filters leave out, with their
    reason (see :func:`sitegen.sync.approvals.admissible`). ``published_only``: those are not
    named at all, as a public page of a channel whose source is private must not name them."""
    dropped = left_out or {}
    rows = []
    for entry in sorted(entries, key=lambda e: e.key):
        files = tuple(
            (f"{s}/{fn}", _reason(dropped, (s, fn)))
            for s, fn in approved.by_entry.get(entry, [])
            if not (published_only and (s, fn) in dropped)
        )
        rows.append(
            ApprovedRow(
                spec=entry.spec,
                by=entry.by,
                when=entry.when,
                why=entry.why,
                expires=entry.expires,
                expired=not entry.active(now),
                with_dependencies=entry.with_dependencies,
                files=files,
                unpublished=sum(1 for _file, reason in files if reason),
            )
        )
    dependencies = []
    unpublished = []
    for key, why in sorted(approved.dependencies.items()):
        file = f"{key[0]}/{key[1]}"
        if key in dropped:
            if not published_only:
                unpublished.append((file, why, dropped[key][1]))
        else:
            dependencies.append((file, why))
    return ApprovedPage(channel, tuple(rows), tuple(dependencies), tuple(unpublished))


def _reason(dropped: Mapping[FileKey, tuple[Record, str]], key: FileKey) -> str:
    left_out = dropped.get(key)
    return left_out[1] if left_out is not None else ""
