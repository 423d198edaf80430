"""A channel's own files, beside its subdirs: ``channeldata.json`` and CEP-6 ``notices.json``."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from sitegen.conda.channeldata import build_channeldata
from sitegen.conda.notices import NOTICES_FILE, encode_notices
from sitegen.conda.records import Record
from sitegen.conda.run_exports import RunExportsError, parse_run_exports
from sitegen.config import ChannelConfig
from sitegen.layout import RUN_EXPORTS, channeldata_path, notices_path
from sitegen.store.compare import NotAFileError, read_regular
from sitegen.store.site import Site
from sitegen.sync.merge import FROZEN, MergedSubdir

if TYPE_CHECKING:
    from sitegen.sync.subdir_metadata import SubdirMetadata

log = logging.getLogger("sitegen")


def write_json(site: Site, relative: str, document: Any) -> bool:
    """Write a small JSON document (e.g. channeldata.json) if its content changed."""
    parts = relative.split("/")
    return site.write_bytes(site.path(*parts), msgspec.json.encode(document))


def write_notices(site: Site, channel: ChannelConfig) -> str | None:
    """Publish the channel's active notices as its notices.json (CEP-6), or remove the file
    when none is active; the error, if any."""
    target = site.path(*notices_path(channel.path).split("/"))
    try:
        body = encode_notices(channel.notices, datetime.now(UTC), published_notices(target))
        if body is None:
            site.remove(target)
        else:
            site.ensure_dir(target.parent)
            site.write_bytes(target, body)
    except OSError as exc:
        log.error("%s: could not write %s: %s", channel.path, NOTICES_FILE, exc)
        return f"{channel.path}: could not write {NOTICES_FILE}: {exc.strerror or exc}"
    return None


def published_notices(target: Path) -> bytes | None:
    """The notices.json published at ``target``, or None when there is none (nothing there,
    or no file: a named pipe is written over, never read)."""
    try:
        return read_regular(target)
    except (FileNotFoundError, NotAFileError):
        return None


def published_run_exports(directory: Path) -> dict[str, bytes]:
    """The entries of the ``run_exports.json`` published in a subdir ``directory``; none when
    there is none or it cannot be read (its sound entries when some are not)."""
    try:
        return parse_run_exports((directory / RUN_EXPORTS).read_bytes()).entries
    except (OSError, RunExportsError):
        return {}


@dataclass
class ChannelContents:
    """What a run leaves published in each subdir of a channel, for its channeldata.json."""

    records: dict[str, dict[str, Record]] = field(default_factory=dict)
    # The run_exports known of them.
    exports: dict[str, Mapping[str, bytes]] = field(default_factory=dict)
    # The records grouped by name, of the subdirs this run published (made for their shards).
    names: dict[str, Mapping[str, list[Record]]] = field(default_factory=dict)


def channel_contents(
    site: Site,
    channel_path: str,
    merged_all: Sequence[MergedSubdir],
    to_publish: Mapping[tuple[str, str], SubdirMetadata],
) -> ChannelContents:
    """What a run leaves published in each subdir of a channel (see ChannelContents)."""
    contents = ChannelContents()
    for merged in merged_all:
        if merged.channel != channel_path:
            continue
        meta = to_publish.get(merged.key)
        if meta is not None:  # even when publishing it failed, as ever
            contents.records[merged.subdir] = meta.records
            contents.exports[merged.subdir] = meta.run_exports or {}
            contents.names[merged.subdir] = meta.names()
        elif merged.previous is not None:
            # Kept as published, with the run_exports.json published beside it.
            contents.records[merged.subdir] = merged.previous.records
            directory = site.path(channel_path, merged.subdir)
            contents.exports[merged.subdir] = published_run_exports(directory)
    return contents


def write_channeldata(site: Site, channel_path: str, contents: ChannelContents) -> str | None:
    """Write a channel's channeldata.json from its subdirs' records and the run_exports known
    of them (see channel_contents); the error, if any."""
    if not contents.records:
        return None
    try:
        document = build_channeldata(contents.records, contents.exports, contents.names)
        write_json(site, channeldata_path(channel_path), document)
    except OSError as exc:
        log.error("%s: could not write channeldata.json: %s", channel_path, exc)
        return f"{channel_path}: could not write channeldata.json: {exc.strerror or exc}"
    return None


def write_channel_files(
    site: Site,
    channels: Sequence[ChannelConfig],
    merged_all: Sequence[MergedSubdir],
    to_publish: Mapping[tuple[str, str], SubdirMetadata],
) -> list[str]:
    """Each channel's channeldata.json and notices.json, but a frozen one's; their errors. In a
    worker thread: a large channel's run_exports.json and channeldata.json take seconds."""
    errors = []
    frozen = {m.channel for m in merged_all if m.status == FROZEN}
    for channel in channels:
        if channel.path in frozen:
            continue  # its channeldata.json stays as published, too
        contents = channel_contents(site, channel.path, merged_all, to_publish)
        for error in (
            write_channeldata(site, channel.path, contents),
            write_notices(site, channel),
        ):
            if error is not None:
                errors.append(error)
    return errors
