"""A real web server in a child process, for the tests that need one.

:class:`ServerProcess` writes the server's config into its state directory, runs the server in
the foreground in its own session on a free port of 127.0.0.1 (again on another port when the
one it probed is taken before the server binds it), waits until the port accepts connections
and stops the server, children included, on exit. :class:`testkit.nginx.NginxServer` and
:class:`testkit.apache.ApacheServer` say what to run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Self

from testkit import StartStop


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_for_port(host: str, port: int, proc: subprocess.Popen[bytes], deadline: float) -> bool:
    """True once ``host:port`` accepts connections; False when proc exits or time runs out."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return True
        time.sleep(0.02)
    return False


def terminate(
    proc: subprocess.Popen[Any], signals: tuple[tuple[signal.Signals, float], ...]
) -> None:
    """Send each signal in turn, waiting that many seconds for proc to exit, then SIGKILL its
    whole session (a server started with ``start_new_session``: master and workers)."""
    if proc.poll() is not None:
        return
    for sig, wait in signals:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


class ServerProcess(StartStop):
    """A server at ``http://127.0.0.1:<port>``; use as a context manager.

    Subclasses set the class attributes and implement :meth:`config_text` (the config for
    ``self.port``), :meth:`command` (run the server in the foreground) and
    :meth:`check_command` (validate the config).
    """

    host = "127.0.0.1"
    name = "server"  # in file names (<name>.conf, <name>.out) and messages
    package = "server"  # the Debian package that installs it
    error: type[RuntimeError] = RuntimeError
    stop_signals: tuple[tuple[signal.Signals, float], ...] = ((signal.SIGTERM, 10.0),)

    def __init__(self, state_dir: Path, *, binary: str | None, start_timeout: float) -> None:
        self.state_dir = Path(state_dir)
        self.binary = binary
        self.start_timeout = start_timeout
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    # --- what to run ----------------------------------------------------------------------
    def config_text(self) -> str:
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def check_command(self) -> list[str]:
        raise NotImplementedError

    # --- paths ----------------------------------------------------------------------------
    @property
    def conf_path(self) -> Path:
        return self.state_dir / f"{self.name}.conf"

    @property
    def error_log(self) -> Path:
        return self.state_dir / "error.log"

    @property
    def out_path(self) -> Path:
        """The server's own stdout and stderr."""
        return self.state_dir / f"{self.name}.out"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash)."""
        if not self.port:
            raise RuntimeError(f"{self.name} not started")
        return f"http://{self.host}:{self.port}"

    # --- lifecycle ------------------------------------------------------------------------
    def write_config(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.conf_path.write_text(self.config_text())

    def _require_binary(self) -> str:
        if not self.binary:
            raise self.error(f"{self.name} is not installed (apt-get install -y {self.package})")
        return self.binary

    def check(self) -> None:
        """Validate the config without starting anything (raises :attr:`error`)."""
        self._require_binary()
        self.port = self.port or free_port(self.host)
        self.write_config()
        result = subprocess.run(self.check_command(), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise self.error(result.stderr + result.stdout)

    def start(self) -> Self:
        if self.proc is not None:
            raise RuntimeError(f"{self.name} already started")
        self._require_binary()
        last_error = ""
        for _attempt in range(5):  # the free port may be taken between probe and bind
            self.port = free_port(self.host)
            self.write_config()
            with open(self.out_path, "ab") as out:
                proc = subprocess.Popen(
                    self.command(),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            deadline = time.monotonic() + self.start_timeout
            if wait_for_port(self.host, self.port, proc, deadline):
                self.proc = proc
                return self
            terminate(proc, self.stop_signals)
            last_error = self.log_tail()
            if "Address already in use" not in last_error:
                break
        self.port = 0
        raise self.error(f"{self.name} did not start; logs in {self.state_dir}:\n{last_error}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            terminate(proc, self.stop_signals)

    def log_tail(self, limit: int = 4000) -> str:
        text = ""
        for path in (self.out_path, self.error_log):
            if path.exists():
                text += path.read_text(errors="replace")
        return text[-limit:]
