"""``sitegen approve``, ``revoke`` and ``pending``: the approvals file and what waits.

``approve`` and ``revoke`` edit the approvals file (see :mod:`sitegen.approvals.edit`); the
command line then publishes the channel with a run of its mirror that records the change in
the history.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sitegen.approvals.edit import add_entry, editing, remove_entries, write_atomically
from sitegen.conda.records import Record
from sitegen.conda.version import RecordMatcher
from sitegen.config.approval_model import Approval, parse_expiry
from sitegen.config.approvals import spec_problem
from sitegen.config.model import ChannelConfig, SiteConfig
from sitegen.config.operator_files import OperatorFileError, read_text_capped
from sitegen.config.yaml_nodes import ConfigError
from sitegen.filters.feeds import with_kept_feeds
from sitegen.store.links_out import own_state_folder
from sitegen.store.site import Site
from sitegen.sync.approvals import (
    Admissible,
    Candidates,
    PendingItem,
    admissible,
    approve,
    lacking,
    load_candidates,
    pending,
    unsatisfied,
)
from sitegen.sync.closure_reasons import NOT_APPROVED
from sitegen.sync.report import ApprovalChange

BOM = "\ufeff"


def gated_channel(config: SiteConfig, path: str) -> ChannelConfig:
    wanted = path.strip("/")
    gated = [c for c in config.channels if c.approval is not None]
    for channel in gated:
        if channel.path == wanted:
            return channel
    names = ", ".join(c.path for c in gated) or "none"
    raise ConfigError(f"{path!r} is not an approval-gated channel; gated channels: {names}")


def check_spec(spec: str) -> None:
    if (why := spec_problem(spec)) is not None:
        raise ConfigError(why)


def grant(
    load: Callable[[], SiteConfig],
    channel_path: str,
    spec: str,
    *,
    by: str,
    why: str,
    with_dependencies: bool = False,
    expires: str | None = None,
    now: float | None = None,
) -> Approval:
    """Write an approval entry; the configuration is read again, so the file is checked."""
    channel = gated_channel(load(), channel_path)
    check_spec(spec)
    if not by.strip() or not why.strip():
        raise ConfigError("an approval needs --by and --reason")
    moment = time.time() if now is None else now
    if expires is not None:
        try:
            if parse_expiry(expires) <= moment:
                raise ConfigError(f"--expires {expires}: already past")
        except ValueError:
            raise ConfigError(
                f"--expires {expires!r}: expected a date such as 2027-06-30"
            ) from None
    when = dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    entry = Approval(channel.path, spec, by, when, why, expires, with_dependencies)
    _edit(load, channel, lambda text, name: add_entry(text, entry, name))
    return entry


def withdraw(load: Callable[[], SiteConfig], channel_path: str, spec: str) -> list[Approval]:
    """Remove the entries of a channel with this spec, as conda reads it (however spelled)."""
    channel = gated_channel(load(), channel_path)
    removed: list[Approval] = []

    def edit(text: str, name: str) -> str:
        new, gone = remove_entries(text, channel.path, spec, name)
        removed.extend(gone)
        return new

    _edit(load, channel, edit)
    if not removed:
        assert channel.approval is not None
        specs = ", ".join(repr(e.spec) for e in channel.approval.entries) or "none"
        raise ConfigError(f"no approval of {spec!r} for {channel.path}; approved specs: {specs}")
    return removed


def _edit(
    load: Callable[[], SiteConfig], channel: ChannelConfig, change: Callable[[str, str], str]
) -> None:
    assert channel.approval is not None
    # The file a link names, edited where it is: the rename that writes it would otherwise put
    # a file in the link's place, and what the link points to (a reviewed repository's copy)
    # would not get the change, nor the site the changes made there after.
    path = Path(os.path.realpath(channel.approval.file))
    try:
        with editing(path):  # one editor at a time: none loses another's entry
            _change(load, path, change)
    except OSError as exc:
        # approval.file in a folder that does not exist, or one sitegen may not write: the
        # configuration's fault, reported as such (exit 2), not a traceback.
        raise ConfigError(
            f"{path}: cannot write the approvals file: {exc.strerror or exc}"
        ) from None


def _change(load: Callable[[], SiteConfig], path: Path, change: Callable[[str, str], str]) -> None:
    """Read, change, write and check the file (under the lock of :func:`editing`)."""
    # Read again under the lock, so within the cap the configuration's own reading keeps:
    # the file may have changed since (grown, or turned binary). Decoded from bytes: read as
    # text, CRLF would become LF and the file be written back so.
    try:
        before = read_text_capped(path)
    except OperatorFileError as exc:
        raise ConfigError(f"{path}: bad approvals file: {exc}") from None
    # A byte order mark (Windows editors write one) is no part of the YAML: edited without
    # it, the lines keep the layout the edit reads, and it goes back in front.
    mark = BOM if before.startswith(BOM) else ""
    after = mark + change(before.removeprefix(mark), str(path))
    if after == before:
        return
    write_atomically(path, after)
    try:
        load()  # the whole configuration must still read
    except ConfigError:
        write_atomically(path, before)
        raise


def waiting(
    config: SiteConfig, channel_path: str, *, limit: int | None = 50, now: float | None = None
) -> tuple[list[PendingItem], int]:
    """The channel's candidates that no active approval covers and its own filters let
    through, newest first; and how many candidates those filters leave out."""
    channel, candidates, admitted, matcher = _gate(config, channel_path)
    assert channel.approval is not None
    approved = approve(
        candidates, channel.approval.entries, time.time() if now is None else now, matcher
    )
    items = pending(
        admitted.publishable, approved, matcher, limit=limit, left_out=admitted.left_out
    )
    return items, len(admitted.left_out)


@dataclass(frozen=True)
class Reach:
    """What an approval entry covers of what the gated channel's source publishes now."""

    matched: int  # the files its spec matches: none means a typo, or a version yet to come
    # The files it approves (with what they need, if it says so) that the channel's own
    # filters let through: none, with some matched, means the approval publishes nothing.
    published: int
    # The dependencies of the files it matches that nothing the channel publishes with every
    # active approval satisfies, each with why, as the run's dependency report says it
    # ("zlib >=1.2 (license excluded)", "python >=3.12 (not approved)"): a client of the
    # channel cannot install those files.
    lacking: tuple[str, ...] = ()


def reach(config: SiteConfig, entry: Approval, now: float | None = None) -> Reach:
    """What the entry approves now, how much of it the gated channel would publish, and what
    that lacks."""
    channel, candidates, admitted, matcher = _gate(config, entry.channel)
    assert channel.approval is not None
    moment = time.time() if now is None else now
    approved = approve(candidates, [entry], moment, matcher)
    published = [k for k in approved.records if k[1] in admitted.publishable.get(k[0], {})]
    everything = approve(candidates, channel.approval.entries, moment, matcher).records
    served: dict[str, dict[str, Record]] = {subdir: {} for subdir in candidates}
    for (subdir, fn), record in everything.items():
        if fn in admitted.publishable.get(subdir, {}):
            served[subdir][fn] = record
    missing = unsatisfied(served, approved.by_entry.get(entry, []), matcher)
    # What the source publishes besides: what the filters let through but no active entry
    # approves, and what they leave out, each with the reason the dependency report gives.
    unserved = dict(admitted.left_out)
    for subdir, records in admitted.publishable.items():
        for fn, record in records.items():
            if fn not in served[subdir]:
                unserved[(subdir, fn)] = (record, NOT_APPROVED)
    (lacks,) = lacking([missing], served, unserved, matcher)
    return Reach(len(approved.by_entry.get(entry, [])), len(published), lacks)


def _gate(
    config: SiteConfig, channel_path: str
) -> tuple[ChannelConfig, Candidates, Admissible, RecordMatcher]:
    """A gated channel, what its source publishes now, and how its own filters split that,
    as a run splits it."""
    root = config.output.absolute()
    # The advisories the last run's feeds held.
    config = with_kept_feeds(config, root, functools.partial(own_state_folder, Site(root)))
    channel = gated_channel(config, channel_path)
    assert channel.approval is not None
    candidates = load_candidates(root, channel.approval.source, channel.subdirs)
    matcher = RecordMatcher()
    admitted = admissible(candidates, (config.filters, channel.filters), matcher)
    return channel, candidates, admitted, matcher


def change_record(action: str, entry: Approval, scrub: Callable[[str], str]) -> ApprovalChange:
    """How a run's history records an approval granted or revoked. Who and why are the
    operator's text, and the run records are served: ``scrub`` (the configuration's, see
    sitegen.config.make_scrub) hides the secrets it holds in them, as the pages do."""
    return ApprovalChange(
        action,
        entry.channel,
        entry.spec,
        scrub(entry.by),
        scrub(entry.why),
        expires=entry.expires or None,
        with_dependencies="true" if entry.with_dependencies else None,
    )
