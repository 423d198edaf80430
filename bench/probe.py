"""``python -m bench.probe OUT.json [--httpx] -- <sitegen arguments>``: the sitegen CLI, phases
timed.

Exactly ``sitegen.cli.main(argv)``, with the stage functions the mirror pipeline
(``sitegen.sync.pipeline`` and its merge stage, ``sitegen.sync.merging``) calls wrapped in timers (a perf_counter call each, nothing else), and
so is ``sitegen.web.render.render_site`` as the CLI calls it (the pages rendered after the run). Writes to OUT.json the seconds spent in each
stage, the process's peak RSS when each stage ended, when ``main`` was entered (to separate
interpreter start and imports from the run) and the exit status. A stage that a refactoring renamed is simply not reported.

The peak RSS is the process's own: the worker processes the pages stage forks are not in it.
So a thread also samples, every 100 ms, the proportional set size (PSS: each page shared
between processes counted once, split between them) of the process and all its descendants,
summed: the peak memory of the whole run, workers included (Linux; none elsewhere).

With ``--httpx``, upstream HTTP goes through a plain ``httpx.AsyncClient`` (httpx's default
transport) instead of sitegen's own: the same run, to measure what that transport is worth.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import resource
import sys
import threading
import time

# The pipeline's stages as it names them; a per-subdir stage (merge, plan) sums over subdirs.
STAGES = {
    "fetch_all": "fetch",
    "parse_all": "parse",
    "select_all": "filter",
    "close": "closure",
    "merge_subdir": "merge",
    "plan_subdir": "plan",
    "download_all": "download",
    "flush": "flush",
    "load_previous": "previous",
    "prepare_all": "prepare",
    "publish_all": "publish",
    "write_channel_files": "channeldata",
    "build_report": "report",
}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pss_kb(pid: int) -> int:
    """The PSS of ``pid`` and its descendants, in kB (0 for what ended meanwhile)."""
    total = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
        children = []
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                children += [int(c) for c in handle.read().split()]
    except (OSError, ValueError):
        return total
    return total + sum(_pss_kb(child) for child in children)


class TreeMemory:
    """Samples the PSS of this process and its descendants in a thread; ``peak_mb``."""

    def __init__(self, every: float = 0.1) -> None:
        self.peak_mb = 0.0
        self.every = every
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="tree-memory", daemon=True)
        self.available = os.path.exists(f"/proc/{os.getpid()}/smaps_rollup")

    def start(self) -> None:
        if self.available:
            self.thread.start()

    def sample(self) -> float:
        if self.available:
            self.peak_mb = max(self.peak_mb, _pss_kb(os.getpid()) / 1024)
        return self.peak_mb

    def _run(self) -> None:
        while not self.stopped.wait(self.every):
            self.sample()

    def stop(self) -> float | None:
        if not self.available:
            return None
        self.stopped.set()
        self.thread.join()
        return self.sample()


def _wrap(
    module: object,
    name: str,
    phase: str,
    phases: dict[str, float],
    peaks: dict[str, float],
    tree: TreeMemory,
    tree_peaks: dict[str, float],
) -> None:
    original = getattr(module, name, None)
    if original is None:
        return
    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def timed_async(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                phases[phase] = phases.get(phase, 0.0) + time.perf_counter() - t0
                peaks[phase] = _peak_mb()
                tree_peaks[phase] = tree.sample()

        setattr(module, name, timed_async)
    else:

        @functools.wraps(original)
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                phases[phase] = phases.get(phase, 0.0) + time.perf_counter() - t0
                peaks[phase] = _peak_mb()
                tree_peaks[phase] = tree.sample()

        setattr(module, name, timed)


def _use_plain_httpx() -> None:
    """Upstream HTTP through ``httpx.AsyncClient`` with its default transport, what sitegen's
    own transport is measured against. Its pool is left unbounded: sitegen's limiters decide
    the concurrency, as they do for its own transport."""
    import httpx

    from sitegen.net import upstream
    from sitegen.net.client import ClientTransport, UpstreamClient
    from sitegen.net.transport import tls_context

    def open_client(
        timeout: httpx.Timeout, user_agent: str, verify: bool = True, ca_bundle: str | None = None
    ) -> UpstreamClient:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        context = tls_context(verify, ca_bundle)
        client = httpx.AsyncClient(verify=context, timeout=timeout, limits=limits)
        return UpstreamClient(ClientTransport(client), user_agent=user_agent, timeout=timeout)

    upstream.open_client = open_client


def main() -> int:
    out_path, *rest = sys.argv[1:]
    plain_httpx = rest[:1] == ["--httpx"]
    sep, *argv = rest[1:] if plain_httpx else rest
    assert sep == "--", "usage: python -m bench.probe OUT.json [--httpx] -- <sitegen arguments>"
    imported = time.time()
    from sitegen import cli
    from sitegen.sync import merging, pipeline
    from sitegen.web import render

    if plain_httpx:
        _use_plain_httpx()

    phases: dict[str, float] = {}
    peaks: dict[str, float] = {}  # the process's peak RSS (MB) when each stage last ended
    tree = TreeMemory()
    tree_peaks: dict[str, float] = {}  # the same of the process and its workers (PSS)
    for name, phase in STAGES.items():
        # The merge stage calls merge_subdir and load_previous from its own module.
        for module in (pipeline, merging):
            _wrap(module, name, phase, phases, peaks, tree, tree_peaks)
    # `sitegen mirror` renders the pages after the run.
    _wrap(render, "render_site", "pages", phases, peaks, tree, tree_peaks)
    entered = time.time()
    t0 = time.perf_counter()
    status = 1
    tree.start()
    try:
        status = cli.main(argv)
    finally:
        tree_peak = tree.stop()
        document = {
            "probe_started": imported,
            "main_entered": entered,
            "run_s": time.perf_counter() - t0,
            "phases": phases,
            "status": status,
            "peak_rss_mb": _peak_mb(),
            "peak_rss_mb_after": peaks,
            "peak_tree_pss_mb": tree_peak,
            "peak_tree_pss_mb_after": tree_peaks,
        }
        with open(out_path, "w") as handle:
            json.dump(document, handle)
    return status


if __name__ == "__main__":
    sys.exit(main())
