"""Decide, from a snapshot of the disk, which package files of a subdir to fetch or remove.

Pure: the directory listing (names and sizes) and the outcome of any checksum checks are read
by a separate I/O step (:mod:`sitegen.sync.download`) and passed in as data, so every decision
here can be tested without a file system. Nothing on disk changes until the plan is executed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from sitegen.conda.records import Record


@dataclass(frozen=True)
class DiskSnapshot:
    """What one subdir directory held before the run changed it."""

    present: Mapping[str, int]  # package file name -> size in bytes
    # Outcome of the checksum checks asked for by `files_to_check`: fn -> the bytes match.
    checked: Mapping[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """What to do to one subdir's package files before its metadata is published."""

    to_download: list[Record]  # fetched straight to their published name
    # Re-uploaded upstream under a published name: fetched under a temporary name, moved into
    # place only when the metadata naming the new bytes is published (see publish_target).
    to_stage: list[Record]
    # Wrong files under names a passive mirror serves: removed, so that the pull-through
    # fetcher (which verifies what it fetches) replaces them on first request.
    to_remove: list[str]
    # Files of a passive mirror re-uploaded upstream under their published name, stored or
    # not, even with the new bytes: the published record names the old bytes until the new
    # one is, so they go only then, after a first publishing step without them (see
    # publish_target); the fetcher gets the new bytes on first request.
    to_withdraw: list[str]
    unreferenced: int = 0  # package files present that no record names: pruned after publishing

    @property
    def jobs(self) -> int:
        return len(self.to_download) + len(self.to_stage)

    @property
    def bytes(self) -> int:
        return sum(r.size for r in self.to_download) + sum(r.size for r in self.to_stage)


def _trusted(record: Record, before: Record | None, verify: bool) -> bool:
    """Whether a file of the right size on disk is vouched for without a re-hash: only when
    the published record already named these bytes (a checksum that changed upstream means a
    re-hash) and the run does not verify everything."""
    return not verify and before is not None and before.same_file(record)


def _withdrawn(record: Record, before: Record | None, passive: Collection[str]) -> bool:
    """Whether the stored file of ``record`` goes whatever its bytes (see Plan.to_withdraw),
    so that no checksum check is worth its time: a passive mirror's re-upload of a published
    file."""
    return record.origin in passive and before is not None and not before.same_file(record)


def files_to_check(
    records: Mapping[str, Record],
    published: Mapping[str, Record],
    present: Mapping[str, int],
    passive: Collection[str],
    verify: bool,
) -> list[str]:
    """The files on disk that only a checksum check can vouch for, in record order (not those
    withdrawn whatever their bytes)."""
    # Plain loops over up to a million records: no helper call per record but for a file of
    # the right size.
    unsure = []
    size_on_disk, published_record = present.get, published.get
    for fn, record in records.items():
        if size_on_disk(fn) != record.size:
            continue
        before = published_record(fn)
        if not _trusted(record, before, verify) and not _withdrawn(record, before, passive):
            unsure.append(fn)
    return unsure


def plan_subdir(
    records: Mapping[str, Record],
    published: Mapping[str, Record],
    snapshot: DiskSnapshot,
    passive: Collection[str],
    verify: bool,
) -> Plan:
    """Split the records to publish into files to download, to stage and to remove.

    ``published``: the records of the metadata published now; ``passive``: the names of the
    mirrors whose files are fetched on first request rather than by the run.
    """
    to_download: list[Record] = []
    to_stage: list[Record] = []
    to_remove: list[str] = []
    to_withdraw: list[str] = []
    present, checked = snapshot.present, snapshot.checked
    for fn, record in records.items():
        size = present.get(fn)
        before = published.get(fn)
        if _withdrawn(record, before, passive):
            # Whatever is stored now, even the new bytes: until the new record is published,
            # the fetcher may store the old bytes, verified against the record published then.
            to_withdraw.append(fn)
            continue
        if size == record.size:
            vouched = checked.get(fn)
            if vouched is None:  # not checked: only the published record can vouch for it
                vouched = _trusted(record, before, verify)
            if vouched:
                continue
        if record.origin in passive:
            if size is not None:
                to_remove.append(fn)
            continue
        if before is not None and not before.same_file(record):
            # The published record still describes the old bytes: the new ones wait.
            to_stage.append(record)
        else:
            to_download.append(record)
    unreferenced = sum(1 for fn in present if fn not in records)
    return Plan(to_download, to_stage, to_remove, to_withdraw, unreferenced)
