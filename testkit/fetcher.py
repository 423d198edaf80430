"""``sitegen fetcher`` as a real subprocess on a free port, and a stand-in for its downloads,
for tests of passive mirrors."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import trio

from sitegen.config import SiteConfig
from sitegen.passive.listen import open_listeners, serve_fetcher
from sitegen.passive.resolver import FetchJob, Reply
from testkit.server_process import terminate


@dataclass
class FetcherProcess:
    address: str
    proc: subprocess.Popen[str]
    log: Path
    announcement: str  # its first line on stdout

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def fetcher_process(config: Path, log_path: Path) -> Iterator[FetcherProcess]:
    """``sitegen fetcher -c config --listen 127.0.0.1:0`` with the token in its environment,
    its log in ``log_path``. It binds a port of its own and says which: a free port probed
    beforehand could be taken by another test's server before the fetcher binds it, and the
    test would then talk to that server."""
    command = [sys.executable, "-m", "sitegen", "fetcher", "-c", str(config)]
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(
            [*command, "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            stderr=log_file,
            stdin=subprocess.DEVNULL,
            text=True,
            env=dict(os.environ),
            start_new_session=True,
        )
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout=30)
        line = proc.stdout.readline() if ready else ""
        if "listening on http://" not in line:
            raise RuntimeError(f"the fetcher did not start: {line!r}\n{log_path.read_text()}")
        address = line.rsplit("http://", 1)[1].strip()
        process = FetcherProcess(address, proc, log_path, line.strip())
        yield process
    finally:
        terminate(proc, ((signal.SIGTERM, 15),))
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == 0, process.log_text()  # SIGTERM is a clean stop


@dataclass
class FakeFetch:
    """A FetchFile that stores the published bytes of a file without any network; ``gate``
    holds every download until set."""

    contents: dict[str, bytes]
    gate: trio.Event | None = None
    calls: list[str] = field(default_factory=list)

    async def __call__(self, job: FetchJob) -> str | None:
        self.calls.append(job.fn)
        if self.gate is not None:
            await self.gate.wait()
        job.target.write_bytes(self.contents[job.fn])
        return None


async def fetch_one(config: SiteConfig, path: str) -> Reply:
    """One GET through a fetcher serving ``config`` in this process, on a port of its own."""
    listeners = await open_listeners("127.0.0.1", 0)
    async with trio.open_nursery() as nursery:
        fetcher = await nursery.start(serve_fetcher, config, listeners)
        reply = await fetcher.reply("GET", path)
        nursery.cancel_scope.cancel()
    return reply
