"""``sitegen watch`` runs as a service for months: what it keeps from one publish to the next
does not grow with the publishes."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import pytest
import trio

from sitegen.config import parse_config
from sitegen.sync.report import RunReport
from sitegen.tools.watch import watch_site
from testkit.watch import CHANNEL, WITHIN, place, spec

pytestmark = pytest.mark.integration

PUBLISHES = 5


async def test_the_reports_of_past_publishes_are_not_kept(tmp_path: Path) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()
    site = tmp_path / "site"
    config = parse_config(
        f"output: {site}\nchannels:\n  {CHANNEL}:\n    path: {folder}\n    subdirs: [linux-64]\n"
    )
    runs = site / "history" / "runs"

    def recorded() -> int:
        """The runs recorded and ended (a run's record is saved at its start too)."""
        records = [json.loads(p.read_text()) for p in runs.glob("*.json")] if runs.is_dir() else []
        return sum(1 for r in records if r["status"] != "running")

    async def render() -> None:  # the pages are no concern here
        return None

    async with trio.open_nursery() as nursery:
        await nursery.start(watch_site, config, render)
        for n in range(PUBLISHES):
            # Each drop waits for the publish before it: one run each.
            with trio.fail_after(WITHIN * 3):
                while recorded() < n + 1:
                    await trio.sleep(0.05)
            place(tmp_path, folder, spec(f"p{n}"))
        with trio.fail_after(WITHIN * 3):
            while recorded() < PUBLISHES + 1:
                await trio.sleep(0.05)
        gc.collect()
        # The last publish's report may still be held as the loop goes round; no more. Only
        # this watch's reports count (by the ids it recorded): the process may hold others.
        ids = {p.stem for p in runs.glob("*.json")}
        kept = [o for o in gc.get_objects() if isinstance(o, RunReport) and o.id in ids]
        assert len(kept) <= 1, len(kept)
        nursery.cancel_scope.cancel()
