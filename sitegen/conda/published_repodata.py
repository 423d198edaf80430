"""Read back the repodata sitegen itself published: the previous state of a subdir.

Every record in it was checked when it was parsed from upstream, so none is checked again;
a file that is not what sitegen writes still raises :class:`RepodataError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

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


def load_published(data: bytes, subdir: str, known: Mapping[str, Record] | None = None) -> Repodata:
    """Read repodata that sitegen itself published (every record was checked before).

    Skips the per-record checks of :func:`parse_repodata`, which cost most of its time; a file
    that is not what sitegen writes still raises :class:`RepodataError`.

    ``known``: records about to be published (by file name). A published record that equals
    its known twin, or differs only by the ``indexed_timestamp`` it was stamped with (kept in
    ``stamps``), is read as that twin itself. So a run holds one copy of the records its
    subdir publishes unchanged, not two: each published record is decoded on its own and
    dropped at once when it has a twin.
    """
    with gc_paused():
        return _load_published(data, subdir, known or {})


def _load_published(data: bytes, subdir: str, known: Mapping[str, Record]) -> Repodata:
    try:
        document = RAW_MAP_DECODER.decode(data)
        out = Repodata(subdir=subdir, info=_decoded(document, "info", {}))
        out.removed = _decoded(document, "removed", [])
        for key in RECORD_SECTIONS:
            section = RAW_MAP_DECODER.decode(document[key]) if key in document else {}
            for fn, encoded in section.items():
                raw = JSON_DECODER.decode(encoded)
                if type(raw) is not dict:
                    raise RepodataError(f"published repodata: {fn!r} is not an object")
                twin = known.get(fn)
                if twin is None:
                    out.records[fn] = Record(fn=fn, subdir=subdir, raw=raw)
                elif same_fields(twin.raw, raw):
                    out.records[fn] = twin
                    if INDEXED_TIMESTAMP not in raw:  # published before stamping existed
                        out.stamps[fn] = 0
                elif same_fields(twin.raw, raw, plus=INDEXED_TIMESTAMP):
                    out.records[fn] = twin
                    out.stamps[fn] = raw[INDEXED_TIMESTAMP]
                else:
                    out.records[fn] = Record(fn=fn, subdir=subdir, raw=raw)
        out.extra = {
            k: JSON_DECODER.decode(v)
            for k, v in document.items()
            if k not in ("info", "removed", *RECORD_SECTIONS)
        }
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise RepodataError(f"published repodata is not valid JSON: {exc}") from None
    if type(out.info) is not dict or type(out.removed) is not list:
        raise RepodataError("published repodata: 'info' or 'removed' is malformed")
    return out


def _decoded(document: dict[str, msgspec.Raw], key: str, default: Any) -> Any:
    return JSON_DECODER.decode(document[key]) if key in document else default
