"""Reading compressed rotated access logs: a gzip of a log read already is not read again, one
still being written is read as far as it goes, a bomb is decompressed once, garbage is
passed over."""

from __future__ import annotations

import gzip
import os
import shutil
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from sitegen.stats import logfiles
from sitegen.stats.logfiles import CHUNK
from sitegen.stats.packed import Ending
from testkit.stats_logs import Log, line_numbers

pytestmark = pytest.mark.unit


def test_gzip_of_the_old_file_is_not_read_again(tmp_path: Path) -> None:
    log = Log(tmp_path / "access.log")
    log.write(300)  # more than the fingerprint's bytes
    log.read()
    rotated = tmp_path / "access.log.1"
    log.path.rename(rotated)
    log.write(3)
    log.read()
    with open(rotated, "rb") as src, gzip.open(tmp_path / "access.log.2.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert log.read() == [] and log.last_bytes == 0  # both names: one file, read already
    rotated.unlink()
    assert log.read() == [] and log.last_bytes == 0  # the gzip alone: checked by its trailer
    assert line_numbers(log.read_lines) == list(range(303))


def test_gzip_with_an_unread_tail_is_read_on_from_the_offset(tmp_path: Path) -> None:
    log = Log(tmp_path / "access.log")
    log.write(30)
    log.read()
    tail = log.write(4)
    data = log.path.read_bytes()
    log.path.unlink()
    (tmp_path / "access.log.1.gz").write_bytes(gzip.compress(data))
    fresh = log.write(2)
    assert sorted(line_numbers(log.read())) == line_numbers(tail + fresh)


def test_a_gzip_still_being_written_is_read_as_far_as_it_goes(tmp_path: Path) -> None:
    log = Log(tmp_path / "access.log")
    log.write(2000)
    data = log.path.read_bytes()
    log.path.unlink()
    packed = gzip.compress(data)
    partial = tmp_path / "access.log.1.gz"
    partial.write_bytes(packed[: len(packed) // 2])
    first = log.read()
    assert 0 < len(first) < 2000
    partial.write_bytes(packed)  # compression finished
    log.read()
    assert line_numbers(log.read_lines) == list(range(2000))


@pytest.mark.parametrize("lines_before", [0, 3])
def test_a_gzip_ending_in_a_bomb_without_a_newline_is_decompressed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines_before: int
) -> None:
    """Decompressed, 64 MiB of one byte hold no line to count and no newline to read up to:
    no cursor remembered having read them, and every run decompressed them all again."""
    log = Log(tmp_path / "access.log")
    lines = log.write(lines_before)
    bomb = tmp_path / "access.log.2.gz"
    bomb.write_bytes(gzip.compress(log.path.read_bytes() + b"A" * (64 << 20)))
    log.path.unlink()
    decompressed: list[int] = []
    real_decompressed = logfiles.decompressed

    def counted(raw: BinaryIO, packed: str, ending: Ending) -> Iterator[bytes]:
        for chunk in real_decompressed(raw, packed, ending):
            decompressed.append(len(chunk))
            yield chunk

    monkeypatch.setattr(logfiles, "decompressed", counted)
    assert log.read() == lines
    assert sum(decompressed) > 64 << 20
    decompressed.clear()
    assert log.read() == []
    assert sum(decompressed) <= CHUNK  # the first bytes only, to know the file
    fresh = log.write(2)
    assert log.read() == fresh


def test_binary_garbage_and_an_unreadable_gzip_do_not_stop_the_others(tmp_path: Path) -> None:
    log = Log(tmp_path / "access.log")
    (tmp_path / "access.log.3.gz").write_bytes(b"not a gzip at all\x00\xff")
    (tmp_path / "access.log.2").write_bytes(os.urandom(5000) + b"\n")
    lines = log.write(4)
    got = log.read()
    assert got[-4:] == lines


def test_a_gzip_still_being_written_is_left_for_a_later_run(tmp_path: Path) -> None:
    """logrotate compressing the rotated log: while less than the fingerprint has been
    written, the .gz cannot be recognised as the file already read, so it is left alone
    (not read from its start a second time); complete, it is recognised."""
    log = Log(tmp_path / "access.log")
    log.write(300)
    log.read()
    rotated = tmp_path / "access.log.1"
    log.path.rename(rotated)
    log.write(2)
    log.read()
    data, packer = rotated.read_bytes(), zlib.compressobj(wbits=31)
    partial = packer.compress(data[:600]) + packer.flush(zlib.Z_SYNC_FLUSH)
    gz = tmp_path / "access.log.1.gz"
    gz.write_bytes(partial)  # 600 bytes decompress so far
    assert log.read() == []
    gz.write_bytes(partial + packer.compress(data[600:]) + packer.flush())
    rotated.unlink()
    log.read()
    assert sorted(line_numbers(log.read_lines)) == list(range(302))
