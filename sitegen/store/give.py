"""Moving a file of the site out to a folder outside it (the files a ``move: true`` local
source took into its store, given back), for :meth:`sitegen.store.site.Site.give_back`, which
documents the contract."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
from pathlib import Path

from sitegen.store.compare import same_files
from sitegen.store.pending import directory_fd
from sitegen.store.take import NO_LINK
from sitegen.store.temp_names import short_name


def give_back_file(source: Path, target: Path) -> bool:
    # The target is named first, and never over a file that holds the name (a hard link fails
    # on any name present); the source goes only once the target's name is on disk, so a
    # crash leaves the bytes in one place at least, and the same call finishes the move.
    try:
        _name_target(source, target)
        moved = True
    except FileExistsError:
        if not same_files(source, target):
            raise FileExistsError(
                errno.EEXIST, "another file holds its name", str(target)
            ) from None
        moved = False
    with directory_fd(target.parent) as fd:
        os.fsync(fd)
    os.unlink(source)
    return moved


def _name_target(source: Path, target: Path) -> None:
    try:
        os.link(source, target, follow_symlinks=False)
        return
    except OSError as exc:
        if exc.errno not in NO_LINK:
            raise
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, "exists", str(target))
    # A dot-name ending in .partial: indexing ignores it while it is written.
    temp = target.with_name(f".{short_name(target.name)}.{secrets.token_hex(4)}.partial")
    try:
        shutil.copyfile(source, temp, follow_symlinks=False)
        with open(temp, "rb") as handle:
            os.fsync(handle.fileno())
        if not same_files(temp, source):
            raise OSError(errno.EIO, "the copy differs from the stored file", str(temp))
        try:
            os.link(temp, target, follow_symlinks=False)
        except OSError as exc:
            if exc.errno not in NO_LINK:
                raise
            # A folder without hard links: a rename, which would replace a file dropped in
            # the instant since the name was found free.
            if os.path.lexists(target):
                raise FileExistsError(errno.EEXIST, "exists", str(target)) from None
            os.rename(temp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
