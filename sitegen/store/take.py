"""Moving a file from outside the site into it (``move: true`` local sources), for
:meth:`sitegen.store.site.Site.take`, which documents the contract."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from sitegen.store.compare import same_files
from sitegen.store.interface import SiteStorage
from sitegen.store.temp_names import short_name

log = logging.getLogger("sitegen")

# A hard link across these fails; the file is copied instead.
NO_LINK = (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP)


ASIDE_SUFFIX = ".sitegen-taking"


def aside_of(source: Path) -> Path:
    """Where :func:`take_file` sets ``source`` aside while it moves it: a dot-file beside it,
    which indexing ignores (see :func:`recover_aside` for one a crash left there)."""
    return source.with_name(f".{short_name(source.name)}{ASIDE_SUFFIX}")


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
    # under the aside name, for recover_aside.
    aside = aside_of(source)
    if os.path.lexists(aside):
        # An earlier move's, which a crash left there (rename would write over it): the next
        # run's recover_aside deals with it first.
        raise FileExistsError(errno.EEXIST, "a file set aside by an earlier move is in the way")
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
    if os.stat(aside).st_dev == os.stat(target.parent).st_dev:
        # A rename keeps the bytes, which need not be those checked when the file was read:
        # one rewritten in place since, its mtime set back (cp -p, rsync --times), keeps the
        # size, mtime and inode that ``identity`` compares.
        check(aside)
        try:
            os.rename(aside, target)
            return
        except OSError as exc:
            if exc.errno != errno.EXDEV:  # a bind mount between: copied as across filesystems
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


def _put_back(aside: Path, source: Path) -> bool:
    """The file set aside goes back under its name, unless another file took the name since
    (then it stays aside, beside it: nothing is written over); whether it went back."""
    with contextlib.suppress(FileNotFoundError):
        try:
            os.link(aside, source, follow_symlinks=False)
        except FileExistsError:
            log.warning(
                "%s was replaced twice while it was moved; the earlier file is %s", source, aside
            )
            return False
        os.unlink(aside)
    return True


def name_set_aside(aside: Path, candidates: Iterable[str]) -> str | None:
    """The one of ``candidates`` (names the folder of ``aside`` may have held) that
    :func:`take_file` would set aside at ``aside``; None when none is."""
    for name in candidates:
        if (
            "/" not in name
            and name not in ("", ".", "..")
            and aside_of(aside.with_name(name)) == aside
        ):
            return name
    return None


def recover_aside(
    site: SiteStorage, aside: Path, source: Path, homes: Iterable[tuple[Path, Path]]
) -> str:
    """Finish with a file that a move interrupted by a crash left at ``aside`` (its name was
    ``source``); what was done, for the log. ``homes``: for each subdir it may belong to, the
    file the site publishes under its name and where the store keeps it.

    Its name free, it goes back under it, for the next move to take as any other. The name
    held by the same file (a second name) or the store holding its bytes, it is removed. The
    name taken since by another file (a new build), the move is finished when the site
    publishes exactly its bytes (the version the move was for; the new build replaces it in the
    store once published in turn). Otherwise it stays: nothing is written over or lost."""
    try:
        here = os.stat(source, follow_symlinks=False)
    except FileNotFoundError:
        if _put_back(aside, source):
            return f"put back as {source.name}"
        return f"left there: {source.name} was dropped again meanwhile"
    held = os.stat(aside, follow_symlinks=False)
    if (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino):
        os.unlink(aside)
        return f"removed: it is {source.name} too (a second name)"
    homes = list(homes)
    for _published, stored in homes:
        if same_files(aside, stored):
            os.unlink(aside)
            return f"removed: the store holds its bytes ({stored})"
    for published, stored in homes:
        if same_files(aside, published):

            def check(path: Path, published: Path = published) -> None:
                if not same_files(path, published):
                    raise OSError(errno.EIO, "the copy differs from the published file")

            identity = (held.st_size, held.st_mtime_ns, held.st_ino)
            take_file(site, aside, stored, check, identity, published)
            if not os.path.lexists(aside):
                return f"moved into the store ({stored}), as published"
    return f"left there: {source.name} is another file now, which the site does not publish yet"
