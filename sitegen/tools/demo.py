"""``sitegen demo``: mirror a bundled example channel end to end, with no network at all."""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

import trio

from sitegen.config import load_config
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import write_example_channel
from sitegen.web.render import render_site

DEMO_CONFIG = """\
# Written by `sitegen demo`: mirrors the example upstream in ./upstream into ./site.
output: site
title: sitegen demo mirror
channels:
  # The whole example channel, as a person would mirror conda-forge.
  cloud/example:
    url: {upstream}
    subdirs: [linux-64, noarch]
  # A curated channel fed from the same upstream: an allowlist plus its dependencies,
  # without GPL/AGPL or unlicensed packages and without Python 2 builds.
  internal/approved:
    filters:
      licenses: {{exclude: ["*GPL*"], allow_missing: false}}
      builds: {{exclude: ["py2*"]}}
    mirrors:
      - name: approved-example
        url: {upstream}
        subdirs: [linux-64, noarch]
        filters:
          specs: {{include: ["numpy >=1.26"]}}
          include_dependencies: true
"""


def run_demo(directory: Path) -> int:
    directory = directory.absolute()
    upstream = directory / "upstream"
    write_example_channel(upstream, zst=True)
    config_path = directory / "channels.yaml"
    config_path.write_text(DEMO_CONFIG.format(upstream=upstream.as_uri()))
    config = load_config(config_path)
    report = trio.run(run_mirror, config, MirrorOptions())
    render_site(config)
    site = config.output
    logging.getLogger("sitegen").info("demo run %s: %s", report.id, report.status)
    command = own_command()
    print(
        f"""
The demo site is in {site}

Browse it:  {command} serve -c {config_path} --port 8000   (then open http://127.0.0.1:8000/)
Serve it:   any static web server, e.g. python -m http.server -d {site} 8000
Use it:     pixi/conda/mamba with -c http://127.0.0.1:8000/cloud/example
            or the curated channel  -c http://127.0.0.1:8000/internal/approved
.condarc:   channel_alias: http://127.0.0.1:8000/cloud
Config:     {config_path} (edit it and run `{command} mirror -c {config_path}`)
"""
    )
    return 1 if report.failed else 0


def own_command(argv0: str | None = None) -> str:
    """How to call this sitegen again, from any directory (the hints name absolute paths for
    everything else too): ``sitegen`` when that name on PATH is this program, else the
    absolute path it was started by (``/srv/sitegen/.venv/bin/sitegen``, when it was started
    as ``.venv/bin/sitegen``). ``argv0``: how it was started (default: ``sys.argv[0]``)."""
    started = Path(sys.argv[0] if argv0 is None else argv0)
    on_path = shutil.which("sitegen")
    if on_path and started.name == "sitegen" and Path(on_path).resolve() == started.resolve():
        return "sitegen"
    if started.name == "sitegen" and started.is_file():
        return str(started.absolute())
    return f"{sys.executable} -m sitegen"
