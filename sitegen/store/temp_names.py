"""Names of temporary files beside a file: they must fit the file system's 255 bytes however
long the file's own name is."""

from __future__ import annotations

import hashlib


def short_name(name: str) -> str:
    """``name`` as part of a longer file name (a temporary's): a long one (up to 255 bytes)
    as its head (at most 60 bytes) and a digest of the whole, so the longer name fits too."""
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= 120:
        return name
    head = raw[:60].decode("utf-8", "ignore")  # a character cut in two is left out
    return f"{head}~{hashlib.sha256(raw).hexdigest()[:32]}"
