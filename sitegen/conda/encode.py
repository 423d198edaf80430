"""repodata.json as sitegen writes it: compact, records sorted by file name, both formats
kept apart; whole, or in pieces to be written as they are made."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from sitegen.conda.records import Record
from sitegen.conda.schema import CONDA_SUFFIX, PACKAGES, PACKAGES_CONDA

# Records per encoded piece of a streamed repodata.json (a few MB each).
PIECE_RECORDS = 8192


def encode_repodata(
    subdir: str,
    info: dict[str, Any],
    records: dict[str, Record] | list[Record],
    removed: list[str],
    extra: dict[str, Any],
) -> bytes:
    """Compact repodata JSON with records sorted by filename, both formats kept apart."""
    return b"".join(repodata_pieces(subdir, info, records, removed, extra))


class PieceMap(msgspec.Struct):
    """Where the parts of a repodata.json made by :func:`repodata_pieces` lie in it, as
    (start, end) byte ranges, each of which becomes a JSON object of its own between braces:
    ``head`` holds ``"info"``, ``sections`` the records (by section, a few MB per range) and
    ``tail`` the members after the records. So the file can be read back a range at a time."""

    head: tuple[int, int] = (0, 0)
    sections: dict[str, list[tuple[int, int]]] = {}
    tail: tuple[int, int] = (0, 0)


def repodata_pieces(
    subdir: str,
    info: dict[str, Any],
    records: dict[str, Record] | list[Record],
    removed: list[str],
    extra: dict[str, Any],
    where: PieceMap | None = None,
) -> Iterator[bytes]:
    """The bytes of :func:`encode_repodata` in pieces of a few MB, to be written as they come:
    at conda-forge scale the whole document is ~400 MB beside the records it is made of.
    ``where``: filled in with the ranges of the parts (complete once every piece was taken)."""
    where = PieceMap() if where is None else where
    items = records.values() if isinstance(records, dict) else records
    ordered = sorted(items, key=lambda r: r.fn)
    sections = {
        PACKAGES: [r for r in ordered if not r.fn.endswith(CONDA_SUFFIX)],
        PACKAGES_CONDA: [r for r in ordered if r.fn.endswith(CONDA_SUFFIX)],
    }
    del ordered
    encode = msgspec.json.encode
    head = b'{"info":' + encode({**info, "subdir": subdir})
    where.head = (1, len(head))  # after the opening brace
    offset = len(head)
    yield head
    where.sections = {}
    for key, section in sections.items():
        opening = b"," + encode(key) + b":{"
        offset += len(opening)
        yield opening
        ranges = where.sections[key] = []
        for start in range(0, len(section), PIECE_RECORDS):
            piece = encode({r.fn: r.raw for r in section[start : start + PIECE_RECORDS]})
            # The members of a JSON object, without its braces.
            members = (b"," if start else b"") + piece[1:-1]
            ranges.append((offset + (1 if start else 0), offset + len(members)))
            offset += len(members)
            yield members
        offset += 1
        yield b"}"
    tail: dict[str, Any] = {
        "removed": sorted(set(removed)),
        "repodata_version": extra.get("repodata_version", 1),
    }
    for key, value in extra.items():
        if key != "repodata_version":
            tail[key] = value
    ending = b"," + encode(tail)[1:]
    where.tail = (offset + 1, offset + len(ending) - 1)  # between the comma and the last brace
    yield ending
