"""Turn each approval-gated channel into a mirror a run can execute.

When a run starts, a gated channel's one mirror is pointed at the published directory of its
source channel (``file://``) and given, as its own filters, an allowlist of exactly the files
its approvals cover now (see :mod:`sitegen.sync.approvals`). From there it is an ordinary
mirror: verified copies, the deletion guard, the report. Because the allowlist is part of the
run's configuration, a granted, revoked or expired approval changes the run's inputs.

The source is read as published when the run starts, so a package that arrives in the source
during a run reaches the gated channel at the next run.
"""

from __future__ import annotations

from dataclasses import replace

from sitegen.conda.version import RecordMatcher
from sitegen.config.model import ChannelConfig, FilterSpec, SiteConfig
from sitegen.filters.lockfile_read import Pin
from sitegen.filters.lockfiles import KEY as LOCKFILES_KEY
from sitegen.filters.lockfiles import LockfilePolicy
from sitegen.sync.approvals import approve, load_candidates


def resolve_gates(config: SiteConfig, now: float) -> SiteConfig:
    """The configuration with every gated channel's mirror ready to run."""
    if not any(c.approval for c in config.channels):
        return config
    channels = tuple(_resolve(config, c, now) if c.approval else c for c in config.channels)
    return replace(config, channels=channels)


def with_gate_sources(config: SiteConfig) -> SiteConfig:
    """The configuration with each gated channel's mirror pointed at its source directory, for
    what fetches files without running the selection (``sitegen verify --repair``)."""
    channels = tuple(
        replace(c, mirrors=(replace(c.mirrors[0], url=_source_url(config, c)),))
        if c.approval
        else c
        for c in config.channels
    )
    return replace(config, channels=channels)


def _source_url(config: SiteConfig, channel: ChannelConfig) -> str:
    assert channel.approval is not None
    return (config.output.absolute() / channel.approval.source).as_uri()


def _resolve(config: SiteConfig, channel: ChannelConfig, now: float) -> ChannelConfig:
    gate = channel.approval
    assert gate is not None
    root = config.output.absolute()
    candidates = load_candidates(root, gate.source, channel.subdirs)
    approved = approve(candidates, gate.entries, now, RecordMatcher())
    pins = tuple(
        Pin(
            subdir=subdir,
            fn=fn,
            url=f"{gate.source}/{subdir}/{fn}",
            sha256=record.sha256,
            md5=record.raw.get("md5"),
        )
        for (subdir, fn), record in sorted(approved.records.items())
    )
    allowlist = FilterSpec.from_values({LOCKFILES_KEY: LockfilePolicy(((gate.file, pins),))})
    (mirror,) = channel.mirrors
    source = replace(mirror, url=_source_url(config, channel), filters=allowlist)
    gate = replace(gate, dependency_roots=tuple(approved.roots))
    return replace(channel, mirrors=(source,), approval=gate)
