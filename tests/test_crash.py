"""Crash consistency: ``sitegen mirror`` killed at any moment leaves a consistent site, and the
next run ends exactly where an uninterrupted run would have.

A site holding channel v1 is updated to v2 (new packages to download, packages to delete, a
metadata-only change) by a real ``python -m sitegen mirror`` child process, which is killed
with SIGKILL at many points: after seeded random delays spread over the measured length of an
uninterrupted run, and when the file system shows a given step (the first temporary download,
the n-th new package, a metadata temporary, each metadata file replaced, the first deletion).
There are no hooks in sitegen for this; the upstream serves new packages with a small delay so
that the download phase is long enough to land in.

After each kill the site invariant holds on disk (siblings may come from two generations: a
kill cannot be atomic across four renames). A rerun then completes, and every package and
metadata file is byte-identical to the uninterrupted run's. SIGTERM stops the run cleanly: exit
status 130, the run recorded as ``stopped``, no temporaries left, the settled invariant holds.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import trio
import zstandard

from sitegen.cli import main
from sitegen.config import SiteConfig, load_config
from sitegen.store.site import TEMP_PREFIX
from sitegen.sync.report import RunReport
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import PackageSpec, example_packages, write_channel
from testkit.faults import delay
from testkit.invariant import assert_site_invariant, make_sandbox, site_digest, temporaries
from testkit.site import rewrite_repodata
from testkit.small_channel import CHANNEL
from testkit.upstream import UpstreamServer

pytestmark = pytest.mark.integration

SEED = 20241120
RANDOM_TRIALS = 12
PACKAGE_DELAY = 0.03  # seconds the upstream waits before answering each new package
SUBDIRS = ("linux-64", "noarch")
METADATA = ("repodata.json.zst", "repodata.json.bz2", "current_repodata.json", "repodata.json")
RUN_EXPORTS = ("run_exports.json.zst", "run_exports.json")  # CEP-12, renamed in before them
DROPPED = {"readline", "ghostscript", "mystery-tool", "futures"}


def _v1() -> list[PackageSpec]:
    return example_packages(seed=0)


def _v2() -> list[PackageSpec]:
    kept = [s for s in _v1() if s.name not in DROPPED]
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


def _v3() -> list[PackageSpec]:
    """v2, but upstream re-uploaded blas (mkl) with other bytes under the same file name."""
    return [replace(s, payload_size=s.payload_size + 7) if s.build == "mkl" else s for s in _v2()]


def _hotfix(document: dict[str, Any]) -> None:
    """A repodata patch (as conda-forge's hotfixes): metadata changes, the files do not."""
    for section in ("packages", "packages.conda"):
        for record in document[section].values():
            if record["name"] == "python":
                record["license"] = "PSF-2.0"


def _serve_run_exports(channel: Path, specs: list[PackageSpec], generation: str) -> None:
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
    tmp: Path
    server: UpstreamServer
    config: Path  # mirrors /v2; output is given per run with --out
    template: Path  # a site holding v1
    reference: dict[str, str]  # site_digest of v1 -> v2, uninterrupted
    duration: float  # from the run's history record appearing to the process exiting
    new_files: set[str]  # relative paths v2 adds
    gone_files: set[str]  # relative paths v2 deletes
    phases: Counter[str] = field(default_factory=Counter)


def _sitegen_mirror(config: Path, site: Path) -> subprocess.Popen[bytes]:
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


def _runs(site: Path) -> set[str]:
    directory = site / "history" / "runs"
    return {p.name for p in directory.glob("*.json")} if directory.is_dir() else set()


def _files(site: Path) -> set[str]:
    out = set()
    for subdir in SUBDIRS:
        directory = site / CHANNEL / subdir
        if directory.is_dir():
            out |= {f"{CHANNEL}/{subdir}/{n}" for n in os.listdir(directory)}
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("crash")
    root = tmp / "upstream"
    write_channel(root / "v1", _v1(), zst=True)
    write_channel(root / "v2", _v2(), zst=True)
    rewrite_repodata(root / "v2", "linux-64", _hotfix)
    write_channel(root / "v3", _v3(), zst=True)
    _serve_run_exports(root / "v1", _v1(), "v1")
    _serve_run_exports(root / "v2", _v2(), "v2")
    v1_files = {f"{s.subdir}/{fn}" for s in _v1() for fn in s.filenames}
    v2_files = {f"{s.subdir}/{fn}" for s in _v2() for fn in s.filenames}
    # Every run stamps the records new to it with this time (CEP-47 indexed_timestamp), so
    # that the reference site and each killed-and-rerun site can agree byte for byte.
    with pytest.MonkeyPatch.context() as env, UpstreamServer(root) as server:
        env.setenv("SOURCE_DATE_EPOCH", "1764547200")
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
        before = _runs(reference_site)
        proc = _sitegen_mirror(config, reference_site)
        while not (_runs(reference_site) - before) and proc.poll() is None:
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
        world = World(tmp, server, config, template, reference, duration, new_files, gone_files)
        yield world
        print(f"\ncrash trials by phase at the kill: {dict(world.phases)}")


# --------------------------------------------------------------------------- triggers

Trigger = Callable[[Path, set[str], int], bool]  # (site, runs before, pid) -> kill now?


def after_start(seconds: float) -> Trigger:
    """Once this run's history record exists, wait ``seconds``."""
    seen: dict[str, float] = {}

    def trigger(site: Path, before: set[str], pid: int) -> bool:
        if "t" not in seen:
            if not _runs(site) - before:
                return False
            seen["t"] = time.monotonic()
        return time.monotonic() - seen["t"] >= seconds

    return trigger


def _downloading(site: Path, pid: int) -> set[str]:
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
        seen.update(_downloading(site, pid))
        return len(seen) >= n

    return trigger


def new_packages(world: World, n: int) -> Trigger:
    def trigger(site: Path, before: set[str], pid: int) -> bool:
        return len(_files(site) & world.new_files) >= n

    return trigger


def metadata_temp(subdir: str) -> Trigger:
    """When a temporary of a metadata file appears in the subdir (publish is writing)."""

    def trigger(site: Path, before: set[str], pid: int) -> bool:
        return any("-tmp-" in f and ("repodata" in f) for f in _files(site) if f"/{subdir}/" in f)

    return trigger


def replaced(world: World, subdir: str, name: str) -> Trigger:
    """When the subdir's metadata file ``name`` no longer is the template's file."""
    original = (world.template / CHANNEL / subdir / name).read_bytes()

    def trigger(site: Path, before: set[str], pid: int) -> bool:
        path = site / CHANNEL / subdir / name
        try:
            return path.stat().st_size != len(original) or path.read_bytes() != original
        except FileNotFoundError:
            return False

    return trigger


def first_deletion(world: World) -> Trigger:
    def trigger(site: Path, before: set[str], pid: int) -> bool:
        return bool(world.gone_files - _files(site))

    return trigger


def _trials(world: World) -> list[tuple[str, Trigger]]:
    rng = random.Random(SEED)
    trials: list[tuple[str, Trigger]] = []
    for i in range(RANDOM_TRIALS):
        seconds = rng.uniform(0, world.duration)
        trials.append((f"random#{i} at {seconds:.3f}s", after_start(seconds)))
    trials += [
        ("first download temporary", temp_download(1)),
        ("fifth download temporary", temp_download(5)),
        ("first new package", new_packages(world, 1)),
        ("half the new packages", new_packages(world, len(world.new_files) // 2)),
        ("all new packages", new_packages(world, len(world.new_files))),
        ("linux-64 metadata temporary", metadata_temp("linux-64")),
        ("noarch metadata temporary", metadata_temp("noarch")),
    ]
    trials += [
        (f"linux-64 {name} replaced", replaced(world, "linux-64", name))
        for name in RUN_EXPORTS + METADATA
    ]
    trials += [("first deletion", first_deletion(world))]
    return trials


def _phase(world: World, site: Path) -> str:
    files = _files(site)
    linux = site / CHANNEL / "linux-64"
    old = world.template / CHANNEL / "linux-64"
    changed = [n for n in METADATA if (linux / n).read_bytes() != (old / n).read_bytes()]
    if not files & world.new_files:
        return "before download"
    if not changed:
        return "download"
    if len(changed) < len(METADATA):
        return "publish"
    if files & world.gone_files:
        return "publish/prune"
    return "after prune"


def _kill_when(
    world: World, site: Path, trigger: Trigger, signum: int, times: int = 1
) -> tuple[bool, int, bytes]:
    """Run sitegen on ``site``; send ``signum`` (``times`` times in a row) when the trigger
    fires. Returns whether the signal was sent before the run ended, the exit status and
    stderr."""
    before = _runs(site)
    proc = _sitegen_mirror(world.config, site)
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


def _fresh_site(world: World, name: str) -> Path:
    site = make_sandbox(world.tmp / name)
    shutil.copytree(world.template, site, symlinks=True)
    return site


def _rerun_and_compare(world: World, site: Path) -> None:
    config = replace(load_config(world.config), output=site)
    report = _run(config)
    assert report.status == "completed" and not report.failed, (report.errors, report.channels)
    assert_site_invariant(site)
    assert site_digest(site) == world.reference


def _run(config: SiteConfig) -> RunReport:
    return trio.run(run_mirror, config, MirrorOptions(progress=False))


# --------------------------------------------------------------------------- tests


def _trial(world: World, index: int, name: str, trigger: Trigger) -> tuple[bool, str, int]:
    """Kill one run at the trigger, check the site, rerun, compare; returns (whether the kill
    landed in the run, the phase it landed in, stale private temporaries after the rerun)."""
    site = _fresh_site(world, f"kill{index}")
    before = _runs(site)
    sent, _status, _err = _kill_when(world, site, trigger, signal.SIGKILL)
    phase = _phase(world, site) if sent else "after exit"
    try:
        assert_site_invariant(site, settled=False)
    except AssertionError as exc:
        raise AssertionError(f"after SIGKILL at {name!r} ({phase}): {exc}") from None
    killed = _runs(site) - before
    try:
        _rerun_and_compare(world, site)
    except AssertionError as exc:
        raise AssertionError(f"rerun after SIGKILL at {name!r} ({phase}): {exc}") from None
    for run in killed:
        status = json.loads((site / "history" / "runs" / run).read_bytes())["status"]
        assert status in ("interrupted", "completed"), (name, status)
    stale = len(temporaries(site))
    shutil.rmtree(site.parent.parent)
    return sent, phase, stale


def test_sigkill_at_any_point_keeps_the_site_consistent(world: World) -> None:
    trials = _trials(world)
    assert len(trials) >= 20
    # Two trials at a time (two cores): each is mostly a child process and its waits.
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [
            pool.submit(_trial, world, index, name, trigger)
            for index, (name, trigger) in enumerate(trials)
        ]
        results = [future.result() for future in futures]
    landed = sum(sent for sent, _phase, _stale in results)
    world.phases.update(phase for _sent, phase, _stale in results)
    world.phases["stale temporaries after the rerun"] += sum(s for *_x, s in results)
    assert landed >= len(trials) // 2, f"only {landed} of {len(trials)} kills landed in a run"
    assert world.phases["download"] >= 1, world.phases


@pytest.mark.parametrize("moment", ["download", "publish", "download, twice"])
def test_sigterm_stops_cleanly(world: World, moment: str) -> None:
    """SIGTERM mid-download, and as the last download lands (publishing starts); and twice
    in a row (a service manager or an impatient operator): the second lands while the run
    stops, and must not kill it before its record is saved."""
    site = _fresh_site(world, f"term-{moment.replace(', ', '-')}")
    before = _runs(site)
    if moment.startswith("download"):
        trigger = temp_download(1)
    else:
        trigger = new_packages(world, len(world.new_files))
    times = 2 if moment.endswith("twice") else 1
    sent, status, err = _kill_when(world, site, trigger, signal.SIGTERM, times)
    assert sent, "the run ended before the signal"
    assert status == 130, err.decode()
    (run,) = _runs(site) - before
    record = json.loads((site / "history" / "runs" / run).read_bytes())
    assert record["status"] == "stopped", record["status"]
    assert "stopped by a signal" in " ".join(record["errors"])
    assert not temporaries(site), "temporaries left behind"
    assert_site_invariant(site)  # settled: a stop is not a crash
    _rerun_and_compare(world, site)


def test_rerun_removes_every_temporary_a_killed_run_left(world: World) -> None:
    """Temporaries of a dead process go wherever it was writing: subdirs, beside
    channeldata.json, in the ledger. The next run removes every one of them."""
    site = _fresh_site(world, "stale")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    pid = int(dead.stdout)  # a process that has exited: its temporaries are garbage
    leftovers = [
        site / CHANNEL / f".sitegen-tmp-{pid}-channeldata.json.0badf00d",
        site / CHANNEL / "linux-64" / f".sitegen-tmp-{pid}-repodata.json.0badf00d",
        site / "history" / "runs" / f".sitegen-tmp-{pid}-20240101T000000Z-1.json.0badf00d",
        site / ".sitegen" / f".sitegen-tmp-{pid}-lock.0badf00d",
    ]
    for path in leftovers:
        path.write_bytes(b"half written")
    _rerun_and_compare(world, site)
    assert not temporaries(site), temporaries(site)


@pytest.mark.parametrize("moment", ["while the new bytes download", "once they replace the old"])
def test_kill_around_a_reuploaded_file(world: World, moment: str) -> None:
    """Upstream re-uploaded a published file with other bytes under the same name. Killed
    while the new bytes download or right after they replace the old, the published record
    always describes the bytes on disk; a rerun ends with the new bytes and their record."""
    site = _fresh_site(world, f"reupload-{moment.split()[0]}")
    config = world.tmp / "v3.yaml"
    config.write_text(world.config.read_text().replace("/v2", "/v3"))
    fn = next(f for s in _v1() if s.build == "mkl" for f in s.filenames if f.endswith(".bz2"))
    published = site / CHANNEL / "linux-64" / fn
    original = published.read_bytes()

    def replaced(site: Path, before: set[str], pid: int) -> bool:
        try:
            return published.read_bytes() != original
        except FileNotFoundError:
            return False

    def downloading(site: Path, before: set[str], pid: int) -> bool:
        return bool(_downloading(site, pid))  # the re-uploaded file is v3's only download

    trigger = downloading if moment.startswith("while") else replaced
    sent, _status, _err = _kill_when(replace(world, config=config), site, trigger, signal.SIGKILL)
    assert sent, "the run ended before the signal"
    assert_site_invariant(site, settled=False)

    report = _run(replace(load_config(config), output=site))
    assert report.status == "completed" and not report.failed, report.channels
    assert_site_invariant(site)
    upstream_bytes = (world.tmp / "upstream" / "v3" / "linux-64" / fn).read_bytes()
    assert published.read_bytes() == upstream_bytes != original
