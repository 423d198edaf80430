"""CEP-12 ``run_exports.json``: a huge one upstream serves (1 GiB of zeros, a few hundred KiB
compressed) is refused at the cap, before the run holds it whole."""

from __future__ import annotations

import struct
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zstandard

from sitegen.conda.run_exports import MAX_RUN_EXPORTS_BYTES
from sitegen.config import SiteConfig
from sitegen.tools.example_channel import write_channel
from testkit.run_exports import exports_config, mirror_once, published_exports
from testkit.small_channel import small_packages
from testkit.upstream import UpstreamServer, respond


def _zeros(compress: Callable[[], Any], size: int) -> bytes:
    """``size`` zero bytes, compressed a MiB at a time (never held whole)."""
    stream = compress()
    piece = bytes(1 << 20)
    return b"".join(stream.compress(piece) for _ in range(size >> 20)) + stream.flush()


def _gzipped_zeros(size: int) -> bytes:
    """``size`` zero bytes as one gzip member, deflated a MiB once and that block repeated:
    a full flush ends each block with an empty history, so every MiB deflates to the same
    bytes (deflating the whole GiB takes seconds; this, a fraction of one)."""
    piece = bytes(1 << 20)
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)  # raw deflate: no header
    block = packer.compress(piece) + packer.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(size >> 20):
        crc = zlib.crc32(piece, crc)
    header = bytes([0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF])  # deflate, no flags, no mtime
    trailer = struct.pack("<II", crc, size & 0xFFFFFFFF)
    return header + block * (size >> 20) + packer.flush() + trailer


@pytest.mark.integration
@pytest.mark.parametrize("how", ["zst", "gzip"])
async def test_a_huge_one_is_refused_before_it_is_held(
    small_upstream: tuple[Path, UpstreamServer], tmp_path: Path, how: str
) -> None:
    """1 GiB of zeros, a few hundred KiB compressed (as a .zst, or sent gzip-encoded): the run
    stops reading it at the cap, warns and publishes the subdir without one; it never holds
    the whole inflated body."""
    root, server = small_upstream
    if how == "zst":
        body = _zeros(lambda: zstandard.ZstdCompressor().compressobj(), 1 << 30)
        (root / "linux-64" / "run_exports.json.zst").write_bytes(body)
    else:
        body = _gzipped_zeros(1 << 30)
        headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
        server.add_fault("/linux-64/run_exports.json", respond(200, body, headers))
    await _refused_at_the_cap(exports_config(tmp_path, server.url))


async def _refused_at_the_cap(config: SiteConfig) -> None:
    """A run of ``config`` stops reading the huge run_exports.json its upstream serves at the
    cap (the memory it ever holds says so), warns and publishes the subdir without one."""
    tracemalloc.start()
    try:
        report = await mirror_once(config)
        _size, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MAX_RUN_EXPORTS_BYTES + (256 << 20), peak
    assert published_exports(config) is None
    (warning,) = report.mirrors[0].warnings
    assert f"more than {MAX_RUN_EXPORTS_BYTES} bytes" in warning


@pytest.mark.integration
async def test_a_huge_one_of_a_mirror_with_a_token_is_refused_before_it_is_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As above, where the mirror's URL holds a secret: the body, searched for it before it
    is kept, is not inflated beyond the cap either."""
    token = "tk-0123456789abcdef0123456789"
    monkeypatch.setenv("SITEGEN_TEST_TOKEN", token)
    chan = tmp_path / "upstream" / "t" / token / "chan"
    write_channel(chan, small_packages(), zst=True)
    body = _zeros(lambda: zstandard.ZstdCompressor().compressobj(), 1 << 30)
    (chan / "linux-64" / "run_exports.json.zst").write_bytes(body)
    with UpstreamServer(tmp_path / "upstream") as server:
        await _refused_at_the_cap(
            exports_config(tmp_path, f"{server.url}/t/${{SITEGEN_TEST_TOKEN}}/chan")
        )
