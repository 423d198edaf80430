"""A channel updated from v1 to v2 under a ``sitegen mirror`` child process that is killed or
stopped part way, as the crash tests make it (:func:`built_world`), and what they kill it with.

v2 adds packages (served with a small delay, so that the download phase is long enough to land
in), drops some and patches metadata only; v3 re-uploads one file with other bytes under its
name. A :data:`Trigger` watches the site and the process and says when to send the signal.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import trio
import zstandard

from sitegen.cli import main
from sitegen.config import SiteConfig, load_config
from sitegen.store.site import TEMP_PREFIX
from sitegen.sync.report import RunReport
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import PackageSpec, example_packages, write_channel
from testkit.faults import delay
from testkit.invariant import assert_site_invariant, make_sandbox, site_digest
from testkit.site import rewrite_repodata
from testkit.small_channel import CHANNEL
from testkit.upstream import UpstreamServer

# Every run stamps the records new to it with this time (CEP-47 indexed_timestamp, from
# SOURCE_DATE_EPOCH), so that the reference site and each killed-and-rerun site can agree
# byte for byte.
SOURCE_DATE_EPOCH = "1764547200"
PACKAGE_DELAY = 0.03  # seconds the upstream waits before answering each new package
SUBDIRS = ("linux-64", "noarch")
DROPPED = {"readline", "ghostscript", "mystery-tool", "futures"}


def v1_packages() -> list[PackageSpec]:
    """The channel the template site holds."""
    return example_packages(seed=0)


def v2_packages() -> list[PackageSpec]:
    """v1 without :data:`DROPPED`, with twelve new packages (linux-64 and noarch)."""
    kept = [s for s in v1_packages() if s.name not in DROPPED]
    new = [
        PackageSpec(
            f"newpkg{i}",
            f"1.{i}",
            f"h{i}_0",
            subdir="noarch" if i % 4 == 0 else "linux-64",
            license="MIT",
            payload_size=512,
        )
        for i in range(12)
    ]
    return kept + new


def v3_packages() -> list[PackageSpec]:
    """v2, but upstream re-uploaded blas (mkl) with other bytes under the same file name."""
    return [
        replace(s, payload_size=s.payload_size + 7) if s.build == "mkl" else s
        for s in v2_packages()
    ]


def hotfix(document: dict[str, Any]) -> None:
    """A repodata patch (as conda-forge's hotfixes): metadata changes, the files do not."""
    for section in ("packages", "packages.conda"):
        for record in document[section].values():
            if record["name"] == "python":
                record["license"] = "PSF-2.0"


def serve_run_exports(channel: Path, specs: list[PackageSpec], generation: str) -> None:
    """Upstream's CEP-12 run_exports.json (and .zst) for every subdir: each file exports its
    name, pinned by the generation, so that every file's entry changes between v1 and v2."""
    for subdir in SUBDIRS:
        sections: dict[str, dict[str, Any]] = {"packages": {}, "packages.conda": {}}
        for spec in specs:
            for fn in spec.filenames if spec.subdir == subdir else ():
                section = "packages.conda" if fn.endswith(".conda") else "packages"
                exports = {"weak": [f"{spec.name} >={spec.version} # {generation}"]}
                sections[section][fn] = {"run_exports": exports}
        body = json.dumps({"info": {"subdir": subdir, "version": 1}, **sections}).encode()
        (channel / subdir / "run_exports.json").write_bytes(body)
        (channel / subdir / "run_exports.json.zst").write_bytes(zstandard.compress(body))


@dataclass
class World:
    """What :func:`built_world` made, and the phases the kills landed in."""

    tmp: Path
    server: UpstreamServer
    config: Path  # mirrors /v2; output is given per run with --out
    template: Path  # a site holding v1
    reference: dict[str, str]  # site_digest of v1 -> v2, uninterrupted
    duration: float  # from the run's history record appearing to the process exiting
    new_files: set[str]  # relative paths v2 adds
    gone_files: set[str]  # relative paths v2 deletes
    phases: Counter[str] = field(default_factory=Counter)


def start_mirror(config: Path, site: Path) -> subprocess.Popen[bytes]:
    """``python -m sitegen mirror`` of ``config`` into ``site``, its stderr piped."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sitegen",
            "mirror",
            "-c",
            str(config),
            "--out",
            str(site),
            "--no-progress",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def run_records(site: Path) -> set[str]:
    """The names of the site's run records."""
    directory = site / "history" / "runs"
    return {p.name for p in directory.glob("*.json")} if directory.is_dir() else set()


def channel_files(site: Path) -> set[str]:
    """Every entry of the channel's subdirs, relative to the site."""
    out = set()
    for subdir in SUBDIRS:
        directory = site / CHANNEL / subdir
        if directory.is_dir():
            out |= {f"{CHANNEL}/{subdir}/{n}" for n in os.listdir(directory)}
    return out


@contextlib.contextmanager
def built_world(tmp: Path) -> Iterator[World]:
    """v1 mirrored into a template site, v2 mirrored uninterrupted from a copy of it (the
    reference every killed run must converge to, and how long it took), the upstream serving
    v1, v2 and v3 under ``/v1`` ... ``/v3``. The caller sets ``SOURCE_DATE_EPOCH`` to
    :data:`SOURCE_DATE_EPOCH`."""
    root = tmp / "upstream"
    write_channel(root / "v1", v1_packages(), zst=True)
    write_channel(root / "v2", v2_packages(), zst=True)
    rewrite_repodata(root / "v2", "linux-64", hotfix)
    write_channel(root / "v3", v3_packages(), zst=True)
    serve_run_exports(root / "v1", v1_packages(), "v1")
    serve_run_exports(root / "v2", v2_packages(), "v2")
    v1_files = {f"{s.subdir}/{fn}" for s in v1_packages() for fn in s.filenames}
    v2_files = {f"{s.subdir}/{fn}" for s in v2_packages() for fn in s.filenames}
    with UpstreamServer(root) as server:
        for rel in v2_files - v1_files:
            server.add_fault(f"/v2/{rel}", delay(PACKAGE_DELAY))
            server.add_fault(f"/v3/{rel}", delay(PACKAGE_DELAY))
        # With the optional .bz2, so that a kill while it is renamed in is among the trials.
        common = (
            "download: {concurrency: 2, per_host: 2, retries: 1, timeout: 10}\n"
            "repodata: {bz2: true}\n"
        )
        body = f"channels:\n  {CHANNEL}:\n    url: {{url}}\n    subdirs: [linux-64, noarch]\n"
        (tmp / "v1.yaml").write_text(
            f"output: {tmp / 'template'}\n{common}" + body.format(url=server.url + "/v1")
        )
        config = tmp / "v2.yaml"
        config.write_text(
            f"output: {tmp / 'unused'}\n{common}" + body.format(url=server.url + "/v2")
        )

        assert main(["mirror", "-c", str(tmp / "v1.yaml"), "--no-progress"]) == 0
        template = tmp / "template"
        assert_site_invariant(template)

        # The uninterrupted run: the state every killed run must converge to, and its length.
        reference_site = tmp / "reference"
        shutil.copytree(template, reference_site, symlinks=True)
        before = run_records(reference_site)
        proc = start_mirror(config, reference_site)
        while not (run_records(reference_site) - before) and proc.poll() is None:
            time.sleep(0.001)
        started = time.monotonic()
        _out, err = proc.communicate(timeout=60)
        duration = time.monotonic() - started
        assert proc.returncode == 0, err.decode()
        assert_site_invariant(reference_site)
        reference = site_digest(reference_site)
        new_files = {f"{CHANNEL}/{rel}" for rel in v2_files - v1_files}
        gone_files = {f"{CHANNEL}/{rel}" for rel in v1_files - v2_files}
        assert new_files <= set(reference) and not gone_files & set(reference)
        yield World(tmp, server, config, template, reference, duration, new_files, gone_files)


Trigger = Callable[[Path, set[str], int], bool]  # (site, runs before, pid) -> kill now?


def downloading_files(site: Path, pid: int) -> set[str]:
    """Package files the process is writing in the site's subdirs, as /proc shows its open
    files: nameless ones ("<dir>/#<inode> (deleted)") or named temporaries."""
    directories = {str(site / CHANNEL / subdir) for subdir in SUBDIRS}
    out = set()
    with contextlib.suppress(OSError):  # the process has exited
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                directory, _, name = target.removesuffix(" (deleted)").rpartition("/")
                unnamed = name.startswith("#") and target.endswith(" (deleted)")
                named = name.startswith(TEMP_PREFIX) and (".conda." in name or ".bz2." in name)
                if directory in directories and (unnamed or named):
                    out.add(target)
    return out


def temp_download(n: int) -> Trigger:
    """When the process has been seen writing its n-th distinct package file."""
    seen: set[str] = set()

    def trigger(site: Path, before: set[str], pid: int) -> bool:
        seen.update(downloading_files(site, pid))
        return len(seen) >= n

    return trigger


def new_packages(world: World, n: int) -> Trigger:
    """When n of the packages v2 adds are in the site."""

    def trigger(site: Path, before: set[str], pid: int) -> bool:
        return len(channel_files(site) & world.new_files) >= n

    return trigger


def kill_when(
    world: World, site: Path, trigger: Trigger, signum: int, times: int = 1
) -> tuple[bool, int, bytes]:
    """Run sitegen on ``site``; send ``signum`` (``times`` times in a row) when the trigger
    fires. Returns whether the signal was sent before the run ended, the exit status and
    stderr."""
    before = run_records(site)
    proc = start_mirror(world.config, site)
    deadline = time.monotonic() + 30
    sent = False
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if trigger(site, before, proc.pid):
                for n in range(times):
                    time.sleep(0.05 if n else 0)  # once the first was read: the stop began
                    proc.send_signal(signum)
                sent = True
                break
            time.sleep(0.002)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return sent, proc.returncode, err


def fresh_site(world: World, name: str) -> Path:
    """A copy of the template site in a sandbox of its own under ``name``."""
    site = make_sandbox(world.tmp / name)
    shutil.copytree(world.template, site, symlinks=True)
    return site


def rerun_and_compare(world: World, site: Path) -> None:
    """Run v2 to its end on ``site``: it completes, settled, byte-identical to the reference."""
    config = replace(load_config(world.config), output=site)
    report = mirror_once(config)
    assert report.status == "completed" and not report.failed, (report.errors, report.channels)
    assert_site_invariant(site)
    assert site_digest(site) == world.reference


def mirror_once(config: SiteConfig) -> RunReport:
    """One run in this process, without a progress display."""
    return trio.run(run_mirror, config, MirrorOptions(progress=False))


# --------------------------------------------------------------------------- tests
