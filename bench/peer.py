"""The peer (conda-mirror 0.10.0 from PyPI) and the transfer floor (curl --parallel).

conda-mirror lives in its own virtualenv under build/bench-venv (its dependencies may clash
with sitegen's); the same venv holds py-spy for profiling. It is run the way its users run it:
once per platform, ``--platform linux-64`` then ``--platform noarch``, with its temp directory
on the same filesystem as the target (the default /tmp may be another one, and then every
package would be copied once more) and without progress bars.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench.common import REPO, BenchError, Measured, fresh_dir, log, run_measured

BENCH_VENV = REPO / "build" / "bench-venv"
PEER_REQUIREMENT = "conda-mirror==0.10.0"


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(BENCH_VENV / "bin" / "python"),
            "-m",
            "pip",
            "--disable-pip-version-check",
            "--quiet",
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def ensure_bench_venv() -> None:
    if (BENCH_VENV / "bin" / "python").exists():
        return
    log(f"creating {BENCH_VENV}")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(BENCH_VENV)], check=True)


def peer_binary() -> Path:
    """conda-mirror's entry point, installed on first use; raises BenchError when impossible."""
    binary = BENCH_VENV / "bin" / "conda-mirror"
    if binary.exists():
        return binary
    try:
        ensure_bench_venv()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise BenchError(f"could not create {BENCH_VENV}: {exc}") from None
    log(f"installing {PEER_REQUIREMENT} into {BENCH_VENV}")
    result = _pip("install", PEER_REQUIREMENT)
    if result.returncode != 0 or not binary.exists():
        raise BenchError(f"pip install {PEER_REQUIREMENT} failed: {result.stderr[-1500:]}")
    return binary


def py_spy_binary() -> Path | None:
    binary = BENCH_VENV / "bin" / "py-spy"
    if binary.exists():
        return binary
    try:
        ensure_bench_venv()
    except (OSError, subprocess.CalledProcessError):
        return None
    log(f"installing py-spy into {BENCH_VENV}")
    result = _pip("install", "py-spy")
    return binary if result.returncode == 0 and binary.exists() else None


def run_peer(upstream_url: str, target: Path, subdirs: tuple[str, ...], work: Path) -> Measured:
    """Mirror every subdir with conda-mirror, one process per platform; wall and RSS summed/maxed."""
    binary = peer_binary()
    fresh_dir(target)
    temp = fresh_dir(work / "peer-tmp")
    os.sync()
    total: Measured | None = None
    for subdir in subdirs:
        measured = run_measured(
            [
                binary,
                "--upstream-channel",
                upstream_url,
                "--target-directory",
                target,
                "--temp-directory",
                temp,
                "--platform",
                subdir,
                "--no-progress",
                "--num-threads",
                "1",
            ],
            timeout=7200,
        ).check(f"conda-mirror --platform {subdir}")
        if total is None:
            total = measured
        else:
            total.wall += measured.wall
            total.peak_rss_mb = max(total.peak_rss_mb, measured.peak_rss_mb)
            total.stderr += measured.stderr
    assert total is not None
    return total


def run_floor(
    base_url: str, files: list[tuple[str, str, int]], target: Path, concurrency: int
) -> Measured:
    """The same files fetched by ``curl --parallel`` with the same concurrency: the floor."""
    curl = shutil.which("curl")
    if curl is None:
        raise BenchError("curl is not installed (apt-get install -y curl)")
    fresh_dir(target)
    os.sync()
    config = target.parent / f"{target.name}.curl"
    with open(config, "w") as handle:
        for subdir, fn, _size in files:
            handle.write(f'url = "{base_url}/{subdir}/{fn}"\n')
            handle.write(f'output = "{target / subdir / fn}"\n')
    return run_measured(
        [
            curl,
            "--silent",
            "--show-error",
            "--fail",
            "--create-dirs",
            "--parallel",
            "--parallel-immediate",
            "--parallel-max",
            str(concurrency),
            "--config",
            config,
        ],
        timeout=3600,
    ).check("curl --parallel")
