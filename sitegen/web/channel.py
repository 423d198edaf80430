"""The channel page: counts per subdir (kept in the manifest for the landing page) and the
package list."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sitegen.conda.notices import active_notices
from sitegen.conda.records import Record
from sitegen.config import ChannelConfig
from sitegen.layout import package_page_path, search_index_path
from sitegen.web.published import values


@dataclass
class SubdirSummary:
    subdir: str
    files: int = 0
    packages: int = 0  # distinct names
    size: int = 0
    conda: int = 0
    tar_bz2: int = 0
    newest_ms: int = 0
    stored: int | None = None  # files stored, where a passive mirror fetches them on request

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ChannelSummary:
    """Counts of one channel, kept in the render manifest for the landing page."""

    path: str
    files: int = 0
    packages: int = 0
    size: int = 0
    newest_ms: int = 0
    subdirs: list[SubdirSummary] = field(default_factory=list)
    stored: int | None = None  # files stored, where a passive mirror fetches them on request

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "subdirs": [s.to_json() for s in self.subdirs]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChannelSummary:
        subdirs = [SubdirSummary(**s) for s in data.get("subdirs", [])]
        return cls(**{**data, "subdirs": subdirs})


def summarize_channel(
    path: str, subdirs: Mapping[str, Mapping[str, Record] | Iterable[Any]]
) -> ChannelSummary:
    """Counts per subdir and for the channel; records as :func:`group_by_name` takes them."""
    summary = ChannelSummary(path=path)
    names: set[str] = set()
    for subdir, records in subdirs.items():
        row = SubdirSummary(subdir=subdir)
        subdir_names: set[str] = set()
        files = size = conda = newest_ms = 0
        for record in values(records):
            files += 1
            size += record.size
            if record.fn.endswith(".conda"):
                conda += 1
            ms = record.timestamp_ms
            if ms > newest_ms:
                newest_ms = ms
            subdir_names.add(record.name)
        row.files, row.size, row.conda, row.tar_bz2 = files, size, conda, files - conda
        row.newest_ms = newest_ms
        row.packages = len(subdir_names)
        names |= subdir_names
        summary.files += row.files
        summary.size += row.size
        summary.newest_ms = max(summary.newest_ms, row.newest_ms)
        summary.subdirs.append(row)
    summary.packages = len(names)
    return summary


def channel_model(
    channel: ChannelConfig,
    summary: ChannelSummary,
    rows: list[dict[str, Any]],
    now: datetime | None = None,
) -> dict[str, Any]:
    active = active_notices(channel.notices, now or datetime.now(UTC))
    return {
        "path": channel.path,
        # CEP-6 notices, as conda shows them: the ones not yet expired.
        "notices": [{"level": n.level, "message": n.message, "created": n.created} for n in active],
        "summary": summary.to_json(),
        "mirrors": [
            {"name": m.name, "source": m.display_url(), "subdirs": list(m.subdirs)}
            for m in channel.mirrors
        ],
        "packages": [{**row, "page": package_page_path(channel.path, row["name"])} for row in rows],
        "search_index": search_index_path(channel.path),
    }
