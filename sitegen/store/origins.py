"""The origins map of a published channel subdir: which mirror supplied each file, and where
that mirror's packages live.

Written by a mirror run with the metadata it publishes (naming the files of the state it replaces
too, until the new one is published: see sitegen.sync.publish_state); read by the pull-through
fetcher and by ``sitegen verify --repair`` to fetch a file from the mirror that supplied it. CEP-15's
``info.base_url`` is kept as upstream wrote it (it may be relative to the upstream subdir, whose
URL can hold a token), but for the secrets of the mirror's URL, kept as their ${ENV} references
(see sitegen.net.upstream_secrets): :meth:`sitegen.net.upstream.Upstream.package_url` resolves it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import msgspec

from sitegen.layout import origins_path
from sitegen.store.interface import SiteStorage

# File names per encoded piece of the map.
_PIECE = 8192


class Origins(msgspec.Struct, forbid_unknown_fields=False):
    files: dict[str, str] = {}  # file name -> mirror name
    package_bases: dict[str, str] = {}  # mirror name -> upstream info.base_url (CEP-15)

    def mirror_of(self, fn: str) -> str | None:
        return self.files.get(fn)

    def base_url_of(self, mirror: str) -> str | None:
        return self.package_bases.get(mirror)


def read_origins(path: Path) -> Origins:
    """The origins map at ``path``; raises OSError or msgspec errors when unreadable."""
    return msgspec.json.decode(path.read_bytes(), type=Origins)


def load_origins(site: SiteStorage, channel: str, subdir: str) -> Origins:
    """The origins map of a channel subdir, empty when there is none or it is unreadable."""
    try:
        return read_origins(origins_path(site.root, channel, subdir))
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return Origins()


def write_origins(
    site: SiteStorage,
    channel: str,
    subdir: str,
    files: Mapping[str, str],
    package_bases: Mapping[str, str],
) -> None:
    """Write the origins map of ``files`` (file name -> mirror name) unless it holds that
    already. Made and compared a piece at a time: at conda-forge scale the map is ~50 MB of
    JSON, and ``files`` may be a view of the records that builds no dict of them."""
    path = origins_path(site.root, channel, subdir)
    pending = site.pending_unless_same(path, _pieces(files, package_bases))
    if pending is not None:
        with pending:
            pending.sync()  # on disk before it is named, as Site.write_bytes writes state
            pending.commit()


def _pieces(files: Mapping[str, str], package_bases: Mapping[str, str]) -> Iterator[bytes]:
    """The bytes of ``Origins(files, package_bases)`` as msgspec encodes it with its keys
    sorted (the same bytes from the same map, whatever its order), in pieces."""
    encode = msgspec.json.encode
    names = sorted(files)
    yield b'{"files":{'
    for start in range(0, len(names), _PIECE):
        piece = encode({fn: files[fn] for fn in names[start : start + _PIECE]})
        yield (b"," if start else b"") + piece[1:-1]
    yield b'},"package_bases":' + encode(dict(package_bases), order="sorted") + b"}"
