"""Where extracting an archive member writes it, on every system a package is installed on.

conda and rattler extract a package's members by their names, and the file system gives each
name its meaning: Windows splits a path at a backslash too, drops a component's trailing dots
and spaces, and takes a drive letter as the start of an absolute path; Windows and macOS (by
default) compare names without case. So ``INFO\\Index.json`` lands on ``info/index.json``
there, and ``..\\x`` outside the folder extracted to. The index judges every member by the
place it lands on any of them.
"""

from __future__ import annotations

import posixpath
import re

_DRIVE = re.compile(r"[A-Za-z]:")


def landing(name: str) -> str | None:
    """``name``'s place in the folder a package is extracted to, in lower case, with ``/``
    between components; None when it lands outside that folder somewhere (absolute, ``..``),
    or holds a NUL no system can write."""
    path = name.replace("\\", "/")
    if path.startswith("/") or _DRIVE.match(path) or "\x00" in path:
        return None
    parts = [part.rstrip(". ") if part not in (".", "..") else part for part in path.split("/")]
    if ".." in parts:
        return None
    return posixpath.normpath("/".join(parts)).lower()
