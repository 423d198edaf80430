"""Workload 4: page rendering for ~34,000 package names (``sitegen.web.render.render_site``).

The site is an unfiltered passive mirror of the synthetic conda-forge-sized ``linux-64``
repodata (:mod:`bench.synthetic`: ~34,000 names, 800,000 records). ``sitegen mirror`` renders
the pages itself at the end of every run, so the workload measures both ways in:

1. a first ``sitegen mirror`` run: its ``pages`` stage is a full render (timed by the probe);
2. ``render_site(config)`` alone on that site after its pages and render manifest were deleted:
   the full render (own process: wall, peak RSS);
3. 10 packages change upstream (10 names gain a version) and ``sitegen mirror`` runs again: its
   ``pages`` stage is the incremental render;
4. ``render_site(config)`` alone with the render manifest of before step 3 put back, so that it
   sees exactly the change of step 3: the incremental render (own process);
5. ``render_site(config)`` once more with nothing changed.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from bench.common import (
    BUILD,
    TRASH,
    VENV_BIN,
    BenchError,
    discard,
    fmt_mb,
    fmt_s,
    fresh_dir,
    log,
    mirror_probe_argv,
    project_env,
    run_measured,
)
from bench.metadata import meta_channel, write_config
from bench.nginx import Nginx
from bench.profiling import Profiler
from bench.results import Results
from bench.synthetic import CHANNEL

W = "render"
PYTHON = str(VENV_BIN / "python")
MANIFEST = Path(".sitegen") / "render"  # sitegen's render state, relative to the site


def _wipe_pages(site: Path) -> int:
    """Take the pages and the render manifest away (into the trash, see bench.common.discard:
    moved, not deleted, so the render measured next does not pay for their deletion)."""
    discard(site / MANIFEST)
    pages = TRASH / f"{time.time_ns()}-pages"
    pages.mkdir(parents=True)
    removed = 0
    for directory, _dirs, names in os.walk(site):
        for name in names:
            if name.endswith(".html"):
                os.rename(os.path.join(directory, name), pages / f"{removed}.html")
                removed += 1
    return removed


def _html_files(site: Path) -> int:
    """The pages on disk: counted here, not inside the process timed."""
    return sum(
        1 for _directory, _dirs, names in os.walk(site) for name in names if name.endswith(".html")
    )


def _mirror(config: Path, work: Path, tag: str, profiler: Profiler) -> tuple[float, dict]:
    probe = work / f"probe-{tag}.json"
    probe.unlink(missing_ok=True)
    argv = profiler.wrap(mirror_probe_argv(probe, config), tag)
    os.sync()
    m = run_measured(argv, env=project_env(), timeout=3600).check(f"sitegen mirror ({tag})")
    return m.wall, json.loads(probe.read_text()).get("phases", {}) if probe.exists() else {}


def _render(config: Path, work: Path, tag: str, profiler: Profiler):
    out = work / f"{tag}.json"
    out.unlink(missing_ok=True)
    argv = profiler.wrap([PYTHON, "-m", "bench.render_probe", str(config), str(out)], tag)
    os.sync()
    m = run_measured(argv, env=project_env(), timeout=3600)
    if m.returncode != 0:
        raise BenchError(f"render_site failed: {(m.stderr or m.stdout)[-400:]}")
    return m, json.loads(out.read_text())


def run(results: Results, *, seed: int, quick: bool, profiler: Profiler) -> None:
    channel = meta_channel(seed, quick)
    work = BUILD / "render"
    work.mkdir(parents=True, exist_ok=True)
    with Nginx(channel.root, fresh_dir(work / "nginx")) as nginx:
        channel.serve("v1")
        site = fresh_dir(work / "site")
        config = write_config(work / "channels.yaml", site, f"{nginx.url}/{CHANNEL}", False)
        results.add(
            W,
            "site",
            f"{channel.info['names']:,} names, {channel.info['records']:,} records",
            note="unfiltered passive mirror of the synthetic linux-64 repodata",
        )

        log("render: sitegen mirror, first run (its pages stage is a full render)")
        wall, phases = _mirror(config, work, "render-mirror-v1", profiler)
        results.add(
            W,
            "full render inside `sitegen mirror`",
            fmt_s(phases.get("pages")),
            "< 60 s",
            ok=phases["pages"] < 60 if "pages" in phases else None,
            raw=phases.get("pages"),
            note=f"whole mirror run {fmt_s(wall)}",
        )

        log("render: render_site alone, full (pages and render manifest deleted)")
        wiped = _wipe_pages(site)
        m, doc = _render(config, work, "render-full", profiler)
        results.add(
            W,
            "full render: render_site alone",
            fmt_s(m.wall),
            "< 60 s",
            ok=m.wall < 60,
            raw=m.wall,
            note=f"process wall (render_site {fmt_s(doc['render_s'])}); peak RSS "
            f"{fmt_mb(m.peak_rss_mb)}; {_html_files(site):,} .html files ({wiped:,} deleted "
            f"before); {doc.get('stats', '')}",
        )

        log("render: 10 packages change upstream; sitegen mirror (its pages stage is incremental)")
        saved = work / "render-manifest-v1"
        shutil.rmtree(saved, ignore_errors=True)
        shutil.copytree(site / MANIFEST, saved)
        channel.serve("v2")
        try:
            wall, phases = _mirror(config, work, "render-mirror-v2", profiler)
        finally:
            channel.serve("v1")
        results.add(
            W,
            "incremental render inside `sitegen mirror`",
            fmt_s(phases.get("pages")),
            "< 5 s",
            ok=phases["pages"] < 5 if "pages" in phases else None,
            raw=phases.get("pages"),
            note=f"10 names gained a version; whole mirror run {fmt_s(wall)}",
        )

        log("render: render_site alone, incremental (manifest of before the change restored)")
        shutil.rmtree(site / MANIFEST)
        shutil.copytree(saved, site / MANIFEST)
        m, doc = _render(config, work, "render-incremental", profiler)
        recomputed = doc.get("rendered")
        if recomputed is not None and recomputed > 1000:
            log(
                f"render: the incremental render recomputed {recomputed} pages: its inputs "
                "changed beyond the 10 packages (templates or renderer edited during the run?)"
            )
        results.add(
            W,
            "incremental render: render_site alone",
            fmt_s(m.wall),
            "< 5 s",
            ok=m.wall < 5,
            raw=m.wall,
            note=f"process wall (render_site {fmt_s(doc['render_s'])}); peak RSS "
            f"{fmt_mb(m.peak_rss_mb)}; {doc.get('stats', '')}",
        )

        log("render: render_site alone, nothing changed")
        m, doc = _render(config, work, "render-noop", profiler)
        results.add(
            W,
            "render with nothing changed",
            fmt_s(m.wall),
            raw=m.wall,
            note=f"peak RSS {fmt_mb(m.peak_rss_mb)}; {doc.get('stats', '')}",
        )
