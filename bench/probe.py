"""``python -m bench.probe OUT.json [--httpx] -- <sitegen arguments>``: the sitegen CLI, phases
timed.

Exactly ``sitegen.cli.main(argv)``, with the stage functions the mirror pipeline
(``sitegen.sync.pipeline`` and its merge stage, ``sitegen.sync.merging``) calls wrapped in timers (a perf_counter call each, nothing else), and
so is ``sitegen.web.render.render_site`` as the CLI calls it (the pages rendered after the run). Writes to OUT.json the seconds spent in each
stage, the process's peak RSS when each stage ended, when ``main`` was entered (to separate
interpreter start and imports from the run) and the exit status. A stage that a refactoring renamed is simply not reported.

With ``--httpx``, upstream HTTP goes through a plain ``httpx.AsyncClient`` (httpx's default
transport) instead of sitegen's own: the same run, to measure what that transport is worth.
"""

from __future__ import annotations

import functools
import inspect
import json
import resource
import sys
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
    "write_channeldata": "channeldata",
    "build_report": "report",
}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _wrap(
    module: object, name: str, phase: str, phases: dict[str, float], peaks: dict[str, float]
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
    for name, phase in STAGES.items():
        # The merge stage calls merge_subdir and load_previous from its own module.
        for module in (pipeline, merging):
            _wrap(module, name, phase, phases, peaks)
    # `sitegen mirror` renders the pages after the run.
    _wrap(render, "render_site", "pages", phases, peaks)
    entered = time.time()
    t0 = time.perf_counter()
    status = 1
    try:
        status = cli.main(argv)
    finally:
        document = {
            "probe_started": imported,
            "main_entered": entered,
            "run_s": time.perf_counter() - t0,
            "phases": phases,
            "status": status,
            "peak_rss_mb": _peak_mb(),
            "peak_rss_mb_after": peaks,
        }
        with open(out_path, "w") as handle:
            json.dump(document, handle)
    return status


if __name__ == "__main__":
    sys.exit(main())
