"""One run at a time: the site lock, taken over from a killed holder, and dry runs that
write none."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sitegen.cli import EXIT_CONFIG, EXIT_LOCKED, EXIT_OK, main
from sitegen.store.lock import SiteLock, SiteLocked
from testkit.site import write_cli_config
from testkit.site_lock import lock_held
from testkit.upstream import ExampleUpstream


@pytest.mark.integration
def test_second_concurrent_run_exits_3(tmp_path: Path, example_upstream: ExampleUpstream) -> None:
    site, config_path = write_cli_config(tmp_path, example_upstream.url)
    with SiteLock(site / ".sitegen"):
        assert main(["mirror", "-c", str(config_path), "--no-progress"]) == EXIT_LOCKED
        with pytest.raises(SiteLocked, match=str(os.getpid())):
            SiteLock(site / ".sitegen").acquire()
    # The lock dies with its holder: the next run proceeds.
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == EXIT_OK
    assert main(["mirror", "-c", str(config_path), "--only", "zzz"]) == EXIT_CONFIG


@pytest.mark.integration
def test_lock_of_a_killed_process_is_taken_over(tmp_path: Path) -> None:
    state = tmp_path / "site" / ".sitegen"
    with lock_held(state) as holder:
        with pytest.raises(SiteLocked):
            SiteLock(state).acquire()
        holder.kill()
        holder.wait()
        lock = SiteLock(state)
        lock.acquire()  # the kernel released the dead holder's flock: no stale lock
        lock.release()


@pytest.mark.unit
def test_a_lock_that_may_not_create_leaves_a_missing_site_alone(tmp_path: Path) -> None:
    state = tmp_path / "site" / ".sitegen"
    with SiteLock(state, create=False):
        assert not (tmp_path / "site").exists()
    # Once the site exists it excludes a concurrent run like any lock.
    state.mkdir(parents=True)
    with SiteLock(state, create=False), pytest.raises(SiteLocked):
        SiteLock(state).acquire()


@pytest.mark.unit
def test_a_lock_that_writes_nothing_holds_only_the_file_a_run_left(tmp_path: Path) -> None:
    state = tmp_path / "site" / ".sitegen"
    state.mkdir(parents=True)
    with SiteLock(state, writes=False):
        assert list(state.iterdir()) == []
    (state / "lock").write_text("4242\n")  # left by the last run
    # Held, it keeps runs out; they name its holder, not the pid in the file.
    with SiteLock(state, writes=False), pytest.raises(SiteLocked, match=f"pid {os.getpid()}"):
        SiteLock(state).acquire()
    assert (state / "lock").read_text() == "4242\n"


@pytest.mark.integration
def test_a_dry_run_of_a_new_site_leaves_nothing_on_disk(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    site, config_path = write_cli_config(tmp_path, example_upstream.url)
    assert main(["mirror", "-c", str(config_path), "--dry-run", "--no-progress"]) == EXIT_OK
    assert not site.exists()


@pytest.mark.integration
def test_a_dry_run_writes_no_lock_into_the_site(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    site, config_path = write_cli_config(tmp_path, example_upstream.url)
    dry_run = ["mirror", "-c", str(config_path), "--dry-run", "--no-progress"]
    # Before the first run: a freeze made the state folder, where no run has left a lock.
    assert main(["freeze", "c/x", "-c", str(config_path)]) == EXIT_OK
    assert main(dry_run) == EXIT_OK
    assert not (site / ".sitegen/lock").exists()
    # After a run: the lock file a run left keeps its pid and time, untouched.
    assert main(["unfreeze", "c/x", "-c", str(config_path)]) == EXIT_OK
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == EXIT_OK
    lock = site / ".sitegen/lock"
    lock.write_text("4242\n")
    os.utime(lock, ns=(10**18, 10**18))
    assert main(dry_run) == EXIT_OK
    assert lock.read_text() == "4242\n" and lock.stat().st_mtime_ns == 10**18
