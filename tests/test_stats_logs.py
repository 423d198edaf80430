"""Reading access logs incrementally: each line exactly once across rotation, truncation,
compression and vanished files; long lines skipped without being held in memory."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import textwrap
import threading
import tracemalloc
import zlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import pytest

from sitegen import layout
from sitegen.cli import EXIT_OK, main
from sitegen.config import parse_config
from sitegen.stats import counter, logfiles, logline, missing, open_day
from sitegen.stats.logfiles import (
    CHUNK,
    FINGERPRINT_BYTES,
    Cursor,
    ReadReport,
    read_logs,
    rotated_siblings,
    split_lines,
)
from sitegen.stats.run import run_stats
from sitegen.stats.state import load_state

pytestmark = pytest.mark.unit


class Log:
    """A log file written line by line, and a reader that remembers its cursors."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.cursors: list[Cursor] = []
        self.written = 0
        self.read_lines: list[bytes] = []
        self.last_bytes = 0

    def write(self, count: int, target: Path | None = None) -> list[bytes]:
        lines = [f"line {self.written + i:06d} {'x' * 40}".encode() for i in range(count)]
        self.written += count
        with open(target or self.path, "ab") as handle:
            handle.write(b"".join(line + b"\n" for line in lines))
        return lines

    def read(self) -> list[bytes]:
        got: list[bytes] = []
        self.cursors, report = read_logs([self.path], self.cursors, got.extend)
        self.read_lines += got
        self.last_bytes = report.bytes_read
        return got


def _config_text(tmp_path: Path, log: Path) -> str:
    """channels.yaml of one channel whose downloads are counted from ``log``."""
    return textwrap.dedent(f"""\
        output: {tmp_path / "site"}
        channels:
          cloud/x: {{url: "https://conda.example/x", subdirs: [linux-64]}}
        stats: {{logs: [{log}]}}
        """)


def _numbers(lines: list[bytes]) -> list[int]:
    return [int(line.split()[1]) for line in lines]


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
    assert sorted(_numbers(log.read())) == _numbers(tail + fresh)
    assert _numbers(log.read_lines) == list(range(62))


def test_copytruncate_even_when_the_new_file_outgrew_the_old_offset(tmp_path: Path) -> None:
    log = Log(tmp_path / "access.log")
    log.write(10)
    log.read()
    tail = log.write(2)
    shutil.copy(log.path, tmp_path / "access.log.1")
    os.truncate(log.path, 0)
    fresh = log.write(40)  # the same inode, now longer than where reading stopped
    assert sorted(_numbers(log.read())) == _numbers(tail + fresh)
    assert _numbers(log.read_lines) == list(range(52))


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
    assert _numbers(log.read_lines) == list(range(36))


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
    assert _numbers(log.read_lines) == list(range(35))


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
    assert _numbers(log.read_lines) == list(range(303))


def test_gzip_with_an_unread_tail_is_read_on_from_the_offset(tmp_path: Path) -> None:
    log = Log(tmp_path / "access.log")
    log.write(30)
    log.read()
    tail = log.write(4)
    data = log.path.read_bytes()
    log.path.unlink()
    (tmp_path / "access.log.1.gz").write_bytes(gzip.compress(data))
    fresh = log.write(2)
    assert sorted(_numbers(log.read())) == _numbers(tail + fresh)


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
    assert _numbers(log.read_lines) == list(range(2000))


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
    assert _numbers(log.read_lines) == list(range(102))


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
    assert _numbers(log.read_lines) == list(range(7))


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
    assert _numbers(log.read_lines) == list(range(6))


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
    real_gunzip = logfiles.gunzip

    def gunzip(raw: BinaryIO) -> Iterator[bytes]:
        for chunk in real_gunzip(raw):
            decompressed.append(len(chunk))
            yield chunk

    monkeypatch.setattr(logfiles, "gunzip", gunzip)
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


def test_run_stats_survives_hostile_logs_and_counts_them_as_skipped(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    good = (
        b'192.0.2.1 - - [05/Dec/2026:10:00:00 +0000] "GET /cloud/x/linux-64/a-1-0.conda'
        b' HTTP/1.1" 200 10 "-" "pixi/0.39.0"\n'
    )
    with open(log, "wb") as out:
        out.write(good)
        out.write(b"192.0.2.1 - - [" + b"A" * (10 * 1024 * 1024) + b"\n")  # a 10 MB line
        out.write(os.urandom(4096).replace(b"\n", b"") + b"\n")
        out.write(b'192.0.2.1 - - [05/Dec/2026:10:00:00 +0000] "GET /\xff\xfe HTTP/1.1" 404 0')
        out.write(b' "-" "\xc3\x28"\n')
        out.write(good.replace(b"a-1-0.conda", b"%3Cscript%3E-1-0.conda"))
        out.write(good.replace(b"/cloud/x/", b"/cloud/x/../../"))
        out.write(good)
    config = parse_config(_config_text(tmp_path, log))
    result = run_stats(config, today=date(2026, 12, 6))
    assert result.skipped == {"hostile": 3, "malformed": 1, "too_long": 1}
    assert result.downloads == 2 and result.lines == 6
    doc = json.loads((tmp_path / "site" / "stats.json").read_bytes())
    assert doc["skipped"] == result.skipped
    assert [(f["file"], f["downloads"]) for f in doc["files"]] == [("a-1-0.conda", 2)]
    assert run_stats(config, today=date(2026, 12, 6)).lines == 0  # nothing new


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
    assert sorted(_numbers(log.read_lines)) == list(range(302))


def test_a_time_off_the_clock_skips_its_own_line_only(tmp_path: Path) -> None:
    """A minute past 59 is a bad time: its line is skipped, and only it. The day of a time
    is cached by its hour (the minutes cannot move a whole-hour offset's day), so the bad
    line's "no day" stood for every line of its hour after it, which were skipped as dated in
    the future, never to be read again."""
    log = tmp_path / "access.log"
    day = datetime.now(UTC).strftime("%d/%b/%Y")
    lines = [
        f'192.0.2.1 - - [{day}:00:{minute} +0000] "GET /cloud/x/linux-64/a-1-0.conda'
        f' HTTP/1.1" 200 10 "-" "conda/24.1.0"\n'
        for minute in ("60:00", "30:00", "59:59")
    ]
    log.write_text("".join(lines))
    config = tmp_path / "channels.yaml"
    config.write_text(_config_text(tmp_path, log))
    assert main(["stats", "-c", str(config)]) == EXIT_OK
    doc = json.loads((tmp_path / "site" / "stats.json").read_bytes())
    assert doc["skipped"] == {"bad_time": 1}
    assert doc["totals"]["downloads"] == 2


def test_endless_distinct_paths_do_not_grow_the_runs_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each request for a package file under a path of its own (anyone can ask for those)
    was remembered for the rest of the run: a log of millions of them took gigabytes."""
    monkeypatch.setattr(logline, "HEAD_CACHE_LIMIT", 100)
    monkeypatch.setattr(counter, "CACHE_LIMIT", 100)
    log = tmp_path / "access.log"
    day = datetime.now(UTC).strftime("%d/%b/%Y")
    with log.open("w") as out:
        for i in range(10_000):
            out.write(
                f'192.0.2.1 - - [{day}:00:00:00 +0000] "GET /{i:05d}{"x" * 2000}'
                f'/linux-64/a-1-0.conda HTTP/1.1" 404 10 "-" "conda/24.1.0"\n'
            )
    config = tmp_path / "channels.yaml"
    config.write_text(_config_text(tmp_path, log))
    tracemalloc.start()
    try:
        assert main(["stats", "-c", str(config)]) == EXIT_OK
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20  # the 20 MB of paths are not all held at once


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


def test_endless_tool_versions_do_not_grow_the_counts(tmp_path: Path) -> None:
    """A user agent names any version it likes (conda/1.0.<n>): each one was a row of the
    state and of stats.json for good, however many. A period keeps its most used versions
    (as many as it keeps 404s), stats.json lists as many, and the clients of the others
    count under their tool with no version, so that each tool's count stays whole."""
    log = tmp_path / "access.log"
    today = datetime.now(UTC).date()
    versions = 2 * missing.KEEP + 500
    with log.open("w") as out:
        for back in (200, 199, 0):  # two days rolled into their month, and today
            day = (today - timedelta(days=back)).strftime("%d/%b/%Y")
            for i in range(versions):
                out.write(
                    f'192.0.2.{i % 200} - - [{day}:00:00:00 +0000] "GET /cloud/x/linux-64/'
                    f'repodata.json HTTP/1.1" 200 10 "-" "conda/{back}.0.{i}"\n'
                )
    config = tmp_path / "channels.yaml"
    config.write_text(_config_text(tmp_path, log))
    assert main(["stats", "-c", str(config)]) == EXIT_OK
    counts, _cursors = load_state(layout.stats_state_path(tmp_path / "site"))
    assert all(len(rows) <= missing.KEEP + 1 for rows in counts.tools.values())
    doc = json.loads((tmp_path / "site" / "stats.json").read_bytes())
    assert len(doc["tools"]) <= missing.KEEP + 1
    assert sum(row["client_days"] for row in doc["tools"]) == 3 * versions
    assert sum(row["client_days_30d"] for row in doc["tools"]) == versions


def _clients_log(log: Path, day: str, clients: range, *, repeat: int = 1) -> None:
    """Append one download per client of ``clients`` (a distinct user agent each, from one
    address, as anyone can send them), ``repeat`` times over."""
    with log.open("a") as out:
        for _ in range(repeat):
            for i in clients:
                out.write(
                    f'192.0.2.1 - - [{day}:10:00:00 +0000] "GET /cloud/x/linux-64/a-1-0.conda'
                    f' HTTP/1.1" 200 10 "-" "conda/24.1.0 bot/{i}"\n'
                )


def test_endless_distinct_clients_in_a_day_do_not_grow_the_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each distinct address and user agent of a day still open was kept (as a hash) until
    the day closed: a log of millions of them in one day grew the memory of the count and
    the state file by as many. A day tells apart so many clients; past them its count is a
    lower bound, and stats.json and the page say so."""
    monkeypatch.setattr(open_day, "CLIENTS_KEPT", 1000)
    log = tmp_path / "access.log"
    config = tmp_path / "channels.yaml"
    config.write_text(_config_text(tmp_path, log))
    today = datetime.now(UTC).date()
    yesterday = (today - timedelta(days=1)).strftime("%d/%b/%Y")
    _clients_log(log, yesterday, range(900), repeat=2)  # fewer than kept: exact
    _clients_log(log, today.strftime("%d/%b/%Y"), range(5000))
    assert main(["stats", "-c", str(config)]) == EXIT_OK
    state = layout.stats_state_path(tmp_path / "site")
    size = state.stat().st_size
    _clients_log(log, today.strftime("%d/%b/%Y"), range(5000, 50_000))
    assert main(["stats", "-c", str(config)]) == EXIT_OK
    assert state.stat().st_size < size + 4096  # 45,000 more clients, no more room
    counts, _cursors = load_state(state)
    assert all(len(opened.clients) <= 1000 for opened in counts.open_days.values())
    doc = json.loads((tmp_path / "site" / "stats.json").read_bytes())
    periods = {row["period"]: row for row in doc["periods"]}
    old, new = periods[(today - timedelta(days=1)).isoformat()], periods[today.isoformat()]
    assert (old["clients"], old["clients_capped"]) == (900, False)
    assert (new["clients"], new["clients_capped"]) == (1000, True)
    assert new["downloads"] == 50_000  # every download counts still
    assert sum(row["client_days"] for row in doc["tools"]) == 1900
    assert main(["render", "-c", str(config)]) == EXIT_OK
    page = (tmp_path / "site" / layout.STATS_PAGE).read_text()
    note = page.split('id="clients-capped">')[1].split("</p>")[0]
    assert note.startswith(f"At least these: on {today.isoformat()}, more distinct clients")


def test_endless_clients_asking_for_ranges_do_not_grow_the_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 206 is counted once per client and file a day, which the day remembers: endless user
    agents each asking for a range (of a package file or an installer) grew the memory of the
    count and the state file without bound past the clients a day tells apart."""
    monkeypatch.setattr(open_day, "CLIENTS_KEPT", 1000)
    log = tmp_path / "access.log"
    config = tmp_path / "channels.yaml"
    config.write_text(_config_text(tmp_path, log))
    day = datetime.now(UTC).strftime("%d/%b/%Y")

    def ranges(clients: range) -> None:
        with log.open("a") as out:
            for i in clients:
                out.write(
                    f'192.0.2.1 - - [{day}:10:00:00 +0000] "GET /cloud/x/linux-64/a-1-0.conda'
                    f' HTTP/1.1" 206 10 "-" "conda/24.1.0 bot/{i}"\n'
                )

    ranges(range(5000))
    assert main(["stats", "-c", str(config)]) == EXIT_OK
    state = layout.stats_state_path(tmp_path / "site")
    size = state.stat().st_size
    ranges(range(5000, 50_000))
    assert main(["stats", "-c", str(config)]) == EXIT_OK
    assert state.stat().st_size < size + 4096  # 45,000 more clients, no more room
    counts, _cursors = load_state(state)
    assert all(len(opened.ranges) <= 1000 for opened in counts.open_days.values())
    doc = json.loads((tmp_path / "site" / "stats.json").read_bytes())
    today = {row["period"]: row for row in doc["periods"]}[datetime.now(UTC).date().isoformat()]
    assert today["downloads"] == 50_000  # every client's range still counts


def test_endless_clients_redirected_and_not_following_do_not_grow_the_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Apache logs the fetcher's outcome on a 302 back to the static URL, held per client and
    file until the 200 that follows: endless user agents each redirected, and never
    following, grew the memory of the count and the state file without bound. Past the pairs
    a day holds, the 200 after a redirect not held counts as served from disk."""
    monkeypatch.setattr(open_day, "CLIENTS_KEPT", 1000)
    log = tmp_path / "access.log"
    config = tmp_path / "channels.yaml"
    config.write_text(_config_text(tmp_path, log))
    day = datetime.now(UTC).strftime("%d/%b/%Y")

    def requests(clients: range, status: int, fetcher: str) -> None:
        with log.open("a") as out:
            for i in clients:
                out.write(
                    f'192.0.2.1 - - [{day}:10:00:00 +0000] "GET /cloud/x/linux-64/a-1-0.conda'
                    f' HTTP/1.1" {status} 10 "-" "conda/24.1.0 bot/{i}" "{fetcher}"\n'
                )

    requests(range(5000), 302, "stored")
    assert main(["stats", "-c", str(config)]) == EXIT_OK
    state = layout.stats_state_path(tmp_path / "site")
    size = state.stat().st_size
    requests(range(5000, 50_000), 302, "stored")
    assert main(["stats", "-c", str(config)]) == EXIT_OK
    assert state.stat().st_size < size + 4096  # 45,000 more redirects, no more room
    counts, _cursors = load_state(state)
    assert all(len(opened.redirected) <= 1000 for opened in counts.open_days.values())
    requests(range(999, 1001), 200, "-")  # the last pair held, the first not
    assert main(["stats", "-c", str(config)]) == EXIT_OK
    counts, _cursors = load_state(state)
    assert counts.passive == {
        datetime.now(UTC).date().isoformat(): {
            "cloud/x|linux-64|stored": 1,
            "cloud/x|linux-64|disk": 1,
        }
    }
