"""Read back the repodata sitegen itself published: the previous state of a subdir.

Every record in it was checked when it was parsed from upstream, so none is checked again;
a file that is not what sitegen writes still raises :class:`RepodataError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from sitegen.conda.encode import PieceMap
from sitegen.conda.records import (
    JSON_DECODER,
    RAW_MAP_DECODER,
    Record,
    Repodata,
    RepodataError,
    gc_paused,
    same_fields,
)
from sitegen.conda.schema import INDEXED_TIMESTAMP, RECORD_SECTIONS

_ENCODER = msgspec.json.Encoder()
# What follows a record's own fields when sitegen stamped it (see sitegen.conda.indexed).
_STAMP_KEY = b',"' + INDEXED_TIMESTAMP.encode() + b'":'


def load_published(data: bytes, subdir: str, known: Mapping[str, Record] | None = None) -> Repodata:
    """Read repodata that sitegen itself published (every record was checked before).

    Skips the per-record checks of :func:`parse_repodata`, which cost most of its time; a file
    that is not what sitegen writes still raises :class:`RepodataError`.

    ``known``: records about to be published (by file name). A published record that equals
    its known twin, or differs only by the ``indexed_timestamp`` it was stamped with (kept in
    ``stamps``), is read as that twin itself. So a run holds one copy of the records its
    subdir publishes unchanged, not two: a published record is compared with its twin on
    its bytes, and decoded only when it differs.
    """
    with gc_paused():
        return _load_published(data, subdir, known or {})


def load_published_parts(
    read: Callable[[int, int], bytes],
    where: PieceMap,
    subdir: str,
    known: Mapping[str, Record] | None = None,
) -> Repodata:
    """:func:`load_published` of a file read a range at a time: ``read(start, end)`` gives its
    bytes in that range, ``where`` says where its parts lie (as sitegen wrote it, see
    :class:`PieceMap`). The whole file (400 MB at conda-forge scale) is never in memory; each
    range is a few MB. Raises :class:`RepodataError` when a range is not what it should be."""
    with gc_paused():
        try:
            head = _object(read(*where.head))
            tail = _object(read(*where.tail))
            out = Repodata(subdir=subdir, info=_decoded(head, "info", {}))
            out.removed = _decoded(tail, "removed", [])
            for key in RECORD_SECTIONS:
                for start, end in where.sections.get(key, ()):
                    _read_records(out, _object(read(start, end)), subdir, known or {})
            out.extra = {k: JSON_DECODER.decode(v) for k, v in tail.items() if k != "removed"}
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise RepodataError(f"published repodata is not valid JSON: {exc}") from None
        return _checked(out)


def _object(members: bytes) -> dict[str, msgspec.Raw]:
    """The members of a JSON object (without its braces) as that object, values encoded."""
    return RAW_MAP_DECODER.decode(b"{" + members + b"}")


def _load_published(data: bytes, subdir: str, known: Mapping[str, Record]) -> Repodata:
    try:
        document = RAW_MAP_DECODER.decode(data)
        out = Repodata(subdir=subdir, info=_decoded(document, "info", {}))
        out.removed = _decoded(document, "removed", [])
        for key in RECORD_SECTIONS:
            if key in document:
                _read_records(out, RAW_MAP_DECODER.decode(document[key]), subdir, known)
        out.extra = {
            k: JSON_DECODER.decode(v)
            for k, v in document.items()
            if k not in ("info", "removed", *RECORD_SECTIONS)
        }
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise RepodataError(f"published repodata is not valid JSON: {exc}") from None
    return _checked(out)


def _read_records(
    out: Repodata, section: dict[str, msgspec.Raw], subdir: str, known: Mapping[str, Record]
) -> None:
    """Each published record of ``section`` into ``out``: its known twin where it is one,
    under the twin's own file name (the one string for both maps: 800,000 names decoded
    from the file would be ~75 MB more held through the publish). A stamp is read once per
    distinct value in memory, not once per record (a few values for 800,000 records)."""
    shared: dict[int, int] = {}
    for fn, encoded in section.items():
        twin = known.get(fn)
        if twin is not None:
            stamp = _stamp_if_twin(encoded, twin)
            if stamp is not None:
                out.records[twin.fn] = twin
                if stamp or INDEXED_TIMESTAMP not in twin.raw:  # not upstream's own
                    out.stamps[twin.fn] = shared.setdefault(stamp, stamp)
                continue
        raw = JSON_DECODER.decode(encoded)
        if type(raw) is not dict:
            raise RepodataError(f"published repodata: {fn!r} is not an object")
        if twin is not None and same_fields(twin.raw, raw, plus=INDEXED_TIMESTAMP):
            # A stamp written some other way than sitegen writes it.
            out.records[twin.fn] = twin
            out.stamps[twin.fn] = raw[INDEXED_TIMESTAMP]
        else:
            out.records[fn] = Record(fn=fn, subdir=subdir, raw=raw)


def _checked(out: Repodata) -> Repodata:
    if type(out.info) is not dict or type(out.removed) is not list:
        raise RepodataError("published repodata: 'info' or 'removed' is malformed")
    return out


def _stamp_if_twin(encoded: msgspec.Raw, twin: Record) -> int | None:
    """The ``indexed_timestamp`` a published record was stamped with (0: none) when it is
    ``twin`` (same fields, same values, same types, same order) plus at most that stamp, last;
    else None.

    Decided on the bytes: sitegen publishes every record as msgspec encodes it, and equal
    records encode to equal bytes (``1``, ``1.0`` and ``true`` each their own way). Decoding
    800,000 published records only to compare them costs seconds.
    """
    published = bytes(encoded)
    own = _ENCODER.encode(twin.raw)
    if published == own:  # published before stamping existed
        return 0
    fields = len(own) - 1  # its own fields, without the closing brace
    start = fields + len(_STAMP_KEY)
    if not (published.startswith(_STAMP_KEY, fields) and published.startswith(own[:fields])):
        return None
    digits = published[start:-1]
    return int(digits) if digits.isdigit() and published.endswith(b"}") else None


def _decoded(document: dict[str, msgspec.Raw], key: str, default: Any) -> Any:
    return JSON_DECODER.decode(document[key]) if key in document else default
