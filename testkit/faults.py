"""Misbehaving upstreams: fault hooks for :class:`testkit.upstream.UpstreamServer`.

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

Connection-level misbehaviour (an upstream that accepts and never answers) is
:class:`testkit.raw_server.RawServer`; the small channel the fault tests mirror is
:mod:`testkit.small_channel`.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
import zlib

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
