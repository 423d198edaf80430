"""The channel rows of a run that ended before its merge stage was through (stopped by a signal,
or failed as a whole while fetching, indexing or merging): the run had read nothing into any
subdir, yet its record and pages say what it was to rebuild and what each subdir still serves,
as the rows of a run stopped after its merge do (see sitegen.sync.report_build)."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from sitegen.conda.schema import RAW_DECODER
from sitegen.config import ChannelConfig
from sitegen.layout import REPODATA
from sitegen.store.site import Site, UnsafePathError
from sitegen.sync.keep import still_kept
from sitegen.sync.merge import FROZEN
from sitegen.sync.report import NOT_REACHED, ChannelSubdirReport


def unreached_rows(site: Site, channels: Iterable[ChannelConfig]) -> list[ChannelSubdirReport]:
    """A row for every subdir of ``channels``: not reached (frozen for a frozen channel, as
    the merge would have found it), with the files it goes on publishing and keeping."""
    rows = []
    for channel in channels:
        for subdir in channel.subdirs:
            rows.append(
                ChannelSubdirReport(
                    channel=channel.path,
                    subdir=subdir,
                    status=FROZEN if channel.frozen else NOT_REACHED,
                    packages=_published(site, channel.path, subdir),
                    kept_files=len(still_kept(site, channel, subdir)),
                )
            )
    return rows


def _published(site: Site, channel: str, subdir: str) -> int:
    """How many files the subdir's repodata.json lists, counted without making records (at
    conda-forge scale, 800,000 of them); none when it has no readable one, as the merge counts
    a subdir it cannot read back."""
    try:
        document = RAW_DECODER.decode((site.path(channel, subdir) / REPODATA).read_bytes())
    except (OSError, UnsafePathError, msgspec.DecodeError):
        return 0
    return len(document.packages) + len(document.packages_conda)
