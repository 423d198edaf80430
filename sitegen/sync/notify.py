"""Notification hooks: ``notify.on_failure`` / ``notify.on_success`` commands run after a run
with its summary as JSON on stdin, so cron users get mail or chat alerts with their own tools.

A hook never blocks or fails the run: it runs with a timeout in a session of its own (killed
whole, with whatever it started, when the time is up or the command is stopped), and anything
that goes wrong is logged.
The summary passes through the same scrub as the pages, so it never carries a token.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

from sitegen import layout
from sitegen.config import SiteConfig, child_environment, make_scrub
from sitegen.config.urls import redact_url
from sitegen.sync.report import RunReport, iso_utc

log = logging.getLogger("sitegen")


def run_summary(
    report: RunReport,
    config: SiteConfig,
    exit_status: int,
    scrub: Callable[[str], str],
    afterwards: Sequence[str] = (),
) -> dict[str, Any]:
    """What a hook reads on stdin: the outcome, per mirror, channel subdir and installer
    folder, without tokens.
    ``afterwards``: what failed after the run itself (the pages), which the record cannot
    hold (it was written before) and which alone may make the exit status 1."""
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
            "warnings": [scrub(w) for w in m.warnings],
        }
        for m in report.mirrors
    ]
    installers = [
        {
            "path": i.path,
            "source": scrub(i.source),
            "status": i.status,
            "files": i.files,
            "added": len(i.added),
            "updated": len(i.updated),
            "removed": len(i.removed),
            "downloaded_files": i.downloaded_files,
            "downloaded_bytes": i.downloaded_bytes,
            # Rows of the index that are no file to mirror: in a run that completes, the only
            # word a hook gets of an index gone odd.
            "skipped": i.skipped_total,
            "errors": [scrub(e) for e in i.errors],
        }
        for i in report.installers
    ]
    errors = [scrub(e) for e in [*report.errors, *afterwards]]
    problems = len(errors) + sum(len(m["errors"]) for m in mirrors)
    problems += sum(len(c["errors"]) for c in channels)
    problems += sum(len(i["errors"]) for i in installers)
    return {
        "title": scrub(config.title),
        "site": str(config.output),
        "run": report.id,
        "status": report.status,
        "exit_status": exit_status,
        "summary": f"sitegen run {report.id}: {report.status}"
        + (f", {problems} errors" if problems else ""),
        # Seconds since the epoch, as hooks have always read them, and the same in ISO 8601
        # (UTC), as ``sitegen status --json`` gives times.
        "started": report.started,
        "ended": report.ended,
        "started_iso": iso_utc(report.started),
        "ended_iso": iso_utc(report.ended),
        "page": f"{config.base_url}/{page}" if config.base_url else page,
        "errors": errors,
        "mirrors": mirrors,
        "channels": channels,
        "installers": installers,
    }


# What is kept of a hook's output for the log: its end, where a failure usually says why.
OUTPUT_KEPT = 8192


def _feed(stdin: IO[bytes], data: bytes) -> None:
    """Write the summary to the hook and close its stdin; a hook that does not read it all
    (closed stdin early, or was killed) is not an error."""
    with contextlib.suppress(OSError):  # BrokenPipeError among them
        stdin.write(data)
    with contextlib.suppress(OSError):
        stdin.close()


def _drain(stdout: io.BufferedReader, tail: bytearray) -> None:
    """Read the hook's output to its end, keeping only the last OUTPUT_KEPT bytes: a hook that
    prints without end (``yes``, a verbose curl) must not fill the run's memory before its
    timeout."""
    with contextlib.suppress(OSError, ValueError):
        while chunk := stdout.read1(65536):
            tail += chunk
            del tail[:-OUTPUT_KEPT]


def run_hook(
    argv: tuple[str, ...],
    data: bytes,
    timeout: float,
    env: dict[str, str] | None = None,
    scrub: Callable[[str], str] = redact_url,
) -> bool:
    """Run one hook command with ``data`` on stdin (in ``env``, see child_environment);
    False (and logged) when it failed. What it prints is logged through ``scrub``: a hook
    that names a URL (``curl -v``) names its credentials with it."""
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
    assert process.stdin is not None and process.stdout is not None
    tail = bytearray()
    deadline = time.monotonic() + timeout
    threads = [
        threading.Thread(target=_feed, args=(process.stdin, data), daemon=True),
        threading.Thread(target=_drain, args=(process.stdout, tail), daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        process.wait(timeout)
        # Done when its output ends too: what it left running in the background with the
        # output still open counts as the hook, as it did when the output was read at once.
        threads[1].join(max(0.0, deadline - time.monotonic()))
        finished = not threads[1].is_alive()
    except subprocess.TimeoutExpired:
        finished = False
    except BaseException:
        # The command is stopped while the hook runs (Ctrl-C, SIGTERM): in a session of its
        # own the hook hears neither, and would run on after the command, unbounded.
        _kill(process)
        raise
    if not finished:
        _kill(process)
        # A grandchild that left the group may hold the pipe: stop reading after a while.
        threads[1].join(5)
        log.error("notify: %s did not finish within %.0f s; killed", name, timeout)
        return False
    text = scrub(bytes(tail).decode(errors="replace").strip())
    if process.returncode != 0:
        log.error("notify: %s exited with status %d: %s", name, process.returncode, text[-2000:])
        return False
    if text:
        log.info("notify: %s: %s", name, text[-2000:])
    return True


def _kill(process: subprocess.Popen[bytes]) -> None:
    """Kill the hook with everything it started (its process group), and reap it."""
    with contextlib.suppress(ProcessLookupError):  # it ended just now
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def notify_run(
    config: SiteConfig, report: RunReport, exit_status: int, afterwards: Sequence[str] = ()
) -> None:
    """Run ``on_success`` after a run that exits 0, ``on_failure`` after any other."""
    argv = config.notify.on_success if exit_status == 0 else config.notify.on_failure
    if not argv:
        return

    scrub = make_scrub(config)
    summary = run_summary(report, config, exit_status, scrub, afterwards)
    if not (layout.runs_dir(config.output) / f"{report.id}.json").is_file():
        summary["page"] = None  # nothing was recorded (nothing was due): no page shows it
    data = json.dumps(summary, indent=1).encode()
    try:
        run_hook(argv, data, config.notify.timeout, child_environment(config), scrub)
    except Exception as exc:  # whatever happens, the run's own outcome stands
        log.error("notify: %s failed: %s: %s", argv[0], type(exc).__name__, exc)
