"""Reading access logs incrementally across rotation, copytruncate and vanished files: each
line exactly once, and a FIFO put in a log's place passed over."""

from __future__ import annotations

import gzip
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sitegen.stats.logfiles import (
    CHUNK,
    FINGERPRINT_BYTES,
    Cursor,
    ReadReport,
    read_logs,
    split_lines,
)
from sitegen.stats.rotated import rotated_siblings
from testkit.stats_logs import Log, line_numbers

pytestmark = pytest.mark.unit


def test_split_lines_keeps_an_unfinished_line_for_later() -> None:
    batches: list[list[bytes]] = []
    chunks = iter([b"one\ntw", b"o\nthr", b"ee"])
    consumed, too_long, total = split_lines(chunks, batches.append)
    assert [line for batch in batches for line in batch] == [b"one", b"two"]
    assert (consumed, too_long, total) == (8, 0, 13)


def test_a_10_mb_line_is_skipped_chunk_by_chunk() -> None:
    seen_sizes: list[int] = []

    def chunks() -> Iterator[bytes]:
        yield b"before\n"
        for _ in range(10):  # 10 MiB without a newline, in 1 MiB chunks
            yield b"A" * CHUNK
        yield b"\nafter\n"

    lines: list[bytes] = []

    def sink(batch: list[bytes]) -> None:
        seen_sizes.extend(len(line) for line in batch)
        lines.extend(batch)

    consumed, too_long, _total = split_lines(chunks(), sink, max_line=16 * 1024)
    assert lines == [b"before", b"after"] and too_long == 1
    assert consumed == 7 + 10 * CHUNK + 7
    assert max(seen_sizes) < 16 * 1024


def test_rotated_siblings_oldest_first(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    for age, name in enumerate(["access.log", "access.log.1", "access.log.2.gz", "other.log"]):
        (tmp_path / name).write_bytes(b"x\n")
        stamp = 1_700_000_000 - age * 1000
        os.utime(tmp_path / name, (stamp, stamp))
    assert [p.name for p in rotated_siblings(log)] == [
        "access.log.2.gz",
        "access.log.1",
        "access.log",
    ]


def test_incremental_reads_only_new_bytes(tmp_path: Path) -> None:
    log = Log(tmp_path / "access.log")
    first = log.write(100)
    assert log.read() == first
    assert log.read() == [] and log.last_bytes == 0
    more = log.write(3)
    assert log.read() == more
    assert log.last_bytes == sum(len(line) + 1 for line in more)


def test_rename_rotation_then_new_file(tmp_path: Path) -> None:
    log = Log(tmp_path / "access.log")
    log.write(50)
    log.read()
    tail = log.write(5)  # written before the rotation, not read yet
    log.path.rename(tmp_path / "access.log.1")
    fresh = log.write(7)  # the server reopened: a new access.log
    assert sorted(line_numbers(log.read())) == line_numbers(tail + fresh)
    assert line_numbers(log.read_lines) == list(range(62))


def test_copytruncate_even_when_the_new_file_outgrew_the_old_offset(tmp_path: Path) -> None:
    log = Log(tmp_path / "access.log")
    log.write(10)
    log.read()
    tail = log.write(2)
    shutil.copy(log.path, tmp_path / "access.log.1")
    os.truncate(log.path, 0)
    fresh = log.write(40)  # the same inode, now longer than where reading stopped
    assert sorted(line_numbers(log.read())) == line_numbers(tail + fresh)
    assert line_numbers(log.read_lines) == list(range(52))


def test_a_count_between_copytruncates_copy_and_truncate_counts_nothing_twice(
    tmp_path: Path,
) -> None:
    log = Log(tmp_path / "access.log")
    log.write(30)
    log.read()
    log.write(2)
    shutil.copy(log.path, tmp_path / "access.log.1")
    log.write(1)  # the server writes on between the copy and the truncation
    log.read()  # a count lands there: the copy ends before where the live file was read to
    os.truncate(log.path, 0)
    log.write(3)
    log.read()
    log.read()
    assert line_numbers(log.read_lines) == list(range(36))


def test_a_copy_still_being_made_is_not_read_again_from_its_start(tmp_path: Path) -> None:
    log = Log(tmp_path / "access.log")
    log.write(30)
    log.read()
    log.write(2)
    data = log.path.read_bytes()
    copy = tmp_path / "access.log.1"
    # copytruncate's copy, two thirds of the way: past the fingerprint, not yet where the
    # live file was read to
    copy.write_bytes(data[: len(data) * 2 // 3])
    assert FINGERPRINT_BYTES < copy.stat().st_size < log.cursors[0].offset
    log.read()
    copy.write_bytes(data)
    os.truncate(log.path, 0)
    log.write(3)
    log.read()
    assert line_numbers(log.read_lines) == list(range(35))


def test_a_vanished_log_is_forgotten_and_nothing_breaks(tmp_path: Path) -> None:
    log = Log(tmp_path / "access.log")
    log.write(5)
    log.read()
    log.path.unlink()
    assert log.read() == [] and log.cursors == []
    assert read_logs([tmp_path / "missing" / "access.log"], [], list().extend)[0] == []
    again = log.write(3)  # a new log under the old name
    assert log.read() == again


def test_a_short_first_file_gets_a_longer_fingerprint_as_it_grows(tmp_path: Path) -> None:
    log = Log(tmp_path / "access.log")
    log.write(1)
    log.read()
    assert log.cursors[0].fp_len < FINGERPRINT_BYTES
    log.write(100)
    log.read()
    assert log.cursors[0].fp_len == FINGERPRINT_BYTES
    log.path.rename(tmp_path / "access.log.1")
    log.write(1)
    log.read()
    assert line_numbers(log.read_lines) == list(range(102))


def test_a_copy_of_a_small_log_shorter_than_what_was_read_of_it_is_not_read_again(
    tmp_path: Path,
) -> None:
    """A log shorter than the fingerprint's bytes is known by all of them: its copy
    (copytruncate's, made before a count read the live file on) is shorter than that, so it
    was not recognised, and read from its start a second time."""
    log = Log(tmp_path / "access.log")
    log.write(3)
    log.read()
    log.write(1)
    shutil.copy(log.path, tmp_path / "access.log.1")
    log.write(1)  # the server writes on between the copy and the truncation
    log.read()
    assert log.path.stat().st_size < FINGERPRINT_BYTES
    os.truncate(log.path, 0)
    log.write(2)
    log.read()
    log.read()
    assert line_numbers(log.read_lines) == list(range(7))


@pytest.mark.parametrize("packed", [False, True])
def test_a_small_log_part_copied_is_not_read_again_from_its_start(
    tmp_path: Path, packed: bool
) -> None:
    """A copy (or its gzip) of a small log, still being made when a count comes, ends before
    the fingerprint's bytes of what was read: it was read from its start as a new file."""
    log = Log(tmp_path / "access.log")
    log.write(4)
    log.read()
    data = log.path.read_bytes()
    copy = tmp_path / ("access.log.1.gz" if packed else "access.log.1")
    part = data[: len(data) // 2 + 5]  # two lines and a piece of the third, so far
    copy.write_bytes(gzip.compress(part) if packed else part)
    log.read()
    copy.write_bytes(gzip.compress(data) if packed else data)
    os.truncate(log.path, 0)
    log.write(2)
    log.read()
    assert line_numbers(log.read_lines) == list(range(6))


def test_a_log_put_back_as_a_fifo_while_the_others_are_read_is_passed_over(
    tmp_path: Path,
) -> None:
    """The files are listed first, then read: one replaced by a FIFO (or a symlink to one)
    meanwhile was opened as it was, and the open waited for a writer that never came, the
    count holding its lock for ever. It is passed over as a file that cannot be read."""
    log = Log(tmp_path / "access.log")
    old = log.write(3, tmp_path / "access.log.1")
    os.utime(tmp_path / "access.log.1", (1, 1))
    log.write(2)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []

    def sink(batch: list[bytes]) -> None:
        got.extend(batch)
        if not log.path.is_symlink():
            log.path.unlink()
            log.path.symlink_to(fifo)

    result: list[tuple[list[Cursor], ReadReport]] = []
    reader = threading.Thread(target=lambda: result.append(read_logs([log.path], [], sink)))
    reader.start()
    reader.join(10)
    stuck = reader.is_alive()
    if stuck:  # let the reader go: open the FIFO's other end, and close it
        os.close(os.open(fifo, os.O_WRONLY))
        reader.join()
    assert not stuck, "the reader waited on the FIFO"
    assert got == old
    assert result[0][1].errors == 1


def test_a_log_rotated_between_the_listing_and_its_reading_is_read_once(
    tmp_path: Path,
) -> None:
    """A log's files are listed, then read oldest first; the live log renamed meanwhile
    (logrotate running while an older file is read) is not opened under its old name, which
    now holds the new log. Its cursor went with the count as that of a log gone, and the next
    count read it again from its start: every line of it counted twice."""
    log = Log(tmp_path / "access.log")
    log.write(300)  # more than the fingerprint's bytes
    log.read()
    older = tmp_path / "access.log.1"
    log.write(3, older)  # an older file, with lines to read before the live log
    os.utime(older, (1, 1))
    log.write(2)

    def sink(batch: list[bytes]) -> None:
        log.read_lines.extend(batch)
        if not (tmp_path / "access.log.2").exists():
            older.rename(tmp_path / "access.log.2")
            log.path.rename(older)
            log.write(1)  # the server reopened: a new access.log

    log.cursors, _report = read_logs([log.path], log.cursors, sink)
    log.read()
    log.read()
    assert sorted(line_numbers(log.read_lines)) == list(range(306))
