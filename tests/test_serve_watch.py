"""``sitegen serve --watch`` as a user runs it: a child process on 127.0.0.1, its config edited
on disk, its answers read over HTTP and its log read as it goes."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from testkit.server_process import terminate

pytestmark = pytest.mark.integration

RENDERING = re.compile(r"changed: .*; rendering")


@dataclass
class Preview:
    """A running ``sitegen serve --watch``: its address and what it has logged so far."""

    proc: subprocess.Popen[str]
    url: str = ""
    lines: list[str] = field(default_factory=list)

    def renders(self) -> int:
        return sum(1 for line in list(self.lines) if RENDERING.search(line))

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:
                return response.status, response.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            return exc.code, ""

    def wait_for(self, pattern: str, timeout: float = 30) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(re.search(pattern, line) for line in list(self.lines)):
                return True
            time.sleep(0.05)
        return False


def config_text(tmp_path: Path, title: str) -> str:
    return (
        f"output: site\ntitle: {title}\nchannels:\n  cloud/x:\n    path: {tmp_path}/folder\n"
        "    subdirs: [linux-64]\n"
    )


@pytest.fixture
def preview(tmp_path: Path) -> Iterator[Preview]:
    (tmp_path / "folder").mkdir()
    config = tmp_path / "channels.yaml"
    config.write_text(config_text(tmp_path, "First"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "sitegen", "serve", "--watch", "--port", "0", "-c", str(config)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    running = Preview(proc)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            running.lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert running.wait_for(r"Serving .* at http://"), running.lines
        served = next(line for line in running.lines if line.startswith("Serving "))
        running.url = re.search(r"(http://\S+)/ ", served).group(1)  # type: ignore[union-attr]
        time.sleep(1)  # the watcher starts a moment after the server
        yield running
    finally:
        terminate(proc, ((signal.SIGTERM, 10),))
        reader.join(10)


def test_a_burst_of_saves_is_one_render(tmp_path: Path, preview: Preview) -> None:
    """An editor saving several times in a row, or a checkout writing file after file: one
    render once the files are quiet, not one per save."""
    config = tmp_path / "channels.yaml"
    for n in range(10):
        config.write_text(config_text(tmp_path, f"Save {n}"))
        time.sleep(0.15)
    assert preview.wait_for(RENDERING.pattern), preview.lines
    time.sleep(2)  # any further render has started by now
    assert preview.renders() <= 2, preview.lines  # 2: a save delayed on a busy machine
    assert preview.wait_for(r"pages: "), preview.lines
    status, body = preview.get("/")
    assert status == 200 and "Save 9" in body
