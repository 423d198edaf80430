"""Run reports built by hand, for the tests of the pages made from them."""

from __future__ import annotations

from sitegen.sync.report import (
    COMPLETED,
    INTERRUPTED,
    RUNNING,
    ChannelSubdirReport,
    MirrorReport,
    MirrorSubdirReport,
    RunReport,
)


def run(
    run_id: str,
    started: float,
    status: str,
    *,
    mirror_status: str = COMPLETED,
    added: tuple[str, ...] = (),
    errors: tuple[str, ...] = (),
) -> RunReport:
    """A run ``run_id`` of one mirror ``m`` into ``c/x`` (linux-64: 10 records read, 7 kept, 3
    left out) that added the files ``added``; it ends 65 s after ``started`` unless still
    running or interrupted."""
    mirror = MirrorReport(
        name="m",
        channel="c/x",
        source="https://up.example/ch",
        status=mirror_status,
        subdirs={
            "linux-64": MirrorSubdirReport(
                upstream="fetched",
                records=10,
                kept=7,
                excluded={"license excluded": 2},
                rejected={"invalid size": 1},
            )
        },
        errors=list(errors),
    )
    channel = ChannelSubdirReport(
        channel="c/x",
        subdir="linux-64",
        status="published",
        packages=7,
        added=list(added),
        downloaded_files=len(added),
        downloaded_bytes=100 * len(added),
    )
    ended = None if status in (RUNNING, INTERRUPTED) else started + 65
    return RunReport(
        id=run_id,
        started=started,
        ended=ended,
        status=status,
        mirrors=[mirror],
        channels=[channel],
    )
