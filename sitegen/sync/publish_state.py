"""What the state says of a subdir being published: its origins map (which mirror supplied each
file and from where, see sitegen.store.origins) and the records of the files it keeps unlisted
(``keep_removed``, see sitegen.sync.keep).

Both must describe what the subdir serves, and that is its previous state until its new
``repodata.json`` is renamed in, and for good when publishing fails (a full disk) or a kill
lands before. So before publishing they are written for both states at once (where both name a
file, as the new one says): a file kept from now on is recorded before the metadata that stops
listing it is published, and a file the previous state lists, or kept, stays recorded while
that state is served (the pull-through fetcher, ``verify --repair``, the judging of kept files
and the moves of ``move: true`` sources look it up there). Once the new ``repodata.json`` is in,
they are written for exactly the new state, before the prune. A kill in between leaves them
wider than needed, which every reader copes with: nothing asks after a file no published
metadata lists, and the next run judges every kept record again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from sitegen.conda.records import Record
from sitegen.store.origins import load_origins, write_origins
from sitegen.store.site import Site
from sitegen.sync.keep import read_kept, save_kept


def widen_state(
    site: Site,
    channel_path: str,
    subdir: str,
    records: Mapping[str, Record],
    package_bases: Mapping[str, str],
    kept: Mapping[str, Record],
    listed: Iterable[str],
) -> bool:
    """Before ``records`` are published (keeping ``kept``) in place of a state that lists the
    files ``listed``: write the state for both. True when that says more than the new state
    alone: then :func:`narrow_state` follows once ``repodata.json`` is renamed in."""
    # Unreadable kept records hold a keep_removed subdir before it gets here; for another
    # channel there is nothing left to keep.
    # A file the new state lists again is not kept any more, whichever state is served: its
    # old kept record would have `sitegen verify` judge the listed file by it.
    before = read_kept(site.root, channel_path, subdir) or {}
    wider_kept = {fn: r for fn, r in before.items() if fn not in records} | dict(kept)
    save_kept(site, channel_path, subdir, wider_kept)
    # The previous map is read only when the new state drops a file (at conda-forge scale it
    # is 800,000 entries, over 100 MB decoded, of which a run drops a handful), and let go
    # before the new one is built. Where both states name a file, the new mirror: what the
    # map says of it once published.
    dropped = [fn for fn in listed if fn not in records]
    older: dict[str, str] = {}
    bases = dict(package_bases)
    if dropped:
        previous = load_origins(site, channel_path, subdir)
        for fn in dropped:
            mirror = previous.mirror_of(fn)
            if mirror is None:
                continue
            older[fn] = mirror
            base = previous.base_url_of(mirror)
            if base is not None:
                bases.setdefault(mirror, base)
        del previous
    _write_map(site, channel_path, subdir, records, bases, older)
    return len(wider_kept) > len(kept) or bool(older)


def narrow_state(
    site: Site,
    channel_path: str,
    subdir: str,
    records: Mapping[str, Record],
    package_bases: Mapping[str, str],
    kept: Mapping[str, Record],
) -> None:
    """Once ``records`` are published: write the state for exactly them (and ``kept``)."""
    _write_map(site, channel_path, subdir, records, dict(package_bases), {})
    save_kept(site, channel_path, subdir, kept)


def _write_map(
    site: Site,
    channel_path: str,
    subdir: str,
    records: Mapping[str, Record],
    bases: dict[str, str],
    older: dict[str, str],
) -> None:
    """The origins map of ``records`` plus ``older`` (file -> mirror of a state still served,
    none of them in ``records``)."""
    write_origins(site, channel_path, subdir, _FileOrigins(records, older), bases)


class _FileOrigins(Mapping[str, str]):
    """File name -> mirror of ``records`` plus ``older``, read from the records as it is
    asked for: a dict of 800,000 of them would be ~30 MB more while the map is written."""

    def __init__(self, records: Mapping[str, Record], older: Mapping[str, str]) -> None:
        self.records = records
        self.older = older

    def __getitem__(self, fn: str) -> str:
        mirror = self.older.get(fn)
        return self.records[fn].origin if mirror is None else mirror

    def __iter__(self) -> Iterator[str]:
        yield from self.records
        yield from (fn for fn in self.older if fn not in self.records)

    def __len__(self) -> int:
        return len(self.records) + sum(fn not in self.records for fn in self.older)
