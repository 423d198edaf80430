"""``sitegen demo``: mirror a bundled example channel end to end, with no network at all."""

from __future__ import annotations

import hashlib
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


# Beside the demo's channels.yaml: the sha256 of the one it wrote last. A file that no longer
# hashes to it was edited (as the hints invite) and is kept.
WRITTEN_RECORD = ".channels.yaml.written"


def run_demo(directory: Path) -> int:
    directory = directory.absolute()
    upstream = directory / "upstream"
    write_example_channel(upstream, zst=True)
    config_path = directory / "channels.yaml"
    if not demo_config(config_path, DEMO_CONFIG.format(upstream=upstream.as_uri())):
        logging.getLogger("sitegen").warning(
            "%s was edited since the demo wrote it: kept as it is (delete it for the demo's)",
            config_path,
        )
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


def demo_config(path: Path, text: str) -> bool:
    """Write the demo's ``text`` to ``path`` unless the file there was edited since the demo
    last wrote it; False when it was, and is kept."""
    record = path.parent / WRITTEN_RECORD
    try:
        current = path.read_bytes()
    except FileNotFoundError:
        current = None
    if current is not None:
        try:
            written = record.read_text().strip()
        except FileNotFoundError:
            written = ""
        # A file without a record is the demo's when it holds exactly the demo's text.
        if hashlib.sha256(current).hexdigest() != written and current != text.encode():
            return False
    path.write_text(text)
    record.write_text(hashlib.sha256(text.encode()).hexdigest() + "\n")
    return True


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
