"""``python -m bench [--quick] [--only WORKLOAD] [--seed N] [--no-peer] [--profile]``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback

from bench.common import BUILD, BenchError, discard, empty_trash, log, start_spawner, stop_spawner
from bench.profiling import Profiler
from bench.results import Results, load_average, tree_state

WORKLOADS = ("sync", "metadata", "shards", "render", "local", "stats")
ALIASES = {"resync": "sync", "meta": "metadata"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="sitegen benchmarks: full sync and resyncs against conda-mirror and a curl "
        "floor over real nginx (plain loopback and through a delaying proxy), conda-forge-scale "
        "metadata, sharded repodata for the mirror (beside a msgspec + zstd floor) and a client, page rendering, a local source of 5,000 packages beside rattler's indexer. "
        "Prints a table; writes bench-results/.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes for a smoke run (200 files / 20 MB; 20,000 records)",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="WORKLOAD",
        choices=WORKLOADS + tuple(ALIASES),
        help=f"run only this workload (repeatable): {', '.join(WORKLOADS)}",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the generated channels (default 0)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        metavar="N",
        help="runs of each sitegen/curl sync measurement; the best counts (default 3, 1 with "
        "--quick): the machine may be shared",
    )
    parser.add_argument(
        "--no-peer",
        action="store_true",
        help="skip conda-mirror (the slowest part: it downloads serially)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the scratch sites, downloads and nginx logs under build/bench/<workload> "
        "(deleted after each workload by default; the generated channels stay cached)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run the sitegen processes under py-spy (installed into "
        "build/bench-venv); summaries in bench-results/profiles/. Times of "
        "profiled runs are inflated.",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start_spawner()  # first, while this process is small: see bench/spawner.py
    try:
        return _main(args)
    finally:
        stop_spawner()


def _main(args: argparse.Namespace) -> int:
    selected = [
        w for w in WORKLOADS if not args.only or w in {ALIASES.get(o, o) for o in args.only}
    ]
    results = Results()
    profiler = Profiler(args.profile)
    failed = False
    try:
        import sitegen.sync.run  # noqa: F401  (fails early and clearly on a broken tree)
    except Exception as exc:  # the tree is shared: another change may be half done
        log(f"sitegen cannot be imported: {exc!r}")
        for workload in selected:
            if workload != "render":
                results.skip(workload, "all", f"sitegen cannot be imported: {exc!r}")
        selected = [w for w in selected if w == "render"]
        failed = True
    for workload in selected:
        t0 = time.perf_counter()
        log(f"=== {workload}")
        module = importlib.import_module(f"bench.{workload}")
        kwargs = {"seed": args.seed, "quick": args.quick, "profiler": profiler}
        if workload == "sync":
            kwargs["peer"] = not args.no_peer
            kwargs["repeat"] = max(1, args.repeat or (1 if args.quick else 3))
        load = load_average()
        if load is not None and load > 0.5 * (os.cpu_count() or 1):
            log(f"load average {load:.1f} on {os.cpu_count()} CPUs: other jobs share this machine")
        results.details.setdefault("load_average", {})[workload] = load
        tree = tree_state()
        results.details.setdefault("tree", {})[workload] = tree
        results.add(workload, "sitegen tree measured", tree[:60], note=tree[60:300])
        try:
            module.run(results, **kwargs)
        except BenchError as exc:
            failed = True
            results.skip(workload, "run", f"error: {exc}"[:400])
            log(f"{workload} failed: {exc}")
        except Exception as exc:
            failed = True
            traceback.print_exc()
            results.skip(workload, "run", f"error: {type(exc).__name__}: {exc}"[:400])
        log(f"=== {workload} done in {time.perf_counter() - t0:.0f} s")
        if not args.keep:
            discard(BUILD / workload)
    log("deleting the scratch sites")
    empty_trash()
    if args.profile:
        for path in profiler.summarise():
            log(f"profile summary: {path}")
    path = results.write({k: v for k, v in vars(args).items()})
    print()
    print(results.table())
    print(f"\n(written to {path} and bench-results/latest.txt)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
