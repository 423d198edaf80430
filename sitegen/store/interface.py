"""What the rest of sitegen asks of the published tree: :class:`SiteStorage`.

The mirror run, the renderer, the pull-through fetcher and ``sitegen verify`` write the site
through these operations only, so that a second backend (object storage) can stand in for the
filesystem one, :class:`sitegen.store.site.Site`. Paths are the site's names for its files:
under :attr:`SiteStorage.root`, built with :meth:`SiteStorage.path`, never outside it.

The promises every backend keeps: a reader never sees a half-written file under a published
name; a package file is invisible until it is verified and committed; a file rewritten with the
same content keeps its modification time (its ETag); what :meth:`SiteStorage.sync` was given is
durable when it returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable


@runtime_checkable
class PendingWrite(Protocol):
    """A file being written for its target, invisible until committed; used as a context
    manager that discards it unless committed."""

    def __enter__(self) -> PendingWrite: ...

    def __exit__(self, *exc: object) -> None: ...

    def write(self, data: bytes | memoryview) -> None:
        """Append ``data``."""

    def write_at(self, buffers: Sequence[bytes], offset: int) -> None:
        """Write ``buffers`` one after the other from ``offset`` (parts in any order)."""

    def chunks(self, size: int = 1 << 20) -> Iterator[bytes]:
        """The bytes written so far, from the start (to verify them before the commit)."""

    def size(self) -> int:
        """How many bytes were written so far."""

    def sync(self) -> None:
        """Put the bytes written so far on disk."""

    def commit(self, durable: bool = False) -> None:
        """Publish the file under its target name, replacing what had it; ``durable``: on disk
        before it is named."""

    def discard(self) -> None:
        """Drop the file unless committed; safe to call more than once."""


@runtime_checkable
class SiteStorage(Protocol):
    """The published tree and the private state beside it (``.sitegen/``)."""

    root: Path

    @property
    def state_dir(self) -> Path:
        """Where the site keeps its private state."""

    def path(self, *parts: str) -> Path:
        """The name of ``parts`` joined under the root; raises UnsafePathError for anything
        that would leave it."""

    def ensure_dir(self, directory: Path) -> None: ...

    def write_bytes(self, target: Path, data: bytes, *, durable: bool = True) -> bool:
        """Replace ``target`` with ``data`` atomically unless it holds exactly that; True if
        written."""

    def write_addressed(self, folder: Path, name: str, data: bytes) -> bool:
        """Write a file named by a hash of its bytes as ``name`` in ``folder``, unflushed,
        unless it holds those bytes already; True if written."""

    def append(self, target: Path, pieces: Iterable[bytes | memoryview]) -> int:
        """Add ``pieces`` at the end of ``target`` (a file of the private state that only
        grows), never through a symlink; returns the offset of the first."""

    def write_many(self, items: list[tuple[Path, bytes | PendingWrite]]) -> list[Path]:
        """Write every file first, then publish them one after the other in the given order;
        returns those that changed. A failure while writing leaves every target as it was.
        A :class:`PendingWrite` given (a file written as a stream, e.g. ``repodata.json``) is
        committed or discarded here."""

    def pending(self, target: Path) -> PendingWrite:
        """A new, empty file that becomes ``target`` once committed."""

    def pending_unless_same(self, target: Path, pieces: Iterable[bytes]) -> PendingWrite | None:
        """A pending file for ``target`` with the bytes of ``pieces``, made once; None when
        ``target`` holds exactly those bytes already."""

    def temp_for(self, target: Path) -> Path:
        """A fresh temporary name beside ``target``, never served, removed if its writer dies."""

    def staging_for(self, target: Path) -> Path:
        """A temporary name where a replacement for ``target`` waits for its turn."""

    def commit(self, temp: Path, target: Path) -> None:
        """Give the temporary ``temp`` the name ``target``, atomically."""

    def discard(self, temp: Path) -> None:
        """Drop a temporary; nothing happens when it is gone already."""

    def remove(self, target: Path) -> bool:
        """Unpublish ``target``; False when there was nothing to remove."""

    def remove_empty_dirs(self, directory: Path, stop: Path) -> None:
        """Remove ``directory`` and then its parents, strictly below ``stop``, while they are
        empty; never one that holds anything."""

    def sync(self, directories: Iterable[Path]) -> None:
        """Make what was written into ``directories`` durable (before metadata names it)."""

    def clean_temp_files(self, directory: Path) -> int:
        """Remove temporaries of dead writers from ``directory``; returns how many."""

    def clean_temp_tree(self) -> int:
        """Remove temporaries of dead writers anywhere in the site; returns how many."""
