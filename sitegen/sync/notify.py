"""Notification hooks: ``notify.on_failure`` / ``notify.on_success`` commands run after a run
with its summary as JSON on stdin, so cron users get mail or chat alerts with their own tools.

A hook never blocks or fails the run: it runs with a timeout in a session of its own (killed
whole, with whatever it started, when the time is up), and anything that goes wrong is logged.
The summary passes through the same scrub as the pages, so it never carries a token.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
from collections.abc import Callable
from typing import Any

from sitegen import layout
from sitegen.config import SiteConfig, child_environment, make_scrub
from sitegen.sync.report import RunReport

log = logging.getLogger("sitegen")


def run_summary(
    report: RunReport, config: SiteConfig, exit_status: int, scrub: Callable[[str], str]
) -> dict[str, Any]:
    """What a hook reads on stdin: the outcome, per mirror and channel subdir, without tokens."""
    page = layout.run_page_path(report.id)
    channels = [
        {
            "channel": c.channel,
            "subdir": c.subdir,
            "status": c.status,
            "files": c.packages,
            "added": len(c.added),
            "updated": len(c.updated),
            "removed": len(c.removed),
            "downloaded_files": c.downloaded_files,
            "downloaded_bytes": c.downloaded_bytes,
            "errors": [scrub(e) for e in c.errors],
        }
        for c in report.channels
    ]
    mirrors = [
        {
            "name": m.name,
            "channel": m.channel,
            "source": scrub(m.source),
            "status": m.status,
            "errors": [scrub(e) for e in m.errors],
        }
        for m in report.mirrors
    ]
    errors = [scrub(e) for e in report.errors]
    problems = len(errors) + sum(len(m["errors"]) for m in mirrors)
    problems += sum(len(c["errors"]) for c in channels)
    return {
        "title": scrub(config.title),
        "site": str(config.output),
        "run": report.id,
        "status": report.status,
        "exit_status": exit_status,
        "summary": f"sitegen run {report.id}: {report.status}"
        + (f", {problems} errors" if problems else ""),
        "started": report.started,
        "ended": report.ended,
        "page": f"{config.base_url}/{page}" if config.base_url else page,
        "errors": errors,
        "mirrors": mirrors,
        "channels": channels,
    }


def run_hook(
    argv: tuple[str, ...], data: bytes, timeout: float, env: dict[str, str] | None = None
) -> bool:
    """Run one hook command with ``data`` on stdin (in ``env``, see child_environment);
    False (and logged) when it failed."""
    name = argv[0]
    try:
        process = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a process group of its own, to kill all it started
        )
    except OSError as exc:
        log.error("notify: cannot run %s: %s", name, exc.strerror or exc)
        return False
    try:
        output, _ = process.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):  # it ended just now
            os.killpg(process.pid, signal.SIGKILL)
        try:
            process.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            process.wait()  # a grandchild that left the group holds the pipe: stop reading
        log.error("notify: %s did not finish within %.0f s; killed", name, timeout)
        return False
    text = output.decode(errors="replace").strip()
    if process.returncode != 0:
        log.error("notify: %s exited with status %d: %s", name, process.returncode, text[-2000:])
        return False
    if text:
        log.info("notify: %s: %s", name, text[-2000:])
    return True


def notify_run(config: SiteConfig, report: RunReport, exit_status: int) -> None:
    """Run ``on_success`` after a run that exits 0, ``on_failure`` after any other."""
    argv = config.notify.on_success if exit_status == 0 else config.notify.on_failure
    if not argv:
        return

    summary = run_summary(report, config, exit_status, make_scrub(config))
    data = json.dumps(summary, indent=1).encode()
    try:
        run_hook(argv, data, config.notify.timeout, child_environment(config))
    except Exception as exc:  # whatever happens, the run's own outcome stands
        log.error("notify: %s failed: %s: %s", argv[0], type(exc).__name__, exc)
