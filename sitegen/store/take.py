"""Moving a file from outside the site into it (``move: true`` local sources), for
:meth:`sitegen.store.site.Site.take`, which documents the contract."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from sitegen.store.interface import SiteStorage
from sitegen.store.temp_names import short_name

log = logging.getLogger("sitegen")

# A hard link across these fails; the file is copied instead.
NO_LINK = (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP)


def take_file(
    site: SiteStorage,
    source: Path,
    target: Path,
    check: Callable[[Path], object],
    identity: tuple[int, int, int],
    same_bytes: Path | None,
) -> None:
    site.ensure_dir(target.parent)
    # First aside, in its own folder (one atomic rename): the name may hold a newer file than
    # the version checked, which must neither reach the store unchecked (over the version
    # stored) nor be lost. A crash between this and the next rename leaves the file there,
    # under the aside name.
    aside = source.with_name(f".{short_name(source.name)}.sitegen-taking")
    os.rename(source, aside)
    try:
        now = os.stat(aside, follow_symlinks=False)
        if (now.st_size, now.st_mtime_ns, now.st_ino) != identity:
            raise _Replaced
        _take_aside(site, aside, target, check, same_bytes)
    except BaseException as exc:
        _put_back(aside, source)
        if isinstance(exc, _Replaced):
            return
        raise


def _take_aside(
    site: SiteStorage,
    aside: Path,
    target: Path,
    check: Callable[[Path], object],
    same_bytes: Path | None,
) -> None:
    try:
        os.rename(aside, target)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    temp = site.temp_for(target)
    try:
        try:
            if same_bytes is None:
                raise OSError(errno.EXDEV, "nothing to link")
            os.link(same_bytes, temp, follow_symlinks=False)
        except OSError as exc:
            if exc.errno not in NO_LINK and exc.errno != errno.ENOENT:
                raise
            shutil.copyfile(aside, temp, follow_symlinks=False)
        check(temp)
        with open(temp, "rb") as handle:
            os.fsync(handle.fileno())
        site.commit(temp, target)
    except BaseException:
        site.discard(temp)
        raise
    os.unlink(aside)


class _Replaced(Exception):
    """The file under the source's name is not the version checked."""


def _put_back(aside: Path, source: Path) -> None:
    """The file set aside goes back under its name, unless another file took the name since
    (then it stays aside, beside it: nothing is written over)."""
    with contextlib.suppress(FileNotFoundError):
        try:
            os.link(aside, source, follow_symlinks=False)
        except FileExistsError:
            log.warning(
                "%s was replaced twice while it was moved; the earlier file is %s", source, aside
            )
            return
        os.unlink(aside)
