"""Workload 5: a local source of 5,000 real packages, beside rattler's indexer on the same files.

The folder is the sync benchmark's channel (:mod:`bench.channel`: ``linux-64`` + ``noarch``,
both formats, log-normal sizes plus a few large files, ~1 GB), read in place as a local source
laid out by subdir. Measured, each as its own process:

1. ``sitegen mirror`` on a fresh site: cold index (every file read and hashed) and publish
   (repodata, current_repodata, channeldata, hard links, pages);
2. ``rattler.index.index_fs`` (py-rattler's Rust indexer, ``force``) on a hard-linked copy of the
   folder (it writes its repodata, ``.zst`` and shards into the folder it indexes, as sitegen
   publishes them): the same files, cold;
3. ``sitegen watch`` running on that site: one package is renamed into the folder, and the time
   until the published ``repodata.json`` lists it is taken;
4. ``index_fs`` again on the copy with that package added (incremental).

Before 1 and 2 the files are read once, so both start from the same warm page cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
import time
from pathlib import Path

from bench.channel import SUBDIRS, build_sync_channel
from bench.common import (
    BUILD,
    SITEGEN,
    VENV_BIN,
    BenchError,
    fmt_mb,
    fmt_ratio,
    fmt_s,
    fresh_dir,
    log,
    project_env,
    run_measured,
)
from bench.profiling import Profiler
from bench.results import Results
from sitegen.tools.example_channel import PackageSpec, build_package

W = "local"
CHANNEL = "internal/builds"
RATTLER = (
    "import asyncio, sys\n"
    "from rattler.index import index_fs\n"
    "asyncio.run(index_fs(sys.argv[1], write_zst=True, write_shards=True,"
    " force=sys.argv[2] == 'force'))\n"
)


def _warm(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    total += len(chunk)
    return total


def _link_copy(source: Path, target: Path) -> None:
    """A copy of the package files made of hard links (no bytes copied)."""
    for subdir in SUBDIRS:
        (target / subdir).mkdir(parents=True, exist_ok=True)
        for path in (source / subdir).iterdir():
            if path.name.endswith((".conda", ".tar.bz2")):
                os.link(path, target / subdir / path.name)


def _listed(site: Path, fn: str) -> bool:
    try:
        document = json.loads((site / CHANNEL / "linux-64" / "repodata.json").read_bytes())
    except (OSError, ValueError):
        return False
    return fn in document.get("packages.conda", {})


def run(results: Results, *, seed: int, quick: bool, profiler: Profiler) -> None:
    n_files, total = (200, 20_000_000) if quick else (5000, 1_000_000_000)
    channel = build_sync_channel(seed, n_files, total)
    folder = channel.directory
    work = BUILD / W
    work.mkdir(parents=True, exist_ok=True)
    site = fresh_dir(work / "site")
    config = work / "channels.yaml"
    config.write_text(
        textwrap.dedent(f"""
        output: {site}
        channels:
          {CHANNEL}:
            path: {folder}
            subdirs: [linux-64]
        """)
    )
    copy = fresh_dir(work / "rattler-copy")
    _link_copy(folder, copy)
    files = sum(1 for s in SUBDIRS for p in (folder / s).iterdir() if p.name.endswith(".conda"))
    files += sum(1 for s in SUBDIRS for p in (folder / s).iterdir() if p.name.endswith(".bz2"))
    size = _warm(folder)
    results.add(W, "folder", f"{files:,} packages, {size / 1e6:,.0f} MB", note=str(folder))

    log("local: sitegen mirror, cold index and publish")
    argv = profiler.wrap([str(SITEGEN), "mirror", "-c", str(config), "--no-progress"], "local")
    ours = run_measured(argv, env=project_env(), timeout=3600).check("sitegen mirror")
    log("local: rattler index_fs, cold (force)")
    theirs = run_measured(
        [str(VENV_BIN / "python"), "-c", RATTLER, str(copy), "force"], env=project_env()
    ).check("rattler index_fs")
    ratio = ours.wall / theirs.wall if theirs.wall else None
    results.add(
        W,
        "cold index + publish: sitegen mirror",
        fmt_s(ours.wall),
        "<= 1.5x rattler",
        ok=ratio is not None and ratio <= 1.5,
        raw=ours.wall,
        note=f"{fmt_ratio(ratio)} of rattler; peak RSS {fmt_mb(ours.peak_rss_mb)}; "
        f"CPU {fmt_s(ours.cpu_s)}; includes pages, channeldata, .bz2, hard links",
    )
    results.add(
        W,
        "cold index: rattler index_fs",
        fmt_s(theirs.wall),
        raw=theirs.wall,
        note=f"peak RSS {fmt_mb(theirs.peak_rss_mb)}; CPU {fmt_s(theirs.cpu_s)}; "
        "repodata.json, .zst and shards",
    )

    log("local: sitegen watch, one package added")
    spec = PackageSpec("bench-added", "1.0", "h0", formats=("conda",), payload_size=200_000)
    staging = fresh_dir(work / "staging")
    built = staging / spec.filename("conda")
    build_package(built, spec.index_json(), spec.payload(), fmt="conda")
    target = folder / "linux-64" / built.name
    watch_log = open(work / "watch.log", "wb")  # noqa: SIM115
    watch = subprocess.Popen(
        [str(SITEGEN), "watch", "-c", str(config)],
        env=project_env(),
        stdout=watch_log,
        stderr=subprocess.STDOUT,
    )
    try:
        runs = site / "history" / "runs"
        deadline = time.monotonic() + 120
        # The watch publishes once at start (nothing changed): wait for it to be idle.
        while len(list(runs.glob("*.json"))) < 2:
            if time.monotonic() > deadline or watch.poll() is not None:
                raise BenchError("sitegen watch did not start publishing")
            time.sleep(0.1)
        time.sleep(2.0)
        t0 = time.perf_counter()
        os.replace(built, target)
        while not _listed(site, built.name):
            if time.perf_counter() - t0 > 120 or watch.poll() is not None:
                raise BenchError("sitegen watch did not publish the added package")
            time.sleep(0.02)
        published = time.perf_counter() - t0
    finally:
        watch.terminate()
        try:
            watch.wait(30)
        except subprocess.TimeoutExpired:
            watch.kill()
            watch.wait()
        watch_log.close()
    results.add(
        W,
        "one added package published (watch)",
        fmt_s(published),
        "< 2 s",
        ok=published < 2,
        raw=published,
        note="from the rename into the folder to repodata.json listing it",
    )
    try:
        os.link(target, copy / "linux-64" / target.name)
        log("local: rattler index_fs after the addition")
        again = run_measured(
            [str(VENV_BIN / "python"), "-c", RATTLER, str(copy), "incremental"],
            env=project_env(),
        ).check("rattler index_fs")
        results.add(W, "one added package: rattler index_fs", fmt_s(again.wall), raw=again.wall)
    finally:
        target.unlink(missing_ok=True)  # the channel is cached for the other workloads
        shutil.rmtree(staging, ignore_errors=True)
