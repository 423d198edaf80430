"""Reading access logs incrementally: each line once, across rotation, truncation and
compression (gzip, bzip2, xz, zstd: :mod:`sitegen.stats.packed`).

A log file is known by a *fingerprint*: the SHA-256 of its first bytes (up to
:data:`FINGERPRINT_BYTES`, decompressed for a compressed file), together with how far it was
read (an offset into the uncompressed text, always just after a newline). Names and inodes
change with rotation, the first bytes of a log never do, so:

* rename + new file (``access.log`` -> ``access.log.1``): the old file is found by its
  fingerprint under its new name and read on from its offset; the new file is new;
* copytruncate: the copy carries the old fingerprint and is read on from the offset; the
  truncated live file starts with other lines (or is empty) and is new. A copy that ends
  before the offset (the live file was read on after it was made, or it is still being made)
  holds nothing unread;
* compression of a rotated file (``access.log.1`` -> ``access.log.2.gz``, ``.bz2``, ``.xz``,
  ``.zst``): same fingerprint, decompressed and read on from the offset; a complete gzip whose
  trailer says it holds exactly the bytes already read is not even decompressed, nor is any
  compressed file read to its end before and unchanged since (past its last newline, if it
  has one, nothing was ever read: gigabytes of one byte, say, that would be decompressed on
  every run);
* a log that vanished is forgotten, once a count finds its files as it listed them (one
  renamed while the others were read is found under its new name by the next count); a
  compressed file still being written is read as far as it goes.

A log shorter than :data:`FINGERPRINT_BYTES` is known by all its bytes, and by more of them
as it grows; an earlier copy of it (copytruncate's, when a count came between the copy and
the truncation) or one still being made is shorter still. So a cursor keeps, too, a short
fingerprint of its first bytes through each newline within its fingerprint's: a shorter file
whose complete lines match one is a copy of that file, read on from the cursor's offset
(which it seldom reaches), and the cursor keeps its longer fingerprint.

Device and inode are kept too, only to prefer the same file when two share a fingerprint (a
rotated file and its compressed copy, during compression). An incomplete last line is left for
the next run; a line longer than :data:`~sitegen.stats.logline.MAX_LINE` is skipped without
ever being held in memory whole.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import msgspec

from sitegen.stats.logline import MAX_LINE
from sitegen.stats.packed import CHUNK, DECODE_ERRORS, Ending, compression, decompressed
from sitegen.stats.rotated import list_siblings, moved_since, oldest_first

FINGERPRINT_BYTES = 1024


class Cursor(msgspec.Struct):
    """How far one log file was read."""

    fingerprint: str  # sha256 hex of the first fp_len bytes (decompressed)
    fp_len: int
    offset: int  # uncompressed bytes read, always just after a newline
    device: int = 0
    inode: int = 0
    path: str = ""  # where it was last seen, for messages
    # Short fingerprints of the first bytes through each newline before fp_len, for a file
    # shorter than fp_len (absent in older states).
    lines: list[str] = []
    # The size on disk of this compressed file once read to its end, else 0 (named for gzip,
    # the first compression read, in the states kept).
    packed_read: int = msgspec.field(default=0, name="gzip_read")


@dataclass
class ReadReport:
    files: int = 0  # files read from (or checked and found complete)
    bytes_read: int = 0  # uncompressed bytes read this run
    too_long: int = 0  # lines skipped for their length
    # Files that could not be read (broken compressed data, permissions), each with what went
    # wrong: a broken one fails every count until the operator deals with it, who is told
    # which it is.
    failed: list[tuple[Path, str]] = field(default_factory=list)
    # Configured logs of which no file is there, rotated or not (a typo in stats.logs, a web
    # server not started yet): nothing to read, which the operator is told.
    absent: list[Path] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return len(self.failed)

    def fail(self, path: Path, exc: Exception) -> None:
        """Note that ``path`` could not be read (in full), for ``exc``."""
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        self.failed.append((path, reason or type(exc).__name__))


def _skip(chunks: Iterator[bytes], count: int) -> Iterator[bytes]:
    """The chunks without their first ``count`` bytes."""
    for chunk in chunks:
        if count >= len(chunk):
            count -= len(chunk)
            continue
        yield chunk[count:] if count else chunk
        count = 0


def open_log(path: Path) -> tuple[BinaryIO, os.stat_result]:
    """A log opened for reading, and its status; OSError for anything but a regular file.

    The files are listed before they are read, and one may be replaced meanwhile by a FIFO or
    a device (or a symlink to one): opened as it is, a FIFO without a writer would hold the
    count, and its lock, for ever. Nothing blocks the open; what was opened is what is read.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        return os.fdopen(fd, "rb"), st
    except BaseException:
        os.close(fd)
        raise


def read_head(raw: BinaryIO, packed: str, ending: Ending) -> bytes:
    """The first bytes of a log (decompressed), for its fingerprint. Fewer than
    FINGERPRINT_BYTES of a compressed file are all of it: ``ending`` tells whether its data
    was complete."""
    raw.seek(0)
    if not packed:
        return raw.read(FINGERPRINT_BYTES)
    head = b""
    for chunk in decompressed(raw, packed, ending):
        head += chunk
        if len(head) >= FINGERPRINT_BYTES:
            break
    return head[:FINGERPRINT_BYTES]


def gzip_size_mod32(raw: BinaryIO) -> int | None:
    """The gzip trailer's ISIZE: the uncompressed length modulo 2**32 (None if unreadable)."""
    try:
        raw.seek(-4, os.SEEK_END)
        return struct.unpack("<I", raw.read(4))[0]
    except (OSError, struct.error):
        return None


def fingerprint(head: bytes) -> str:
    return hashlib.sha256(head).hexdigest()


LINE_PRINT = 16  # hex digits kept of the fingerprint of the first bytes through a newline


def line_prints(head: bytes) -> list[str]:
    """The short fingerprints of ``head`` through each of its newlines but a last byte's."""
    digest, prints, start = hashlib.sha256(), [], 0
    while end := head.find(b"\n", start, len(head) - 1) + 1:
        digest.update(head[start:end])
        prints.append(digest.copy().hexdigest()[:LINE_PRINT])
        start = end
    return prints


def find_cursor(cursors: Sequence[Cursor], head: bytes, st: os.stat_result) -> Cursor | None:
    """The cursor of the file whose first bytes are ``head``, or else of one whose first
    bytes begin with the complete lines of a shorter ``head``; the same inode wins a tie."""
    matches = [
        c
        for c in cursors
        if c.fp_len <= len(head) and fingerprint(head[: c.fp_len]) == c.fingerprint
    ]
    if not matches and (lines := head.rfind(b"\n") + 1):
        short = fingerprint(head[:lines])[:LINE_PRINT]
        matches = [c for c in cursors if c.fp_len > len(head) and short in c.lines]
    for cursor in matches:
        if (cursor.device, cursor.inode) == (st.st_dev, st.st_ino):
            return cursor
    return matches[0] if matches else None


def iter_chunks(stream: BinaryIO) -> Iterator[bytes]:
    while data := stream.read(CHUNK):
        yield data


def split_lines(
    chunks: Iterator[bytes], sink: Callable[[list[bytes]], None], max_line: int = MAX_LINE
) -> tuple[int, int, int]:
    """Hand complete lines to ``sink`` in batches; returns (bytes up to and including the last
    newline, lines skipped as longer than ``max_line``, bytes in all). A line still growing at
    the end is not consumed. Memory stays within one chunk plus ``max_line``.
    """
    consumed = total = too_long = 0
    partial: list[bytes] = []  # the start of the current line, while it is short enough
    partial_len = 0
    for data in chunks:
        total += len(data)
        pieces = data.split(b"\n")
        if len(pieces) == 1:  # no newline: the current line goes on
            partial_len += len(data)
            if partial_len > max_line:
                partial = []
            else:
                partial.append(data)
            continue
        first, complete, last = pieces[0], pieces[1:-1], pieces[-1]
        batch: list[bytes] = []
        if partial_len + len(first) > max_line:
            too_long += 1
        else:
            batch.append(b"".join(partial) + first if partial else first)
        if complete and max(map(len, complete)) > max_line:
            short = [line for line in complete if len(line) <= max_line]
            too_long += len(complete) - len(short)
            complete = short
        batch.extend(complete)
        sink(batch)
        consumed = total - len(last)
        partial_len = len(last)
        partial = [last] if partial_len <= max_line else []
    return consumed, too_long, total


def read_file(
    path: Path, cursors: Sequence[Cursor], sink: Callable[[list[bytes]], None], report: ReadReport
) -> tuple[Cursor | None, Cursor | None]:
    """Read what is new in one file: (the known cursor it matched, its updated cursor).

    ``cursors`` are those known so far, including any updated earlier in this run. The updated
    cursor is None when there is nothing to remember (an empty file, a broken one).
    """
    try:
        raw, st = open_log(path)
    except OSError as exc:
        report.fail(path, exc)
        return None, None
    with raw:
        return _read_open(path, raw, st, cursors, sink, report)


def _read_open(
    path: Path,
    raw: BinaryIO,
    st: os.stat_result,
    cursors: Sequence[Cursor],
    sink: Callable[[list[bytes]], None],
    report: ReadReport,
) -> tuple[Cursor | None, Cursor | None]:
    packed, ending = compression(path), Ending()
    try:
        head = read_head(raw, packed, ending)
    except (OSError, *DECODE_ERRORS) as exc:
        report.fail(path, exc)
        return None, None
    if not head:
        return None, None
    if packed and len(head) < FINGERPRINT_BYTES and not ending.complete:
        return None, None  # still being written, too short to be recognised yet
    cursor = find_cursor(cursors, head, st)
    offset = cursor.offset if cursor is not None else 0
    report.files += 1
    if cursor is not None and not packed and st.st_size < offset:
        # A copy of the file read (copytruncate's, made before reading got this far, or still
        # being made): its lines are the first ones of that file, every one read already.
        return cursor, cursor
    if cursor is not None and packed:
        if (cursor.device, cursor.inode, cursor.packed_read) == (st.st_dev, st.st_ino, st.st_size):
            # read to its end already, unchanged since: what follows offset holds no newline
            return cursor, _updated(cursor, head, st, path, offset, cursor.packed_read)
        if packed == ".gz" and gzip_size_mod32(raw) == offset % 2**32:
            return cursor, _updated(cursor, head, st, path, offset)  # complete, read already
    raw.seek(0)
    errors = report.errors
    chunks = _guarded(path, raw, packed, offset, report, ending)
    consumed, too_long, _ = split_lines(chunks, sink)
    report.too_long += too_long
    report.bytes_read += consumed
    # Compressed data read to its end without a fault, and complete.
    whole = packed and report.errors == errors and ending.complete
    packed_read = st.st_size if whole else 0
    return cursor, _updated(cursor, head, st, path, offset + consumed, packed_read)


def _guarded(
    path: Path, raw: BinaryIO, packed: str, offset: int, report: ReadReport, ending: Ending
) -> Iterator[bytes]:
    """The (decompressed) chunks from ``offset`` on. Broken compressed data or a read error
    ends the file quietly: what came before counts, a later run reads on from there."""
    try:
        if packed:
            yield from _skip(decompressed(raw, packed, ending), offset)
        else:
            raw.seek(offset)
            yield from iter_chunks(raw)
    except (OSError, *DECODE_ERRORS) as exc:
        report.fail(path, exc)


def _updated(
    cursor: Cursor | None,
    head: bytes,
    st: os.stat_result,
    path: Path,
    offset: int,
    packed_read: int = 0,
) -> Cursor | None:
    if offset == 0 and not packed_read:
        return None
    if cursor is not None and cursor.fp_len > len(head):
        # A copy of an earlier state of the cursor's file: its first bytes tell less.
        known, known_len, lines = cursor.fingerprint, cursor.fp_len, cursor.lines
    else:
        known, known_len, lines = fingerprint(head), len(head), line_prints(head)
    return Cursor(
        fingerprint=known,
        fp_len=known_len,
        offset=offset,
        device=st.st_dev,
        inode=st.st_ino,
        path=str(path),
        lines=lines,
        packed_read=packed_read,
    )


def read_logs(
    logs: Sequence[Path], cursors: Sequence[Cursor], sink: Callable[[list[bytes]], None]
) -> tuple[list[Cursor], ReadReport]:
    """Read every log and its rotated files from where the last run stopped.

    Returns the cursors to keep (one per file still present that holds a complete line or is
    compressed and read to its end) and what was read. Files are read oldest first; a file
    seen under two names (``log.1`` and ``log.1.gz``) shares one cursor, so its lines are read
    once.
    """
    known: list[Cursor] = list(cursors)
    kept: list[Cursor] = []
    report = ReadReport()
    moved = False
    for log in logs:
        try:
            listed = list_siblings(log)
        except OSError as exc:
            report.fail(log.parent, exc)  # its files' cursors are kept, below
            continue
        if not listed:
            report.absent.append(log)
        for path in oldest_first(listed):
            matched, updated = read_file(path, known, sink, report)
            if updated is None:
                continue
            # The updated cursor replaces the one it matched (its fingerprint may now cover
            # more bytes), for the names still to come and for the next run.
            known = [c for c in known if c is not matched] + [updated]
            kept = [c for c in kept if c is not matched] + [updated]
        # A file rotated after the listing (the live log renamed while an older file was
        # read) was not opened under its new name: its cursor goes only once a count sees
        # the files stay as listed, or its lines would be read again from the start.
        moved = moved or moved_since(log, listed)
    if report.errors or moved:
        # A file that could not be read this time may be readable next time: keep its cursor
        # rather than read it again from the start.
        kept += [c for c in known if c not in kept]
    return kept, report
