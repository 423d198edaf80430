"""The repodata schema: its section names, file suffixes, and the light typed views that read
only what a consumer needs.

Full records (:mod:`sitegen.conda.records`) are dicts kept exactly as upstream wrote them; the
views here decode published ``repodata.json`` at conda-forge scale into a few fields per record,
for the renderer (what a listing shows), the pull-through fetcher and ``sitegen verify`` (what a
file must be), without building the dicts.
"""

from __future__ import annotations

from typing import Any

import msgspec

PACKAGES = "packages"  # .tar.bz2 records
PACKAGES_CONDA = "packages.conda"  # .conda records
CONDA_SUFFIX = ".conda"
TAR_BZ2_SUFFIX = ".tar.bz2"
SUFFIX_OF_KEY = {PACKAGES: TAR_BZ2_SUFFIX, PACKAGES_CONDA: CONDA_SUFFIX}
PACKAGE_SUFFIXES = (CONDA_SUFFIX, TAR_BZ2_SUFFIX)
RECORD_SECTIONS = (PACKAGES, PACKAGES_CONDA)
# CEP-47: when the record first appeared in the index (sitegen.conda.indexed stamps it).
INDEXED_TIMESTAMP = "indexed_timestamp"


def section_of(fn: str) -> str:
    """The repodata section that lists a package file."""
    return PACKAGES_CONDA if fn.endswith(CONDA_SUFFIX) else PACKAGES


def format_of(fn: str) -> str:
    """A package file's format suffix."""
    return CONDA_SUFFIX if fn.endswith(CONDA_SUFFIX) else TAR_BZ2_SUFFIX


# ------------------------------------------------------------------ views of published repodata


class ListedEntry(msgspec.Struct, gc=False):
    """What every render reads of a record: the name (to group by) and what the channel summary
    and the subdir listing show."""

    name: str
    size: int
    timestamp: Any = None
    sha256: str | None = None


class RawDoc(msgspec.Struct):
    """Each record's JSON text, undecoded (for fingerprints and package pages)."""

    packages: dict[str, msgspec.Raw] = {}
    packages_conda: dict[str, msgspec.Raw] = msgspec.field(
        default_factory=dict, name=PACKAGES_CONDA
    )


class FileEntry(msgspec.Struct):
    """What a package file must be: its size and checksums."""

    size: int
    sha256: str | None = None
    md5: str | None = None


class FilesDoc(msgspec.Struct):
    packages: dict[str, FileEntry] = msgspec.field(default_factory=dict)
    packages_conda: dict[str, FileEntry] = msgspec.field(default_factory=dict, name=PACKAGES_CONDA)

    def get(self, fn: str) -> FileEntry | None:
        return (self.packages_conda if fn.endswith(CONDA_SUFFIX) else self.packages).get(fn)


class UpstreamInfoDoc(msgspec.Struct):
    """Of upstream repodata, only ``info`` (for CEP-15's ``base_url``: where its packages
    live), whatever upstream wrote there: the parse judges it (a string, an object)."""

    info: Any = None


LISTED_ENTRY_DECODER = msgspec.json.Decoder(ListedEntry)
RAW_DECODER = msgspec.json.Decoder(RawDoc)
FILES_DECODER = msgspec.json.Decoder(FilesDoc)
UPSTREAM_INFO_DECODER = msgspec.json.Decoder(UpstreamInfoDoc)
