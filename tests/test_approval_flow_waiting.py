"""Approvals made while something else holds on: another editor's lock on the approvals file,
a run holding the site, a run that failed before publishing the change."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sitegen.cli import main
from sitegen.store.site import Site
from sitegen.sync.history import History
from testkit.approvals import GATED, write_config
from testkit.site import published
from testkit.upstream import ExampleUpstream

pytestmark = pytest.mark.integration


def locks() -> list[str]:
    return Path("/proc/locks").read_text().splitlines()


def approve_changing_the_file_meanwhile(tmp_path: Path, data: bytes) -> tuple[int, str]:
    """`sitegen approve` (a process of its own) reads the configuration, then waits for the
    lock on the approvals file that another editor holds; meanwhile the file becomes ``data``.
    The command's exit status and stderr."""
    write_config(tmp_path, "https://conda.example.org/example")
    approvals = tmp_path / "approvals.yaml"
    approvals.write_text(
        f'- channel: "{GATED}"\n  spec: "zlib"\n  by: "a"\n  when: "2026-12-01"\n  why: "b"\n'
    )
    fd = os.open(approvals, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        st = os.fstat(fd)
        inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        args = ["approve", GATED, "python", "-c", "channels.yaml", "--by", "a", "--reason", "b"]
        command = subprocess.Popen(
            [sys.executable, "-m", "sitegen", *args],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        # A waiter for the lock shows in /proc/locks as "N: -> FLOCK ... <inode> ...".
        while not any("->" in line and inode in line.split() for line in locks()):
            assert command.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        os.pwrite(fd, data, 0)
    finally:
        os.close(fd)  # the lock goes with it
    _out, err = command.communicate(timeout=120)
    return command.returncode, err


@pytest.mark.parametrize(
    ("data", "message"),
    [
        # Its first byte is not UTF-8 either: read whole, the file would fail on that.
        (b"\xff" + b"#" * (16 * 1024 * 1024) + b"\n", "larger than 16 MiB"),
        (b"\xff\xfe# x\n", "not UTF-8 text"),
    ],
)
def test_an_approvals_file_changed_before_the_edit_is_read_within_the_cap(
    tmp_path: Path, data: bytes, message: str
) -> None:
    status, err = approve_changing_the_file_meanwhile(tmp_path, data)
    assert status == 2, err
    assert "Traceback" not in err
    assert f"{tmp_path / 'approvals.yaml'}: bad approvals file: {message}" in err
    assert (tmp_path / "approvals.yaml").read_bytes()[: len(data)] == data  # left as it was


def test_an_approval_made_while_a_run_holds_the_site_is_recorded_by_the_run_publishing_it(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    """Refused the site lock, `approve` and `revoke` leave their change to the next run: that
    run's history names who granted or revoked what, and why, as their own run would have."""
    from sitegen.store.lock import SiteLock

    config = write_config(tmp_path, example_upstream.url)
    args, site = ["-c", str(config)], tmp_path / "site"
    for _ in range(2):
        assert main(["mirror", *args, "--no-progress"]) == 0
    with SiteLock(site / ".sitegen"):
        assert main(["approve", GATED, "numpy 2.1.0", *args, "--by", "alice", "--reason", "r"]) == 3
    assert main(["mirror", *args, "--no-progress"]) == 0
    assert published(site, GATED, "linux-64")
    (granted,) = History(Site(site)).runs()[0].approvals
    assert (granted.action, granted.spec, granted.by, granted.why) == (
        "approve",
        "numpy 2.1.0",
        "alice",
        "r",
    )

    with SiteLock(site / ".sitegen"):
        assert main(["revoke", GATED, "numpy 2.1.0", *args, "--by", "bob", "--reason", "cve"]) == 3
    # A run of other mirrors leaves the change to the run that publishes the gated channel.
    assert main(["mirror", *args, "--no-progress", "--only", "cloud-example"]) == 0
    assert History(Site(site)).runs()[0].approvals == []
    assert main(["mirror", *args, "--no-progress"]) == 0
    assert published(site, GATED, "linux-64") == set()
    (revoked,) = History(Site(site)).runs()[0].approvals
    assert (revoked.action, revoked.spec, revoked.by, revoked.why) == (
        "revoke",
        "numpy 2.1.0",
        "bob",
        "cve",
    )
    assert main(["mirror", *args, "--no-progress"]) == 0
    assert History(Site(site)).runs()[0].approvals == []  # recorded once


def test_a_waiting_change_a_failed_run_did_not_publish_is_recorded_by_the_run_that_does(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    """A run that takes a waiting revocation and is held there by the deletion guard (it fails)
    goes on serving the packages: its record does not list the revocation, which waits for the
    run that publishes it, as does a change made on a frozen channel until the unfreeze."""
    from sitegen.store.lock import SiteLock

    config = write_config(tmp_path, example_upstream.url, max_fraction=0.5)
    args, site = ["-c", str(config)], tmp_path / "site"
    for _ in range(2):
        assert main(["mirror", *args, "--no-progress"]) == 0
    who = ["--by", "alice", "--reason", "r"]
    assert main(["approve", GATED, "numpy 2.1.0", *args, *who, "--with-dependencies"]) == 0
    approved = published(site, GATED, "linux-64")
    with SiteLock(site / ".sitegen"):
        assert main(["revoke", GATED, "numpy 2.1.0", *args, "--by", "bob", "--reason", "cve"]) == 3

    assert main(["mirror", *args, "--no-progress"]) == 1  # held by the guard
    assert published(site, GATED, "linux-64") == approved
    assert History(Site(site)).runs()[0].approvals == []
    force = ["--only", "internal-approved", "--force-delete"]
    assert main(["mirror", *args, "--no-progress", *force]) == 0
    assert published(site, GATED, "linux-64") == set()
    (revoked,) = History(Site(site)).runs()[0].approvals
    assert (revoked.action, revoked.spec, revoked.by) == ("revoke", "numpy 2.1.0", "bob")

    assert main(["freeze", GATED, *args]) == 0
    assert main(["approve", GATED, "python", *args, *who]) == 0
    assert History(Site(site)).runs()[0].approvals == []
    assert main(["unfreeze", GATED, *args]) == 0
    assert main(["mirror", *args, "--no-progress"]) == 0
    (granted,) = History(Site(site)).runs()[0].approvals
    assert (granted.action, granted.spec, granted.by) == ("approve", "python", "alice")
