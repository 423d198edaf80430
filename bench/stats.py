"""Workload: ``sitegen stats`` on a synthetic access log, beside GoAccess on the same log.

The log (10 million lines, ~2 GB; 200,000 with ``--quick``) is the ``combined`` format of a busy
mirror over 30 days: repodata fetches and revalidations (304), shard indexes and shards,
package downloads, ranged downloads (206), 404s of filtered-out packages, pages, from ~20,000
clients with the user agents of conda, mamba, micromamba, pixi, rattler and others. It is
generated once per seed and size and cached under build/bench/stats-input.

Measured, each in its own process (wall, peak RSS):

1. ``sitegen stats`` cold (no state): target within 2x of GoAccess, under 1.5 GB peak RSS;
2. GoAccess (``goaccess --log-format=COMBINED``, JSON report) on the same log, when installed
   (Debian: ``apt-get install goaccess``); skipped with a note otherwise;
3. ``sitegen stats`` again after 100,000 new lines were appended: target under 2 s.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

from bench.common import (
    BUILD,
    MIB_PER_GB,
    SITEGEN,
    fmt_mb,
    fmt_s,
    fresh_dir,
    log,
    project_env,
    run_measured,
)
from bench.results import Results

W = "stats"
LINES, QUICK_LINES, APPEND = 10_000_000, 200_000, 100_000
CHANNELS = ("conda-forge", "cloud/pytorch", "bioconda")
SUBDIRS = ("linux-64", "noarch", "osx-arm64", "win-64")
AGENTS = (
    "conda/24.11.3 requests/2.32.3 CPython/3.12.8 Linux/6.8.0 ubuntu/24.04 glibc/2.39"
    " solver/libmamba conda-libmamba-solver/24.9.0 libmambapy/1.5.12",
    "conda/23.7.4 requests/2.31.0 CPython/3.11.5 Darwin/23.1.0 OSX/14.1",
    "mamba/1.5.8 conda/23.11.0 requests/2.31.0 CPython/3.11.7 Linux/5.15",
    "micromamba/2.0.5",
    "micromamba/1.5.10",
    "pixi/0.39.4",
    "pixi/0.40.0",
    "rattler/0.28.0",
    "py-rattler/0.9.0",
    "curl/8.5.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
)
MONTH = "Nov"


def _names(rng: random.Random, count: int) -> list[str]:
    syllables = ("py", "lib", "num", "sci", "arrow", "torch", "zl", "ib", "ssl", "xz", "bio")
    return sorted({"-".join(rng.sample(syllables, 2)) + str(i % 97) for i in range(count)})


def write_log(path: Path, lines: int, seed: int, *, start_day: int = 1, days: int = 30) -> None:
    """A time-ordered combined log of ``lines`` lines over ``days`` days of November 2026."""
    rng = random.Random(seed)
    names = _names(rng, 5000)
    packages = [
        f"/{rng.choice(CHANNELS)}/{rng.choice(SUBDIRS)}/{name}-{rng.randint(1, 9)}."
        f"{rng.randint(0, 20)}-h{rng.randrange(16**6):06x}_0."
        + ("conda" if rng.random() < 0.8 else "tar.bz2")
        for name in names
        for _ in range(4)
    ]
    metadata = [
        f"/{c}/{s}/{f}"
        for c in CHANNELS
        for s in SUBDIRS
        for f in ("repodata.json.zst", "repodata.json", "repodata_shards.msgpack.zst")
    ]
    shards = [f"/{c}/{s}/shards/{rng.randrange(16**16):016x}.msgpack.zst" for c in CHANNELS
              for s in SUBDIRS for _ in range(200)]  # fmt: skip
    clients = [
        (
            f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            rng.choice(AGENTS),
        )
        for _ in range(20_000)
    ]
    per_second = lines / (days * 86400)
    with open(path, "w", encoding="ascii") as out:
        batch: list[str] = []
        for index in range(lines):
            second = int(index / per_second)
            day, rest = divmod(second, 86400)
            stamp = (
                f"{start_day + day:02d}/{MONTH}/2026:{rest // 3600:02d}:{rest // 60 % 60:02d}:"
                f"{rest % 60:02d} +0000"
            )
            address, agent = clients[rng.randrange(len(clients))]
            roll = rng.random()
            if roll < 0.35:
                path_, status, size = rng.choice(metadata), 200, rng.randrange(10**5, 10**7)
            elif roll < 0.45:
                path_, status, size = rng.choice(metadata), 304, 0
            elif roll < 0.60:
                path_, status, size = rng.choice(shards), 200, rng.randrange(500, 50_000)
            elif roll < 0.88:
                path_, status, size = rng.choice(packages), 200, rng.randrange(10**4, 10**8)
            elif roll < 0.92:
                path_, status, size = rng.choice(packages), 206, 1 << 20
            elif roll < 0.97:
                name = rng.choice(names)
                path_, status, size = f"/conda-forge/linux-64/{name}-0.1-h0_0.conda", 404, 150
            else:
                path_, status, size = "/index.html", 200, 5000
            batch.append(
                f'{address} - - [{stamp}] "GET {path_} HTTP/1.1" {status} {size} "-" "{agent}"\n'
            )
            if len(batch) >= 10_000:
                out.writelines(batch)
                batch.clear()
        out.writelines(batch)


def _config(work: Path, log_path: Path) -> Path:
    config = work / "channels.yaml"
    channels = "".join(
        f"  {c}: {{url: 'https://conda.example/{c}', subdirs: [linux-64, osx-arm64, win-64]}}\n"
        for c in CHANNELS
    )
    config.write_text(
        f"output: {work / 'site'}\nchannels:\n{channels}stats:\n  logs: [{log_path}]\n"
    )
    return config


def run(results: Results, *, seed: int, quick: bool, profiler: object) -> None:
    lines = QUICK_LINES if quick else LINES
    inputs = BUILD / "stats-input"
    inputs.mkdir(parents=True, exist_ok=True)
    cached = inputs / f"access-{seed}-{lines}.log"
    if not cached.exists():
        log(f"writing a synthetic access log of {lines:,} lines")
        partial = cached.with_suffix(".partial")
        write_log(partial, lines, seed)
        partial.rename(cached)
    work = fresh_dir(BUILD / W)
    access = work / "logs" / "access.log"
    access.parent.mkdir()
    shutil.copyfile(cached, access)
    size_mb = access.stat().st_size / 1e6
    config = _config(work, access)
    argv = [str(SITEGEN), "stats", "-c", str(config)]

    cold = run_measured(argv, env=project_env(), timeout=3600).check("sitegen stats (cold)")
    goaccess = shutil.which("goaccess")
    peer = None
    if goaccess is None:
        results.skip(W, "goaccess, same log", "goaccess not installed (apt-get install goaccess)")
    else:
        report = work / "goaccess.json"
        peer = run_measured(
            [goaccess, str(access), "--log-format=COMBINED", "--no-global-config",
             "-o", str(report)],
            env=project_env(),
            timeout=3600,
        ).check("goaccess")  # fmt: skip
        results.add(W, "goaccess, same log", fmt_s(peer.wall), note=f"{fmt_mb(peer.peak_rss_mb)}")
    ok = None if peer is None else cold.wall <= 2 * peer.wall
    results.add(
        W,
        f"sitegen stats cold, {lines:,} lines ({size_mb:.0f} MB)",
        fmt_s(cold.wall),
        target="<= 2x goaccess",
        ok=ok,
        raw={"wall": cold.wall, "lines_per_s": lines / cold.wall},
        note=f"{lines / cold.wall:,.0f} lines/s",
    )
    results.add(
        W,
        "sitegen stats cold, peak RSS",
        fmt_mb(cold.peak_rss_mb),
        target="< 1.5 GB",
        ok=cold.peak_rss_mb < 1.5 * MIB_PER_GB,
        raw=cold.peak_rss_mb,
    )
    appended = work / "append.log"
    write_log(appended, APPEND, seed + 1, start_day=30, days=1)
    with open(access, "ab") as out, open(appended, "rb") as more:
        shutil.copyfileobj(more, out)
    again = run_measured(argv, env=project_env(), timeout=3600).check("sitegen stats (again)")
    results.add(
        W,
        f"sitegen stats after {APPEND:,} new lines",
        fmt_s(again.wall),
        target="< 2 s",
        ok=again.wall < 2.0,
        raw=again.wall,
        note=again.stdout.strip()[:120],
    )
