"""The channel rows of a run that ended before its merge stage was through (stopped by a signal,
or failed as a whole while fetching, indexing or merging): the run had read nothing into any
subdir, yet its record and pages say what it was to rebuild and what each subdir still serves,
as the rows of a run stopped after its merge do (see sitegen.sync.report_build)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import msgspec
import trio

from sitegen.conda.schema import RAW_DECODER
from sitegen.config import ChannelConfig
from sitegen.layout import REPODATA, kept_records_path
from sitegen.store.site import Site, UnsafePathError
from sitegen.sync.inputs import BuiltFrom, BuiltFromStore
from sitegen.sync.keep import still_kept
from sitegen.sync.merge import FROZEN
from sitegen.sync.report import NOT_REACHED, ChannelSubdirReport

# How long the rows may take to count: they are made as a stopped run ends (shielded from the
# stop), and counting a subdir the last clean run does not vouch for reads its repodata.json
# whole (hundreds of MB at conda-forge scale).
COUNT_SECONDS = 15.0
NOT_COUNTED = "the files it publishes were not counted in time"

Recorded = dict[tuple[str, str], tuple[int, int]]  # (channel, subdir) -> (packages, kept)


async def unreached_rows(
    site: Site, channels: Iterable[ChannelConfig], built_from: BuiltFromStore
) -> list[ChannelSubdirReport]:
    """A row for every subdir of ``channels``: not reached (frozen for a frozen channel, as
    the merge would have found it), with the files it goes on publishing and keeping. Those
    are counted in worker threads, COUNT_SECONDS at most; a subdir not counted by then says
    so."""
    subdirs = [(channel, subdir) for channel in channels for subdir in channel.subdirs]
    rows: list[ChannelSubdirReport] = []
    with trio.move_on_after(COUNT_SECONDS, shield=True):
        recorded = await trio.to_thread.run_sync(
            _recorded, site, built_from, abandon_on_cancel=True
        )
        for channel, subdir in subdirs:
            row = await trio.to_thread.run_sync(
                _row, site, channel, subdir, recorded, abandon_on_cancel=True
            )
            rows.append(row)
    for channel, subdir in subdirs[len(rows) :]:
        row = _row_of(channel, subdir, 0, 0)
        row.errors.append(NOT_COUNTED)
        rows.append(row)
    return rows


def _row_of(channel: ChannelConfig, subdir: str, packages: int, kept: int) -> ChannelSubdirReport:
    return ChannelSubdirReport(
        channel=channel.path,
        subdir=subdir,
        status=FROZEN if channel.frozen else NOT_REACHED,
        packages=packages,
        kept_files=kept,
    )


def _row(
    site: Site, channel: ChannelConfig, subdir: str, recorded: Recorded
) -> ChannelSubdirReport:
    known = recorded.get((channel.path, subdir))
    if known is not None:
        return _row_of(channel, subdir, *known)
    kept = len(still_kept(site, channel, subdir))
    return _row_of(channel, subdir, _published(site, channel.path, subdir), kept)


def _recorded(site: Site, built_from: BuiltFromStore) -> Recorded:
    """The counts of the last clean run over these channels, of each subdir whose
    ``repodata.json`` and kept records are still as it left them (see inputs.file_signature)."""
    built = built_from.load()
    if built is None:
        return {}
    recorded: Recorded = {}
    for row in built.channels:
        channel, subdir = row["channel"], row["subdir"]
        try:
            paths = (
                site.path(channel, subdir) / REPODATA,
                kept_records_path(site.root, channel, subdir),
            )
        except UnsafePathError:
            continue
        if all(_as_left(site, built, path) for path in paths):
            recorded[(channel, subdir)] = (row["packages"], row.get("kept_files", 0))
    return recorded


def _as_left(site: Site, built: BuiltFrom, path: Path) -> bool:
    """Whether the file at ``path`` is as the run that recorded ``built`` left it (or absent,
    as it was then)."""
    relative = path.relative_to(site.root).as_posix()
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return relative not in built.files
    except OSError:
        return False
    return built.files.get(relative) == [stat.st_size, stat.st_mtime_ns]


def _published(site: Site, channel: str, subdir: str) -> int:
    """How many files the subdir's repodata.json lists, counted without making records (at
    conda-forge scale, 800,000 of them); none when it has no readable one, as the merge counts
    a subdir it cannot read back."""
    try:
        document = RAW_DECODER.decode((site.path(channel, subdir) / REPODATA).read_bytes())
    except (OSError, UnsafePathError, msgspec.DecodeError):
        return 0
    return len(document.packages) + len(document.packages_conda)
