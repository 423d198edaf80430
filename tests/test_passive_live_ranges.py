"""A file the fetcher downloads in parallel byte ranges reaches its client in order and whole;
the bytes of a later range never answer for an earlier one."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
import trio

from sitegen.net import download_http
from sitegen.passive.fetcher import FetcherLimits
from sitegen.tools.example_channel import PackageSpec
from testkit.faults import hang
from testkit.live_fetcher import (
    Got,
    get,
    passive_site,
)
from testkit.upstream import FaultHook, UpstreamHandler

pytestmark = pytest.mark.integration


def drip_ranges(first: float, others: float, chunk: int = 8192) -> FaultHook:
    """Answer a Range request with its 206, ``chunk`` bytes every ``first`` seconds for the
    range from byte 0 and every ``others`` seconds for the rest: the later parts of a file
    fetched in parallel ranges land before the first."""

    def hook(handler: UpstreamHandler) -> bool | None:
        target = handler.resolve(handler.url_path)
        wanted = handler.headers.get("Range")
        if target is None or not wanted:
            return False
        data = target.read_bytes()
        start, last = (int(x) for x in wanted.removeprefix("bytes=").split("-"))
        body = data[start : last + 1]
        handler.send_response(206)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Content-Range", f"bytes {start}-{last}/{len(data)}")
        handler.end_headers()
        try:
            for offset in range(0, len(body), chunk):
                if offset:
                    time.sleep(first if start == 0 else others)
                handler.wfile.write(body[offset : offset + chunk])
                handler.body_bytes += len(body[offset : offset + chunk])
        except OSError:
            handler.close_connection = True
        return None

    return hook


async def test_a_download_in_parallel_ranges_streams_in_order_and_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file big enough to come in parallel ranges (parts of 64 KiB here, not the 8 MiB of
    ``SPLIT_PART``, to keep it small) reaches its client from the first byte on, in order and
    whole: nothing of a later part, landed early, before the parts before it."""
    monkeypatch.setattr(download_http, "SPLIT_PART", 64 << 10)
    big = PackageSpec("bigdata", "1.0", "h0_0", formats=("conda",), payload_size=600_000)
    # The first part takes some 3 s, longer than the client waits for a byte; the others
    # land within a fraction of a second.
    hook = drip_ranges(first=0.3, others=0.02)
    async with passive_site(tmp_path, hook, extra=(big,), times=None) as (setup, address):
        parts = download_http.split_spans(setup.record["size"])
        assert len(parts) == 4
        got = Got()
        with trio.fail_after(30):
            await get(address, setup.fn, got)
    assert got.error is None, repr(got.error)
    assert got.status == 200 and got.headers["x-sitegen-fetcher"] == "fetched"
    # Every byte where the file has it (the offset of the first that differs, if any).
    data = (tmp_path / "upstream" / setup.upstream_path().lstrip("/")).read_bytes()
    wrong = next((i for i, (a, b) in enumerate(zip(got.body, data, strict=False)) if a != b), None)
    assert (len(got.body), wrong) == (len(data), None)
    assert hashlib.sha256(got.body).hexdigest() == setup.record["sha256"]
    # The upstream logs a request once its handler is done, a moment after its last byte.
    ranges: set[str | None] = set()
    for _ in range(100):
        ranges = {r.header("range") for r in setup.server.requests if r.status == 206}
        if len(ranges) == len(parts):
            break
        await trio.sleep(0.05)
    assert ranges == {f"bytes={start}-{end - 1}" for start, end in parts}


def first_range_silent(seconds: float) -> FaultHook:
    """Answer the Range request from byte 0 with its 206 head and then no byte for ``seconds``
    (or until the client hangs up), every other one at once: the later parts of a file
    fetched in parallel ranges land, the first never does."""
    others = drip_ranges(first=0, others=0)
    silent = hang(max_seconds=seconds)

    def hook(handler: UpstreamHandler) -> bool | None:
        wanted = handler.headers.get("Range", "")
        if not wanted.startswith("bytes=0-"):
            return others(handler)
        start, last = (int(x) for x in wanted.removeprefix("bytes=").split("-"))
        target = handler.resolve(handler.url_path)
        if target is None:
            return False
        handler.send_response(206)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(last + 1 - start))
        handler.send_header("Content-Range", f"bytes {start}-{last}/{target.stat().st_size}")
        handler.end_headers()
        handler.wfile.flush()
        silent(handler)
        return None

    return hook


async def test_bytes_of_a_later_range_do_not_answer_the_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file fetched in parallel ranges whose first range sends nothing: the later ranges'
    bytes, landed, are none its clients can be sent (a file goes from its first byte on), so
    they do not lift ``answer_within``: 504 in time, not a wait for the first range's own
    timeout (10 s here) past the client's read timeout."""
    monkeypatch.setattr(download_http, "SPLIT_PART", 64 << 10)
    big = PackageSpec("bigdata", "1.0", "h0_0", formats=("conda",), payload_size=600_000)
    limits = FetcherLimits(answer_within=1.0)
    hook = first_range_silent(seconds=15)
    settings = "{retries: 0, timeout: 10}"
    site = passive_site(tmp_path, hook, extra=(big,), times=None, settings=settings, limits=limits)
    async with site as (setup, address):
        assert len(download_http.split_spans(setup.record["size"])) == 4
        got = Got()
        with trio.fail_after(30):
            await get(address, setup.fn, got)
        assert got.error is None, repr(got.error)
        assert got.status == 504, got
        assert not setup.target.exists() and setup.leftovers() == []
