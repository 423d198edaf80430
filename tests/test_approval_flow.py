"""The approval round trip through the command line, a real nginx and py-rattler: what is not
approved does not resolve, approving with dependencies makes the environment install, revoking
takes it away again."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sitegen.cli import main
from sitegen.layout import approved_page_path, pending_page_path, run_page_path
from sitegen.store.site import Site
from sitegen.sync.history import History
from testkit.client import solve_and_install, solve_only
from testkit.site import published
from testkit.upstream import ExampleUpstream

pytestmark = pytest.mark.integration

SOURCE, GATED = "cloud/example", "internal/approved"


def write_config(tmp_path: Path, upstream: str, max_fraction: float = 1.0) -> Path:
    config = tmp_path / "channels.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            output: {tmp_path / "site"}
            download: {{concurrency: 4, per_host: 4, retries: 1, timeout: 10}}
            prune: {{max_fraction: {max_fraction}}}
            channels:
              {SOURCE}:
                url: {upstream}
                subdirs: [linux-64]
              {GATED}:
                approval: {{from: {SOURCE}}}
            """
        )
    )
    return config


def test_a_revocation_the_deletion_guard_holds_names_the_command_and_force_delete_passes(
    example_upstream: ExampleUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Held by the guard, a revocation has already left the approvals file: the guard's own
    advice ("run again") would find nothing to revoke, so the command to publish it is named;
    ``revoke --force-delete`` publishes at once."""
    config = write_config(tmp_path, example_upstream.url, max_fraction=0.5)
    args = ["-c", str(config)]
    site = tmp_path / "site"
    assert main(["mirror", *args, "--no-progress"]) == 0
    assert main(["mirror", *args, "--no-progress"]) == 0
    approve = ["approve", GATED, "numpy 2.1.0", *args, "--by", "alice", "--reason", "r"]
    assert main([*approve, "--with-dependencies"]) == 0
    approved = published(site, GATED, "linux-64")
    assert approved

    caplog.clear()
    assert main(["revoke", GATED, "numpy 2.1.0", *args]) == 1
    assert published(site, GATED, "linux-64") == approved
    assert "numpy" not in (tmp_path / "approvals.yaml").read_text()
    assert "to publish it: sitegen mirror --only internal-approved --force-delete" in caplog.text

    assert main([*approve, "--with-dependencies"]) == 0
    assert main(["revoke", GATED, "numpy 2.1.0", *args, "--force-delete"]) == 0
    assert published(site, GATED, "linux-64") == set()


def test_approve_with_dependencies_installs_and_revoke_removes(
    example_upstream: ExampleUpstream, nginx_server_factory, tmp_path: Path, capsys
) -> None:
    config = write_config(tmp_path, example_upstream.url)
    args = ["-c", str(config)]
    site = tmp_path / "site"
    assert main(["mirror", *args, "--no-progress"]) == 0
    # The gated channel reads its source as published when a run starts: the second run sees it.
    assert main(["mirror", *args, "--no-progress"]) == 0
    assert published(site, SOURCE, "linux-64")
    assert published(site, GATED, "linux-64") == set()
    nginx = nginx_server_factory(site)
    url = f"{nginx.url}/{GATED}"
    with pytest.raises(Exception, match=r"(?i)numpy"):
        solve_only([url], ["numpy"], cache_dir=tmp_path / "cache-0")

    capsys.readouterr()
    assert main(["pending", GATED, *args]) == 0
    listing = capsys.readouterr().out
    assert "linux-64/numpy-2.1.0-py312hf9d485c_0.conda" in listing
    assert "would add: linux-64/libopenblas-0.3.27-pthreads_hefa10cb_0.conda" in listing

    approve = ["approve", GATED, "numpy 2.1.0", *args, "--by", "alice", "--reason", "forecasting"]
    assert main([*approve, "--with-dependencies", "--expires", "2099-12-31"]) == 0
    entries = (tmp_path / "approvals.yaml").read_text()
    assert '- channel: "internal/approved"\n  spec: "numpy 2.1.0"\n  by: "alice"\n' in entries
    assert '  expires: "2099-12-31"\n  with_dependencies: true\n' in entries
    names = {fn.rsplit("-", 2)[0] for fn in published(site, GATED, "linux-64")}
    assert names == {"numpy", "python", "libopenblas", "zlib"}
    installed = solve_and_install([url], ["numpy"], tmp_path / "env", cache_dir=tmp_path / "c1")
    assert {p.name for p in installed} == {"numpy", "python", "libopenblas", "zlib"}
    assert all(p.url.startswith(f"{url}/linux-64/") for p in installed)
    latest = History(Site(site)).runs()[0]
    assert latest.to_json()["approvals"] == [
        {
            "action": "approve",
            "channel": GATED,
            "spec": "numpy 2.1.0",
            "by": "alice",
            "why": "forecasting",
            "expires": "2099-12-31",
            "with_dependencies": "true",
        }
    ]
    assert [m.name for m in latest.mirrors] == ["internal-approved"]
    # A lost file of the gated channel is repaired from its source channel.
    lost = site / GATED / "linux-64" / next(p.file_name for p in installed if p.name == "zlib")
    lost.unlink()
    assert main(["verify", *args, "--repair"]) == 0
    assert lost.is_file()

    assert main(["revoke", GATED, "numpy  2.1.0", *args, "--by", "bob", "--reason", "CVE"]) == 0
    assert published(site, GATED, "linux-64") == set()
    assert "numpy" not in (tmp_path / "approvals.yaml").read_text()
    with pytest.raises(Exception, match=r"(?i)numpy"):
        solve_only([url], ["numpy"], cache_dir=tmp_path / "cache-2")
    revoked = History(Site(site)).runs()[0].approvals
    assert [(r.action, r.by, r.why) for r in revoked] == [("revoke", "bob", "CVE")]
    record = json.loads((site / GATED / "linux-64" / "repodata.json").read_text())
    assert record["packages"] == {} and record["packages.conda"] == {}


def zlib_refused(tmp_path: Path, url: str) -> tuple[list[str], Path]:
    """The gated channel with its own filters refusing zlib (licence "Zlib", which
    libopenblas needs), its source mirrored twice: the CLI's config arguments and the site."""
    config = write_config(tmp_path, url)
    config.write_text(config.read_text() + "    filters: {licenses: {exclude: [Zlib]}}\n")
    args = ["-c", str(config)]
    assert main(["mirror", *args, "--no-progress"]) == 0
    assert main(["mirror", *args, "--no-progress"]) == 0
    return args, tmp_path / "site"


def test_a_dependency_the_gated_channels_filters_leave_out_is_reported_unsatisfied(
    example_upstream: ExampleUpstream, tmp_path: Path, caplog
) -> None:
    # zlib (licence "Zlib") is what libopenblas needs; the gated channel's own filters refuse it.
    args, site = zlib_refused(tmp_path, example_upstream.url)
    approve = ["approve", GATED, "numpy 2.1.0", *args, "--by", "alice", "--reason", "forecasting"]
    assert main([*approve, "--with-dependencies"]) == 0
    assert "needs what internal/approved does not publish: zlib >=1.2.13,<2.0a0; see the run's" in (
        caplog.text
    )
    names = {fn.rsplit("-", 2)[0] for fn in published(site, GATED, "linux-64")}
    assert names == {"numpy", "python", "libopenblas"}
    latest = History(Site(site)).runs()[0]
    (gated,) = latest.mirrors
    blas = "libopenblas-0.3.27-pthreads_hefa10cb_0"
    assert [(u.subdir, u.spec, u.needed_by) for u in gated.unsatisfied] == [
        ("linux-64", "zlib >=1.2.13,<2.0a0", f"{blas}.conda"),
        ("linux-64", "zlib >=1.2.13,<2.0a0", f"{blas}.tar.bz2"),
    ]
    assert "internal-approved: 2 dependencies could not be satisfied" in caplog.text
    page = (site / run_page_path(latest.id)).read_text()
    assert "2 dependencies could not be satisfied" in page and "zlib &gt;=1.2.13" in page


def test_pending_leaves_out_what_the_gated_channels_filters_drop(
    example_upstream: ExampleUpstream, tmp_path: Path, capsys
) -> None:
    args, site = zlib_refused(tmp_path, example_upstream.url)
    capsys.readouterr()
    assert main(["pending", GATED, *args]) == 0
    listing = capsys.readouterr().out
    # zlib can never be published there: neither listed nor counted among what numpy would add
    # (only named as what it would lack).
    assert "zlib-" not in listing
    assert "linux-64/numpy-2.1.0-py312hf9d485c_0.conda" in listing
    assert "4 more are not listed: the channel's filters leave them out" in listing
    page = (site / pending_page_path(GATED)).read_text()
    assert "zlib-" not in page and "py312hf9d485c_0" in page and "libopenblas" in page
    assert "4 more of cloud/example are not listed" in page


def test_the_approved_page_marks_a_dependency_the_filters_leave_out_as_unpublished(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    args, site = zlib_refused(tmp_path, example_upstream.url)
    approve = ["approve", GATED, "numpy 2.1.0", *args, "--by", "alice", "--reason", "forecasting"]
    assert main([*approve, "--with-dependencies"]) == 0
    page = (site / approved_page_path(GATED)).read_text()
    approved, left_out = page.split("Approved as dependencies", 1)[1].split("Left out by", 1)
    # libopenblas is published beside numpy; zlib, which it needs, is not (its licence).
    assert "libopenblas-0.3.27" in approved and "zlib" not in approved
    assert "linux-64/zlib-1.3.1" in left_out and "license excluded" in left_out


def test_pending_says_what_a_candidate_would_lack_when_the_filters_drop_a_dependency(
    example_upstream: ExampleUpstream, tmp_path: Path, capsys
) -> None:
    args, site = zlib_refused(tmp_path, example_upstream.url)
    capsys.readouterr()
    assert main(["pending", GATED, *args]) == 0
    numpy = "linux-64/numpy-2.1.0-py312hf9d485c_0.conda"
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith(numpy)]
    # numpy needs libopenblas, which needs zlib: approved, numpy would not install.
    assert line.endswith("would lack: zlib >=1.2.13,<2.0a0 (license excluded)")
    page = (site / pending_page_path(GATED)).read_text()
    row = page.split("<b>numpy</b>", 1)[1].split("</tr>", 1)[0]
    assert "Would lack" in row and "zlib &gt;=1.2.13,&lt;2.0a0" in row and "license excluded" in row


def test_the_approved_page_marks_a_directly_approved_file_the_filters_leave_out(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    args, site = zlib_refused(tmp_path, example_upstream.url)
    approve = ["approve", GATED, "zlib 1.3.1", *args, "--by", "alice", "--reason", "base"]
    assert main(approve) == 0
    assert published(site, GATED, "linux-64") == set()
    page = (site / approved_page_path(GATED)).read_text()
    row = page.split('<code class="wrap-any">zlib 1.3.1</code>', 1)[1].split("</tr>", 1)[0]
    # Matched, but never published: the licence filter of the gated channel refuses it.
    assert "linux-64/zlib-1.3.1" in row
    assert "not published" in row and "license excluded" in row


def test_a_frozen_gated_channel_reports_what_its_published_packages_lack(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    args, site = zlib_refused(tmp_path, example_upstream.url)
    approve = ["approve", GATED, "numpy 2.1.0", *args, "--by", "alice", "--reason", "forecasting"]
    assert main([*approve, "--with-dependencies"]) == 0
    before = published(site, GATED, "linux-64")
    assert main(["freeze", GATED, *args, "--by", "bob", "--reason", "audit"]) == 0

    assert main(["mirror", *args, "--no-progress"]) == 0

    assert published(site, GATED, "linux-64") == before
    gated = next(m for m in History(Site(site)).runs()[0].mirrors if m.name == "internal-approved")
    # What it goes on publishing still lacks zlib, as it did when the freeze began.
    blas = "libopenblas-0.3.27-pthreads_hefa10cb_0"
    assert [(u.subdir, u.spec, u.needed_by) for u in gated.unsatisfied] == [
        ("linux-64", "zlib >=1.2.13,<2.0a0", f"{blas}.conda"),
        ("linux-64", "zlib >=1.2.13,<2.0a0", f"{blas}.tar.bz2"),
    ]


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


def test_a_public_gated_channel_of_a_private_source_names_no_file_it_does_not_publish(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    """Its approved page is public, its candidates the private source's packages: what the
    gated channel's filters leave out of them (zlib, by its licence) is published nowhere
    public, so the page names none of them, as it has no pending page."""
    config = write_config(tmp_path, example_upstream.url)
    text = config.read_text().replace("[linux-64]\n", "[linux-64]\n    access: private\n", 1)
    config.write_text(text + "    filters: {licenses: {exclude: [Zlib]}}\n")
    args, site = ["-c", str(config)], tmp_path / "site"
    for _ in range(2):  # the gated channel reads its source as published when a run starts
        assert main(["mirror", *args, "--no-progress"]) == 0
    approve = [*args, "--by", "alice", "--reason", "forecasting"]
    assert main(["approve", GATED, "numpy 2.1.0", *approve, "--with-dependencies"]) == 0
    assert main(["approve", GATED, "zlib 1.3.1", *approve]) == 0
    assert not any(fn.startswith("zlib-") for fn in published(site, GATED, "linux-64"))
    page = (site / approved_page_path(GATED)).read_text()
    assert "linux-64/libopenblas-0.3.27" in page  # published: public anyway
    assert "zlib-" not in page and "license excluded" not in page


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


def test_approve_and_revoke_on_a_frozen_gated_channel_say_nothing_is_published_yet(
    example_upstream: ExampleUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The file changes, the channel does not: a revocation (a CVE, say) must not read as if
    the packages had left the channel while they are still served."""
    config = write_config(tmp_path, example_upstream.url)
    args, site = ["-c", str(config)], tmp_path / "site"
    for _ in range(2):
        assert main(["mirror", *args, "--no-progress"]) == 0
    who = ["--by", "alice", "--reason", "r"]
    assert main(["approve", GATED, "numpy 2.1.0", *args, *who]) == 0
    approved = published(site, GATED, "linux-64")
    assert main(["freeze", GATED, *args]) == 0

    caplog.clear()
    assert main(["revoke", GATED, "numpy 2.1.0", *args, *who]) == 0
    assert published(site, GATED, "linux-64") == approved
    frozen = f"{GATED} is frozen: the change is published when it is unfrozen"
    assert frozen in caplog.text
    caplog.clear()
    assert main(["approve", GATED, "python", *args, *who]) == 0
    assert frozen in caplog.text

    assert main(["unfreeze", GATED, *args]) == 0
    caplog.clear()
    assert main(["mirror", *args, "--no-progress"]) == 0
    assert {fn.rsplit("-", 2)[0] for fn in published(site, GATED, "linux-64")} == {"python"}


def test_approving_a_package_without_what_it_needs_says_it_will_not_install(
    example_upstream: ExampleUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Approved alone, numpy is published without python: a client of the gated channel finds
    nothing to solve it with, so the command says so rather than exiting in silence."""
    config = write_config(tmp_path, example_upstream.url)
    args = ["-c", str(config)]
    for _ in range(2):
        assert main(["mirror", *args, "--no-progress"]) == 0
    who = ["--by", "alice", "--reason", "r"]
    caplog.clear()
    assert main(["approve", GATED, "numpy 2.1.0", *args, *who]) == 0
    assert f"'numpy 2.1.0' needs what {GATED} does not publish: " in caplog.text
    assert "python >=3.12,<3.13.0a0" in caplog.text and "--with-dependencies" in caplog.text
    caplog.clear()
    assert main(["approve", GATED, "numpy 2.1.0", *args, *who, "--with-dependencies"]) == 0
    assert "does not publish" not in caplog.text


def test_a_secret_written_in_an_approvals_reason_is_hidden_on_the_pages_and_in_the_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reason is the operator's free text, shown on the approved page and the run's page
    and kept in the run's record (served as JSON): the value of a ${ENV} the configuration
    holds as a secret is hidden there, as it is in a freeze's reason."""
    from sitegen.tools.example_channel import example_packages, write_channel
    from testkit.upstream import UpstreamServer

    token, env = "tk-8c1f55d02e7a4b39", "SITEGEN_APPROVALS_TOKEN"
    monkeypatch.setenv(env, token)
    root = tmp_path / "upstream"
    write_channel(root / "t" / token / "chan", example_packages(seed=0), zst=True)
    with UpstreamServer(root) as server:
        config = write_config(tmp_path, f"{server.url}/t/${{{env}}}/chan")
        args, site = ["-c", str(config)], tmp_path / "site"
        for _ in range(2):
            assert main(["mirror", *args, "--no-progress"]) == 0
        why = f"built with {token} for the release"
        assert main(["approve", GATED, "numpy 2.1.0", *args, "--by", "alice", "--reason", why]) == 0
    assert published(site, GATED, "linux-64")
    page = (site / approved_page_path(GATED)).read_text()
    assert "built with *** for the release" in page
    run = History(Site(site)).runs()[0]
    assert [a.why for a in run.approvals] == ["built with *** for the release"]
    for path in (approved_page_path(GATED), run_page_path(run.id), f"history/runs/{run.id}.json"):
        assert token not in (site / path).read_text(), path
