"""``python -m bench.probe OUT.json [--httpx] -- <sitegen arguments>``: the sitegen CLI, phases
timed.

Exactly ``sitegen.cli.main(argv)``, with the stage methods of ``sitegen.sync.run._Run`` wrapped
in timers (a perf_counter call each, nothing else), and so is ``cli._render_pages`` (the
pages rendered after the run). Writes to OUT.json the seconds spent in each
stage, when ``main`` was entered (to separate interpreter start and imports from the run) and
the exit status. A stage that a refactoring renamed is simply not reported.

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

STAGES = (
    "_fetch_all",
    "_parse_all",
    "_filter_all",
    "_close",
    "_merge_all",
    "_plan_all",
    "_download_all",
    "_downloads_on_disk",
    "_publish_all",
)


def _wrap(cls: type, name: str, phases: dict[str, float]) -> None:
    original = getattr(cls, name, None)
    if original is None:
        return
    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def timed_async(self, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return await original(self, *args, **kwargs)
            finally:
                phases[name] = phases.get(name, 0.0) + time.perf_counter() - t0

        setattr(cls, name, timed_async)
    else:

        @functools.wraps(original)
        def timed(self, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(self, *args, **kwargs)
            finally:
                phases[name] = phases.get(name, 0.0) + time.perf_counter() - t0

        setattr(cls, name, timed)


def _use_plain_httpx() -> None:
    """Upstream HTTP through ``httpx.AsyncClient`` with its default transport, what sitegen's
    own transport is measured against. Its pool is left unbounded: sitegen's limiters decide
    the concurrency, as they do for its own transport."""
    import httpx

    from sitegen.net import upstream
    from sitegen.net.client import ClientTransport, UpstreamClient

    def open_client(timeout: httpx.Timeout, user_agent: str, verify: bool = True) -> UpstreamClient:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        client = httpx.AsyncClient(verify=verify, timeout=timeout, limits=limits)
        return UpstreamClient(ClientTransport(client), user_agent=user_agent, timeout=timeout)

    upstream.open_client = open_client


def main() -> int:
    out_path, *rest = sys.argv[1:]
    plain_httpx = rest[:1] == ["--httpx"]
    sep, *argv = rest[1:] if plain_httpx else rest
    assert sep == "--", "usage: python -m bench.probe OUT.json [--httpx] -- <sitegen arguments>"
    imported = time.time()
    from sitegen import cli
    from sitegen.sync import run as mirror

    if plain_httpx:
        _use_plain_httpx()

    phases: dict[str, float] = {}
    for stage in STAGES:
        _wrap(mirror._Run, stage, phases)
    # `sitegen mirror` renders the pages after the run.
    render = cli._render_pages

    def timed_render(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return render(*args, **kwargs)
        finally:
            phases["pages"] = phases.get("pages", 0.0) + time.perf_counter() - t0

    cli._render_pages = timed_render
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
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        with open(out_path, "w") as handle:
            json.dump(document, handle)
    return status


if __name__ == "__main__":
    sys.exit(main())
