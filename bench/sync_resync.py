"""Workload 2 of :mod:`bench.sync`: the no-op resync and the 1 % resync of a site the full
sync made, per network."""

from __future__ import annotations

from pathlib import Path

from bench.common import fmt_mb, fmt_ratio, fmt_s, log
from bench.nginx import LogLine
from bench.sync_runs import (
    Network,
    SitegenRun,
    best_run,
    gets_text,
    outside,
    package_requests,
    phases_text,
    run_sitegen,
    spread,
)


def _only_conditional(requests: list[LogLine]) -> bool:
    """Every subdir's repodata answered 304, and nothing else asked but its CEP-12
    run_exports.json: 304 where upstream serves one, 404 where it serves none (the synthetic
    upstream here), since one may appear there while the repodata stays."""
    repodata = [ln for ln in requests if "/repodata.json" in ln.uri]
    others = [ln for ln in requests if ln not in repodata]
    return (
        bool(repodata)
        and all(ln.status == 304 for ln in repodata)
        and all(
            ln.status in (304, 404) and ln.uri.rsplit("/", 1)[-1].startswith("run_exports.json")
            for ln in others
        )
    )


def noop(net: Network, config: Path) -> None:
    """The plain command again, upstream untouched: best of max(3, N) runs, then once more
    through the probe for the breakdown."""
    log(f"{net.network}: sitegen no-op resync x{max(3, net.repeat)}")
    noops = [
        run_sitegen(config, net.nginx, f"noop-{net.network}", net.work, net.profiler, probe=False)
        for _ in range(max(3, net.repeat))
    ]
    quickest = best_run(noops)
    walls = [r.measured.wall for r in noops]
    requests = [ln for r in noops for ln in r.requests]
    conditional = _only_conditional(requests)
    net.add(
        "no-op resync wall (incl. process start)",
        fmt_s(quickest.measured.wall),
        "< 1 s",
        ok=quickest.measured.wall < 1.0,
        raw=walls,
        note=f"CPU {quickest.measured.cpu_s:.2f} s, peak RSS "
        f"{fmt_mb(quickest.measured.peak_rss_mb)}; {spread(walls)}",
    )
    net.add(
        "no-op resync upstream requests",
        f"{len(quickest.requests)} per run: "
        + ", ".join(
            f"{ln.status} {ln.uri.rsplit('/', 2)[-2]}/{ln.uri.rsplit('/', 1)[-1]}"
            for ln in quickest.requests[:4]
        )
        + (" ..." if len(quickest.requests) > 4 else ""),
        "304s (+ run_exports 404s)",
        ok=conditional,
        raw=[(ln.status, ln.uri) for ln in requests],
    )
    # Once more through the probe: where the time goes.
    bd = run_sitegen(config, net.nginx, f"noop-probe-{net.network}", net.work, net.profiler)
    net.add(
        "no-op resync phases",
        phases_text(bd.probe, 3),
        note=f"start+imports {fmt_s(bd.startup_s)}; outside the stages (client setup, "
        f"history, exit) {fmt_s(outside(bd))}",
    )
    net.results.details[f"noop_{net.network}"] = {
        "walls": walls,
        "probe": bd.probe,
        "probe_wall": bd.measured.wall,
    }


def resync(net: Network, config: Path, sg: SitegenRun) -> None:
    """1 % changed upstream: v1 -> v2, then back and forth (each flip changes 1 %)."""
    log(f"{net.network}: sitegen 1 % resync x{net.repeat}")
    runs = []
    try:
        for i in range(net.repeat):
            state = "v2" if i % 2 == 0 else "v1"
            net.channel.serve(state)
            run = run_sitegen(
                config, net.nginx, f"resync1-{net.network}-{i}", net.work, net.profiler
            )
            expected = net.channel.changed if state == "v2" else net.channel.manifest["dropped"]
            # Large files may come as several byte-range GETs: compare file names.
            fetched = sorted({ln.uri.rsplit("/", 1)[-1] for ln in package_requests(run.requests)})
            runs.append((run, fetched == sorted(expected), fetched))
    finally:
        net.channel.serve("v1")
    best, _exact, fetched = min(runs, key=lambda t: t[0].measured.wall)
    all_exact = all(t[1] for t in runs)
    pkg = package_requests(best.requests)
    ratio = best.measured.wall / sg.measured.wall
    net.add(
        "1 % resync wall",
        fmt_s(best.measured.wall),
        raw=[t[0].measured.wall for t in runs],
        note=f"{gets_text(pkg)} ({sum(ln.bytes for ln in pkg) / 1e6:.1f} MB): "
        f"{'exactly the changed files' if all_exact else 'NOT only the changed files'}; "
        f"{phases_text(best.probe)}; {spread([t[0].measured.wall for t in runs])}",
    )
    net.add(
        "1 % resync / full sync",
        fmt_ratio(ratio),
        "< 1/5",
        ok=(ratio < 0.2 and all_exact) if net.judged else None,
        raw=ratio,
    )
    net.results.details[f"resync1_{net.network}"] = {
        "walls": [t[0].measured.wall for t in runs],
        "fetched": fetched,
        "probe": best.probe,
    }
