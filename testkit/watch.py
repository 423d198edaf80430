"""A real ``sitegen watch`` process over one local source's folder, and packages dropped into
that folder as a build tool drops them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from sitegen.tools.example_channel import PackageSpec
from testkit.local import drop

CHANNEL = "internal/own"
# The promise is ~2 s from the drop; the margin absorbs a loaded test machine.
WITHIN = 6.0


class Watch:
    """``sitegen watch`` of a site whose one channel, CHANNEL, is the folder; ``prefix``: a
    command the process runs under (e.g. a namespace with other limits)."""

    def __init__(
        self,
        tmp_path: Path,
        folder: Path,
        move: bool = False,
        site: Path | None = None,
        prefix: tuple[str, ...] = (),
    ) -> None:
        self.site = site or tmp_path / "site"
        self.folder = folder
        self.config = tmp_path / "channels.yaml"
        self.config.write_text(
            textwrap.dedent(f"""
            output: {self.site}
            channels:
              {CHANNEL}:
                path: {folder}
                subdirs: [linux-64]
                move: {"true" if move else "false"}
            """)
        )
        self.log = open(tmp_path / "watch.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "sitegen", "watch", "-c", str(self.config)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def listed(self) -> dict[str, dict]:
        try:
            document = json.loads((self.site / CHANNEL / "linux-64" / "repodata.json").read_text())
        except (OSError, ValueError):
            return {}
        return {**document["packages"], **document["packages.conda"]}

    def runs(self) -> int:
        directory = self.site / "history" / "runs"
        return len(list(directory.glob("*.json"))) if directory.is_dir() else 0

    def wait_for(self, what: Callable[[], bool], timeout: float = WITHIN) -> float:
        start = time.monotonic()
        while not what():
            assert self.proc.poll() is None, self.output()
            assert time.monotonic() - start < timeout, self.output()
            time.sleep(0.05)
        return time.monotonic() - start

    def settled_runs(self, quiet: float = 1.5, within: float = 30.0) -> int:
        """The run count once no run has started for ``quiet`` seconds (runs still starting
        after ``within`` seconds fail the test)."""
        count = self.runs()
        start = time.monotonic()
        deadline = start + quiet
        while time.monotonic() < deadline:
            assert time.monotonic() - start < within, f"runs keep starting\n{self.output()}"
            time.sleep(0.1)
            if self.runs() != count:
                count = self.runs()
                deadline = time.monotonic() + quiet
        return count

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-3000:]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.log.close()


def spec(name: str, seed: int = 0) -> PackageSpec:
    return PackageSpec(name, "1.0", "h0", formats=("conda",), seed=seed, payload_size=4000)


def place(tmp_path: Path, folder: Path, package: PackageSpec) -> Path:
    """Build elsewhere, then rename into the folder: a complete file appears at once."""
    built = drop(tmp_path / "build", package, "conda")
    target = folder / built.name
    os.replace(built, target)
    return target
