"""A small process that starts the measured commands, so that their peak RSS is their own.

Linux carries a process's peak RSS (``ru_maxrss``) across ``exec`` from the image it replaced,
and a child starts as a copy of its parent: every command started directly by the benchmark
process would report at least the benchmark's own peak (which holds generated channels and
parsed repodata). This spawner is started first, while the benchmark is still small, runs with
``python -S`` (no site packages, ~10 MB), and does nothing but fork/exec the commands it is
sent and report wall time, CPU time, peak RSS and exit status from ``wait4``.

Protocol: one JSON object per line on stdin
(``{"argv", "cwd", "env", "timeout", "stdout", "stderr"}``; output goes to the given files),
one JSON object per line on stdout (``{"wall", "cpu", "maxrss_kb", "returncode", "started",
"timed_out"}``). Standard library only.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time


def _run(request):
    with open(request["stdout"], "wb") as out, open(request["stderr"], "wb") as err:
        started = time.time()
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            request["argv"],
            cwd=request.get("cwd"),
            env=request.get("env"),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        timed_out = []

        def kill():
            timed_out.append(True)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(request.get("timeout") or 3600.0, kill)
        timer.daemon = True
        timer.start()
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "maxrss_kb": usage.ru_maxrss,
        "returncode": proc.returncode,
        "started": started,
        "timed_out": bool(timed_out),
    }


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            reply = _run(json.loads(line))
        except Exception as exc:  # report, keep serving
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
