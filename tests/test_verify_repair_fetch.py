"""``sitegen verify --repair`` fetching missing files: from the CEP-15 package host, from
the mirror that supplied each, and no more at once than the download concurrency."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sitegen.cli import main
from sitegen.tools.example_channel import PackageSpec, write_channel
from testkit.invariant import assert_site_invariant, make_sandbox
from testkit.small_channel import CHANNEL, mirrored_by_two, small_packages, write_config
from testkit.upstream import UpstreamHandler, UpstreamServer
from testkit.verify import MISSING

pytestmark = pytest.mark.integration

LINUX = "linux-64"


def test_repair_fetches_from_the_cep15_package_host(tmp_path: Path) -> None:
    """Upstream repodata whose ``info.base_url`` (CEP-15) puts the packages on another host:
    a missing file is fetched again from that host, as the mirror run fetched it."""
    meta_root, package_root = tmp_path / "meta", tmp_path / "packages"
    write_channel(package_root, small_packages(), zst=False)
    write_channel(meta_root, small_packages(), zst=False)
    for subdir in (LINUX, "noarch"):
        for entry in (meta_root / subdir).iterdir():
            if entry.name != "repodata.json":
                entry.unlink()  # the metadata host serves no package
    site = make_sandbox(tmp_path)
    with UpstreamServer(package_root) as packages, UpstreamServer(meta_root) as meta:
        for subdir in (LINUX, "noarch"):
            path = meta_root / subdir / "repodata.json"
            document = json.loads(path.read_bytes())
            document["info"]["base_url"] = f"{packages.url}/{subdir}/"
            path.write_text(json.dumps(document))
        config = write_config(tmp_path / "channels.yaml", site, meta.url, retries=1)
        assert main(["mirror", "-c", str(config), "--no-progress"]) == 0
        (site / CHANNEL / LINUX / MISSING).unlink()
        packages.reset()
        meta.reset()
        assert main(["verify", "-c", str(config), "--repair"]) == 0
        assert [r.path for r in packages.requests] == [f"/{LINUX}/{MISSING}"]
        assert not meta.requests
    assert_site_invariant(site)


def test_repair_of_a_missing_file_asks_the_mirror_that_supplied_it(tmp_path: Path) -> None:
    """In a channel fed by two mirrors, a missing file comes back from its own mirror, not
    from the channel's first one."""
    with mirrored_by_two(tmp_path) as (config, site, first, second):
        (site / CHANNEL / LINUX / MISSING).unlink()  # supplied by the second mirror
        first.reset()
        second.reset()
        assert main(["verify", "-c", str(config), "--repair"]) == 0
        assert [r.path for r in second.requests] == [f"/{LINUX}/{MISSING}"]
        assert not first.requests
    assert (site / CHANNEL / LINUX / MISSING).is_file()
    assert_site_invariant(site)


def test_repair_of_many_missing_files_keeps_to_the_download_concurrency(tmp_path: Path) -> None:
    """--repair downloads ``download.concurrency`` files at a time, as a run does, whatever
    ``per_host`` allows: a site missing more files than the process may open at once (a
    service's usual 1024 descriptors, thousands of files gone) is repaired whole."""
    files, fd_limit, concurrency = 120, 64, 2
    specs = [
        PackageSpec(f"pkg{i:03d}", "1.0", "h0_0", license="MIT", formats=("conda",))
        for i in range(files)
    ]
    root = tmp_path / "upstream"
    write_channel(root, specs, zst=True)
    site = make_sandbox(tmp_path)
    in_flight, most = 0, 0
    lock = threading.Lock()

    def counted(handler: UpstreamHandler) -> bool:
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
        time.sleep(0.01)  # long enough for the downloads started at once to overlap
        with lock:
            in_flight -= 1
        return False  # then serve the file

    with UpstreamServer(root) as server:
        config = tmp_path / "channels.yaml"
        config.write_text(
            f"output: {site}\n"
            f"download: {{concurrency: {concurrency}, per_host: 16, retries: 1, timeout: 10}}\n"
            f"channels:\n  {CHANNEL}: {{url: '{server.url}', subdirs: [{LINUX}]}}\n"
        )
        assert main(["mirror", "-c", str(config), "--no-progress"]) == 0
        packages = sorted((site / CHANNEL / LINUX).glob("*.conda"))
        assert len(packages) == files
        for path in packages:
            path.unlink()
            server.add_fault(f"/{LINUX}/{path.name}", counted)

        def limited() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit, fd_limit))

        done = subprocess.run(
            [sys.executable, "-m", "sitegen", "verify", "--repair", "-c", str(config)],
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=limited,
        )
    missing = [p.name for p in packages if not p.is_file()]
    failures = [line for line in done.stdout.splitlines() if "repair failed" in line]
    assert done.returncode == 0 and not missing, f"{len(missing)} missing: {failures[:3]}"
    assert most <= concurrency
    assert_site_invariant(site)
