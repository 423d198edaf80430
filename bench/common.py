"""Shared pieces of the benchmarks: paths, measured subprocesses, the results table."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "build" / "bench"  # generated inputs (cached) and scratch sites
RESULTS = REPO / "bench-results"
VENV_BIN = Path(sys.executable).parent  # the project virtualenv that runs the benchmarks
SITEGEN = VENV_BIN / "sitegen"
PYTORCH_REPODATA = REPO.parent / "shared" / "data" / "pytorch-linux-64-repodata.json"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Measured:
    """One finished subprocess: wall seconds from spawn to exit, its peak RSS, exit status."""

    argv: list[str]
    wall: float
    peak_rss_mb: float
    returncode: int
    cpu_s: float = 0.0  # user + system seconds of the process and its waited-for children
    stdout: str = ""
    stderr: str = ""
    started: float = 0.0  # time.time() at spawn

    def check(self, what: str) -> Measured:
        if self.returncode != 0:
            tail = (self.stderr or self.stdout)[-3000:]
            raise BenchError(f"{what} exited with status {self.returncode}:\n{tail}")
        return self


class BenchError(RuntimeError):
    """A workload could not run; reported in the table instead of a number."""


class _Spawner:
    """Client of bench/spawner.py (see there: why measured commands are not our children)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-S", str(Path(__file__).with_name("spawner.py"))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.lock = threading.Lock()
        self.scratch = BUILD / "spawner"
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.counter = 0

    def run(
        self, argv: list[str], cwd: Path | None, env: dict[str, str] | None, timeout: float
    ) -> Measured:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with self.lock:
            self.counter += 1
            out = self.scratch / f"{self.counter}.out"
            err = self.scratch / f"{self.counter}.err"
            request = {
                "argv": argv,
                "cwd": str(cwd) if cwd else None,
                "env": env,
                "timeout": timeout,
                "stdout": str(out),
                "stderr": str(err),
            }
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise BenchError("the spawner process died")
        reply = json.loads(line)
        if "error" in reply:
            raise BenchError(f"could not run {argv[0]}: {reply['error']}")
        stdout = out.read_text(errors="replace")
        stderr = err.read_text(errors="replace")
        out.unlink(missing_ok=True)
        err.unlink(missing_ok=True)
        if reply["timed_out"]:
            raise BenchError(f"{argv[0]} did not finish within {timeout:.0f} s")
        return Measured(
            argv=argv,
            wall=reply["wall"],
            peak_rss_mb=reply["maxrss_kb"] / 1024.0,
            returncode=reply["returncode"],
            cpu_s=reply["cpu"],
            stdout=stdout,
            stderr=stderr,
            started=reply["started"],
        )

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


_spawner: _Spawner | None = None


def start_spawner() -> None:
    """Call first thing, while this process is small (peak RSS is inherited across fork+exec)."""
    global _spawner
    if _spawner is None:
        _spawner = _Spawner()


def stop_spawner() -> None:
    global _spawner
    if _spawner is not None:
        _spawner.close()
        _spawner = None


def run_measured(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 3600.0,
) -> Measured:
    """Run a command to completion: wall and CPU seconds, peak RSS (wait4), exit status.

    ``ru_maxrss`` of the reaped child covers the child and every descendant it waited for,
    so a tool that forks workers (conda-mirror's validation pool) is measured whole. Commands
    go through the spawner when it runs (accurate peak RSS); otherwise they are started here
    and their peak RSS is at least this process's peak.
    """
    argv = [str(a) for a in argv]
    if _spawner is not None:
        return _spawner.run(argv, cwd, env, timeout)
    started = time.time()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = _communicate(proc, timeout)
        _pid, status, usage = os.wait4(proc.pid, 0)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        raise
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Measured(
        argv=argv,
        wall=wall,
        peak_rss_mb=usage.ru_maxrss / 1024.0,
        returncode=proc.returncode,
        cpu_s=usage.ru_utime + usage.ru_stime,
        stdout=stdout or "",
        stderr=stderr or "",
        started=started,
    )


def _communicate(proc: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    """Read both pipes to EOF without reaping the child (wait4 must see it)."""
    chunks: dict[str, list[str]] = {"out": [], "err": []}

    def drain(stream, key: str) -> None:
        for line in stream:
            chunks[key].append(line)

    threads = [
        threading.Thread(target=drain, args=(proc.stdout, "out"), daemon=True),
        threading.Thread(target=drain, args=(proc.stderr, "err"), daemon=True),
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
        if t.is_alive():
            raise BenchError(f"{proc.args[0]} did not finish within {timeout:.0f} s")
    return "".join(chunks["out"]), "".join(chunks["err"])


# What the benchmarks discard is moved here and deleted once every workload is measured.
# Deleting many files just before a measured run would slow that run down on some file
# systems: ext4 without a journal skips inodes freed in the last few minutes when it allocates
# new ones (its recently_deleted check), so a site written right after a large deletion costs
# several times the file-creation time of a first run on a real server.
TRASH = BUILD / ".trash"


def discard(path: Path) -> None:
    """Move ``path`` (if there) out of the way, to be deleted by :func:`empty_trash`."""
    if not path.exists() and not path.is_symlink():
        return
    TRASH.mkdir(parents=True, exist_ok=True)
    path.rename(TRASH / f"{time.time_ns()}-{path.name}")


def empty_trash() -> None:
    shutil.rmtree(TRASH, ignore_errors=True)


def fresh_dir(path: Path) -> Path:
    discard(path)
    path.mkdir(parents=True)
    return path


def dir_stats(path: Path, suffixes: tuple[str, ...] = (".conda", ".tar.bz2")) -> tuple[int, int]:
    """(files, bytes) of the package files below path."""
    files = size = 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            if name.endswith(suffixes) and not name.startswith("."):
                files += 1
                size += os.path.getsize(os.path.join(root, name))
    return files, size


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.3f} s" if seconds < 10 else f"{seconds:.1f} s"


# Memory is measured in MiB (the kernel's KiB / 1024); targets in GB are 10**9 bytes, as
# sitegen reads a size (``1.5GB``): this many MiB.
MIB_PER_GB = 1e9 / 2**20


def fmt_mb(mb: float | None) -> str:
    """A measure in MiB, as such."""
    return "-" if mb is None else f"{mb:,.0f} MiB"


def fmt_ratio(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 0.1:
        return f"1/{1 / value:.0f}" if value > 0 else "0"
    return f"{value:.2f}x"


@contextlib.contextmanager
def timer() -> Iterator[dict[str, float]]:
    box: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        yield box
    finally:
        box["s"] = time.perf_counter() - t0


def mirror_probe_argv(out: Path, config: Path, httpx: bool = False) -> list[str]:
    """``sitegen mirror -c config --no-progress`` through :mod:`bench.probe`, which writes the
    time of each stage to ``out``; with ``httpx``, upstream HTTP goes through a plain
    ``httpx.AsyncClient`` instead of sitegen's transport."""
    return [
        str(VENV_BIN / "python"),
        "-m",
        "bench.probe",
        str(out),
        *(["--httpx"] if httpx else []),
        "--",
        "mirror",
        "-c",
        str(config),
        "--no-progress",
    ]


def project_env(**extra: str) -> dict[str, str]:
    """Environment for subprocesses: the project venv first on PATH, no proxies, C locale, and
    bytecode cached as an installed sitegen has it (compiling every module from source again
    costs a run ~0.2-0.4 s: a third of one with nothing new upstream)."""
    env = dict(os.environ)
    for key in list(env):
        if key.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
            del env[key]
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(REPO)  # `python -m bench.<probe>` from any cwd
    env.update(extra)
    return env
