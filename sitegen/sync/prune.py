"""Delete package files that no published metadata references any more, behind a guard.

Pruning runs only after the subdir's new metadata is published, so no client ever reads a
record whose file is already gone. The guard stops a broken or truncated upstream listing from
emptying a mirror: a subdir that would lose more than a set share of its published packages is
held back (not published, nothing deleted) unless the run is forced.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from pathlib import Path

import msgspec

from sitegen.conda.shards import digest_of_filename
from sitegen.layout import is_package_file
from sitegen.store.site import Site


def package_files(directory: Path) -> dict[str, int]:
    """Name -> size of the package files present in a subdir directory."""
    if not directory.is_dir():
        return {}
    present: dict[str, int] = {}
    with os.scandir(directory) as entries:
        for e in entries:
            if is_package_file(e.name) and e.is_file(follow_symlinks=False):
                present[e.name] = e.stat(follow_symlinks=False).st_size
    return present


def deletion_guard(
    published: Iterable[str], planned: Iterable[str], max_fraction: float
) -> str | None:
    """Why publishing `planned` over `published` is refused, or None when it is acceptable."""
    before = set(published)
    if not before:
        return None
    dropped = len(before - set(planned))
    share = dropped / len(before)
    if share <= max_fraction:
        return None
    return (
        f"would remove {dropped} of {len(before)} published files ({share:.0%}), more than"
        f" the allowed {max_fraction:.0%}; kept the previous state. If this is intended (for"
        " example after tightening filters), run again with --force-delete"
    )


def package_links(directory: Path) -> set[str]:
    """Names of the symbolic links in a subdir directory named like package files. A run never
    makes one, but the web server serves what each leads to, which no record vouches for."""
    if not directory.is_dir():
        return set()
    with os.scandir(directory) as entries:
        return {e.name for e in entries if is_package_file(e.name) and e.is_symlink()}


def prune_subdir(site: Site, directory: Path, referenced: AbstractSet[str]) -> list[str]:
    """Remove the package files in directory that are not referenced, and the links named like
    one (the link, never what it leads to); returns their names."""
    removed = []
    unreferenced = (package_files(directory).keys() | package_links(directory)) - referenced
    for name in sorted(unreferenced):
        if site.remove(directory / name):
            removed.append(name)
    return removed


# ------------------------------------------------------------------ shards (CEP-16)
# Kept apart from package pruning: a shard is never referenced by repodata.json, only by the
# shard index, and one no longer named must outlive it by a grace period, because a client may
# have fetched the previous index a moment ago and ask for its shards afterwards.


def expire_shards(
    unnamed: set[str], since: dict[str, float], now: float, grace: float
) -> tuple[list[str], dict[str, float]]:
    """Which unnamed shards to delete now, and since when the others have been unnamed.

    ``since`` is the previous answer; a shard seen unnamed for the first time starts its grace
    period now, one named again (or gone) is forgotten.
    """
    expired: list[str] = []
    kept: dict[str, float] = {}
    for name in sorted(unnamed):
        start = since.get(name, now)
        if now - start >= grace:
            expired.append(name)
        else:
            kept[name] = start
    return expired, kept


def prune_shards(
    site: Site, directory: Path, named: set[str], state: Path, now: float, grace: float
) -> list[str]:
    """Delete the shard files in ``directory`` that have gone unnamed for ``grace`` seconds.

    ``named`` holds the file names the published index names: never deleted, whatever the
    state file says. Returns the names deleted.
    """
    if not directory.is_dir():
        return []
    with os.scandir(directory) as entries:
        on_disk = {
            e.name
            for e in entries
            if digest_of_filename(e.name) is not None and e.is_file(follow_symlinks=False)
        }
    since = _retired_since(state)
    expired, kept = expire_shards(on_disk - named, since, now, grace)
    removed = [name for name in expired if site.remove(directory / name)]
    if kept != since:
        site.write_bytes(state, msgspec.json.encode(kept))
    return removed


def unretire_shards(site: Site, state: Path, named: set[str]) -> None:
    """Forget since when the shard files in ``named`` went unnamed: an index about to be
    published names them again, and each one's grace period starts afresh once a later index
    leaves it out. Written (durably) before that index is published: a run stopped in between
    must not let a shard it names expire early."""
    since = _retired_since(state)
    kept = {name: start for name, start in since.items() if name not in named}
    if kept != since:
        site.write_bytes(state, msgspec.json.encode(kept))


def _retired_since(state: Path) -> dict[str, float]:
    """Since when each unnamed shard has been unnamed; none known when the state is lost (every
    unnamed shard then starts a full grace period again)."""
    try:
        return msgspec.json.decode(state.read_bytes(), type=dict[str, float])
    except (FileNotFoundError, msgspec.DecodeError):
        return {}
