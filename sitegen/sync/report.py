"""What a run did, as plain data: the ledger the history pages and exit status are built from."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from sitegen.conda.record_secrets import CLIPPED
from sitegen.config import SiteConfig
from sitegen.config.local_source import KIND as LOCAL_KIND
from sitegen.wording import counted, human_bytes

RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
STOPPED = "stopped"
INTERRUPTED = "interrupted"

LATEST_TIME = 253402300800.0  # 10000-01-01 UTC: a run's times lie before it


# A recorded error or warning is cut after this many characters: one quoting a long upstream
# text (an error page, a body that is no repodata) would otherwise be kept whole in the run's
# record, and once per run in history/history.json, which holds every run kept.
MESSAGE_CHARS = 2_000
# The most errors (and as many warnings) a mirror's record keeps; the rest are counted.
MESSAGES_KEPT = 50


def recorded_text(message: str) -> str:
    """``message`` as a run record keeps it: its start and its length when it is long (cut as
    error messages cut a value, which the pages' hiding of secrets knows)."""
    if len(message) <= MESSAGE_CHARS:
        return message
    return f"{message[:MESSAGE_CHARS]}{CLIPPED}{len(message):,} characters)"


def recorded_list(messages: Sequence[str], noun: str) -> list[str]:
    """``messages`` as a run record keeps them: the first :data:`MESSAGES_KEPT`, each by
    :func:`recorded_text`, and a last line counting the rest (``and 3 more errors``)."""
    kept = [recorded_text(m) for m in messages[:MESSAGES_KEPT]]
    if len(messages) > MESSAGES_KEPT:
        rest = counted(len(messages) - MESSAGES_KEPT, f"more {noun}")
        kept.append(f"and {rest}, not recorded")
    return kept


# How a mirror's subdir was read upstream (MirrorSubdirReport.upstream).
FETCHED = "fetched"  # a new body (200)
UNCHANGED = "unchanged"  # the cached body is current (304), or the mirror is not run now
MISSING = "missing"  # not served upstream (404)
ERROR = "error"


@dataclass
class MirrorSubdirReport:
    """One mirror's view of one upstream subdir."""

    upstream: str = ""  # FETCHED, UNCHANGED, MISSING or ERROR
    records: int = 0  # sound records upstream
    kept: int = 0
    added_as_dependency: int = 0
    excluded: dict[str, int] = field(default_factory=dict)  # reason -> count
    # Kept only because an exception (`except`) took them back: the reason the excludes of its
    # level had -> count; a part of ``kept``.
    excepted: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)  # hostile/broken records by reason
    rejected_examples: dict[str, str] = field(default_factory=dict)  # filename -> reason


# The rows of a run record's lists. Every field a page or a later run reads is required, so a
# damaged or foreign record that lacks one fails RunReport.from_json's check and is passed over
# like any unreadable record, instead of failing every page rendered from the ledger. Each is
# written as the plain dict it always was (the optional ones without their empty values).


class UnsatisfiedDependency(msgspec.Struct, omit_defaults=True):
    """A dependency the include_dependencies closure found nothing for."""

    subdir: str
    spec: str
    needed_by: str  # the file that depends on it
    # Why (see sitegen.sync.closure_reasons): "not upstream", "no matching version upstream",
    # the filters' reasons for the matching records, "not approved"; "" in records written
    # before runs noted it.
    reason: str = ""


class AddedDependency(msgspec.Struct, omit_defaults=True):
    """A file the include_dependencies closure added."""

    subdir: str
    file: str
    why: str  # "needed by <file> (<spec>)", or "for a constraint of <file> (<spec>)"
    # The channel of the file `why` names (the public pages leave it out for a private one);
    # None in records written before runs noted it.
    needed_by_channel: str | None = None


class BlockedFile(msgspec.Struct):
    """A file an advisory kept out (see sync/advisory_changes.py)."""

    subdir: str
    file: str
    advisory: str  # its id


class MissingPin(msgspec.Struct):
    """A lockfile pin upstream does not offer."""

    lockfile: str
    subdir: str
    file: str
    why: str


# Entries matching nothing named per mirror in the log, on the run page and by `sitegen
# status` (a long list copied from another channel would bury the rest); the record has all.
UNMATCHED_SHOWN = 10


class UnmatchedEntry(msgspec.Struct):
    """An entry of a filter list that selects records (``names.include``, ``except``) and
    matched no record of any subdir of the mirrors its level applies to: most likely a typo."""

    filters: str  # whose: "site", "channel <path>" or "mirror <name>"
    key: str  # names.include, except
    entry: str  # as channels.yaml writes it

    @property
    def whose(self) -> str:
        """Whose filters, as a possessive: ``the site's``, ``channel <path>'s``."""
        return "the site's" if self.filters == "site" else f"{self.filters}'s"

    def text(self) -> str:
        """``names.include entry 'nunpy' of the site's filters``, for the log and status."""
        return f"{self.key} entry {self.entry!r} of {self.whose} filters"


class ApprovalChange(msgspec.Struct, omit_defaults=True):
    """An approval granted (``approve``) or revoked (``revoke``) that a run published."""

    action: str
    channel: str
    spec: str
    by: str
    why: str
    expires: str | None = None  # when it ends (a date, or a time)
    with_dependencies: Literal["true"] | None = None  # text, as records have always had it


@dataclass
class MirrorReport:
    name: str
    channel: str
    source: str  # display URL: never holds a token
    mode: str = "active"
    kind: str = "channel"  # MirrorConfig.kind: "local" reads a folder, not an upstream channel
    status: str = RUNNING
    subdirs: dict[str, MirrorSubdirReport] = field(default_factory=dict)
    unsatisfied: list[UnsatisfiedDependency] = field(default_factory=list)  # dependency report
    dependencies_added: list[AddedDependency] = field(default_factory=list)
    advisories_blocked: list[BlockedFile] = field(default_factory=list)
    pins_missing: list[MissingPin] = field(default_factory=list)
    unmatched: list[UnmatchedEntry] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # What the mirror ran with that is not as it should be, without failing it (an advisory
    # feed that could not be refreshed, its last good copy used).
    warnings: list[str] = field(default_factory=list)
    # The run whose filtered-records file (sitegen.layout.filtered_records_path) lists what
    # this mirror's filters left out: this run, or the one whose results it reused; "" if none.
    filtered_run: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MirrorReport:
        return msgspec.convert(data, cls)

    @property
    def local(self) -> bool:
        return self.kind == LOCAL_KIND

    def read_upstream(self) -> bool:
        """Whether the mirror read some subdir upstream in this run (not only errors)."""
        return any(s.upstream not in ("", ERROR) for s in self.subdirs.values())

    def excluded_totals(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for sub in self.subdirs.values():
            total.update(sub.excluded)
            total.update(sub.rejected)
        return dict(sorted(total.items(), key=lambda kv: (-kv[1], kv[0])))

    def excepted_totals(self) -> dict[str, int]:
        """The records kept by an exception, by the reason they were taken back from."""
        total: Counter[str] = Counter()
        for sub in self.subdirs.values():
            total.update(sub.excepted)
        return dict(sorted(total.items(), key=lambda kv: (-kv[1], kv[0])))


# What a subdir publishes when the second of the two steps that publish its re-uploaded files
# (see sitegen.sync.publish.publish_target) did not go out: its first step.
WITHOUT_REPLACED = "published without the files replaced upstream"


# A channel subdir the run merged but ended before publishing (stopped by a signal, or failed
# as a whole first): it serves its previous state, as it would "unchanged", but this run did
# not find it so.
NOT_REACHED = "not-reached"


@dataclass
class ChannelSubdirReport:
    """What changed in one published subdir of a channel."""

    channel: str
    subdir: str
    # "published", "unchanged", "held", "failed", "dry-run" or NOT_REACHED
    status: str = "unchanged"
    packages: int = 0
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    downloaded_files: int = 0
    downloaded_bytes: int = 0
    # Files of local sources, linked or copied in from their folders: not downloaded.
    local_files: int = 0
    local_bytes: int = 0
    deleted_files: int = 0
    # Files no metadata lists any more that stay on disk (keep_removed, see sitegen.sync.keep).
    kept_files: int = 0
    errors: list[str] = field(default_factory=list)
    # "failed", yet not at its previous state: published WITHOUT_REPLACED (the change lists
    # say what that published).
    first_step_only: bool = False


def new_files_text(
    downloaded: tuple[int, int],
    local: tuple[int, int],
    dry_run: bool = False,
    size: Callable[[int], str] = human_bytes,
) -> str:
    """How the new files of a subdir (or a run) got there, as (files, bytes) downloaded and
    added from local sources' folders: ``downloaded 2 files (1.0 MB), added 1 file from the
    folder (3.0 KB)``; only the parts that happened, ``no new files`` when neither did."""
    verbs = ("would download", "would add") if dry_run else ("downloaded", "added")
    parts = []
    if downloaded[0]:
        parts.append(f"{verbs[0]} {counted(downloaded[0], 'file')} ({size(downloaded[1])})")
    if local[0]:
        parts.append(f"{verbs[1]} {counted(local[0], 'file')} from the folder ({size(local[1])})")
    return ", ".join(parts) or "no new files"


def excepted_text(excepted: Mapping[str, int]) -> str:
    """How many of the kept records an exception took back, and from what: `` (3 by
    exception: 2 build excluded, 1 license excluded)``; empty when none."""
    if not excepted:
        return ""
    reasons = ", ".join(f"{n} {reason}" for reason, n in excepted.items())
    return f" ({sum(excepted.values())} by exception: {reasons})"


@dataclass
class InstallerReport:
    """What a run did to one installer folder (``installers:``)."""

    path: str  # the folder in the site
    source: str  # display URL: never holds a token
    status: str = RUNNING  # then COMPLETED, FAILED or DRY_RUN
    listed: int = 0  # files the upstream index lists (its good rows)
    files: int = 0  # files the folder holds once the run is over
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)  # the same name, new bytes upstream
    removed: list[str] = field(default_factory=list)
    downloaded_files: int = 0
    downloaded_bytes: int = 0
    # Rows of the index that are no file to mirror: the row (its name, cut short) -> why, for
    # the first SKIPPED_EXAMPLES of them, and how many there were.
    skipped: dict[str, str] = field(default_factory=dict)
    skipped_total: int = 0
    errors: list[str] = field(default_factory=list)


DRY_RUN = "dry-run"
SKIPPED_EXAMPLES = 50

PUBLIC = "public"
PRIVATE = "private"


@dataclass
class RunAccess:
    """Which channels (by path) and mirrors (by name) were public or private when a run
    started. The public pages hide what was private then, even once it has left channels.yaml
    or turned public (see sitegen.web.private); a channel or mirror not named here is of
    unknown access."""

    channels: dict[str, str] = field(default_factory=dict)  # path -> PUBLIC or PRIVATE
    mirrors: dict[str, str] = field(default_factory=dict)  # name -> its channel's access

    @classmethod
    def of(cls, config: SiteConfig) -> RunAccess:
        """The access of every channel and mirror ``config`` names."""
        return cls(
            channels={c.path: PRIVATE if c.private else PUBLIC for c in config.channels},
            mirrors={m.name: PRIVATE if c.private else PUBLIC for c, m in config.mirrors},
        )


@dataclass
class RunReport:
    id: str
    started: float
    ended: float | None = None
    status: str = RUNNING
    pid: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    mirrors: list[MirrorReport] = field(default_factory=list)
    channels: list[ChannelSubdirReport] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    approvals: list[ApprovalChange] = field(default_factory=list)  # that this run published
    # The access of the site's channels and mirrors when the run started; None in a record
    # written before runs noted it (then a channel no longer configured counts as private).
    access: RunAccess | None = None
    installers: list[InstallerReport] = field(default_factory=list)

    @property
    def removal(self) -> bool:
        """A record of ``sitegen remove`` (``options.remove``: the path removed, or "" where
        the public pages hide it), not of a mirror run."""
        return "remove" in self.options

    @property
    def failed(self) -> bool:
        return bool(
            self.errors
            or any(m.errors for m in self.mirrors)
            or any(c.errors for c in self.channels)
            or any(i.errors for i in self.installers)
        )

    def to_json(self) -> dict[str, Any]:
        # msgspec, not dataclasses.asdict: a first run lists every file it added (800,000 at
        # conda-forge scale), which asdict copies one deep-copied value at a time.
        return msgspec.to_builtins(self)

    @classmethod
    def from_json(cls, data: Any) -> RunReport:
        """A ledger record read back, its types checked (a ValueError when they do not fit):
        a damaged or foreign file in history/runs (a string where a time goes, a number where
        a mirror goes, a row of a list without a field it must have) would otherwise pass and
        break every later reader of the ledger (the sort by start time, the pages, ``status``,
        ``--due``)."""
        report = msgspec.convert(data, cls)
        for moment in (report.started, report.ended):
            # Times become dates on the pages: NaN or a year past 9999 would not format.
            if moment is not None and not 0.0 <= moment < LATEST_TIME:
                raise ValueError(f"run {report.id}: a time out of range: {moment!r}")
        return report


def iso_utc(moment: float | None) -> str | None:
    """A run's time (seconds since the epoch) as ISO 8601 in UTC, as ``sitegen status --json``
    and the notification hooks give it: ``2026-01-02T10:00:00Z``; None stays None."""
    if moment is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


class RunError(Exception):
    """A run ended by an unexpected error (the cause is chained); ``report`` is its record,
    saved as failed, so that the caller can still render, notify and exit as after any
    failed run."""

    def __init__(self, report: RunReport) -> None:
        super().__init__(report.errors[-1] if report.errors else "unexpected error")
        self.report = report
