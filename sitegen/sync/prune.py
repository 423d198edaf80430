"""Delete package files that no published metadata references any more, behind a guard.

Pruning runs only after the subdir's new metadata is published, so no client ever reads a
record whose file is already gone. The guard stops a broken or truncated upstream listing from
emptying a mirror: a subdir that would lose more than a set share of its published packages is
held back (not published, nothing deleted) unless the run is forced.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

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
        f"would remove {dropped} of {len(before)} published packages ({share:.0%}), more than"
        f" the allowed {max_fraction:.0%}; kept the previous state. If this is intended (for"
        " example after tightening filters), run again with --force-delete"
    )


def prune_subdir(site: Site, directory: Path, referenced: set[str]) -> list[str]:
    """Remove package files in directory that are not referenced; returns their names."""
    removed = []
    for name in sorted(package_files(directory).keys() - referenced):
        if site.remove(directory / name):
            removed.append(name)
    return removed
