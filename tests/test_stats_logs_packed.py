"""Rotated access logs compressed by bzip2, xz or zstd (logrotate's ``compresscmd``) are
read as gzip ones are: decompressed, each line once, one still being written as far as it
goes, a broken one counted as an error, a bomb within bounded memory."""

from __future__ import annotations

import bz2
import json
import lzma
import textwrap
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import BinaryIO

import pytest
import zstandard

from sitegen.config import parse_config
from sitegen.stats import logfiles
from sitegen.stats.logfiles import CHUNK, read_logs
from sitegen.stats.packed import Ending
from sitegen.stats.run import run_stats
from testkit.stats_logs import Log, line_numbers

pytestmark = pytest.mark.unit

COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "bz2": bz2.compress,
    "xz": lzma.compress,
    "zst": zstandard.ZstdCompressor().compress,
}
SUFFIXES = sorted(COMPRESSORS)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_rotated_log_compressed_is_not_read_again(tmp_path: Path, suffix: str) -> None:
    log = Log(tmp_path / "access.log")
    log.write(300)  # more than the fingerprint's bytes
    log.read()
    rotated = tmp_path / "access.log.1"
    log.path.rename(rotated)
    log.write(3)
    log.read()
    packed = tmp_path / f"access.log.2.{suffix}"
    packed.write_bytes(COMPRESSORS[suffix](rotated.read_bytes()))
    assert log.read() == [] and log.last_bytes == 0  # both names: one file, read already
    rotated.unlink()
    assert log.read() == [] and log.last_bytes == 0
    assert log.read() == [] and log.last_bytes == 0  # known as read to its end
    assert line_numbers(log.read_lines) == list(range(303))


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_compressed_log_with_an_unread_tail_is_read_on(tmp_path: Path, suffix: str) -> None:
    log = Log(tmp_path / "access.log")
    log.write(30)
    log.read()
    tail = log.write(4)
    data = log.path.read_bytes()
    log.path.unlink()
    (tmp_path / f"access.log.1.{suffix}").write_bytes(COMPRESSORS[suffix](data))
    fresh = log.write(2)
    assert sorted(line_numbers(log.read())) == line_numbers(tail + fresh)
    assert log.read() == []


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_compressed_log_still_being_written_is_read_as_far_as_it_goes(
    tmp_path: Path, suffix: str
) -> None:
    log = Log(tmp_path / "access.log")
    log.write(20_000)
    data = log.path.read_bytes()
    log.path.unlink()
    packed = COMPRESSORS[suffix](data)
    partial = tmp_path / f"access.log.1.{suffix}"
    partial.write_bytes(packed[: len(packed) // 2])
    first = log.read()
    assert len(first) < 20_000 and line_numbers(first) == list(range(len(first)))
    partial.write_bytes(packed)  # compression finished
    log.read()
    assert line_numbers(log.read_lines) == list(range(20_000))


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_small_compressed_copy_still_being_made_waits(tmp_path: Path, suffix: str) -> None:
    """A compressed copy that decompresses, so far, to fewer bytes than the fingerprint's and
    no whole line cannot be known yet: it is left for a later run, not read as new."""
    log = Log(tmp_path / "access.log")
    log.write(4)
    log.read()
    data = log.path.read_bytes()
    packed = COMPRESSORS[suffix](data)
    copy = tmp_path / f"access.log.1.{suffix}"
    copy.write_bytes(packed[:-1])
    log.read()
    copy.write_bytes(packed)
    log.path.unlink()
    log.write(2)
    log.read()
    assert line_numbers(log.read_lines) == list(range(6))


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_several_streams_one_after_another_are_all_read(tmp_path: Path, suffix: str) -> None:
    """pbzip2, pixz and pzstd write one stream (or frame) after another."""
    log = Log(tmp_path / "access.log")
    log.write(50)
    data = log.path.read_bytes()
    log.path.unlink()
    half = data.index(b"\n", len(data) // 2) + 1
    pack = COMPRESSORS[suffix]
    (tmp_path / f"access.log.1.{suffix}").write_bytes(pack(data[:half]) + pack(data[half:]))
    assert line_numbers(log.read()) == list(range(50))


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_broken_compressed_log_is_an_error_and_the_others_are_read(
    tmp_path: Path, suffix: str
) -> None:
    log = tmp_path / "access.log"
    (tmp_path / f"access.log.2.{suffix}").write_bytes(b"not compressed at all\n" * 3)
    log.write_bytes(b"one\ntwo\n")
    got: list[bytes] = []
    _, report = read_logs([log], [], got.extend)
    assert got == [b"one", b"two"]
    assert report.errors == 1


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_compressed_bomb_is_read_within_bounded_memory_and_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    """64 MiB of one byte after the lines: decompressed a chunk at a time, and not again on
    the next run (they hold no newline to read up to)."""
    log = Log(tmp_path / "access.log")
    lines = log.write(3)
    bomb = tmp_path / f"access.log.2.{suffix}"
    bomb.write_bytes(COMPRESSORS[suffix](log.path.read_bytes() + b"A" * (64 << 20)))
    log.path.unlink()
    tracemalloc.start()
    try:
        got = log.read()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got == lines
    assert peak < 16 << 20, f"{peak >> 20} MiB held to read a bomb of 64 MiB"
    sizes: list[int] = []
    real_decompressed = logfiles.decompressed

    def counted(raw: BinaryIO, packed: str, ending: Ending) -> Iterator[bytes]:
        for chunk in real_decompressed(raw, packed, ending):
            sizes.append(len(chunk))
            yield chunk

    monkeypatch.setattr(logfiles, "decompressed", counted)
    assert log.read() == []
    assert sum(sizes) <= CHUNK  # the first bytes only, to know the file
    fresh = log.write(2)
    assert log.read() == fresh


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_stats_counts_a_compressed_log_and_skips_none_of_it(tmp_path: Path, suffix: str) -> None:
    """Read as plain text, the compressed bytes were lines of no known format, counted in
    stats.json as skipped ("malformed"), and its downloads were not counted."""
    line = (
        '192.0.2.1 - - [05/Dec/2026:10:00:00 +0000] "GET /cloud/x/linux-64/a-1-0.conda'
        ' HTTP/1.1" 200 10 "-" "conda/24.11.0"\n'
    )
    log = tmp_path / "access.log"
    (tmp_path / f"access.log.1.{suffix}").write_bytes(COMPRESSORS[suffix](line.encode() * 40))
    log.write_text(line.replace("192.0.2.1", "192.0.2.2"))  # a line of its own
    config = parse_config(
        textwrap.dedent(f"""\
            output: {tmp_path / "site"}
            channels:
              cloud/x: {{url: "https://conda.example/x", subdirs: [linux-64]}}
            stats: {{logs: [{log}]}}
            """)
    )
    result = run_stats(config, today=date(2026, 12, 6))
    assert result.downloads == 41 and result.skipped == {}
    doc = json.loads((tmp_path / "site" / "stats.json").read_bytes())
    assert doc["skipped"] == {}
