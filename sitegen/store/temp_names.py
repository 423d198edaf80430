"""Names of temporary files beside a file: they must fit the file system's 255 bytes however
long the file's own name is, and those of the site carry their writer's pid, so that only a
dead writer's are cleaned up."""

from __future__ import annotations

import errno
import hashlib
import os

TEMP_PREFIX = ".sitegen-tmp-"
# How opening a file without a name (O_TMPFILE) fails where the filesystem (or kernel) has
# none: a temporary name is used instead.
NO_TMPFILE = (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL)
# Linux's PID_MAX_LIMIT: no process id reaches it.
_PID_LIMIT = 1 << 22


def short_name(name: str) -> str:
    """``name`` as part of a longer file name (a temporary's): a long one (up to 255 bytes)
    as its head (at most 60 bytes) and a digest of the whole, so the longer name fits too."""
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= 120:
        return name
    head = raw[:60].decode("utf-8", "ignore")  # a character cut in two is left out
    return f"{head}~{hashlib.sha256(raw).hexdigest()[:32]}"


def temp_writer_alive(name: str) -> bool:
    """True when the temporary file ``name`` belongs to a process that is still running."""
    return name.startswith(TEMP_PREFIX) and _writer_alive(name[len(TEMP_PREFIX) :])


def _writer_alive(rest: str) -> bool:
    pid_text = rest.split("-", 1)[0]
    # Only the ASCII pid of a process sitegen names its temporaries for: other digits
    # (str.isdigit takes "²" and "٣"), 0 (kill() would test the caller's own process group) or
    # a number past any pid (kill() overflows) name no writer, whoever made the file.
    if not (pid_text.isascii() and pid_text.isdigit() and len(pid_text) <= len(str(_PID_LIMIT))):
        return False
    pid = int(pid_text)
    if not 0 < pid < _PID_LIMIT:
        return False
    if pid == os.getpid():
        return False  # this process has no write in flight when it cleans up
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
