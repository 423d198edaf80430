"""A run stopped or failing as a whole still records what it published and what it did not reach."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sitegen.cli import EXIT_FAILED, EXIT_OK, main
from sitegen.store.site import Site
from sitegen.sync import merging
from sitegen.sync.history import History
from sitegen.sync.report import (
    FAILED,
    STOPPED,
)
from sitegen.sync.run import MirrorOptions, run_mirror
from testkit.site import published, site_config, write_cli_config
from testkit.upstream import ExampleUpstream


@pytest.mark.integration
def test_sigterm_stops_the_run_and_records_it(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    """A slow upstream keeps the run in its download phase while SIGTERM arrives."""

    def slow(handler):
        time.sleep(0.5)
        return False  # then serve the file normally

    slowed = [
        fn
        for spec in example_upstream.packages
        if spec.subdir == "linux-64"
        for fn in spec.filenames
    ]
    assert len(slowed) > 10
    for fn in slowed:
        example_upstream.server.add_fault(f"/linux-64/{fn}", slow)
    site, config_path = write_cli_config(tmp_path, example_upstream.url, "{concurrency: 2}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sitegen", "mirror", "-c", str(config_path), "--no-progress"],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not example_upstream.server.count(status=200):
        time.sleep(0.05)  # wait until downloads are under way (polling, not a timed assertion)
    proc.terminate()
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    records = [json.loads(p.read_text()) for p in (site / "history" / "runs").glob("*.json")]
    assert [r["status"] for r in records] == ["stopped"]
    assert not list(site.rglob(".sitegen-tmp-*"))
    assert not (site / "c/x/linux-64/repodata.json").exists()  # nothing half-built published
    # The next run resumes: it completes and downloads only what the first did not finish.
    example_upstream.server.clear_faults()
    kept = (
        {p.name for p in (site / "c/x/linux-64").glob("*.conda")}
        if (site / "c/x/linux-64").is_dir()
        else set()
    )
    example_upstream.server.reset()
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == EXIT_OK
    fetched = {r.path.rsplit("/", 1)[-1] for r in example_upstream.server.requests}
    assert not (kept & fetched)


@pytest.mark.integration
def test_a_run_failing_as_a_whole_before_its_merge_lists_its_subdirs_as_not_reached(
    tmp_path: Path, example_upstream: ExampleUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A defect ends the run while it merges, before any subdir was (the merge stage raises
    what no stage expects; a channel added meanwhile): the record still lists every subdir
    the run was to rebuild, not reached, each with the files it goes on serving."""
    site, config_path = write_cli_config(tmp_path, example_upstream.url)
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == EXIT_OK
    (first,) = History(Site(site)).runs()
    served = {c.subdir: c.packages for c in first.channels}
    assert served["linux-64"], served
    with config_path.open("a") as config:
        config.write(f"  c/y:\n    url: {example_upstream.url}\n    subdirs: [linux-64]\n")

    def defect(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a defect in the merge")

    monkeypatch.setattr(merging, "merge_subdir", defect)
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == EXIT_FAILED
    (record,) = [r for r in History(Site(site)).runs() if r.id != first.id]
    assert record.status == FAILED
    assert any("unexpected error" in e and "a defect" in e for e in record.errors), record.errors
    rows = {(c.channel, c.subdir): (c.status, c.packages) for c in record.channels}
    assert rows == {
        ("c/x", "linux-64"): ("not-reached", served["linux-64"]),
        ("c/x", "noarch"): ("not-reached", served["noarch"]),
        ("c/y", "linux-64"): ("not-reached", 0),
        ("c/y", "noarch"): ("not-reached", 0),
    }, rows


@pytest.mark.integration
async def test_a_stop_while_repodata_is_renamed_in_still_records_what_was_published(
    tmp_path: Path, example_upstream: ExampleUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGINT lands while a subdir's metadata files are renamed into place: that subdir is
    published, so the stopped run's record lists what it added (the next run compares with
    the published state and never would)."""
    renaming = Site.write_many
    sent: list[int] = []

    def write_many(self: Site, items: list) -> list[Path]:
        written = renaming(self, items)
        if not sent and any(target.name == "repodata.json" for target, _data in items):
            sent.append(signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)  # the renames are done; the stop arrives now
        return written

    monkeypatch.setattr(Site, "write_many", write_many)
    site = tmp_path / "site"
    config = site_config(
        site, f"channels:\n  c/x:\n    url: {example_upstream.url}\n    subdirs: [linux-64]\n"
    )
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert sent and report.status == STOPPED
    (record,) = History(Site(site)).runs()
    assert record.status == STOPPED
    reported = {(c.subdir, fn) for c in record.channels for fn in c.added}
    on_disk = {
        (subdir, fn)
        for subdir in ("linux-64", "noarch")
        if (site / "c/x" / subdir / "repodata.json").is_file()
        for fn in published(site, "c/x", subdir)
    }
    assert on_disk, "nothing was published before the stop"
    assert reported == on_disk
    for c in record.channels:
        if c.added:
            assert c.status == "published" and c.packages == len(c.added)


@pytest.mark.integration
async def test_a_stop_does_not_wait_for_the_flush_of_the_downloads(
    tmp_path: Path, example_upstream: ExampleUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one flush before publishing may take minutes after many GB of downloads: SIGINT
    during it stops the run at once (nothing is published after a stop, and the flush writes
    nothing of its own), rather than when the disk has caught up."""
    release = threading.Event()
    flushing: list[bool] = []  # True once the flush ended

    def sync(self: Site, directories: object) -> None:
        flushing.append(False)
        os.kill(os.getpid(), signal.SIGINT)
        release.wait(20)  # a disk that takes its time; released by the test (or given up)
        flushing[-1] = True

    monkeypatch.setattr(Site, "sync", sync)
    site = tmp_path / "site"
    config = site_config(
        site, f"channels:\n  c/x:\n    url: {example_upstream.url}\n    subdirs: [linux-64]\n"
    )
    try:
        report = await run_mirror(config, MirrorOptions(progress=False))
        assert flushing == [False], "the run waited for the flush to end"
    finally:
        release.set()
    assert report.status == STOPPED
    assert not (site / "c/x/linux-64/repodata.json").exists()  # nothing published
    (record,) = History(Site(site)).runs()
    assert record.status == STOPPED
