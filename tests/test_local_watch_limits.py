"""``sitegen watch`` where the system will not watch a folder, wholly (inotify's limits reached:
it says why and polls the folder, so drops are still published) or in part (a subfolder it
may not read)."""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.require import unprivileged, without_inotify
from testkit.site import assert_channel_consistent
from testkit.watch import CHANNEL, place, spec

pytestmark = pytest.mark.integration


def test_a_folder_inotify_will_not_watch_is_polled(tmp_path: Path, watch_factory) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()
    first = place(tmp_path, folder, spec("first"))
    watch = watch_factory(folder, prefix=without_inotify())
    watch.wait_for(lambda: first.name in watch.listed(), timeout=20)
    before = watch.settled_runs()
    second = place(tmp_path, folder, spec("second"))
    watch.wait_for(lambda: second.name in watch.listed())
    assert watch.settled_runs() == before + 1
    # The reason is logged once, with what to raise; no warning on every look.
    output = watch.output()
    assert output.count("cannot watch") == 1, output
    assert "Too many open files" in output and "max_user_instances" in output, output
    assert_channel_consistent(watch.site, CHANNEL)
    assert watch.stop() == 0


def test_a_subfolder_the_watch_may_not_read_is_left_out_of_the_watch(
    tmp_path: Path, watch_factory
) -> None:
    """A folder that is a volume of its own holds ``lost+found``, which only root may read:
    the rest of the folder is watched all the same."""
    folder = tmp_path / "incoming"
    (folder / "lost+found").mkdir(parents=True)
    (folder / "lost+found").chmod(0)
    first = place(tmp_path, folder, spec("first"))
    watch = watch_factory(folder, prefix=tuple(unprivileged()))
    watch.wait_for(lambda: first.name in watch.listed(), timeout=20)
    second = place(tmp_path, folder, spec("second"))
    watch.wait_for(lambda: second.name in watch.listed())
    assert "cannot watch" not in watch.output()
    assert watch.stop() == 0


def test_a_polled_folder_the_watch_may_not_read_all_of_is_named_and_the_watch_goes_on(
    tmp_path: Path, watch_factory
) -> None:
    """Polling (forced here as on WSL, where watchfiles polls) walks the whole folder and fails
    on a subfolder it may not read: the watch names it and goes on, and stops cleanly."""
    folder = tmp_path / "incoming"
    (folder / "lost+found").mkdir(parents=True)
    (folder / "lost+found").chmod(0)
    place(tmp_path, folder, spec("first"))
    prefix = (*unprivileged(), "env", "WATCHFILES_FORCE_POLLING=1")
    watch = watch_factory(folder, prefix=prefix)
    watch.wait_for(lambda: "trying again" in watch.output(), timeout=20)
    output = watch.output()
    assert "lost+found: Permission denied" in output and "Traceback" not in output, output
    assert watch.stop() == 0
