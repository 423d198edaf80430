"""The site's own repodata as every render reads it: light records, grouped by package name.

sitegen checked every record before publishing it, so a render only decodes its repodata, and
lightly: the few fields shown of every record, and each record's JSON text (unparsed until the
page of its package is rendered).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import msgspec

from sitegen.conda.records import Record, parse_repodata
from sitegen.conda.schema import LISTED_ENTRY_DECODER, RAW_DECODER
from sitegen.conda.version import milliseconds

# What a package name must be made of to name a page (never a path): the characters of the
# file names records.check_record lets through (a package's file names start with its name).
PAGE_NAME = re.compile(r"^[A-Za-z0-9_+!][A-Za-z0-9._+!=,-]*$")


class PublishedFile(NamedTuple):
    """A record of the site's own repodata as every render reads it: what the channel summary
    and the subdir listing show, and its JSON text (``raw``), parsed only for a package page
    that must be rendered again. Has the attributes of a :class:`Record` that those use."""

    fn: str
    subdir: str
    name: str
    size: int
    timestamp_ms: int
    sha256: str | None
    raw: Any  # msgspec.Raw: the record's JSON text


def published_files(data: bytes, subdir: str) -> list[PublishedFile]:
    """The records of repodata that sitegen wrote, without building them: one typed decode
    gives each record's JSON text, of which only the few fields shown are then decoded, one
    record at a time (the name shared by the records of a package). Much cheaper than
    parsing every record into dicts, and never a second structure of the whole document.
    Raises msgspec.DecodeError when the file is not as sitegen writes it."""
    raw = RAW_DECODER.decode(data)
    listed = LISTED_ENTRY_DECODER.decode
    share = {}.setdefault
    out: list[PublishedFile] = []
    append = out.append
    make = tuple.__new__  # the NamedTuple without its keyword-argument constructor
    for section in (raw.packages, raw.packages_conda):
        for fn, text in section.items():
            record = listed(text)
            ms = milliseconds(record.timestamp)
            name = share(record.name, record.name)
            append(make(PublishedFile, (fn, subdir, name, record.size, ms, record.sha256, text)))
    return out


def checked_files(data: bytes, subdir: str) -> list[PublishedFile]:
    """The records of repodata that does not decode as sitegen writes it, parsed and checked
    as upstream repodata is. Raises RepodataError."""
    repodata = parse_repodata(data, subdir)
    return [
        PublishedFile(
            fn,
            subdir,
            r.name,
            r.size,
            r.timestamp_ms,
            r.sha256,
            msgspec.Raw(msgspec.json.encode(r.raw)),
        )
        for fn, r in repodata.records.items()
    ]


class PackageRecords(NamedTuple):
    """The records of a package in one piece, as they travel to a worker process (one bytes
    object rather than an object or more per record): their file names and subdirs, and their
    JSON texts as one JSON array."""

    fns: list[str]
    subdirs: list[str]
    text: bytes


def package_records(files: list[PublishedFile]) -> PackageRecords:
    return PackageRecords(
        [f.fn for f in files],
        [f.subdir for f in files],
        b"[" + b",".join(f.raw for f in files) + b"]",
    )


def parse_records(records: PackageRecords) -> list[Record]:
    """The records of a package, parsed (only when its page or its facts are needed)."""
    raws = msgspec.json.decode(records.text)
    return [
        Record(fn=fn, subdir=subdir, raw=raw)
        for fn, subdir, raw in zip(records.fns, records.subdirs, raws, strict=True)
    ]


def fingerprint(files: list[PublishedFile]) -> str:
    """A hash of a package's records as published (subdir, file name and JSON text of each)."""
    data = msgspec.json.encode([(f.subdir, f.fn, f.raw) for f in files])
    return hashlib.sha256(data).hexdigest()[:32]


def values(records: Mapping[str, Any] | Iterable[Any]) -> Iterable[Any]:
    """The records of a subdir: a mapping (filename -> :class:`Record`) or a sequence (of
    :class:`PublishedFile`)."""
    return records.values() if isinstance(records, Mapping) else records


def group_by_name(subdirs: Mapping[str, Mapping[str, Record] | Iterable[Any]]) -> dict[str, list]:
    """One pass over every record of a channel: name -> its records (all subdirs, in order).

    The records of a subdir as :func:`values` takes them.
    """
    out: dict[str, list] = {}
    for records in subdirs.values():
        for record in values(records):
            bucket = out.get(record.name)
            if bucket is None:
                out[record.name] = [record]
            else:
                bucket.append(record)
    return out
