"""Whether an upstream record may be mirrored: a plain file name that agrees with its name,
version and build, a sane size, a checksum, fields of the types conda and rattler read, and
dependency specs they parse.

Upstream metadata is untrusted (and a local source's packages are the operator's, not
checked by anyone else): a record that fails here is kept out with the reason, never
published, so that one bad record cannot keep a client from reading the rest of the subdir.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from itertools import chain, repeat
from operator import attrgetter
from typing import Annotated, Any, Literal

import msgspec

from sitegen.conda.schema import SUFFIX_OF_KEY
from sitegen.conda.version import (
    MAX_SECONDS,
    readable_specs,
    readable_versions,
)

MAX_PACKAGE_SIZE = 1 << 40  # 1 TiB: larger claims are hostile or broken
# Printable, no path separators, no leading dot: a name that can only ever be a file in the subdir.
_SAFE_NAME = r"[A-Za-z0-9_+!][A-Za-z0-9._+!=,-]*"
_SAFE_FILENAME = re.compile(f"^{_SAFE_NAME}$")
# Safe file names joined by "/" (which none holds), for fullmatch: one call for a batch.
_SAFE_FILENAMES = re.compile(f"{_SAFE_NAME}(?:/{_SAFE_NAME})*")

REASON_BAD_FILENAME = "invalid filename"
REASON_NAME_MISMATCH = "filename disagrees with name-version-build"
REASON_SUBDIR_MISMATCH = "record subdir disagrees with its subdir"
REASON_BAD_SIZE = "invalid size"
REASON_NO_CHECKSUM = "missing or malformed checksum"
REASON_BAD_VERSION = "invalid version"
REASON_BAD_FIELDS = "malformed record"
REASON_BAD_TEXT = "text is not valid UTF-8"
# A `depends` or `constrains` entry that is no MatchSpec (``numpy >=>= 1``, ``(((``, empty):
# mamba fails to load the whole subdir over it, rattler the solve, conda the record.
REASON_BAD_SPEC = "unreadable dependency spec"
# The token or password the mirror's URL is filled in with (see sitegen.conda.record_secrets):
# a record, or an entry beside the records, that holds one.
REASON_SECRET = "holds a secret of the mirror's URL"
# CEP-48 `v3` (or any other top-level section listing packages): its records would reach
# clients without being filtered, checked or downloaded, so the section is not published.
REASON_UNMIRRORED_SECTION = "section lists packages sitegen does not mirror (e.g. CEP-48 v3)"


# Fields conda and rattler read as text (or absent, or null): of another type, a client
# cannot read the record, and rattler then fails every solve that asks for its package name.
_TEXT_FIELDS = ("platform", "arch", "features", "python_site_packages_path")
_TEXT_OR_NONE = frozenset((str, type(None)))
_NOARCH_KINDS = ("python", "generic")
# The optional fields checked that most records lack (none of them, at conda-forge).
_RARE_FIELDS = frozenset(
    (
        *_TEXT_FIELDS,
        "run_exports",
        "extra_depends",
        "noarch",
        "track_features",
        "legacy_bz2_md5",
        "legacy_bz2_size",
        "purls",
        "indexed_timestamp",
    )
)
# The times rattler reads (an integer, as conda writes it: rattler refuses a float), in
# milliseconds or (at most MAX_SECONDS) seconds: about the years -9999 to 9999, as measured with
# py-rattler 0.28; it refuses the record over a time outside them.
_FIRST_MS = MAX_SECONDS + 1
_LAST_MS = 253_402_207_200_000
_FIRST_SECOND = -377_705_023_201
_LAST_SECOND = _LAST_MS // 1000
_FIRST_INDEXED_MS = _FIRST_SECOND * 1000


def check_record(fn: Any, raw: Any, key: str, subdir: str) -> str | None:
    """Why this record must not be mirrored, or None when it is sound.

    The authority: plainly_sound (which parse_repodata asks first, of many records at once)
    accepts only records this accepts, and this alone gives a refused record its reason.
    """
    # A file name is at most 255 bytes (ASCII here: characters), and so stays a package's page.
    if type(fn) is not str or len(fn) > 255 or not _SAFE_FILENAME.match(fn) or ".." in fn:
        return REASON_BAD_FILENAME
    suffix = SUFFIX_OF_KEY[key]
    if not fn.endswith(suffix):
        return REASON_BAD_FILENAME
    if type(raw) is not dict:
        return REASON_BAD_FIELDS
    name, version, build = raw.get("name"), raw.get("version"), raw.get("build")
    if type(name) is not str or type(version) is not str or type(build) is not str:
        return REASON_BAD_FIELDS
    if not (name and version and build):
        return REASON_BAD_FIELDS
    if fn != f"{name}-{version}-{build}{suffix}":
        return REASON_NAME_MISMATCH
    record_subdir = raw.get("subdir")
    if record_subdir is not None and record_subdir != subdir:
        return REASON_SUBDIR_MISMATCH
    if record_subdir is None and "subdir" in raw:  # null: rattler reads text or nothing
        return REASON_BAD_FIELDS
    size = raw.get("size")
    if type(size) is not int or not 0 < size <= MAX_PACKAGE_SIZE:
        return REASON_BAD_SIZE
    timestamp = raw.get("timestamp")
    if timestamp is not None and (
        type(timestamp) is not int
        or not (_FIRST_MS <= timestamp <= _LAST_MS or _FIRST_SECOND <= timestamp <= _LAST_SECOND)
    ):
        return REASON_BAD_FIELDS
    # Text (an SPDX expression), or null: rattler refuses a list of licences, or a number.
    if (
        type(raw.get("license")) not in _TEXT_OR_NONE
        or type(raw.get("license_family")) not in _TEXT_OR_NONE
    ):
        return REASON_BAD_FIELDS
    sha256, md5 = raw.get("sha256"), raw.get("md5")
    if sha256 is None and md5 is None:
        return REASON_NO_CHECKSUM
    if sha256 is not None and not _is_hex(sha256, 32):
        return REASON_NO_CHECKSUM
    if md5 is not None and not _is_hex(md5, 16):
        return REASON_NO_CHECKSUM
    depends = raw.get("depends", [])
    if type(depends) is not list or not all_str(depends):
        return REASON_BAD_FIELDS
    build_number = raw.get("build_number")
    # Required, and a non-negative 64-bit integer: rattler refuses the record otherwise, conda
    # one without it (or with text or a float). mamba drops a record without one from
    # repodata.json but reads it from a shard as build number 0: the two would disagree.
    if type(build_number) is not int or not 0 <= build_number < 1 << 64:
        return REASON_BAD_FIELDS
    # A list, if there: rattler refuses a null one, as it does a null ``depends``.
    constrains = raw.get("constrains", [])
    if type(constrains) is not list or not all_str(constrains):
        return REASON_BAD_FIELDS
    # Most records have none of the rare fields: one look at the keys, no call.
    if not raw.keys().isdisjoint(_RARE_FIELDS) and not _readable_rare_fields(raw):
        return REASON_BAD_FIELDS
    if not readable_versions((version,)):
        return REASON_BAD_VERSION
    # Last: rattler is asked only about spec strings no record checked before had.
    if not readable_specs(depends) or (constrains and not readable_specs(constrains)):
        return REASON_BAD_SPEC
    return None


def _readable_rare_fields(raw: dict[str, Any]) -> bool:
    """Whether the record's rare optional fields are of the types rattler reads: ``noarch`` a
    kind (``python``, ``generic``) or a legacy boolean, ``track_features`` text or a list of
    it (not null), the text fields text or null, the others as commented below."""
    if not _TEXT_OR_NONE.issuperset(map(type, map(raw.get, _TEXT_FIELDS))):
        return False
    noarch = raw.get("noarch")
    if noarch is not None and type(noarch) is not bool and noarch not in _NOARCH_KINDS:
        return False
    tracked = raw.get("track_features", "")
    if type(tracked) is not str and (type(tracked) is not list or not all_str(tracked)):
        return False
    bz2_md5, bz2_size = raw.get("legacy_bz2_md5"), raw.get("legacy_bz2_size")
    if bz2_md5 is not None and not _is_hex(bz2_md5, 16):
        return False
    if bz2_size is not None and (type(bz2_size) is not int or not 0 <= bz2_size < 1 << 64):
        return False
    # Only the type: rattler also parses each package URL, which this does not.
    purls = raw.get("purls")
    if purls is not None and (type(purls) is not list or not all_str(purls)):
        return False
    # An integer, as CEP-47 has it: a positive one from upstream is published as it is (see
    # sitegen.conda.indexed), so it must be in rattler's range.
    indexed = raw.get("indexed_timestamp")
    if indexed is not None and (
        type(indexed) is not int or not _FIRST_INDEXED_MS <= indexed <= _LAST_MS
    ):
        return False
    # Lists of text by name (run_exports: weak, strong...; extra_depends: an extra's
    # dependencies); rattler reads a null run_exports as none, not a null extra_depends.
    exports = raw.get("run_exports")
    return (exports is None or _map_of_text_lists(exports)) and _map_of_text_lists(
        raw.get("extra_depends", {})
    )


def _map_of_text_lists(value: Any) -> bool:
    return type(value) is dict and all(
        type(items) is list and all_str(items) for items in value.values()
    )


def _is_hex(value: Any, size: int) -> bool:
    """Whether ``value`` is text of exactly ``2 * size`` hex digits (a digest of ``size``
    bytes). bytes.fromhex skips whitespace between pairs, which the length then gives away:
    twice as fast as a regular expression, 1.6 million times a run at conda-forge scale."""
    if type(value) is not str or len(value) != 2 * size:
        return False
    try:
        return len(bytes.fromhex(value)) == size
    except ValueError:
        return False


def all_str(items: list[Any]) -> bool:
    return not items or set(map(type, items)) == {str}


# ------------------------------------------------------------------ many records at once

# Integers within 63 bits: msgspec bounds an integer by int64 only (a build number or legacy
# size beyond it is left to check_record).
_INT63 = (1 << 63) - 1


class _Checked(msgspec.Struct, gc=False):
    """The fields check_record reads, each of a type (and range) it accepts: a record msgspec
    converts to this needs only the checks that relate fields (see plainly_sound)."""

    name: Annotated[str, msgspec.Meta(min_length=1)]
    version: Annotated[str, msgspec.Meta(min_length=1)]
    build: Annotated[str, msgspec.Meta(min_length=1)]
    build_number: Annotated[int, msgspec.Meta(ge=0, le=_INT63)]
    size: Annotated[int, msgspec.Meta(gt=0, le=MAX_PACKAGE_SIZE)]
    # Milliseconds or seconds; the gap between the two ranges is for plainly_sound.
    timestamp: Annotated[int, msgspec.Meta(ge=_FIRST_SECOND, le=_LAST_MS)] | None = None
    subdir: str | msgspec.UnsetType = msgspec.UNSET  # not null
    license: str | None = None
    license_family: str | None = None
    sha256: str | None = None
    md5: str | None = None
    depends: list[str] = []
    constrains: list[str] = []
    # The rare fields, as _readable_rare_fields reads them.
    platform: str | None = None
    arch: str | None = None
    features: str | None = None
    python_site_packages_path: str | None = None
    noarch: bool | Literal["python", "generic"] | None = None
    track_features: str | list[str] = ""
    legacy_bz2_md5: Annotated[str, msgspec.Meta(pattern=r"\A[0-9a-fA-F]{32}\Z")] | None = None
    legacy_bz2_size: Annotated[int, msgspec.Meta(ge=0, le=_INT63)] | None = None
    purls: list[str] | None = None
    indexed_timestamp: Annotated[int, msgspec.Meta(ge=_FIRST_INDEXED_MS, le=_LAST_MS)] | None = None
    run_exports: dict[str, list[str]] | None = None
    extra_depends: dict[str, list[str]] = {}


_NAMES = attrgetter("name")
_VERSIONS = attrgetter("version")
_BUILDS = attrgetter("build")
_TIMESTAMPS = attrgetter("timestamp")
_SUBDIRS = attrgetter("subdir")
_SHA256S = attrgetter("sha256")
_MD5S = attrgetter("md5")
_DEPENDS = attrgetter("depends")
_CONSTRAINS = attrgetter("constrains")


def plainly_sound(fns: list[str], raws: list[Any], key: str, subdir: str) -> bool:
    """True only when check_record accepts every one of these records (file names and
    records of one section); False when it refuses one, and for some it accepts (a build
    number beyond 63 bits). What check_record asks of each record in Python, this asks of
    them all in a few calls to C (msgspec, map, set and list operations): at conda-forge
    scale, check_record alone takes ~8 s for 800,000 records on a shared server."""
    try:
        checked = msgspec.convert(raws, list[_Checked])
    except msgspec.ValidationError:
        return False
    versions = list(map(_VERSIONS, checked))
    parts = zip(
        map(_NAMES, checked),
        repeat("-"),
        versions,
        repeat("-"),
        map(_BUILDS, checked),
        repeat(SUFFIX_OF_KEY[key]),
    )
    if fns != list(map("".join, parts)) or max(map(len, fns), default=0) > 255:
        return False
    # As many "/" as there are names but one: none holds one, so that each part is a name
    # (and no ".." spans two).
    joined = "/".join(fns)
    if joined.count("/") >= len(fns) or not _SAFE_FILENAMES.fullmatch(joined) or ".." in joined:
        return False
    if not {msgspec.UNSET, subdir}.issuperset(map(_SUBDIRS, checked)):
        return False
    stamps = sorted(filter(None, map(_TIMESTAMPS, checked)))
    after_seconds = bisect_right(stamps, _LAST_SECOND)
    if after_seconds < len(stamps) and stamps[after_seconds] < _FIRST_MS:
        return False
    sha256s, md5s = list(map(_SHA256S, checked)), list(map(_MD5S, checked))
    if (None, None) in zip(sha256s, md5s, strict=True):
        return False
    if not _all_hex(sha256s, 32) or not _all_hex(md5s, 16):
        return False
    depends = list(chain.from_iterable(map(_DEPENDS, checked)))
    constrains = list(chain.from_iterable(map(_CONSTRAINS, checked)))
    return (
        readable_versions(set(versions))
        and readable_specs(depends)
        and (not constrains or readable_specs(constrains))
    )


def _all_hex(values: list[str | None], size: int) -> bool:
    """Whether each of the values that is not None is text of ``2 * size`` hex digits: all
    of them together make ``size`` bytes each exactly when none holds whitespace (which
    bytes.fromhex skips) or anything else."""
    digests = [value for value in values if value is not None]
    if not set(map(len, digests)).issubset((2 * size,)):
        return False
    try:
        return len(bytes.fromhex("".join(digests))) == size * len(digests)
    except ValueError:
        return False
