"""The private state of a site, under ``.sitegen/`` (never served): its paths are built under
a site root given as a :class:`~pathlib.Path`."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import quote, unquote

# Where a site keeps its private state (never served: the web server configs deny dot-names).
STATE_DIR = ".sitegen"


def state_dir(root: Path) -> Path:
    return root / STATE_DIR


LOCK_NAME = "lock"  # one run at a time per site: the advisory lock file, in the state dir


def upstream_cache_dir(root: Path, mirror: str, subdir: str) -> Path:
    """Upstream repodata last seen for one mirror subdir, with its HTTP validators."""
    return state_dir(root) / "upstream" / mirror / subdir


def upstream_run_exports_dir(root: Path, mirror: str, subdir: str) -> Path:
    """Upstream's run_exports.json last seen for one mirror subdir, with its validators
    (inside the subdir's repodata cache: it goes with it)."""
    return upstream_cache_dir(root, mirror, subdir) / "run-exports"


def upstream_validators_path(cache_dir: Path) -> Path:
    """What a cache of an upstream document (either folder above) keeps of it beside its body:
    which variant the body is and its HTTP validators, or that upstream served none."""
    return cache_dir / "validators.json"


def progress_path(root: Path) -> Path:
    """How far the downloads of the run holding the site have come (``sitegen status``)."""
    return state_dir(root) / "progress.json"


def inputs_dir(root: Path) -> Path:
    """Where :func:`inputs_path` keeps its records."""
    return state_dir(root) / "inputs"


def inputs_path(root: Path, key: str) -> Path:
    """What the last clean run of one set of channels was built from."""
    return inputs_dir(root) / f"{key}.json"


def origins_path(root: Path, channel: str, subdir: str) -> Path:
    """Which mirror supplied each published file of a channel subdir (and where it fetches)."""
    return state_dir(root) / "origins" / channel / f"{subdir}.json"


def retired_shards_path(root: Path, channel: str, subdir: str) -> Path:
    """Since when each shard on disk that the subdir's index no longer names has been unnamed
    (its grace period runs from then)."""
    return state_dir(root) / "shards" / channel / f"{subdir}.json"


def repodata_map_path(root: Path, channel: str, subdir: str) -> Path:
    """Where the parts of a subdir's published repodata.json lie in it, and which file that
    was (see sitegen.sync.repodata_map): the next run reads it back a part at a time."""
    return state_dir(root) / "repodata-map" / channel / f"{subdir}.json"


def publishing_marker_path(root: Path, channel: str, subdir: str) -> Path:
    """Present while a subdir's metadata files are renamed into place: found by the next run,
    it tells that one stopped between the renames (some siblings newer than repodata.json)."""
    return state_dir(root) / "publishing" / channel / subdir


def installer_state_path(root: Path, folder: str) -> Path:
    """What an installer folder holds as its last run left it: each file's size, sha256 and
    upstream date, and the disk's size and mtime of it then (trusted while they stay)."""
    return installer_states_dir(root) / f"{quote(folder, safe='')}.json"


def installer_states_dir(root: Path) -> Path:
    """The states of the installer folders, one file each (:func:`installer_state_path`)."""
    return state_dir(root) / "installers"


def installer_of_state(name: str) -> str | None:
    """The installer folder whose state file is called ``name``; None for another file."""
    return unquote(name.removesuffix(".json")) if name.endswith(".json") else None


def frozen_path(root: Path) -> Path:
    """The channels frozen by `sitegen freeze` (besides those frozen in channels.yaml)."""
    return state_dir(root) / "frozen.json"


def frozen_lock_path(root: Path) -> Path:
    """Held by ``sitegen freeze``/``unfreeze`` while they change :func:`frozen_path`."""
    return state_dir(root) / "frozen.lock"


def approvals_waiting_path(root: Path) -> Path:
    """Approvals granted or revoked while another run held the site, which the next run of
    their gated channel records in its history."""
    return state_dir(root) / "approvals-waiting.json"


def approvals_waiting_lock_path(root: Path) -> Path:
    """Held while :func:`approvals_waiting_path` is changed."""
    return state_dir(root) / "approvals-waiting.lock"


def kept_records_path(root: Path, channel: str, subdir: str) -> Path:
    """The records of the package files a ``keep_removed`` channel subdir keeps past their
    upstream listing (msgpack list of {fn, origin, record})."""
    return state_dir(root) / "kept" / channel / f"{subdir}.msgpack"


def indexed_timestamps_path(root: Path, channel: str, subdir: str) -> Path:
    """When this mirror first published each record of a channel subdir (CEP-47
    ``indexed_timestamp`` for records upstream does not stamp), msgpack {fn: ms}."""
    return state_dir(root) / "indexed" / channel / f"{subdir}.msgpack"


def render_dir(root: Path) -> Path:
    """The incremental renderer's manifest and listing cache."""
    return state_dir(root) / "render"


def render_manifest_path(root: Path) -> Path:
    return render_dir(root) / "manifest.json"


def listings_dir(root: Path) -> Path:
    return render_dir(root) / "listings"


# A subdir's listing cache (see sitegen.web.listing_cache): its chunks, and where each lies.
LISTING_CACHE_SUFFIXES = (".rows", ".json")


def listing_cache_paths(root: Path, channel: str, subdir: str) -> tuple[Path, ...]:
    return tuple(listings_dir(root) / channel / f"{subdir}{s}" for s in LISTING_CACHE_SUFFIXES)


def subdir_state_paths(root: Path, channel: str, subdir: str) -> tuple[Path, ...]:
    """Every file of the private state kept for one channel subdir (not its mirrors'), which
    ``sitegen remove`` deletes with it; a new kind of per-subdir state belongs in this list."""
    return (
        origins_path(root, channel, subdir),
        retired_shards_path(root, channel, subdir),
        repodata_map_path(root, channel, subdir),
        publishing_marker_path(root, channel, subdir),
        indexed_timestamps_path(root, channel, subdir),
        kept_records_path(root, channel, subdir),
        *listing_cache_paths(root, channel, subdir),
    )


def channel_state_dirs(root: Path, channel: str) -> tuple[Path, ...]:
    """The folders of the private state that hold a channel's per-subdir files (one each per
    kind of :func:`subdir_state_paths`); a channel nested in it has folders of its own below."""
    return tuple(dict.fromkeys(p.parent for p in subdir_state_paths(root, channel, "noarch")))


def removal_journal_path(root: Path, path: str) -> Path:
    """What ``sitegen remove PATH`` is removing (its plan and counts), kept from before its
    first deletion until its record is in the history: a re-run after a crash anywhere finds
    the removal by it, even once nothing of the channel is left on disk."""
    return removal_journals_dir(root) / f"{quote(path, safe='')}.json"


def removal_journals_dir(root: Path) -> Path:
    """The journals of the removals under way, one file each (:func:`removal_journal_path`)."""
    return state_dir(root) / "removing"


def removal_of_journal(name: str) -> str | None:
    """The path whose removal the journal called ``name`` is of; None for another file."""
    return unquote(name.removesuffix(".json")) if name.endswith(".json") else None


def local_index_path(root: Path, mirror: str) -> Path:
    """What the last index of a local source's folder found, per file (see sync.local_index).
    Each kind of local state has a folder of its own: a name made of the mirror's and a suffix
    would be another mirror's (``x.moved`` is a valid mirror name, as is ``x.json``)."""
    return state_dir(root) / "local-index" / f"{mirror}.json"


def local_store_path(root: Path, mirror: str) -> Path:
    """Where a ``move: true`` local source keeps the files moved out of its folder once
    published, by subdir (see sync.local_move); the published files are hard links to them."""
    return local_stores(root) / mirror


def local_store_folder_path(root: Path, mirror: str) -> Path:
    """The folder that store's files were moved out of, as the mirror last named it: where
    they go back once the mirror is gone from the configuration (see sync.local_return). In
    the store, where its index ignores it (not a package name)."""
    return local_store_path(root, mirror) / "folder.json"


def local_stores(root: Path) -> Path:
    """The folder of every ``move: true`` local source's store (by mirror name), and nothing
    else: each folder in it is a store."""
    return state_dir(root) / "local"


def local_store_index_path(root: Path, mirror: str) -> Path:
    """What the last index of that store found, per file (as local_index_path)."""
    return state_dir(root) / "local-store-index" / f"{mirror}.json"


def old_local_cache_paths(root: Path, mirror: str) -> tuple[tuple[Path, Path], ...]:
    """Where earlier versions kept the index caches of ``mirror`` (beside the stores, where
    they could be another mirror's), each with where it is kept now: found there, a cache is
    moved to its place, so that an upgrade does not read every local file again."""
    return (
        (local_stores(root) / f"{mirror}.json", local_index_path(root, mirror)),
        (local_stores(root) / f"{mirror}.moved.json", local_store_index_path(root, mirror)),
    )


def advisory_feed_dir(root: Path, url: str) -> Path:
    """An advisory feed's last good copy (its advisories as read) and its validators, under a
    digest of its URL as channels.yaml writes it (``${ENV}`` unfilled: a name without secrets)."""
    return advisory_feeds_dir(root) / hashlib.sha256(url.encode()).hexdigest()[:24]


def advisory_feeds_dir(root: Path) -> Path:
    """Where the feeds' copies are kept, one folder per feed (:func:`advisory_feed_dir`)."""
    return state_dir(root) / "advisory-feeds"


FEED_VALIDATORS = "validators.json"
_FEED_COPY = re.compile(r"^feed-[0-9a-f]{24}\.msgpack$")
# What earlier versions kept in a feed's folder: the archive as served and its advisories as
# read, both with whatever secrets of the feed's URL the feed echoed.
_FEED_LEGACY = re.compile(r"^(feed\.zip|advisories-[0-9a-f]{24}\.msgpack)$")


def feed_copy(feed_dir: Path, key: str) -> Path:
    """A feed's last good copy: its advisories as read (msgpack); ``key`` (24 hex digits) is a
    digest of the reader's code, so that another reader never takes an older one for its own."""
    return feed_dir / f"feed-{key}.msgpack"


def is_feed_copy(name: str) -> bool:
    return _FEED_COPY.match(name) is not None


def is_legacy_feed_file(name: str) -> bool:
    return _FEED_LEGACY.match(name) is not None


def legacy_feed_archive(feed_dir: Path) -> Path:
    """The archive as served that earlier versions kept as a feed's last good copy."""
    return feed_dir / "feed.zip"


def stats_dir(root: Path) -> Path:
    """Download statistics: where each access log was read up to, and the counts so far."""
    return state_dir(root) / "stats"


def stats_state_path(root: Path) -> Path:
    return stats_dir(root) / "state.msgpack"
