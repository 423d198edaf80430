"""``sitegen watch``: a real watch process publishes drops, replacements and deletions within
seconds, one publish per burst, never a half-copied file; it waits for the site lock and for a
folder that is absent or recreated, and stops cleanly on SIGTERM, and on SIGINT also while its
render waits for another or is stuck midway."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio

from sitegen import layout
from sitegen.config import parse_config
from sitegen.store.lock import SiteLock, SiteLocked, taking_turns
from sitegen.tools import watch as watch_tool
from testkit.local import drop
from testkit.site import assert_channel_consistent, sha256_of
from testkit.watch import CHANNEL, WITHIN, place, spec

pytestmark = pytest.mark.integration


def test_drop_replace_delete_and_a_burst(tmp_path: Path, watch_factory) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()
    for name in ("keep1", "keep2", "keep3"):
        place(tmp_path, folder, spec(name))
    watch = watch_factory(folder)
    watch.wait_for(lambda: len(watch.listed()) == 3, timeout=20)

    dropped = place(tmp_path, folder, spec("dropped"))
    watch.wait_for(lambda: dropped.name in watch.listed())

    old = watch.listed()[dropped.name]["sha256"]
    place(tmp_path, folder, spec("dropped", seed=1))
    watch.wait_for(lambda: watch.listed().get(dropped.name, {}).get("sha256", old) != old)
    assert watch.listed()[dropped.name]["sha256"] == sha256_of(dropped)

    dropped.unlink()
    # The listing drops it first, the file goes right after (a client never finds a listed
    # file missing): both within the promise.
    published_copy = watch.site / CHANNEL / "linux-64" / dropped.name
    watch.wait_for(lambda: dropped.name not in watch.listed() and not published_copy.exists())

    # A burst of 100 drops is one publish.
    before = watch.settled_runs()
    burst = [spec(f"burst{i:03}") for i in range(100)]
    built = [drop(tmp_path / "build", p, "conda") for p in burst]
    for path in built:
        shutil.copyfile(path, tmp_path / "build" / f".{path.name}.partial")
    for path in built:
        os.replace(tmp_path / "build" / f".{path.name}.partial", folder / path.name)
    watch.wait_for(lambda: len(watch.listed()) == 103, timeout=20)
    assert watch.settled_runs() == before + 1
    assert_channel_consistent(watch.site, CHANNEL)
    assert watch.stop() == 0


def test_moved_drops_stay_published_and_the_moves_start_no_more_runs(
    tmp_path: Path, watch_factory
) -> None:
    """``move: true``: the watch's own moves empty the folder; that is no deletion, and it does
    not keep the watch running."""
    folder = tmp_path / "incoming"
    folder.mkdir()
    first = place(tmp_path, folder, spec("first"))
    watch = watch_factory(folder, move=True)
    watch.wait_for(lambda: first.name in watch.listed() and not first.exists(), timeout=20)
    second = place(tmp_path, folder, spec("second"))
    watch.wait_for(lambda: second.name in watch.listed() and not second.exists())
    runs = watch.settled_runs(quiet=3.0)
    assert set(watch.listed()) == {first.name, second.name}
    assert list(folder.iterdir()) == []
    # Settled: the moves started no further runs, and the channel serves both files.
    time.sleep(2.0)
    assert watch.runs() == runs
    directory = watch.site / CHANNEL / "linux-64"
    assert {p.name for p in directory.glob("*.conda")} == {first.name, second.name}
    assert_channel_consistent(watch.site, CHANNEL)
    assert watch.stop() == 0


def test_a_site_inside_the_folder_starts_no_runs_of_its_own(tmp_path: Path, watch_factory) -> None:
    """The site may lie inside a local source's folder: what a publish writes there (its run
    record, pages, state) is no drop, or every run would start the next one."""
    folder = tmp_path / "incoming"
    folder.mkdir()
    first = place(tmp_path, folder, spec("first"))
    watch = watch_factory(folder, site=folder / "site")
    watch.wait_for(lambda: first.name in watch.listed(), timeout=20)
    second = place(tmp_path, folder, spec("second"))
    watch.wait_for(lambda: second.name in watch.listed())
    assert watch.settled_runs(within=15.0) == 2  # one at start, one for the drop
    assert_channel_consistent(watch.site, CHANNEL)
    assert watch.stop() == 0


def test_a_half_copied_file_is_not_published_until_complete(tmp_path: Path, watch_factory) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()
    place(tmp_path, folder, spec("first"))
    watch = watch_factory(folder)
    watch.wait_for(lambda: len(watch.listed()) == 1, timeout=20)
    before = watch.settled_runs()

    data = drop(tmp_path / "build", spec("slow"), "conda").read_bytes()
    target = folder / "slow-1.0-h0.conda"
    # Written in pieces over ~2 s (a slow copy): no publish reads it meanwhile.
    with open(target, "wb") as handle:
        step = max(1, len(data) // 10)
        for offset in range(0, len(data), step):
            handle.write(data[offset : offset + step])
            handle.flush()
            time.sleep(0.2)
            assert watch.runs() == before
    watch.wait_for(lambda: target.name in watch.listed())
    assert watch.listed()[target.name]["sha256"] == sha256_of(target)
    assert watch.settled_runs() == before + 1


def _acquired(lock: SiteLock) -> bool:
    try:
        lock.acquire()
    except SiteLocked:  # the watch is publishing: try again
        return False
    return True


def test_waits_for_the_lock_and_for_the_folder(tmp_path: Path, watch_factory) -> None:
    folder = tmp_path / "incoming"  # absent at start
    watch = watch_factory(folder)
    time.sleep(1.0)
    assert watch.proc.poll() is None
    folder.mkdir()
    first = place(tmp_path, folder, spec("first"))
    watch.wait_for(lambda: first.name in watch.listed())

    # Another run holds the site: the watch waits, then publishes.
    lock = SiteLock(watch.site / ".sitegen")
    watch.wait_for(lambda: _acquired(lock))
    try:
        second = place(tmp_path, folder, spec("second"))
        time.sleep(2.0)
        assert second.name not in watch.listed()
        assert watch.proc.poll() is None
    finally:
        lock.release()
    watch.wait_for(lambda: second.name in watch.listed())

    # The folder removed and recreated: watched again.
    moved = tmp_path / "moved"
    folder.rename(moved)
    time.sleep(1.0)
    moved.rename(folder)
    third = place(tmp_path, folder, spec("third"))
    watch.wait_for(lambda: third.name in watch.listed(), timeout=WITHIN + 2)
    started = time.monotonic()
    assert watch.stop() == 0
    assert time.monotonic() - started < 5


def test_a_folder_removed_and_made_again_at_once_is_watched_again(
    tmp_path: Path, watch_factory
) -> None:
    """``rm -rf incoming && mkdir incoming``: the filesystem (ext4) may give the new folder the
    inode number of the one just removed, so it looks like the same folder; it is watched all
    the same, and what is dropped into it is published."""
    folder = tmp_path / "incoming"
    folder.mkdir()
    first = place(tmp_path, folder, spec("first"))
    watch = watch_factory(folder)
    watch.wait_for(lambda: first.name in watch.listed(), timeout=20)
    runs = watch.runs()
    shutil.rmtree(folder)
    folder.mkdir()
    # The removal's publish (held by the deletion guard) comes and goes first: what is dropped
    # next is the new folder's to announce.
    watch.wait_for(lambda: watch.runs() > runs)
    watch.settled_runs()
    place(tmp_path, folder, spec("first"))
    second = place(tmp_path, folder, spec("second"))
    watch.wait_for(lambda: second.name in watch.listed(), timeout=WITHIN + 2)
    assert watch.stop() == 0


def test_a_publish_that_fails_on_an_unexpected_error_does_not_end_the_watch(
    tmp_path: Path, watch_factory
) -> None:
    """A publish ends on an error of the site itself (the subdir became a link out of the
    site, which sitegen will not write through): that run is recorded as failed, and the
    watch goes on publishing once the site is repaired."""
    folder = tmp_path / "incoming"
    folder.mkdir()
    watch = watch_factory(folder)
    first = place(tmp_path, folder, spec("first"))
    watch.wait_for(lambda: first.name in watch.listed())
    subdir = watch.site / CHANNEL / "linux-64"
    kept, outside = tmp_path / "kept-subdir", tmp_path / "outside"
    outside.mkdir()
    os.replace(subdir, kept)
    subdir.symlink_to(outside)
    runs = watch.runs()
    place(tmp_path, folder, spec("second"))
    watch.wait_for(lambda: watch.runs() > runs, timeout=30)
    assert list(outside.iterdir()) == []
    subdir.unlink()
    os.replace(kept, subdir)
    third = place(tmp_path, folder, spec("third"))
    watch.wait_for(lambda: third.name in watch.listed(), timeout=30)
    assert watch.proc.poll() is None


def test_sigint_while_the_render_waits_for_another_ends_the_watch(
    tmp_path: Path, watch_factory
) -> None:
    """Another process renders the site (a scheduled run) for as long as the test holds the
    render lock: the watch's render waits for it, and SIGINT ends the watch all the same."""
    folder = tmp_path / "incoming"
    folder.mkdir()
    first = place(tmp_path, folder, spec("first"))
    site = tmp_path / "site"
    render_lock = layout.render_dir(site) / layout.LOCK_NAME
    render_lock.parent.mkdir(parents=True)
    with taking_turns(render_lock):
        watch = watch_factory(folder)
        watch.wait_for(lambda: "another render" in watch.output(), timeout=30)
        assert first.name in watch.listed()
        watch.proc.send_signal(signal.SIGINT)
        # Exits while the render it gave up could not have finished (the lock is still ours).
        assert watch.proc.wait(15) == 0, watch.output()
        assert not (site / "index.html").exists()
    render_completes(watch.config, site)


def render_completes(config: Path, site: Path) -> None:
    """The next render (another process's) completes the pages a stopped render left."""
    rendered = subprocess.run(
        [sys.executable, "-m", "sitegen", "render", "-c", str(config)],
        capture_output=True,
        timeout=60,
    )
    assert rendered.returncode == 0, rendered.stderr
    assert (site / layout.subdir_page_path(CHANNEL, "linux-64")).is_file()


def test_sigint_during_a_render_stuck_midway_ends_the_watch(tmp_path: Path, watch_factory) -> None:
    """The render reads a listing cache that is a FIFO nobody writes to: it stays blocked
    midway (its assets written, not its listing pages) for as long as the test leaves the FIFO
    alone, and SIGINT ends the watch all the same."""
    folder = tmp_path / "incoming"
    folder.mkdir()
    first = place(tmp_path, folder, spec("first"))
    site = tmp_path / "site"
    cache_index = layout.listings_dir(site) / CHANNEL / "linux-64.json"
    cache_index.parent.mkdir(parents=True)
    os.mkfifo(cache_index)
    watch = watch_factory(folder)
    watch.wait_for(lambda: first.name in watch.listed(), timeout=30)
    watch.wait_for(lambda: (site / "assets").is_dir())  # the render is under way
    assert not (site / layout.subdir_page_path(CHANNEL, "linux-64")).exists()
    watch.proc.send_signal(signal.SIGINT)
    # Exits while the render it gave up could not have finished (nothing writes the FIFO).
    assert watch.proc.wait(15) == 0, watch.output()
    assert not (site / layout.subdir_page_path(CHANNEL, "linux-64")).exists()
    cache_index.unlink()
    render_completes(watch.config, site)
    assert not list(site.rglob(".sitegen-tmp-*"))


async def test_a_stop_signal_as_a_publish_ends_stops_the_watch_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A signal that comes while a run saves its record makes run_mirror raise
    KeyboardInterrupt once the record is saved; the watch then stops as on any signal (exit
    0 under a service manager), it does not crash out of its nursery."""
    folder = tmp_path / "incoming"
    folder.mkdir()
    config = parse_config(
        f"output: {tmp_path / 'site'}\nchannels:\n  {CHANNEL}:\n    path: {folder}\n"
        "    subdirs: [linux-64]\n"
    )
    runs: list[object] = []

    async def stopped_as_it_ended(config: object, options: object) -> None:
        runs.append(options)
        raise KeyboardInterrupt

    monkeypatch.setattr(watch_tool, "run_mirror", stopped_as_it_ended)
    escaped: list[BaseException] = []

    async def render() -> None:
        raise AssertionError("no render after a stop")

    async def watched(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await watch_tool.watch_site(config, render, task_status=task_status)
        except BaseException as exc:  # a KeyboardInterrupt must not end the test session
            escaped.append(exc)

    with trio.fail_after(WITHIN):
        async with trio.open_nursery() as nursery:
            await nursery.start(watched)
            (folder / "x-1.0-0.conda").write_bytes(b"not read: the run is faked")
    assert escaped == [] and len(runs) == 1
