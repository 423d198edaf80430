"""Parse upstream repodata into typed records, rejecting hostile ones with a reason.

Upstream metadata is untrusted: a record only becomes a :class:`Record` when its filename is a
plain file name that agrees with its name, version and build, its size is sane and it carries a
checksum. Everything else is kept out and counted under a reason.
"""

from __future__ import annotations

import mmap
import re
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import compress, islice, repeat
from operator import setitem
from typing import Any

import msgspec

from sitegen.conda.lenient_json import has_bad_number, has_bad_text, loads, sound
from sitegen.conda.record_check import (
    REASON_BAD_FIELDS,
    REASON_BAD_TEXT,
    REASON_SECRET,
    REASON_UNMIRRORED_SECTION,
    check_record,
    plainly_sound,
)
from sitegen.conda.record_secrets import SecretSearch
from sitegen.conda.schema import RECORD_SECTIONS, section_of
from sitegen.conda.version import timestamp_ms
from sitegen.gc_pause import gc_paused


def same_fields(a: dict[str, Any], b: dict[str, Any], plus: str | None = None) -> bool:
    """True when ``b`` holds the fields of ``a`` with the same values of the same types, in the
    same order (what encodes to the same bytes), and with ``plus``, that field too, last.
    (``==`` alone takes ``1``, ``1.0`` and ``True`` for each other; a record whose keys merely
    moved counts as changed.)"""
    if len(b) != len(a) + (plus is not None):
        return False
    keys, values = list(b), list(b.values())
    if plus is not None:
        if keys.pop() != plus:
            return False
        values.pop()
    return (
        keys == list(a)
        and values == list(a.values())
        and list(map(type, values)) == list(map(type, a.values()))
    )


def names_of(records: Mapping[str, Record]) -> dict[str, list[Record]]:
    """Records grouped by package name, names sorted (references, not copies)."""
    grouped: dict[str, list[Record]] = {}
    add = grouped.setdefault
    for record in records.values():  # 800,000 at conda-forge scale: no property call
        add(record.raw["name"], []).append(record)
    return {name: grouped[name] for name in sorted(grouped)}


class RepodataError(ValueError):
    """The repodata document as a whole cannot be used."""


@dataclass(slots=True, eq=False)
class Record:
    """One package file's metadata, exactly as upstream published it."""

    fn: str
    subdir: str
    raw: dict[str, Any]
    origin: str = ""  # the mirror that supplied it
    # info/about.json's descriptive fields, for records sitegen indexed itself (local sources):
    # channeldata.json carries them, repodata does not.
    about: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.raw["name"]

    @property
    def version(self) -> str:
        return self.raw["version"]

    @property
    def build(self) -> str:
        return self.raw["build"]

    @property
    def size(self) -> int:
        return self.raw["size"]

    @property
    def sha256(self) -> str | None:
        return self.raw.get("sha256")

    @property
    def md5(self) -> str | None:
        return self.raw.get("md5")

    @property
    def timestamp_ms(self) -> int:
        return timestamp_ms(self.raw)

    @property
    def key(self) -> str:
        return section_of(self.fn)

    def same_file(self, other: Record) -> bool:
        """True when both describe the same bytes (sha256 preferred, md5 otherwise)."""
        if self.size != other.size:
            return False
        if self.sha256 and other.sha256:
            return self.sha256.lower() == other.sha256.lower()
        return bool(self.md5 and other.md5 and self.md5.lower() == other.md5.lower())


@dataclass(slots=True)
class Repodata:
    """One subdir's repodata: records of both formats keyed by filename, plus the rest."""

    subdir: str
    info: dict[str, Any] = field(default_factory=dict)
    records: dict[str, Record] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # repodata_version and unknown keys
    rejected: dict[str, str] = field(default_factory=dict)  # filename -> reason
    # The indexed_timestamp published with each record read as its unstamped twin (see
    # load_published): the twin carries none until the run stamps it.
    stamps: dict[str, int] = field(default_factory=dict)


# A JSON object with its values left encoded (views of the input), and any JSON value.
RAW_MAP_DECODER = msgspec.json.Decoder(dict[str, msgspec.Raw])
JSON_DECODER = msgspec.json.Decoder()


def _decode_lazily(data: bytes) -> dict[str, Any]:
    """The fast path: the document with each record still encoded (``msgspec.Raw``, a view of
    ``data``), to be decoded one at a time: the whole document is never held as dicts beside
    the records kept from it. Raises what msgspec raises for what it refuses."""
    document: dict[str, Any] = {}
    for key, value in RAW_MAP_DECODER.decode(data).items():
        if key in RECORD_SECTIONS:
            try:
                document[key] = RAW_MAP_DECODER.decode(value)
                continue
            except msgspec.DecodeError:
                pass  # not an object: decoded whole, and refused as such below
        document[key] = JSON_DECODER.decode(value)
    return document


def _decode_leniently(data: bytes) -> Any:
    """The document as :func:`sitegen.conda.lenient_json.loads` reads what msgspec refuses."""
    try:
        return loads(data)
    except RecursionError:
        raise RepodataError("repodata is not valid JSON: nested too deeply") from None
    except ValueError as exc:
        raise RepodataError(f"repodata is not valid JSON: {exc}") from None


def _label(fn: Any, secrets: SecretSearch | None = None) -> str:
    """A rejected filename as reports and logs show it: printable, on one line, bounded, and
    without the ``secrets`` (hidden before it is cut short, which could leave a part)."""
    if secrets is not None and isinstance(fn, str):
        fn = secrets.hide(fn)
    label = fn if isinstance(fn, str) and fn.isprintable() else repr(fn)
    return label if len(label) <= 300 else label[:300] + "..."


_REVISION_KEY = re.compile(r"^v([0-9]+)$")


def is_revision_key(key: str) -> bool:
    """A CEP-48 revision section (``v3``, ``v4``...)."""
    match = _REVISION_KEY.match(key)
    return match is not None and int(match.group(1)) >= 3


def _is_record(value: Any) -> bool:
    return type(value) is dict and "name" in value and ("version" in value or "build" in value)


def _holds_records(value: Any) -> bool:
    """A map or a list with a record among its values."""
    if type(value) is dict:
        return any(map(_is_record, value.values()))
    return type(value) is list and any(map(_is_record, value))


def lists_packages(value: Any) -> bool:
    """True for a top-level value that holds package records: a map or a list of them (like
    ``packages``), or a map of such (CEP-48 ``v3``: extension -> stem -> record)."""
    if _holds_records(value):
        return True
    return type(value) is dict and any(map(_holds_records, value.values()))


def parse_repodata(
    data: bytes | mmap.mmap,
    subdir: str,
    origin: str = "",
    secrets: SecretSearch | None = None,
    release: Callable[[], None] = lambda: None,
) -> Repodata:
    """Turn upstream repodata bytes into a :class:`Repodata`; hostile records are rejected,
    and so are those holding one of the ``secrets`` of the mirror's URL. ``data`` read
    through a map (sitegen.store.spill) comes with ``release``, which drops the pages read so
    far from memory: called as the records are built, so that the whole document is never
    resident beside them."""
    # One search of the whole document: in the common case, no record needs a look.
    look = secrets if secrets and secrets.may_spell(data) else None
    with gc_paused():
        return _parse_repodata(data, subdir, origin, look, release)


def _parse_repodata(
    data: bytes | mmap.mmap,
    subdir: str,
    origin: str,
    look: SecretSearch | None,
    release: Callable[[], None],
) -> Repodata:
    try:
        document = _decode_lazily(data)
        release()  # the whole document was read to find its records: none is needed yet
        return _parse_document(document, False, subdir, origin, look, release)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        pass  # something msgspec refuses, perhaps in one record: all of it again, leniently
    return _parse_document(_decode_leniently(data), True, subdir, origin, look, release)


# Fields whose values repeat across a subdir's records: the records share one string object
# per distinct value. Dependency specs are most of a record's memory; at conda-forge scale
# (800,000 records, ~50,000 distinct specs) sharing them saves ~0.5 GB (with `depends` and
# `constrains`, below).
_SHARED_FIELDS = ("license", "license_family", "name", "version", "build")
_SHARED_LISTS = ("depends", "constrains")
_Share = Callable[[str, str], str]  # a table's setdefault
# Records are checked, shared and kept this many at a time: each step is then a few calls
# to C for all of them (see plainly_sound), while the records not yet shared stay few.
_BATCH = 256
# A document read through a map drops the pages read so far after this many batches (a few MB
# of its text at a time; see parse_repodata).
_RELEASE_BATCHES = 64
# Below this many, records plainly_sound turned down are each checked by check_record: a
# batch holding a bad record is split in halves down to there.
_SPLIT_DOWN_TO = 8


def _consume(iterator: Iterator[Any]) -> None:
    deque(iterator, maxlen=0)


def _reasons(fns: list[str], raws: list[Any], key: str, subdir: str) -> list[str | None]:
    """check_record's verdict on each record: one call to plainly_sound for a batch of
    sound records, halves of the batch for one that holds another."""
    if plainly_sound(fns, raws, key, subdir):
        return [None] * len(fns)
    if len(fns) <= _SPLIT_DOWN_TO:
        return list(map(check_record, fns, raws, repeat(key), repeat(subdir)))
    half = len(fns) // 2
    return _reasons(fns[:half], raws[:half], key, subdir) + _reasons(
        fns[half:], raws[half:], key, subdir
    )


def _share(raws: list[dict[str, Any]], subdir: str, shares: dict[str, _Share]) -> None:
    """Set each record's subdir (checked to be equal where set), and
    make the records share one string object per distinct value of each field in ``shares``
    (see _SHARED_FIELDS). In C, through map: a Python statement per record costs ~0.5 s at
    conda-forge scale."""
    _consume(map(setitem, raws, repeat("subdir"), repeat(subdir)))
    for name in _SHARED_LISTS:  # lists of strings, where present: check_record made sure
        share = shares[name]
        lists = list(map(dict.get, raws, repeat(name)))
        present = list(filter(None, lists))
        shared = map(list, map(map, repeat(share), present, present))
        _consume(map(setitem, compress(raws, lists), repeat(name), shared))
    for name in _SHARED_FIELDS:  # strings, or null (left as it is), where present
        share = shares[name]
        values = list(map(dict.get, raws, repeat(name)))
        present = list(filter(None, values))
        _consume(map(setitem, compress(raws, values), repeat(name), map(share, present, present)))


def _parse_document(
    document: Any,
    lenient: bool,
    subdir: str,
    origin: str,
    look: SecretSearch | None,
    release: Callable[[], None],
) -> Repodata:
    if not isinstance(document, dict):
        raise RepodataError("repodata is not a JSON object")
    info = document.get("info") or {}
    if not isinstance(info, dict):
        raise RepodataError("repodata 'info' is not an object")
    # Outside the records, text that is not UTF-8 (or a non-finite number) could never be
    # written out again: such entries are dropped, the rest is kept.
    info = {k: v for k, v in info.items() if not lenient or (sound(k) and sound(v))}
    info["subdir"] = subdir
    removed = document.get("removed") or []
    if not isinstance(removed, list):
        raise RepodataError("repodata 'removed' is not a list")
    removed = [r for r in removed if isinstance(r, str) and (not lenient or sound(r))]
    out = Repodata(subdir=subdir, info=info, removed=removed)
    for top_key, value in document.items():
        if top_key in ("info", "removed", *RECORD_SECTIONS):
            continue
        if lenient and not (sound(top_key) and sound(value)):
            continue
        if is_revision_key(top_key) or lists_packages(value):
            out.rejected[f"[{_label(top_key, look)}]"] = REASON_UNMIRRORED_SECTION
            continue
        out.extra[top_key] = value
    # No revision section is ever published, so none may be announced (CEP-48).
    info.pop("repodata_revisions", None)
    for part in look.take_out(info, removed, out.extra) if look is not None else ():
        out.rejected[f"[{_label(part, look)}]"] = REASON_SECRET
    # One string object per distinct value (see _SHARED_FIELDS), from a table per field: the
    # table of specs, looked up most, then stays small (~50,000 at conda-forge scale, beside
    # as many build strings as records).
    specs: _Share = {}.setdefault
    shares = {"depends": specs, "constrains": specs}
    shares.update((name, {}.setdefault) for name in _SHARED_FIELDS)
    for key in RECORD_SECTIONS:
        section = document.get(key) or {}
        if not isinstance(section, dict):
            raise RepodataError(f"repodata {key!r} is not an object")
        names, values = iter(section), iter(section.values())
        batches = 0
        while fns := list(islice(names, _BATCH)):
            batches += 1
            if batches % _RELEASE_BATCHES == 0:
                release()
            encoded = list(islice(values, _BATCH))
            # Each record is a Raw (decoded here) but in a lenient decode (decoded whole).
            raws = encoded if lenient else list(map(JSON_DECODER.decode, encoded))
            reasons = _reasons(fns, raws, key, subdir)
            if lenient or look is not None:
                reasons = list(
                    map(_closer_look, fns, encoded, raws, reasons, repeat(lenient), repeat(look))
                )
            if any(reasons):
                for fn, reason in zip(fns, reasons, strict=True):
                    if reason is not None:
                        out.rejected[_label(fn, look)] = reason
                fns = [fn for fn, reason in zip(fns, reasons, strict=True) if reason is None]
                raws = [raw for raw, reason in zip(raws, reasons, strict=True) if reason is None]
            _share(raws, subdir, shares)
            records = map(Record, fns, repeat(subdir), raws, repeat(origin))
            out.records.update(zip(fns, records, strict=True))
    return out


def _closer_look(
    fn: str,
    encoded: Any,
    raw: Any,
    reason: str | None,
    lenient: bool,
    look: SecretSearch | None,
) -> str | None:
    """Why a record check_record accepted is refused all the same: text that is not UTF-8 or
    a non-finite number (only in a lenient decode), or a secret of the mirror's URL."""
    if reason is None and lenient and has_bad_text(raw):
        reason = REASON_BAD_TEXT
    if reason is None and lenient and has_bad_number(raw):
        reason = REASON_BAD_FIELDS
    if reason is None and look is not None and look.in_record(fn, encoded, raw):
        reason = REASON_SECRET
    return reason
