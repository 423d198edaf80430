"""Crash consistency: ``sitegen mirror`` killed with SIGKILL at any moment leaves a consistent
site, and the next run ends exactly where an uninterrupted run would have.

A site holding channel v1 is updated to v2 (new packages to download, packages to delete, a
metadata-only change) by a real ``python -m sitegen mirror`` child process, which is killed
with SIGKILL at many points: after seeded random delays spread over the measured length of an
uninterrupted run, and when the file system shows a given step (the first temporary download,
the n-th new package, a metadata temporary, each metadata file replaced, the first deletion).
There are no hooks in sitegen for this; the upstream serves new packages with a small delay so
that the download phase is long enough to land in (:mod:`testkit.crash`).

After each kill the site invariant holds on disk (siblings may come from two generations: a
kill cannot be atomic across four renames). A rerun then completes, and every package and
metadata file is byte-identical to the uninterrupted run's.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from sitegen.config import load_config
from testkit.crash import (
    SOURCE_DATE_EPOCH,
    Trigger,
    World,
    built_world,
    channel_files,
    downloading_files,
    fresh_site,
    kill_when,
    mirror_once,
    new_packages,
    rerun_and_compare,
    run_records,
    temp_download,
    v1_packages,
)
from testkit.invariant import assert_site_invariant, temporaries
from testkit.small_channel import CHANNEL

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH)
        with built_world(tmp_path_factory.mktemp("crash")) as world:
            yield world
            print(f"\ncrash trials by phase at the kill: {dict(world.phases)}")


SEED = 20241120
RANDOM_TRIALS = 12
METADATA = ("repodata.json.zst", "repodata.json.bz2", "current_repodata.json", "repodata.json")
RUN_EXPORTS = ("run_exports.json.zst", "run_exports.json")  # CEP-12, renamed in before them


def after_start(seconds: float) -> Trigger:
    """Once this run's history record exists, wait ``seconds``."""
    seen: dict[str, float] = {}

    def trigger(site: Path, before: set[str], pid: int) -> bool:
        if "t" not in seen:
            if not run_records(site) - before:
                return False
            seen["t"] = time.monotonic()
        return time.monotonic() - seen["t"] >= seconds

    return trigger


def metadata_temp(subdir: str) -> Trigger:
    """When a temporary of a metadata file appears in the subdir (publish is writing)."""

    def trigger(site: Path, before: set[str], pid: int) -> bool:
        return any(
            "-tmp-" in f and ("repodata" in f) for f in channel_files(site) if f"/{subdir}/" in f
        )

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
        return bool(world.gone_files - channel_files(site))

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
    files = channel_files(site)
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


def _trial(world: World, index: int, name: str, trigger: Trigger) -> tuple[bool, str, int]:
    """Kill one run at the trigger, check the site, rerun, compare; returns (whether the kill
    landed in the run, the phase it landed in, stale private temporaries after the rerun)."""
    site = fresh_site(world, f"kill{index}")
    before = run_records(site)
    sent, _status, _err = kill_when(world, site, trigger, signal.SIGKILL)
    phase = _phase(world, site) if sent else "after exit"
    try:
        assert_site_invariant(site, settled=False)
    except AssertionError as exc:
        raise AssertionError(f"after SIGKILL at {name!r} ({phase}): {exc}") from None
    killed = run_records(site) - before
    try:
        rerun_and_compare(world, site)
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


@pytest.mark.parametrize("moment", ["while the new bytes download", "once they replace the old"])
def test_kill_around_a_reuploaded_file(world: World, moment: str) -> None:
    """Upstream re-uploaded a published file with other bytes under the same name. Killed
    while the new bytes download or right after they replace the old, the published record
    always describes the bytes on disk; a rerun ends with the new bytes and their record."""
    site = fresh_site(world, f"reupload-{moment.split()[0]}")
    config = world.tmp / "v3.yaml"
    config.write_text(world.config.read_text().replace("/v2", "/v3"))
    fn = next(
        f for s in v1_packages() if s.build == "mkl" for f in s.filenames if f.endswith(".bz2")
    )
    published = site / CHANNEL / "linux-64" / fn
    original = published.read_bytes()

    def replaced(site: Path, before: set[str], pid: int) -> bool:
        try:
            return published.read_bytes() != original
        except FileNotFoundError:
            return False

    def downloading(site: Path, before: set[str], pid: int) -> bool:
        return bool(downloading_files(site, pid))  # the re-uploaded file is v3's only download

    trigger = downloading if moment.startswith("while") else replaced
    sent, _status, _err = kill_when(replace(world, config=config), site, trigger, signal.SIGKILL)
    assert sent, "the run ended before the signal"
    assert_site_invariant(site, settled=False)

    report = mirror_once(replace(load_config(config), output=site))
    assert report.status == "completed" and not report.failed, report.channels
    assert_site_invariant(site)
    upstream_bytes = (world.tmp / "upstream" / "v3" / "linux-64" / fn).read_bytes()
    assert published.read_bytes() == upstream_bytes != original
