"""Edit the approvals file line by line, keeping everything else exactly as it was.

The file is a YAML list with one block per entry, each starting with ``- channel:`` at the
start of a line (the layout these functions write). A new entry goes in at its sorted place
(by channel, then spec); comment lines just above an entry belong to it, as do those among its
keys, and what follows the last entry stays at the end (see :mod:`sitegen.approvals.layout`).
Every edit is checked by parsing the result before it is written, and written atomically.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sitegen.approvals.layout import Layout, line_break, read_layout, rewritten
from sitegen.config.approval_model import Approval
from sitegen.config.approvals import parse_approvals
from sitegen.config.yaml_nodes import ConfigError

HEADER = (
    "# Approvals of approval-gated channels (see channels.yaml), sorted by channel and spec.\n"
    "# `sitegen approve` and `sitegen revoke` edit this file; review its changes like code.\n"
)


# What a YAML reader refuses in a file (DEL and the C1 controls) or, in a quoted string, reads
# as a line break and folds into a space (NEL): written as escapes, which JSON does not make.
UNQUOTABLE = re.compile("[\x7f-\x9f]")


def render_entry(entry: Approval, newline: str = "\n") -> list[str]:
    def quote(text: str) -> str:
        # A JSON string is a YAML scalar, and its \uXXXX escapes are YAML's too.
        quoted = json.dumps(text, ensure_ascii=False)
        return UNQUOTABLE.sub(lambda char: f"\\u{ord(char.group()):04x}", quoted)

    lines = [
        f"- channel: {quote(entry.channel)}",
        f"  spec: {quote(entry.spec)}",
        f"  by: {quote(entry.by)}",
        f"  when: {quote(entry.when)}",
        f"  why: {quote(entry.why)}",
    ]
    if entry.expires is not None:
        lines.append(f"  expires: {quote(entry.expires)}")
    if entry.with_dependencies:
        lines.append("  with_dependencies: true")
    return [line + newline for line in lines]


def add_entry(text: str, entry: Approval, filename: str) -> str:
    """The file with ``entry`` added in sorted place, replacing one with the same channel and
    spec (an approval granted again: its comments stay, each by its key); a ConfigError naming
    their lines when more than one has them. The lines added end as the file's own do (CRLF
    stays CRLF)."""
    if text.strip():
        layout = read_layout(text, filename)
    else:
        newline = line_break(text)
        layout = Layout([HEADER.replace("\n", newline)], [], [], newline)
    # The file is read with each entry an approval of its own (both of two entries of one
    # spec approve, and list apart on the pages): which one a grant replaces is the
    # operator's to say, and replacing both would erase a reviewed entry.
    same = [block.entry for block in layout.blocks if block.entry.key == entry.key]
    if len(same) > 1:
        lines = ", ".join(str(e.line) for e in same)
        raise ConfigError(
            f"{filename}:{same[0].line}: {entry.channel} approves {entry.spec!r} in"
            f" {len(same)} entries (lines {lines}): keep one of them by hand, or revoke them"
            " all, before approving it again",
            line=same[0].line,
        )
    new = render_entry(entry, layout.newline)
    out_blocks: list[list[str]] = []
    placed = False
    for block in layout.blocks:
        lines = block.lines
        if block.entry.key == entry.key:
            lines = rewritten(block, new, layout.newline)
            placed = True
        elif not placed and block.entry.key > entry.key:
            out_blocks.append(new)
            placed = True
        out_blocks.append(lines)
    if not placed:
        out_blocks.append(new)
    return _check(layout.text(out_blocks), filename)


def remove_entries(text: str, channel: str, spec: str, filename: str) -> tuple[str, list[Approval]]:
    """The file without the entries of ``channel`` with this spec (and the comments that are
    theirs: above them and among their keys), and the entries removed."""
    if not text.strip():
        return text, []
    layout = read_layout(text, filename)
    key = Approval(channel, spec, "", "", "").key
    kept = [block.lines for block in layout.blocks if block.entry.key != key]
    removed = [block.entry for block in layout.blocks if block.entry.key == key]
    if not removed:
        return text, []
    return _check(layout.text(kept), filename), removed


def _check(text: str, filename: str) -> str:
    parse_approvals(text, filename)  # what we write must read back
    return text


def write_atomically(path: Path, text: str) -> None:
    """Replace the file in one rename, so a reader sees the old or the new file, whole; a
    PermissionError if the file may not be written."""
    # The rename needs no right to the file itself: one made read-only, or that this user may
    # not write, would be replaced all the same (and then owned by whoever replaced it).
    if path.exists() and (not path.stat().st_mode & 0o222 or not os.access(path, os.W_OK)):
        raise PermissionError(errno.EACCES, "the file is read-only", str(path))
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        # newline="": the text's line breaks as they are, CRLF included, never translated.
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            os.chmod(temp, path.stat().st_mode & 0o7777)
        else:
            os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def editing(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the approvals file while it is read, changed and checked.

    Two ``sitegen approve`` at once would otherwise both read the old file, and the second
    rename would drop the first one's entry. The file is replaced by rename, so the lock is
    taken on the inode the name holds once locked (again, if the name moved on meanwhile). An
    absent file is created empty to be locked, and removed again if the edit wrote nothing.
    """
    while True:
        created = False
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            except FileExistsError:  # another editor created it first
                continue
            created = True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            held = os.fstat(fd)
            try:
                now = os.stat(path)
            except FileNotFoundError:
                now = None
        except BaseException:
            os.close(fd)
            raise
        if now is not None and (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino):
            break
        os.close(fd)
    try:
        yield
    finally:
        if created:
            with contextlib.suppress(OSError):
                if os.stat(path).st_size == 0:
                    os.unlink(path)  # made for the lock only: no entry was written
        os.close(fd)
