"""Misbehaving upstreams: fault hooks for :class:`testkit.upstream.UpstreamServer` and a raw
socket server for connection-level misbehaviour.

Every hook here is bounded in time: a hook that stalls or drips gives up as the client
hangs up, and after ``max_seconds`` at the latest, so a test never leaves a busy thread behind.

Hooks (pass to ``server.add_fault(path, hook, times)``):

* :func:`delay` -- wait, then serve the file normally (slows a run down, for kill tests);
* :func:`corrupt` -- the file's exact length, different bytes;
* :func:`oversize` -- the file plus extra bytes, with an honest ``Content-Length``;
* :func:`short_length` -- the whole file under a ``Content-Length`` that claims fewer bytes;
* :func:`reset_after` -- the full ``Content-Length``, some bytes, then a TCP reset (RST);
* :func:`slow_drip` -- the file, a few bytes at a time, far below any sane rate;
* :func:`hang` -- read the request and never answer;
* :func:`redirect` -- a 302 to another path (two of them make a loop);
* :func:`inflating` -- a 200 whose body, compressed in transit, inflates some hundredfold or more.

:class:`RawServer` accepts TCP connections on 127.0.0.1 and never says a word (or resets them):
an upstream that is "up" but never answers.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import textwrap
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import zstandard

from sitegen.cli import main
from sitegen.config import SiteConfig, parse_config
from sitegen.tools.example_channel import PackageSpec, write_channel
from testkit import StartStop
from testkit.invariant import assert_site_invariant, make_sandbox
from testkit.upstream import FaultHook, UpstreamHandler, UpstreamServer


def _file_bytes(handler: UpstreamHandler) -> bytes | None:
    target = handler.resolve(handler.url_path)
    return None if target is None else target.read_bytes()


def _client_gone(handler: UpstreamHandler, wait: float) -> bool:
    """Wait up to ``wait`` seconds; True when the client closed its side meanwhile."""
    sock = handler.connection
    try:
        readable, _, _ = select.select([sock], [], [], wait)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def delay(seconds: float) -> FaultHook:
    """Wait ``seconds``, then serve the file as usual."""

    def hook(handler: UpstreamHandler) -> bool:
        time.sleep(seconds)
        return False

    return hook


def corrupt() -> FaultHook:
    """Serve the file's exact size with every byte flipped (right size, wrong sha256)."""

    def hook(handler: UpstreamHandler) -> bool | None:
        data = _file_bytes(handler)
        if data is None:
            return False
        handler.respond(200, bytes(b ^ 0xFF for b in data))
        return None

    return hook


def oversize(extra: bytes = b"\0" * 512) -> FaultHook:
    """Serve the file followed by ``extra``; Content-Length tells the (larger) truth."""

    def hook(handler: UpstreamHandler) -> bool | None:
        data = _file_bytes(handler)
        if data is None:
            return False
        handler.respond(200, data + extra)
        return None

    return hook


def short_length(missing: int = 100) -> FaultHook:
    """Send the whole file but claim ``missing`` bytes fewer in Content-Length, then hang up."""

    def hook(handler: UpstreamHandler) -> bool | None:
        data = _file_bytes(handler)
        if data is None:
            return False
        handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(max(0, len(data) - missing)))
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        try:
            handler.wfile.write(data)
            handler.body_bytes += len(data)
        except OSError:
            pass
        return None

    return hook


def _announce_whole(handler: UpstreamHandler, data: bytes) -> None:
    """A 200 head announcing all of ``data``; the connection closes after this answer."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/octet-stream")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.close_connection = True


def reset_after(keep: int, pause: float = 0.05) -> FaultHook:
    """Announce the full length, send ``keep`` bytes, wait ``pause`` seconds, then abort the
    connection with a RST."""

    def hook(handler: UpstreamHandler) -> bool | None:
        data = _file_bytes(handler)
        if data is None:
            return False
        _announce_whole(handler, data)
        sock = handler.connection
        try:
            handler.wfile.write(data[:keep])
            handler.body_bytes += keep
            time.sleep(pause)  # let the client read the partial body before the reset
            # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            handler.rfile.close()  # the makefile() reference would keep the socket open
            sock.close()
        except OSError:
            pass
        return None

    return hook


def slow_drip(
    chunk: int = 32, interval: float = 0.1, max_seconds: float = 10.0, flip: bool = False
) -> FaultHook:
    """Serve the file ``chunk`` bytes every ``interval`` seconds (each read is quick to arrive,
    the whole transfer is hopelessly slow); stops when the client hangs up. ``flip``: every
    byte flipped, as :func:`corrupt` does."""

    def hook(handler: UpstreamHandler) -> bool | None:
        data = _file_bytes(handler)
        if data is None:
            return False
        if flip:
            data = bytes(b ^ 0xFF for b in data)
        _announce_whole(handler, data)
        deadline = time.monotonic() + max_seconds
        try:
            for start in range(0, len(data), chunk):
                if time.monotonic() > deadline:
                    break
                handler.wfile.write(data[start : start + chunk])
                handler.body_bytes += len(data[start : start + chunk])
                if _client_gone(handler, interval):
                    break
        except OSError:
            pass
        return None

    return hook


def hang(max_seconds: float = 10.0) -> FaultHook:
    """Read the request, then never answer; returns once the client hangs up."""

    def hook(handler: UpstreamHandler) -> None:
        handler.close_connection = True
        deadline = time.monotonic() + max_seconds
        while time.monotonic() < deadline:
            if _client_gone(handler, 0.05):
                return

    return hook


def held_hang(max_seconds: float = 10.0) -> tuple[threading.Event, FaultHook]:
    """:func:`hang`, with an event set as a request arrives: a test waits on it to act while
    the client is held (stop the run, kill it)."""
    held = threading.Event()
    hold = hang(max_seconds)

    def hook(handler: UpstreamHandler) -> None:
        held.set()
        hold(handler)

    return held, hook


def hold_repodata(server: UpstreamServer, max_seconds: float = 120.0) -> threading.Event:
    """Every request for the repodata of the example channel's subdirs (linux-64, noarch; plain
    or .zst) held by :func:`held_hang`: a run stays in its fetch until it is stopped."""
    held, hook = held_hang(max_seconds)
    for subdir in ("linux-64", "noarch"):
        for name in ("repodata.json", "repodata.json.zst"):
            server.add_fault(f"/{subdir}/{name}", hook)
    return held


def redirect(location: str, status: int = 302) -> FaultHook:
    """Answer with a redirect to ``location`` (a path or URL)."""

    def hook(handler: UpstreamHandler) -> None:
        handler.respond(status, b"", {"Location": location})

    return hook


def inflating(encoding: str, size: int) -> FaultHook:
    """Answer 200 with a body that inflates to ``size`` spaces, compressed in transit as
    ``encoding`` says: ``gzip``, ``deflate`` or ``zstd``, the first of a list making the spaces
    and each next one compressing what the one before made (``gzip, gzip``). gzip and deflate
    shrink the spaces some hundredfold; zstd (RLE blocks: 4 bytes for 128 KiB) thirty
    thousandfold."""
    body = b""
    for coding in (c.strip() for c in encoding.split(",")):
        body = _zstd_runs(size) if coding == "zstd" else _deflated(body, size, coding)
    return lambda handler: handler.respond(200, body, {"Content-Encoding": encoding})


def _deflated(data: bytes, size: int, coding: str) -> bytes:
    """``data`` gzip or deflate compressed, spaces (``size`` of them) when there is none yet;
    at the fastest level, so a large bomb is made in a fraction of a second."""
    packer = zlib.compressobj(1, zlib.DEFLATED, zlib.MAX_WBITS | (16 if coding == "gzip" else 0))
    if data:
        return packer.compress(data) + packer.flush()
    block = b" " * min(size, 1 << 20)
    return b"".join(packer.compress(block) for _ in range(size // len(block))) + packer.flush()


def _zstd_runs(size: int) -> bytes:
    """A zstd frame of RLE blocks of 128 KiB of spaces, ``size`` bytes in all (a multiple)."""
    block = 128 * 1024
    count = size // block
    frame = struct.pack("<I", 0xFD2FB528) + bytes([0x00, 0x38])  # no content size, 128 KiB window
    for i in range(count):
        header = (1 if i == count - 1 else 0) | (1 << 1) | (block << 3)  # last?, RLE, size
        frame += header.to_bytes(3, "little") + b" "
    return frame


class RawServer(StartStop):
    """A TCP server on 127.0.0.1 that accepts connections and then misbehaves.

    ``mode="silent"``: read whatever the client sends and never answer (until it hangs up or
    ``max_seconds`` pass). ``mode="reset"``: read the request, then reset the connection.
    """

    def __init__(self, mode: str = "silent", max_seconds: float = 10.0) -> None:
        if mode not in ("silent", "reset"):
            raise ValueError(f"unknown mode {mode!r}")
        self.mode = mode
        self.max_seconds = max_seconds
        self.connections = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def start(self) -> RawServer:
        thread = threading.Thread(target=self._accept_loop, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _addr = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        deadline = time.monotonic() + self.max_seconds
        with conn:
            try:
                conn.settimeout(0.05)
                if self.mode == "reset":
                    with contextlib.suppress(TimeoutError):
                        conn.recv(65536)
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                while time.monotonic() < deadline and not self._stop.is_set():
                    try:
                        if conn.recv(65536) == b"":
                            return  # the client gave up
                    except TimeoutError:
                        continue
            except OSError:
                return

    def stop(self) -> None:
        self._stop.set()
        self._sock.close()
        for thread in self._threads:
            thread.join(timeout=2)


# --------------------------------------------------------------------------- scenarios

CHANNEL = "cloud/example"


def small_packages(seed: int = 0, extra: tuple[PackageSpec, ...] = ()) -> list[PackageSpec]:
    """A tiny channel: four linux-64 builds (both formats, .conda only, .tar.bz2 only) and a
    noarch package; every file is under 2 KB, so transfers are instant unless a fault says no."""
    specs = [
        PackageSpec("alpha", "1.0", "h0_0", license="MIT", formats=("conda", "tar.bz2")),
        PackageSpec("beta", "2.0", "h1_0", license="BSD-3-Clause", formats=("conda",)),
        PackageSpec("gamma", "0.1", "h2_0", license="MIT", formats=("tar.bz2",)),
        PackageSpec("epsilon", "3.1", "h3_0", license="MIT", formats=("conda",)),
        PackageSpec("delta", "1.0", "pyh0_0", subdir="noarch", noarch="python", formats=("conda",)),
        *extra,
    ]
    return [replace(spec, seed=seed) for spec in specs]


def filenames(specs: list[PackageSpec], subdir: str | None = None) -> set[str]:
    return {fn for s in specs if subdir in (None, s.subdir) for fn in s.filenames}


def config_text(
    site: Path,
    url: str,
    *,
    subdirs: str = "[linux-64]",
    retries: int = 1,
    timeout: float = 2.0,
    concurrency: int = 4,
    max_fraction: float = 0.5,
    repodata_bz2: bool = False,
) -> str:
    """A channels.yaml mirroring ``url`` into ``site`` as :data:`CHANNEL`, with short
    retries and timeouts so a faulty upstream costs seconds, not minutes."""
    return textwrap.dedent(
        f"""\
        output: {site}
        download: {{concurrency: {concurrency}, per_host: {concurrency}, retries: {retries}, timeout: {timeout}}}
        prune: {{max_fraction: {max_fraction}}}
        repodata: {{bz2: {str(repodata_bz2).lower()}}}
        channels:
          {CHANNEL}:
            url: {url}
            subdirs: {subdirs}
        """
    )


def site_config(site: Path, url: str, **kwargs: Any) -> SiteConfig:
    return parse_config(config_text(site, url, **kwargs))


def write_config(path: Path, site: Path, url: str, **kwargs: Any) -> Path:
    path.write_text(config_text(site, url, **kwargs))
    return path


def set_repodata(root: Path, subdir: str, data: bytes, zst: bytes | None = None) -> None:
    """Serve exactly these repodata bytes (and this .zst, by default the bytes compressed)."""
    (root / subdir / "repodata.json").write_bytes(data)
    compressed = zstandard.ZstdCompressor(level=3).compress(data) if zst is None else zst
    (root / subdir / "repodata.json.zst").write_bytes(compressed)


@contextlib.contextmanager
def mirrored_small(tmp_path: Path) -> Iterator[tuple[Path, Path, UpstreamServer]]:
    """(config path, site, upstream server) of a site that mirrored :func:`small_packages`
    (linux-64 and noarch) cleanly, its upstream still serving."""
    root = tmp_path / "upstream"
    write_channel(root, small_packages(), zst=True)
    site = make_sandbox(tmp_path)
    with UpstreamServer(root) as server:
        config = write_config(tmp_path / "channels.yaml", site, server.url, retries=1)
        assert main(["mirror", "-c", str(config), "--no-progress"]) == 0
        assert_site_invariant(site)
        yield config, site, server


@contextlib.contextmanager
def mirrored_by_two(
    tmp_path: Path,
) -> Iterator[tuple[Path, Path, UpstreamServer, UpstreamServer]]:
    """(config path, site, first server, second server) of a site whose channel is fed by two
    mirrors, the first serving the first of :func:`small_packages`, the second the rest
    (linux-64), mirrored once; both still serving."""
    first_root, second_root = tmp_path / "first", tmp_path / "second"
    write_channel(first_root, small_packages()[:1], zst=False)
    write_channel(second_root, small_packages()[1:], zst=False)
    site = make_sandbox(tmp_path)
    with UpstreamServer(first_root) as first, UpstreamServer(second_root) as second:
        config = tmp_path / "channels.yaml"
        config.write_text(
            f"output: {site}\n"
            "download: {concurrency: 4, per_host: 4, retries: 1, timeout: 5}\n"
            "channels:\n"
            f"  {CHANNEL}:\n"
            "    mirrors:\n"
            f"      - {{name: first, url: '{first.url}', subdirs: [linux-64]}}\n"
            f"      - {{name: second, url: '{second.url}', subdirs: [linux-64]}}\n"
        )
        assert main(["mirror", "-c", str(config), "--no-progress"]) == 0
        yield config, site, first, second
