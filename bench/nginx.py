"""A real nginx on 127.0.0.1 serving a directory, with an access log the benchmarks can count.

Own launcher (not the tests' one) because the benchmarks need a timing log format, more
keep-alive requests per connection than nginx's default 1000, and no pytest import.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import BenchError

# $msec: when the response was finished; $request_time: seconds since the first request byte.
LOG_FORMAT = (
    "$msec $request_time $status $request_method $request_uri $body_bytes_sent "
    "$connection $connection_requests"
)


def nginx_binary() -> str | None:
    if os.access("/usr/sbin/nginx", os.X_OK):
        return "/usr/sbin/nginx"
    return shutil.which("nginx")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, deadline: float, proc: subprocess.Popen | None = None) -> bool:
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return True
        time.sleep(0.02)
    return False


@dataclass
class LogLine:
    end: float  # $msec
    duration: float
    status: int
    method: str
    uri: str
    bytes: int
    connection: int

    @property
    def start(self) -> float:
        return self.end - self.duration


class Nginx:
    """``with Nginx(root, workdir) as n: n.url`` — nginx in the foreground, its own prefix."""

    def __init__(self, root: Path, workdir: Path) -> None:
        self.root = Path(root).resolve()
        self.workdir = Path(workdir).resolve()
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def access_log(self) -> Path:
        return self.workdir / "access.log"

    def _config(self) -> str:
        w = self.workdir
        user = "user root root;\n" if os.geteuid() == 0 else ""
        return f"""\
{user}daemon off;
worker_processes 1;
pid {w}/nginx.pid;
lock_file {w}/nginx.lock;
error_log {w}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    types {{
        application/json json;
        application/zstd zst;
        application/x-bzip2 bz2;
        application/octet-stream conda;
    }}
    default_type application/octet-stream;
    log_format bench '{LOG_FORMAT}';
    access_log {self.access_log} bench;
    client_body_temp_path {w}/client_body;
    proxy_temp_path {w}/proxy;
    fastcgi_temp_path {w}/fastcgi;
    uwsgi_temp_path {w}/uwsgi;
    scgi_temp_path {w}/scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 60;
    keepalive_requests 1000000;
    server_tokens off;
    server {{
        listen 127.0.0.1:{self.port};
        root {self.root};
        autoindex off;
    }}
}}
"""

    def start(self) -> Nginx:
        binary = nginx_binary()
        if binary is None:
            raise BenchError("nginx is not installed (apt-get install -y nginx)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _attempt in range(5):
            self.port = free_port()
            conf = self.workdir / "nginx.conf"
            conf.write_text(self._config())
            with open(self.workdir / "nginx.out", "ab") as out:
                proc = subprocess.Popen(
                    [
                        binary,
                        "-p",
                        f"{self.workdir}/",
                        "-e",
                        f"{self.workdir}/error.log",
                        "-c",
                        str(conf),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            if wait_for_port(self.port, time.monotonic() + 15, proc):
                self.proc = proc
                return self
            _terminate(proc)
        raise BenchError(f"nginx did not start; see {self.workdir}/error.log")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            _terminate(proc)

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_mark(self) -> int:
        """Current end of the access log, to read only what a later run requested."""
        time.sleep(0.15)  # nginx logs a request after answering it
        try:
            return self.access_log.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, mark: int) -> list[LogLine]:
        time.sleep(0.15)
        try:
            with open(self.access_log, "rb") as handle:
                handle.seek(mark)
                text = handle.read().decode(errors="replace")
        except FileNotFoundError:
            return []
        lines = []
        for raw in text.splitlines():
            parts = raw.split(" ")
            if len(parts) < 8:
                continue
            lines.append(
                LogLine(
                    end=float(parts[0]),
                    duration=float(parts[1]),
                    status=int(parts[2]),
                    method=parts[3],
                    uri=parts[4],
                    bytes=int(parts[5]),
                    connection=int(parts[6]),
                )
            )
        return lines


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGQUIT, 10.0), (signal.SIGTERM, 5.0)):
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
