"""A channel's own files, beside its subdirs: ``channeldata.json`` and CEP-6 ``notices.json``."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from sitegen.conda.channeldata import build_channeldata
from sitegen.conda.notices import NOTICES_FILE, encode_notices
from sitegen.conda.records import Record
from sitegen.config import ChannelConfig
from sitegen.layout import channeldata_path, notices_path
from sitegen.store.compare import NotAFileError, read_regular
from sitegen.store.site import Site

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


def write_channeldata(
    site: Site, channel_path: str, published: dict[str, dict[str, Record]]
) -> str | None:
    """Write a channel's channeldata.json from its subdirs' records; the error, if any."""
    if not published:
        return None
    try:
        write_json(site, channeldata_path(channel_path), build_channeldata(published))
    except OSError as exc:
        log.error("%s: could not write channeldata.json: %s", channel_path, exc)
        return f"{channel_path}: could not write channeldata.json: {exc.strerror or exc}"
    return None
