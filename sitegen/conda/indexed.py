"""CEP-47 ``indexed_timestamp``: when a record became available in a channel.

Pure: the caller loads and saves the channel subdir's map of first sightings (file name ->
milliseconds since the epoch, persisted under ``.sitegen/``), and this module decides each
record's value from it:

- upstream's ``indexed_timestamp`` is kept where the record carries one;
- otherwise the time this mirror first published the record, remembered in the map the first
  time it is seen and never changed afterwards (a re-download or a site rebuilt from its state
  gives the same value), unless the file under that name is replaced by other bytes: another
  artifact, first published then;
- never smaller than the record's own ``timestamp`` (in milliseconds: conda's ``timestamp``
  may be in seconds, :func:`~sitegen.conda.version.timestamp_ms` reads both).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from sitegen.conda.records import Record, same_fields
from sitegen.conda.schema import INDEXED_TIMESTAMP
from sitegen.conda.version import MAX_SECONDS, milliseconds

# {fn: ms}: msgpack keeps 800,000 entries to ~40 MB and decodes them in a fraction of a second.
_DECODER = msgspec.msgpack.Decoder(dict[str, int])
_ENCODER = msgspec.msgpack.Encoder()


def indexed_ms(raw: Mapping[str, Any]) -> int:
    """A record's ``indexed_timestamp`` in milliseconds (seconds are read as such); 0 when
    absent or not a positive number."""
    return milliseconds(raw.get(INDEXED_TIMESTAMP))


def stamp_records(
    records: Iterable[Record],
    first_seen: dict[str, int],
    now_ms: int,
    previous: Mapping[str, Record] | None = None,
    published_stamps: Mapping[str, int] | None = None,
) -> int:
    """Give every record its ``indexed_timestamp`` (in place: the raw dicts are the ones
    published, and copying 800,000 of them would double the run's memory).

    ``first_seen`` gains the records new to it, from ``previous`` (what the subdir published
    before, with ``published_stamps`` for the records it shares with ``records``, see
    load_published: a site whose state was lost keeps its published values) or else
    ``now_ms``; returns how many it gained, i.e. whether it must be saved.
    """
    stamps = published_stamps or {}
    added = 0
    # One int object per distinct stamp (a handful: one per run that first saw records), not
    # one per record: 800,000 of them would be ~30 MB held through publishing, and taken from
    # the map's own, they would keep its memory (~100 MB of names) from going back.
    shared: dict[int, int] = {}
    # Once per record (800,000 at conda-forge scale): the common cases (a time in
    # milliseconds, no stamp of upstream's, no previous publication) without a call.
    for record in records:
        raw, fn = record.raw, record.fn
        own = raw.get("timestamp")
        if type(own) is not int or own <= MAX_SECONDS:
            own = milliseconds(own)
        upstream = raw.get(INDEXED_TIMESTAMP)
        if upstream is not None and (upstream := milliseconds(upstream)):
            if upstream < own:  # inconsistent upstream: the rule clients rely on wins
                raw[INDEXED_TIMESTAMP] = shared.setdefault(own, own)
            continue
        seen = first_seen.get(fn)
        before = previous.get(fn) if previous else None
        # Other bytes under a published name (a package rebuilt and uploaded again): another
        # artifact, which first appears now. Its predecessor's time would let it past a
        # client's exclude-newer cooldown as an old package.
        replaced = before is not None and before is not record and not record.same_file(before)
        if seen is None or replaced:
            published = stamps.get(fn) or (indexed_ms(before.raw) if before else 0)
            seen = (0 if replaced else published) or (now_ms if now_ms > own else own)
            first_seen[fn] = seen
            added += 1
        value = seen if seen > own else own
        raw[INDEXED_TIMESTAMP] = shared.setdefault(value, value)
    return added


def decode_first_seen(data: bytes) -> dict[str, int]:
    """The persisted map; raises msgspec.DecodeError when it is not one."""
    return _DECODER.decode(data)


def encode_first_seen(first_seen: Mapping[str, int]) -> bytes:
    return _ENCODER.encode(first_seen)


def same_as_published(
    record: Record, before: Record | None, published_stamps: Mapping[str, int]
) -> bool:
    """True when a stamped ``record`` is exactly what ``before`` (the record of the same file
    in the previous publication, see load_published) published, its stamp included."""
    if before is record:  # shared: the same upstream record; was it stamped the same?
        published = published_stamps.get(record.fn)
        return published is None or published == record.raw.get(INDEXED_TIMESTAMP)
    return before is not None and same_fields(before.raw, record.raw)


def same_except_indexed(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """True when two records differ at most in ``indexed_timestamp`` (a site published before
    it was stamped does not report every record as updated once)."""
    if a is b or a == b:  # the same dict, when the run re-publishes a record (load_previous)
        return True
    strip = INDEXED_TIMESTAMP
    return {k: v for k, v in a.items() if k != strip} == {k: v for k, v in b.items() if k != strip}
