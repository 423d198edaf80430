"""Where extracting an archive member writes it, on every system a package is installed on.

conda and rattler extract a package's members by their names, and the file system gives each
name its meaning: Windows splits a path at a backslash too, drops a component's trailing dots
and spaces, and takes a drive letter as the start of an absolute path; Windows and macOS (by
default) compare names without case. So ``INFO\\Index.json`` lands on ``info/index.json``
there, and ``..\\x`` outside the folder extracted to. The index judges every member by the
place it lands on any of them.

Extracting follows the links earlier members made: after a symlink ``x`` to ``info``, the
member ``x/index.json`` is written into info/index.json (conda and rattler alike), and conda
writes a member into the file an earlier hard link or symlink of its name leads to.
:class:`Links` tells such members apart.
"""

from __future__ import annotations

import posixpath
import re
import tarfile
from typing import Any

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


def in_info(where: str) -> bool:
    """Whether a member landing at ``where`` (see :func:`landing`) is in the info/ folder."""
    return where == "info" or where.startswith("info/")


def in_info_part(where: str, member: tarfile.TarInfo) -> bool:
    """Whether a member of a ``.conda``'s info- archive, landing at ``where``, belongs there:
    in info/, or the archive's top as a directory. conda extracts the pkg- archive first, so
    any other member could be written through a link that one made (``x`` to ``info``, then
    ``x/index.json``), which reading the info- archive first cannot see; a build tool puts
    nothing else there."""
    return in_info(where) or (where == "." and member.isdir())


# Marks a place in Links' tree as a link: no component of a path holds a "/".
_LINK = "/"
# Places in Links' tree, all links' components together (a dict each): a package has some
# hundreds of links at most; names of a thousand components each, a few KiB of bzip2, would
# take gigabytes.
MAX_LINK_PLACES = 50_000


class TooManyLinks(Exception):
    """The links' places take more than :data:`MAX_LINK_PLACES`."""


class Links:
    """The places the members extracted so far made links at, one package's folder over: a
    tree of path components, so a member is looked up in steps of its own length (a long
    name, up to the headers' bound, would cost the square of it by prefixes)."""

    def __init__(self) -> None:
        self.tree: dict[str, Any] = {}
        self.places = 0

    def through(self, where: str, member: tarfile.TarInfo) -> bool:
        """Whether ``member``, landing at ``where`` (see :func:`landing`), is written at or
        under a link an earlier member made; ``member`` is taken as extracted. A package's
        own files never are: a tar made from a folder holds nothing under its links."""
        parts = where.split("/")
        node = self.tree
        for part in parts:
            if part not in node:
                break
            node = node[part]
            if _LINK in node:
                return True
        if member.issym() or member.islnk():
            node = self.tree
            for part in parts:
                if part not in node:
                    self.places += 1
                    if self.places > MAX_LINK_PLACES:
                        raise TooManyLinks(f"links of more than {MAX_LINK_PLACES} places")
                    node[part] = {}
                node = node[part]
            node[_LINK] = {}
        return False
