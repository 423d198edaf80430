"""Workloads 1 and 2: full sync, no-op resync and 1 % resync over loopback and through a proxy.

Per network ("loopback": nginx directly; "proxy": nginx behind the delaying proxy of
:mod:`bench.proxy`), with the upstream at state v1:

1. floor: the package files fetched by ``curl --parallel --parallel-max 32`` in sitegen's job
   order (best of N), and once more largest file first;
2. sitegen: ``sitegen mirror -c <generated channels.yaml> --no-progress`` (concurrency 32 and
   per_host 32, the defaults, written out) into a fresh site, through :mod:`bench.probe` so
   that each stage is timed (best of N);
3. peer: conda-mirror 0.10.0, once per platform, into a fresh directory (one run);
4. no-op resync: the plain ``sitegen`` command again, upstream untouched: wall time from spawn
   to exit and the upstream requests nginx logged (best of max(3, N)), then once through the
   probe for the breakdown;
5. 1 % resync: upstream flipped v1 -> v2 -> v1 ... (each flip replaces 1 % of the files),
   sitegen after each flip (best of N); every run must fetch exactly the changed files.

Before each timed run the page cache is flushed to disk (``sync``), so that no run pays for the
writeback of the one before. Every full sync (curl's and sitegen's) writes into a directory of
its own, deleted only when the workload ends: on ext4 without a journal, creating files soon
after thousands were deleted makes inode allocation skip the recently deleted ones one by one
(for a minute or more), which slowed whichever run came next by up to 3x. curl and sitegen
runs alternate, so what remains of such effects falls on both alike."""

from __future__ import annotations

import contextlib

from bench.channel import SUBDIRS, build_sync_channel
from bench.common import (
    BUILD,
    BenchError,
    Measured,
    dir_stats,
    fmt_mb,
    fmt_ratio,
    fmt_s,
    fresh_dir,
    log,
)
from bench.nginx import Nginx
from bench.peer import run_floor, run_peer
from bench.profiling import Profiler
from bench.proxy import ProxyProcess
from bench.results import Results
from bench.sync_resync import noop, resync
from bench.sync_runs import (
    CONCURRENCY,
    Network,
    SitegenRun,
    W,
    best_run,
    gets_text,
    outside,
    package_requests,
    phases_text,
    run_sitegen,
    spread,
    write_config,
)

# Through the proxy, once more at this many connections: what halving the concurrency costs.
NARROW = 16


def run(
    results: Results, *, seed: int, quick: bool, peer: bool, profiler: Profiler, repeat: int
) -> None:
    n_files, total = (200, 20_000_000) if quick else (2100, 300_000_000)
    channel = build_sync_channel(seed, n_files, total)
    files = channel.files("v1")
    n, size = len(files), sum(f[2] for f in files)
    results.details["sync_channel"] = {"files": n, "bytes": size, "changed": channel.changed}
    results.add(
        W,
        "upstream channel",
        f"{n} files, {size / 1e6:.0f} MB",
        note=f"linux-64 + noarch, .conda/.tar.bz2; 1 % resync replaces {len(channel.changed)}"
        f" files; sitegen and curl: best of {repeat} runs",
    )
    work = BUILD / "sync"
    work.mkdir(parents=True, exist_ok=True)
    with Nginx(channel.root, fresh_dir(work / "nginx")) as nginx:
        for network in ("loopback", "proxy"):
            proxy = ProxyProcess(nginx.port) if network == "proxy" else contextlib.nullcontext()
            with proxy as px:
                base = (px.url if px is not None else nginx.url) + "/upstream"
                _Network(results, channel, nginx, base, network, work, profiler, repeat).run(
                    peer, n, size
                )


class _Network(Network):
    """The full syncs of one network, then its resyncs (:mod:`bench.sync_resync`)."""

    narrow: SitegenRun | None = None
    lpt: Measured | None = None
    floor_wall: float = 0.0

    def run(self, peer: bool, n: int, size: int) -> None:
        channel, network, work = self.channel, self.network, self.work
        channel.serve("v1")
        files = channel.files("v1")

        log(f"{network}: floor (curl --parallel-max {CONCURRENCY}) and sitegen x{self.repeat}")
        floors, fulls = [], []
        for i in range(self.repeat):
            target = work / f"floor-{network}-{i}"
            floors.append(run_floor(self.base, files, target, CONCURRENCY))
            got = dir_stats(target)
            if got != (n, size):
                raise BenchError(f"curl fetched {got}, expected {(n, size)}")
            site = work / f"site-{network}-{i}"
            config = write_config(work / f"channels-{network}-{i}.yaml", site, self.base)
            run = run_sitegen(config, self.nginx, f"full-{network}-{i}", work, self.profiler)
            got = dir_stats(site / "bench" / "upstream")
            if got != (n, size):
                raise BenchError(f"sitegen mirrored {got}, expected {(n, size)}")
            fulls.append(run)
        floor = min(floors, key=lambda m: m.wall)
        # The same files, largest first: how much the order alone moves the floor (a long
        # transfer that starts last sets the end when each connection is capped).
        ordered = sorted(files, key=lambda f: -f[2])
        lpt = run_floor(self.base, ordered, work / f"floor-{network}-lpt", CONCURRENCY)
        self.lpt = lpt
        self.floor_wall = floor.wall
        sg = best_run(fulls)
        pkg = package_requests(sg.requests)
        self.add(
            "floor: curl wall",
            fmt_s(floor.wall),
            raw=[m.wall for m in floors],
            note=f"CPU {floor.cpu_s:.2f} s; {spread([m.wall for m in floors])}",
        )
        self.add(
            "floor, largest files first: curl wall",
            fmt_s(lpt.wall),
            raw=lpt.wall,
            note="same files and concurrency, sorted by size descending; one run",
        )
        self.add(
            "sitegen full sync wall",
            fmt_s(sg.measured.wall),
            raw=[r.measured.wall for r in fulls],
            note=f"CPU {sg.measured.cpu_s:.2f} s, peak RSS {fmt_mb(sg.measured.peak_rss_mb)}; "
            f"{gets_text(pkg)} + {len(sg.requests) - len(pkg)} other; "
            f"{spread([r.measured.wall for r in fulls])}",
        )
        if sg.probe.get("phases"):
            self.add(
                "sitegen phases",
                phases_text(sg.probe),
                note=f"start+imports {fmt_s(sg.startup_s)}; outside the stages (client setup,"
                f" history, exit) {fmt_s(outside(sg))}",
            )
        if sg.download_s is not None:
            downloads = [r.download_s for r in fulls if r.download_s is not None]
            best = min(downloads)
            ratio = best / floor.wall
            self.add(
                "sitegen download phase / floor",
                fmt_ratio(ratio),
                "<= 1.3x",
                ok=(ratio <= 1.3) if self.judged else None,
                raw=ratio,
                note=f"{fmt_s(best)} vs {fmt_s(floor.wall)}",
            )
        ratio = sg.measured.wall / floor.wall
        self.add(
            "sitegen whole run / floor",
            fmt_ratio(ratio),
            "<= 2x",
            ok=(ratio <= 2.0) if self.judged else None,
            raw=ratio,
        )
        self._plain_httpx(fulls, n, size)
        cpu_ratio = sg.measured.cpu_s / floor.cpu_s if floor.cpu_s else None
        self.add(
            "CPU time sitegen / curl",
            fmt_ratio(cpu_ratio),
            raw=cpu_ratio,
            note=f"{sg.measured.cpu_s:.2f} s vs {floor.cpu_s:.2f} s (2 cores shared with nginx"
            + (" and the proxy)" if self.judged else ")"),
        )

        if self.judged:
            self._narrow(files, n, size)
        if peer:
            self._peer(sg, n)
        else:
            self.results.skip(self.tag, "conda-mirror full sync", "--no-peer")

        noop(self, config)
        resync(self, config, sg)
        self.results.details[f"sync_{network}"] = {
            "floor": [(m.wall, m.cpu_s) for m in floors],
            "sitegen": [
                {
                    "wall": r.measured.wall,
                    "cpu": r.measured.cpu_s,
                    "rss": r.measured.peak_rss_mb,
                    "probe": r.probe,
                }
                for r in fulls
            ],
        }

    def _plain_httpx(self, fulls: list[SitegenRun], n: int, size: int) -> None:
        """The same full sync with upstream HTTP through a plain ``httpx.AsyncClient`` (its
        default transport, the concurrency sitegen's limiters allow): what sitegen's own
        transport is worth. Best download phase of each."""
        network, work = self.network, self.work
        log(f"{network}: sitegen through plain httpx.AsyncClient x{self.repeat}")
        runs = []
        for i in range(self.repeat):
            site = work / f"site-httpx-{network}-{i}"
            config = write_config(work / f"channels-httpx-{network}-{i}.yaml", site, self.base)
            run = run_sitegen(
                config, self.nginx, f"httpx-{network}-{i}", work, self.profiler, httpx=True
            )
            got = dir_stats(site / "bench" / "upstream")
            if got != (n, size):
                raise BenchError(f"sitegen over httpx mirrored {got}, expected {(n, size)}")
            runs.append(run)
        if any(r.download_s is None for r in fulls + runs):
            return
        sg = best_run(fulls, key=lambda r: r.download_s)
        hx = best_run(runs, key=lambda r: r.download_s)
        self.add(
            "download phase: sitegen / plain httpx.AsyncClient",
            f"{fmt_s(sg.download_s)} / {fmt_s(hx.download_s)}",
            raw=[r.download_s for r in runs],
            note=f"httpx takes {fmt_ratio(hx.download_s / sg.download_s)} the time; whole run "
            f"{fmt_s(sg.measured.wall)} / {fmt_s(hx.measured.wall)}, CPU "
            f"{sg.measured.cpu_s:.2f} / {hx.measured.cpu_s:.2f} s; the same sync",
        )

    def _narrow(self, files: list[tuple[str, str, int]], n: int, size: int) -> None:
        """curl and sitegen once each at NARROW connections: what the concurrency buys."""
        log(f"{self.network}: floor and sitegen at {NARROW} connections")
        floor = run_floor(self.base, files, self.work / f"floor-{self.network}-narrow", NARROW)
        site = self.work / f"site-{self.network}-narrow"
        config = write_config(self.work / "channels-narrow.yaml", site, self.base, NARROW)
        run = run_sitegen(config, self.nginx, f"narrow-{self.network}", self.work, self.profiler)
        got = dir_stats(site / "bench" / "upstream")
        if got != (n, size):
            raise BenchError(f"sitegen mirrored {got}, expected {(n, size)}")
        self.narrow = run
        self.add(
            f"at {NARROW} connections: curl / sitegen wall",
            f"{fmt_s(floor.wall)} / {fmt_s(run.measured.wall)}",
            raw=[floor.wall, run.measured.wall],
            note=f"download.concurrency and per_host {NARROW}; one run each; sitegen "
            f"{phases_text(run.probe)}",
        )

    def _peer(self, sg: SitegenRun, n: int) -> None:
        network, work = self.network, self.work
        log(f"{network}: conda-mirror 0.10.0 (serial; this is the slow one)")
        try:
            pm = run_peer(self.base, work / f"peer-{network}", SUBDIRS, work)
        except BenchError as exc:
            self.results.skip(
                self.tag, "conda-mirror full sync", f"peer could not run: {exc}"[:300]
            )
            return
        got = dir_stats(work / f"peer-{network}")
        ratio = sg.measured.wall / pm.wall
        target, limit = ("<= 1/10", 0.1) if network == "loopback" else ("<= 1/20", 0.05)
        self.add(
            "conda-mirror full sync wall",
            fmt_s(pm.wall),
            raw=pm.wall,
            note=f"CPU {pm.cpu_s:.2f} s, peak RSS {fmt_mb(pm.peak_rss_mb)}; mirrored "
            f"{got[0]}/{n} files; one run",
        )
        self.add(
            "sitegen / conda-mirror",
            fmt_ratio(ratio),
            target,
            ok=ratio <= limit,
            raw=ratio,
            note=f"floor / conda-mirror: {fmt_ratio(self.floor_wall / pm.wall)}, largest-first "
            f"floor / conda-mirror: {fmt_ratio(self.lpt.wall / pm.wall)}",
        )
        if self.narrow is not None:
            narrow = self.narrow.measured.wall / pm.wall
            self.add(
                f"sitegen at {NARROW} connections / conda-mirror",
                fmt_ratio(narrow),
                raw=narrow,
                note="the same run, sitegen configured for fewer connections",
            )
        self.results.details[f"peer_{network}"] = {
            "wall": pm.wall,
            "cpu": pm.cpu_s,
            "rss": pm.peak_rss_mb,
        }
