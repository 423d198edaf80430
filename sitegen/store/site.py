"""The filesystem implementation of :class:`sitegen.store.interface.SiteStorage`: the only
module that writes into the site directory.

Every write goes to a temporary name in the destination directory and is renamed into place
(atomic on POSIX), so a reader never sees a half-written file under a published name. A file
whose content did not change is left alone, keeping its mtime and therefore its ETag. Package
files are written as :class:`sitegen.store.pending.PendingFile`: nameless until verified, where
the filesystem allows.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import secrets
import shutil
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

from sitegen import layout
from sitegen.config.model import LINK_LOOP, real_path
from sitegen.store.compare import (
    NotAFileError,
    copy_prefix,
    matching_prefix,
    open_regular,
    same_content,
    same_file_content,
)
from sitegen.store.give import give_back_file
from sitegen.store.interface import PendingWrite
from sitegen.store.pending import PendingFile, directory_fd, link_fd
from sitegen.store.take import NO_LINK, take_file
from sitegen.store.temp_names import NO_TMPFILE, TEMP_PREFIX, short_name, temp_writer_alive


# A hard link fails, where a copy works, across filesystems, without link support, at the link
# limit, or where the kernel forbids linking files the process does not own.
class UnsafePathError(ValueError):
    """A path that would land outside the site directory."""


class Site:
    """The output directory; all paths handed out are checked to stay inside it."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        # Whether files can be created without a name (O_TMPFILE) and named later through
        # /proc; found out on first use.
        self.unnamed_files: bool | None = None

    def path(self, *parts: str) -> Path:
        """Join parts under the root, refusing anything that escapes it (a link out of the
        site, or a loop of links)."""
        for part in parts:
            for segment in part.split("/"):
                if segment in ("", ".", "..") or "\\" in segment or "\x00" in segment:
                    raise UnsafePathError(f"unsafe path segment {segment!r} in {part!r}")
        candidate = self.root.joinpath(*parts)
        resolved = real_path(candidate)
        root = self.root.resolve()
        if resolved is None:  # refused as a link out is: what it leads to is nowhere
            raise UnsafePathError(f"{candidate} cannot be resolved: {LINK_LOOP}")
        if resolved != root and root not in resolved.parents:
            raise UnsafePathError(f"{candidate} resolves outside {root}")
        return candidate

    @property
    def state_dir(self) -> Path:
        return layout.state_dir(self.root)

    def ensure_dir(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)

    def temp_for(self, target: Path) -> Path:
        """A fresh temporary name beside target; never a published name."""
        self.ensure_dir(target.parent)
        name = short_name(target.name)
        return target.parent / f"{TEMP_PREFIX}{os.getpid()}-{name}.{secrets.token_hex(4)}"

    def pending(self, target: Path) -> PendingFile:
        """A new, empty file that will become ``target`` once committed (see PendingFile)."""
        if self.unnamed_files is None:
            self.ensure_dir(target.parent)
            self.unnamed_files = _can_link_unnamed(target.parent)
        if not self.unnamed_files:
            return PendingFile.named(self, target)
        try:
            try:
                return PendingFile.unnamed(self, target)
            except FileNotFoundError:  # the first file of its directory
                self.ensure_dir(target.parent)
                return PendingFile.unnamed(self, target)
        except OSError as exc:
            # Another filesystem mounted below the site may lack O_TMPFILE.
            if exc.errno not in NO_TMPFILE:
                raise
        return PendingFile.named(self, target)

    def commit(self, temp: Path, target: Path) -> None:
        os.replace(temp, target)

    def discard(self, temp: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()

    def sync(self, directories: Iterable[Path]) -> None:
        """Put what was written into ``directories`` on disk, one flush per filesystem.

        Package files are not fsynced one by one (on a spinning disk each would cost a seek).
        A mirror run calls this once, after its downloads and before it publishes the repodata
        that names them, so that a power cut cannot leave published metadata naming a file
        whose bytes never reached the disk. syncfs(2) flushes one filesystem; where the C
        library lacks it, sync(2) flushes them all.
        """
        flushed: set[int] = set()
        for directory in directories:
            with directory_fd(directory) as fd:
                device = os.fstat(fd).st_dev
                if device not in flushed:
                    flushed.add(device)
                    _flush_filesystem(fd, directory)

    def write_bytes(self, target: Path, data: bytes, *, durable: bool = True) -> bool:
        """Atomically write data to target unless it already holds exactly that; True if written.

        ``durable=False`` skips the fsync, for files that are rebuilt from others anyway (pages):
        the rename is still atomic, only a power cut may lose the newest version.
        """
        if same_content(target, data):
            return False
        temp = self.temp_for(target)
        try:
            with open(temp, "wb") as handle:
                handle.write(data)
                if durable:
                    handle.flush()
                    os.fsync(handle.fileno())
            self.commit(temp, target)
        except BaseException:
            self.discard(temp)
            raise
        return True

    def write_addressed(self, folder: Path, name: str, data: bytes) -> bool:
        """Write a file named by a hash of its bytes (a CEP-16 shard) as ``name`` in
        ``folder`` unless it holds those bytes already; True if written. Not flushed: the
        caller syncs the directory before anything names the file. A new file is written
        under its own name, with no temporary and rename (a first run at conda-forge scale
        writes ~34,000, where a Path and a file object apiece cost ~1 s): nothing names it
        before it is complete. One there already is compared byte for byte (a write cut
        short, or other bytes of that size), replaced atomically if it differs."""
        target = f"{os.fspath(folder)}/{name}"
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except FileExistsError:
            return self.write_bytes(folder / name, data, durable=False)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(target)
            raise
        finally:
            os.close(fd)
        return True

    def append(self, target: Path, pieces: Iterable[bytes | memoryview]) -> int:
        """Add ``pieces`` at the end of ``target`` in place, unflushed (a file of the private
        state that only grows: a listing cache's rows); returns the offset of the first.

        The one write that is not a rename, so it checks what a rename need not: a target
        outside the site is refused (:class:`UnsafePathError`), and so (OSError) is one that is
        a symlink or no regular file, where a rename would have replaced it, not written
        through it."""
        if self.root not in target.parents or ".." in target.parts:
            raise UnsafePathError(f"{target} is not a file of {self.root}")
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
        with open(os.open(target, flags | os.O_CLOEXEC, 0o666), "ab") as handle:
            status = os.fstat(handle.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise OSError(errno.EINVAL, "not a regular file", str(target))
            for piece in pieces:
                handle.write(piece)
        return status.st_size

    def write_many(self, items: list[tuple[Path, bytes | PendingWrite]]) -> list[Path]:
        """Write several files as nearly at once as POSIX allows; returns those written.

        Every file whose content changes is first written in full to a pending file (synced);
        only when all are written are they committed, in the given order. So a failure while
        writing (a full disk) leaves every target as it was, and the commits follow each other
        within microseconds. A :class:`PendingWrite` given (a file too large to hold, written
        as it was made) is one of them, or discarded when the target holds its bytes already.
        """
        staged: list[tuple[PendingWrite, Path]] = []
        try:
            for target, data in items:
                if isinstance(data, bytes):
                    if same_content(target, data):
                        continue
                    staged.append((self.pending(target), target))
                    staged[-1][0].write(data)
                elif same_file_content(target, data):
                    data.discard()
                    continue
                else:
                    staged.append((data, target))
                staged[-1][0].sync()
            for pending, _target in staged:
                pending.commit()
        except BaseException:
            for pending, _target in staged:
                pending.discard()
            for _target, data in items:  # given but not reached (committed ones: no-op)
                if not isinstance(data, bytes):
                    data.discard()
            raise
        return [target for _pending, target in staged]

    def pending_unless_same(self, target: Path, pieces: Iterable[bytes]) -> PendingWrite | None:
        """A pending file for ``target`` holding the bytes of ``pieces`` one after the other,
        or None when ``target`` holds exactly those bytes already. The pieces are made once,
        and compared only as far as they match: the part that matched is then copied from
        ``target`` (a 400 MB ``repodata.json`` is neither held nor encoded twice)."""
        pieces = iter(pieces)
        with contextlib.ExitStack() as stack:
            try:
                handle = stack.enter_context(open_regular(target))
            except (FileNotFoundError, NotAFileError):  # nothing to keep: it is replaced
                handle = None
            matched, first = 0, b""
            if handle is not None:
                matched, first = matching_prefix(handle, pieces)
                if first is None:
                    return None
            out = self.pending(target)
            try:
                if handle is not None and matched:
                    # From the file just compared (the same version of it, whatever the name
                    # holds meanwhile).
                    copy_prefix(handle, matched, out)
                out.write(first or b"")
                for piece in pieces:
                    out.write(piece)
            except BaseException:
                out.discard()
                raise
            return out

    def clean_temp_tree(self) -> int:
        """Remove dead processes' temporaries anywhere in the site; returns how many."""
        removed = 0
        for directory, _dirs, files in os.walk(self.root):
            for name in files:
                if name.startswith(TEMP_PREFIX) and not temp_writer_alive(name):
                    self.discard(Path(directory) / name)
                    removed += 1
        return removed

    def staging_for(self, target: Path) -> Path:
        """A temporary name where a replacement for a published file waits for its turn."""
        return target.parent / f"{TEMP_PREFIX}{os.getpid()}-staged-{short_name(target.name)}"

    def remove(self, target: Path) -> bool:
        try:
            target.unlink()
        except FileNotFoundError:
            return False
        return True

    def remove_empty_dirs(self, directory: Path, stop: Path) -> None:
        """Remove ``directory`` and then its parents, strictly below ``stop``, while they are
        empty."""
        while stop in directory.parents:
            try:
                directory.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                return  # not empty (a nested channel's, another subdir's): kept
            directory = directory.parent

    def adopt(
        self, source: Path, target: Path, check: Callable[[Path], object], link: bool = True
    ) -> None:
        """Publish ``source`` (outside the site, left as it is) as ``target``: hard-linked on
        the same filesystem (unless ``link`` is false), else copied; ``check`` vets it
        (raising) before it is named."""
        temp = self.temp_for(target)
        try:
            try:
                if not link:
                    raise OSError(errno.EXDEV, "a copy is wanted")
                os.link(source, temp, follow_symlinks=False)
            except OSError as exc:
                if exc.errno not in NO_LINK:
                    raise
                shutil.copyfile(source, temp, follow_symlinks=False)
            # A symlink swapped in is linked as one, read through by ``check``: never served.
            if not stat.S_ISREG(os.lstat(temp).st_mode):
                raise OSError(errno.EINVAL, "not a regular file", str(source))
            check(temp)
            self.commit(temp, target)
        except BaseException:
            self.discard(temp)
            raise

    def take(
        self,
        source: Path,
        target: Path,
        check: Callable[[Path], object],
        identity: tuple[int, int, int],
        same_bytes: Path | None = None,
    ) -> None:
        """Move ``source`` (outside the site) to ``target``: vetted by ``check`` and renamed
        on the same filesystem, else copied, the copy vetted, synced and named before
        ``source`` is removed, so a failure at any point leaves the file in one place at least. ``identity``: the (size,
        mtime_ns, inode) of the version of ``source`` that ``check`` accepts; a source replaced
        since stays where it is, for the next run. ``same_bytes``: a file of the site with that
        content, hard-linked instead of copying ``source`` again."""
        take_file(self, source, target, check, identity, same_bytes)

    def give_back(self, source: Path, target: Path) -> bool:
        """Move ``source`` (a file of the site) out to ``target`` (outside it): hard-linked on
        the same filesystem, else copied, synced and compared; named without ever replacing a
        file there (:class:`FileExistsError` when another file holds the name); ``source``
        removed only then. False when ``target`` held its bytes already (an earlier attempt
        stopped midway): ``source`` is removed all the same."""
        return give_back_file(source, target)

    def clean_temp_files(self, directory: Path) -> int:
        """Remove temporaries left by processes that died; returns how many.

        Temporary names carry their writer's pid, so files another live process (the passive
        fetcher) is still writing are left alone.
        """
        removed = 0
        if not directory.is_dir():
            return 0
        with os.scandir(directory) as entries:
            for entry in entries:
                if not entry.name.startswith(TEMP_PREFIX) or not entry.is_file(
                    follow_symlinks=False
                ):
                    continue
                if temp_writer_alive(entry.name):
                    continue
                self.discard(Path(entry.path))
                removed += 1
        return removed


def _flush_filesystem(fd: int, where: Path) -> None:
    syncfs = libc_syncfs()
    if syncfs is None:
        os.sync()
    elif syncfs(fd) != 0:  # a failed writeback (EIO, ENOSPC): those bytes are not on disk
        code = ctypes.get_errno()
        raise OSError(code, f"flushing to disk failed: {os.strerror(code)}", str(where))


@functools.cache
def libc_syncfs() -> Callable[[int], int] | None:
    """The C library's syncfs(2), setting errno on failure; None where it has none."""
    try:
        return ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None


def _can_link_unnamed(directory: Path) -> bool:
    """Whether a nameless file created in ``directory`` can be named there: the filesystem
    supports O_TMPFILE, /proc is mounted and linking through it is allowed."""
    if not hasattr(os, "O_TMPFILE"):
        return False
    probe = directory / f"{TEMP_PREFIX}{os.getpid()}-probe.{secrets.token_hex(4)}"
    try:
        fd = os.open(directory, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno in NO_TMPFILE:
            return False
        raise  # out of file descriptors, no permission...: a real error, not an answer
    try:
        link_fd(fd, probe)
    except OSError:  # /proc missing, or linking through it refused
        return False
    finally:
        os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        probe.unlink()
    return True
