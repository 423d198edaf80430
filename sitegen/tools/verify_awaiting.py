"""``sitegen verify`` over the package files a run put in a subdir but has not published yet.

A run downloads each file straight to its name in the subdir, verified against upstream's
record, and links (or copies) each file of a local source's folder there, verified against the
record the folder's index gave it; it lists them in ``repodata.json`` only once all of the
subdir's files are in. A run stopped (or killed, or failed) before that leaves them there, and
the next run reuses every one that still matches its record instead of fetching or linking it
again. Such a file is no debris: the record it was verified against is in what the run kept of
one of the channel's mirrors, the copy of upstream's repodata (see
:mod:`sitegen.net.upstream_cache`), or the index of a local source's folder and of its store
(see :mod:`sitegen.sync.local_index`). A file that matches that record is counted as awaiting
publication and left for the next run (which publishes it, or prunes it once it publishes
without it); one that does not (other bytes, or a name no mirror of the channel lists) stays
``extra``, which ``--repair`` removes.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import msgspec

from sitegen.conda.records import Record
from sitegen.conda.schema import CONDA_SUFFIX, RAW_DECODER, FileEntry
from sitegen.config import ChannelConfig, MirrorConfig
from sitegen.layout import (
    is_package_file,
    local_index_path,
    local_store_index_path,
    local_store_path,
    package_file_path,
)
from sitegen.net.failures import UpstreamError
from sitegen.net.upstream_cache import HIDDEN, UpstreamCache
from sitegen.net.upstream_secrets import UpstreamSecrets
from sitegen.net.zstd_body import decode_body
from sitegen.store.interface import SiteStorage
from sitegen.sync.keep import read_kept
from sitegen.sync.local import is_local, read_or_none
from sitegen.sync.local_index import CacheEntry, decode_cache
from sitegen.tools.verify_sample import Checked

_ENTRY_DECODER = msgspec.json.Decoder(FileEntry)


def extra_files(
    site: SiteStorage,
    channel: ChannelConfig,
    subdir: str,
    listed: Collection[str],
    checked: Checked,
) -> list[tuple[str, str, str]]:
    """The package files (or links) of a subdir that neither ``listed`` (its repodata.json),
    its kept records, upstream's nor a local source's index (a file a run downloaded or linked
    in and has not published yet: :func:`awaiting_files`) vouch for: the web server serves
    them all the same (a run prunes them after publishing). Kept records that cannot be read
    leave them unjudged: kept_problems reports those. As (site-relative path, kind, what is
    wrong), as :class:`sitegen.tools.verify.Problem` takes them."""
    kept = read_kept(site.root, channel.path, subdir)
    if kept is None:
        return []
    directory = site.path(channel.path, subdir)
    links, files = [], []
    with os.scandir(directory) as entries:
        for entry in entries:
            name = entry.name
            if not is_package_file(name) or name in listed or name in kept:
                continue
            if entry.is_symlink():
                links.append(name)  # a run never leaves one
            elif entry.is_file(follow_symlinks=False):
                files.append(name)
    awaiting = awaiting_files(site, channel, subdir, files, checked)
    why = "served, but no record (of repodata.json, kept, upstream's or indexed) vouches for it"
    return [
        (package_file_path(channel.path, subdir, name), "extra", why)
        for name in sorted(links + [name for name in files if name not in awaiting])
    ]


def awaiting_files(
    site: SiteStorage,
    channel: ChannelConfig,
    subdir: str,
    names: Iterable[str],
    checked: Checked,
) -> set[str]:
    """Of ``names`` (regular files of the subdir that no published or kept record names), those
    matching the record of a mirror's upstream repodata a run keeps; each of them counted into
    ``checked`` (hashed, or by size outside its sample)."""
    names = sorted(names)
    if not names:
        return set()
    directory = site.path(channel.path, subdir)
    found: set[str] = set()
    cache = UpstreamCache(site)
    for mirror in channel.mirrors:
        if not names:
            break
        if is_local(mirror):
            records = _indexed_records(site, mirror, subdir, names)
        else:
            hidden = cache.hidden_form(mirror.name, subdir) == HIDDEN
            secrets = UpstreamSecrets.of(mirror) if hidden else None
            records = _upstream_records(cache, mirror.name, subdir, names, secrets)
        for fn, record in records.items():
            relative = package_file_path(channel.path, subdir, fn)
            if checked.matches(directory / fn, relative, record, kept=False):
                checked.awaiting += 1
                found.add(fn)
        names = [fn for fn in names if fn not in found]
    return found


def _upstream_records(
    cache: UpstreamCache,
    mirror: str,
    subdir: str,
    names: Iterable[str],
    secrets: UpstreamSecrets | None,
) -> Mapping[str, Record]:
    """The records of ``names`` in the copy kept of ``mirror``'s repodata of ``subdir`` (none
    without a copy, or of one that cannot be read); ``secrets``: the copy holds the mirror's
    secrets as their references, and upstream's own text that reads as one escaped, so a name
    is looked up as the copy writes it."""
    validators = cache.validators(mirror, subdir)
    body = cache.body(mirror, subdir)
    if validators is None or body is None:
        return {}
    try:
        document = RAW_DECODER.decode(decode_body(validators.variant, body))
    except (UpstreamError, msgspec.DecodeError):
        return {}
    del body
    records = {}
    for fn in names:
        key = fn if secrets is None else secrets.hide_text(fn)
        section = document.packages_conda if fn.endswith(CONDA_SUFFIX) else document.packages
        raw = section.get(key)
        if raw is None:
            continue
        try:
            entry = _ENTRY_DECODER.decode(raw)
        except msgspec.DecodeError:  # an unsound record vouches for nothing
            continue
        fields = {"size": entry.size, "sha256": entry.sha256, "md5": entry.md5}
        records[fn] = Record(fn, subdir, {k: v for k, v in fields.items() if v is not None})
    return records


def _indexed_records(
    site: SiteStorage, mirror: MirrorConfig, subdir: str, names: Iterable[str]
) -> Mapping[str, Record]:
    """The records of ``names`` in the index a run keeps of a local source's folder, and of
    its store (none without one, or of one that cannot be read): each the record a run links
    that name of ``subdir`` by, as it builds them (see build_index and overlay): the folder's
    top-level file, then its ``<subdir>/`` one, then the store's."""
    if subdir not in mirror.subdirs:
        return {}
    caches = [decode_cache(read_or_none(local_index_path(site.root, mirror.name)))]
    if local_store_path(site.root, mirror.name).is_dir():  # indexed beside the folder
        caches.append(decode_cache(read_or_none(local_store_index_path(site.root, mirror.name))))
    records = {}
    for fn in names:
        for cache in caches:
            raw = _indexed_raw(cache, fn, subdir)
            if raw is not None:
                records[fn] = Record(fn, subdir, raw)
                break
    return records


def _indexed_raw(cache: Mapping[str, CacheEntry], fn: str, subdir: str) -> dict[str, Any] | None:
    """The record of one directory's index that ``fn`` of ``subdir`` is linked by, if any."""
    for relpath in (fn, f"{subdir}/{fn}"):
        entry = cache.get(relpath)
        if entry is not None and entry.record is not None and entry.record["subdir"] == subdir:
            return entry.record
    return None
