"""What goes into one published subdir's metadata (:class:`SubdirMetadata`), made in pieces as
the publishing stage asks for them: ``repodata.json``, ``current_repodata.json`` and CEP-12
``run_exports.json``. Built by the merge and prepare stages, published by :mod:`.publish`."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sitegen.conda.current_repodata import current_records
from sitegen.conda.encode import PieceMap, repodata_pieces
from sitegen.conda.records import Record, names_of
from sitegen.conda.run_exports import encode_run_exports
from sitegen.conda.version import RecordMatcher
from sitegen.layout import RUN_EXPORTS_FILES
from sitegen.store.interface import PendingWrite
from sitegen.sync.metadata_compress import zstd_compress


@dataclass
class SubdirMetadata:
    """Everything that goes into one published subdir's metadata."""

    subdir: str
    records: dict[str, Record]
    info: dict[str, Any] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    # The names whose records differ from those published (see sync.prepare.
    # find_changed_names): publish_subdir builds their shards, and keeps the published ones of
    # the others that are whole on disk; None: it builds every shard.
    changed_names: set[str] | None = None
    # CEP-12: file name -> its run_exports as published (see sitegen.conda.run_exports), of
    # which those of ``records`` are published; None: no run_exports.json.
    run_exports: Mapping[str, bytes] | None = None
    # ``records`` grouped by name, made when first asked for (see names).
    _names: dict[str, list[Record]] | None = field(default=None, init=False, repr=False)
    _names_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def names(self) -> dict[str, list[Record]]:
        """``records`` grouped by package name (see sitegen.conda.records.names_of): made once
        for the shards, current_repodata.json and channeldata.json, which all judge the
        records a name at a time (references, not copies: ~10 MB at 800,000 records)."""
        with self._names_lock:  # the shards' and current_repodata's threads ask at once
            if self._names is None:
                self._names = names_of(self.records)
            return self._names

    def pieces(self, where: PieceMap | None = None) -> Iterator[bytes]:
        """repodata.json (see sitegen.conda.encode), a few MB at a time (made as they are
        asked for: never the whole of it in memory); ``where`` gets where its parts lie."""
        return repodata_pieces(
            self.subdir, self.info, self.records, self.removed, self.extra, where
        )

    def current_pieces(self) -> Iterator[bytes]:
        """current_repodata.json (see sitegen.conda.current_repodata), likewise (~60 MB at
        conda-forge scale, made while the .zst of repodata.json is compressed); its records
        are chosen when the first piece is asked for."""
        current = current_records(self.records, RecordMatcher(remember=False), self.names())
        yield from repodata_pieces(self.subdir, self.info, current, self.removed, self.extra)

    def encode_current(self) -> bytes:
        return b"".join(self.current_pieces())

    def run_exports_files(self) -> dict[str, bytes]:
        """``run_exports.json.zst`` and ``run_exports.json``, in that order; none when there
        is no run_exports.json to publish."""
        if self.run_exports is None:
            return {}
        body = encode_run_exports(self.subdir, self.run_exports, self.records)
        return {RUN_EXPORTS_FILES[1]: zstd_compress(body), RUN_EXPORTS_FILES[0]: body}


def write_pieces(pieces: Iterable[bytes], out: PendingWrite) -> None:
    """Each piece into ``out``, as it is made."""
    for piece in pieces:
        out.write(piece)


def empty_metadata(subdir: str) -> SubdirMetadata:
    return SubdirMetadata(subdir=subdir, records={}, extra={"repodata_version": 1})
