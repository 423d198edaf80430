"""Repodata compressed in transit (gzip, deflate) and repodata.json.zst: decoded within the size
cap and in bounded memory, refused past it. Real HTTP on 127.0.0.1."""

from __future__ import annotations

import gzip
import hashlib
import subprocess
import sys
import time
import tracemalloc
import zlib
from pathlib import Path

import pytest
import trio
import zstandard

from sitegen.config import DownloadSettings, MirrorConfig
from sitegen.net import failures as failures_mod
from sitegen.net import upstream as upstream_mod
from sitegen.net import zstd_body
from sitegen.net.upstream import Upstream, UpstreamError, make_client
from testkit.faults import inflating
from testkit.transport import upstream_at, write_files
from testkit.upstream import UpstreamHandler, UpstreamServer, respond

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path: Path, upstream_server_factory) -> UpstreamServer:
    return upstream_server_factory(write_files(tmp_path / "upstream"))


# Three reads of the transport and more: every step of the bounded decoding is taken.
TRANSIT_DOCUMENT = b"".join(b'"pkg-%d": {"size": %d},' % (i, i * 7) for i in range(120_000))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def transit_encoded(encoding: str) -> bytes:
    if encoding == "deflate (raw)":
        packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        return packer.compress(TRANSIT_DOCUMENT) + packer.flush()
    if encoding == "deflate":
        return zlib.compress(TRANSIT_DOCUMENT)
    if encoding == "gzip (members)":
        return gzip_members(TRANSIT_DOCUMENT)
    return gzip.compress(TRANSIT_DOCUMENT)


def gzip_members(data: bytes) -> bytes:
    """``data`` as three gzip members one after another (RFC 1952 allows it; concatenated .gz
    files, or a server compressing a body piece by piece, send it so)."""
    third = len(data) // 3
    return b"".join(gzip.compress(data[i : i + third]) for i in range(0, len(data), third))


@pytest.mark.parametrize(
    "encoding", ["gzip", "x-gzip", "deflate", "deflate (raw)", "gzip (members)"]
)
async def test_repodata_may_come_compressed_in_transit(
    server: UpstreamServer, encoding: str
) -> None:
    """Package files are asked for as they are (identity); a plain repodata.json may come
    gzip- or deflate-encoded (the zlib format or bare deflate), and is decoded."""

    def compressed(handler: UpstreamHandler) -> None:
        if "gzip" not in handler.headers.get("Accept-Encoding", ""):
            handler.respond(406)
            return
        coding = encoding.removesuffix(" (raw)").removesuffix(" (members)")
        handler.respond(200, transit_encoded(encoding), {"Content-Encoding": coding})

    server.add_fault("/linux-64/repodata.json.zst", respond(404))
    server.add_fault("/linux-64/repodata.json", compressed)
    async with upstream_at(server) as upstream:
        response = await upstream.fetch_repodata("linux-64", None)
    # (digests: a diff of megabytes would take pytest minutes to show)
    assert sha256(response.body or b"") == sha256(TRANSIT_DOCUMENT)
    assert [r.status for r in server.wait_for_requests(2)] == [404, 200]


@pytest.mark.parametrize("fault", ["cut short", "data past its end", "not gzip"])
async def test_repodata_that_does_not_decode_from_transit_fails(
    server: UpstreamServer, fault: str
) -> None:
    body = gzip.compress(TRANSIT_DOCUMENT)
    body = {
        "cut short": body[: len(body) // 2],
        "data past its end": body + b"<html>",
        "not gzip": TRANSIT_DOCUMENT,
    }[fault]
    server.add_fault("/linux-64/repodata.json.zst", respond(404))
    server.add_fault("/linux-64/repodata.json", respond(200, body, {"Content-Encoding": "gzip"}))
    async with upstream_at(server) as upstream:
        with pytest.raises(UpstreamError, match="DecodingError after 1 attempts"):
            await upstream.fetch_repodata("linux-64", None)


# What the two scripts below (each run in a process of its own, so that a decoding loop that
# never ends cannot hang the suite) start with: a response body arriving in given chunks.
CHUNKED_BODY = """
import gzip, hashlib, sys, httpx, trio
from sitegen.net.transit import decoded_body

class Chunks(httpx.AsyncByteStream):
    def __init__(self, chunks):
        self.chunks = chunks

    async def __aiter__(self):
        for chunk in self.chunks:
            yield chunk
"""

PAST_THE_END = (
    CHUNKED_BODY
    + """
async def main(read):
    body = gzip.compress(b"".join(b'"pkg-%d": {},' % i for i in range(120_000))) + b"<html>"
    chunks = [body[i : i + read] for i in range(0, len(body), read)]
    response = httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=Chunks(chunks))
    try:
        async for _ in decoded_body(response, "repodata.json"):
            pass
    except httpx.DecodingError as exc:
        print(exc)

trio.run(main, int(sys.argv[1]))
"""
)


MEMBERS = (
    CHUNKED_BODY
    + """
async def main(read):
    data = b"".join(b'"pkg-%d": {},' % i for i in range(120_000))
    body = gzip.compress(data[:700_000]) + gzip.compress(b"") + gzip.compress(data[700_000:])
    chunks = [body[i : i + read] for i in range(0, len(body), read)]
    response = httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=Chunks(chunks))
    decoded = hashlib.sha256()
    async for piece in decoded_body(response, "repodata.json"):
        decoded.update(piece)
    print(decoded.hexdigest() == hashlib.sha256(data).hexdigest())

trio.run(main, int(sys.argv[1]))
"""
)


@pytest.mark.parametrize("read", [1 << 20, 4096, 1])
def test_gzip_members_one_after_another_decode_to_their_contents_however_they_arrive(
    read: int,
) -> None:
    """A member may end anywhere in a read, or at its end; an empty one counts too."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", MEMBERS, str(read)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the decoding went round without end")
    assert done.stdout.strip() == "True", done.stderr[-2000:]


@pytest.mark.parametrize("read", [1 << 20, 4096, 1])
def test_bytes_past_the_end_of_a_compressed_body_are_refused_however_they_arrive(
    read: int,
) -> None:
    """Whether the bytes after the end come in the read that ends the stream (zlib then hands
    them back as input still to take when asked for a bounded step) or in a later one."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", PAST_THE_END, str(read)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the decoding went round without end")
    assert "gzip data goes on past its end" in done.stdout, done.stderr[-2000:]


async def test_an_unchanged_answer_naming_a_coding_is_unchanged(server: UpstreamServer) -> None:
    """A 304 has no body to decode, whatever Content-Encoding it names."""
    server.add_fault("/linux-64/repodata.json", respond(304, b"", {"Content-Encoding": "zstd"}))
    previous = upstream_mod.CacheValidators("repodata.json", etag='"1"')
    async with upstream_at(server) as upstream:
        response = await upstream.fetch_repodata("linux-64", previous)
    assert not response.changed and response.validators.etag == '"1"'


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
async def test_an_endless_repodata_body_is_refused(
    server: UpstreamServer, monkeypatch: pytest.MonkeyPatch, encoding: str
) -> None:
    """No more than a repodata.json may be is held in memory, counted after the transfer
    compression is undone (a gzip bomb included)."""
    monkeypatch.setattr(upstream_mod, "MAX_REPODATA_BYTES", 100_000)
    body = b" " * 200_000
    if encoding == "gzip":
        body = gzip.compress(body)  # ~200 bytes on the wire
    server.add_fault("/linux-64/repodata.json.zst", respond(404))
    server.add_fault("/linux-64/repodata.json", respond(200, body, {"Content-Encoding": encoding}))
    async with upstream_at(server) as upstream:
        with pytest.raises(UpstreamError, match="more than 100000 bytes"):
            await upstream.fetch_repodata("linux-64", None)


@pytest.mark.parametrize(
    ("encoding", "refusal"),
    [
        ("gzip", "more than 1048576 bytes"),
        ("deflate", "more than 1048576 bytes"),
        ("zstd", "compressed in transit as 'zstd', which sitegen does not accept"),
        ("gzip, gzip", "compressed in transit as 'gzip, gzip', which sitegen does not accept"),
    ],
)
async def test_a_transit_compression_bomb_costs_no_more_than_the_cap(
    server: UpstreamServer, monkeypatch: pytest.MonkeyPatch, encoding: str, refusal: str
) -> None:
    """No read of a compressed body is decoded whole (one of 256 KiB may hold 64 MiB of gzip,
    or gigabytes of zstd): gzip and deflate are inflated a step at a time and stopped at the
    cap; codings sitegen does not ask for (zstd; gzip over gzip, whose layers would be undone
    at once) are refused before anything is decoded."""
    cap = 1 << 20
    monkeypatch.setattr(upstream_mod, "MAX_REPODATA_BYTES", cap)
    server.add_fault("/linux-64/repodata.json.zst", respond(404))
    server.add_fault("/linux-64/repodata.json", inflating(encoding, 64 << 20))
    tracemalloc.start()
    try:
        async with upstream_at(server) as upstream:
            with pytest.raises(UpstreamError, match=refusal):
                await upstream.fetch_repodata("linux-64", None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * cap, f"{peak >> 20} MiB held for a cap of {cap >> 20} MiB"


async def test_a_large_repodata_coming_steadily_is_not_cut_off(
    server: UpstreamServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A repodata.json that takes longer than four timeouts on a slow link, its bytes coming
    at more than the minimum rate, is read whole: its deadline grows with what arrives, as
    a package file's does."""
    monkeypatch.setattr(failures_mod, "MIN_RATE", 1024)  # the drip below is ~40 KiB/s
    document = bytes(range(256)) * 480  # 120 KiB in 60 pieces over three seconds

    def steady(handler: UpstreamHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(document)))
        handler.end_headers()
        for start in range(0, len(document), 2048):
            handler.wfile.write(document[start : start + 2048])
            handler.wfile.flush()
            time.sleep(0.05)

    server.add_fault("/linux-64/repodata.json", steady)
    settings = DownloadSettings(retries=0, timeout=0.5)  # four timeouts: two seconds
    mirror = MirrorConfig(name="up", url=server.url, subdirs=("linux-64",))
    client = make_client(settings)
    try:
        upstream = Upstream(mirror, client, settings, trio.CapacityLimiter(1))
        answer = await upstream.request(f"{server.url}/linux-64/repodata.json", {})
    finally:
        await client.aclose()
    assert answer.status == 200 and answer.body == document


DECODE_IN_LITTLE_MEMORY = """
import resource, sys, zstandard
from sitegen.net.zstd_body import decode_body
vm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize:"))
limit = vm * 1024 + (1 << 30)  # 1 GiB more address space than this process holds now
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
document = b'{"info": {}, "packages": {}}' + b" " * 300_000
body = zstandard.ZstdCompressor().compress(document)
assert decode_body("repodata.json.zst", body) == document
print("decoded")
"""


def test_a_repodata_zst_is_decoded_without_reserving_its_size_cap() -> None:
    """Decoding takes memory as the JSON needs it: no buffer of the 4 GiB cap up front, which
    a host with less memory (or an address-space limit) cannot give."""
    done = subprocess.run(
        [sys.executable, "-c", DECODE_IN_LITTLE_MEMORY], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "decoded", done.stderr[-2000:]


@pytest.mark.parametrize("pieces", [1, 3])
def test_a_repodata_zst_beyond_the_cap_is_refused(
    monkeypatch: pytest.MonkeyPatch, pieces: int
) -> None:
    monkeypatch.setattr(zstd_body, "MAX_REPODATA_BYTES", 100_000)
    monkeypatch.setattr(zstd_body, "DECODE_PIECE", 100_000 // pieces)
    body = zstandard.ZstdCompressor().compress(b" " * 100_001)
    with pytest.raises(UpstreamError, match="decompresses to more than 100000 bytes"):
        zstd_body.decode_body("repodata.json.zst", body)
    exact = zstandard.ZstdCompressor().compress(b" " * 100_000)
    assert zstd_body.decode_body("repodata.json.zst", exact) == b" " * 100_000


def test_a_repodata_zst_of_one_frame_is_decoded_into_one_buffer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A body that is one frame stating its size (zstd's default) is decoded straight into a
    buffer of that size: not in pieces joined afterwards, which held about twice the JSON."""
    monkeypatch.setattr(zstd_body, "DECODE_PIECE", 1 << 20)
    document = b'{"info": {}, "packages": {}, "x": "' + bytes(range(97, 123)) * 320_000 + b'"}'
    body = zstandard.ZstdCompressor().compress(document)
    tracemalloc.start()
    try:
        decoded = zstd_body.decode_body("repodata.json.zst", body)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert decoded == document
    assert peak < 1.25 * len(document), f"{peak} bytes held for {len(document)}"
    # Several frames, or none stating its size, are decoded piece by piece as before.
    unsized = zstandard.ZstdCompressor(write_content_size=False).compress(document)
    assert zstd_body.decode_body("repodata.json.zst", unsized) == document
    assert zstd_body.decode_body("repodata.json.zst", body + body) == document + document
