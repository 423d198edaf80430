"""OSV advisories from a zip archive, as OSV publishes them per ecosystem (``all.zip``: one
advisory JSON per member), read in memory and within bounds.

Nothing is extracted: each ``*.json`` member is read into memory (at most
:attr:`ArchiveLimits.member_bytes`, about an advisory file's own cap) and parsed by
:func:`sitegen.filters.osv.parse_bytes`, so an advisory from an archive is checked exactly as
one from a file, but for a severity entry that cannot be scored (a vector that does not parse,
a ``type`` or ``score`` missing): that advisory counts as unscored (blocking at any
``min_score``) instead of refusing the archive. Other members (directories, a README) are
passed over unread. What would make the archive a bomb or a trap
is refused, and the whole archive with it: more members than :attr:`ArchiveLimits.members`, a
member or a total decompressed size past the caps, more versions and range events kept than
:attr:`ArchiveLimits.versions`, a member name that is absolute or climbs out (``..``) or holds
control characters, an encrypted member. A damaged archive (not a zip, cut short, a CRC that
does not match) and a member that is not a valid advisory are refused likewise: an archive is
used whole or not at all, since an advisory left out would let what it names through.
"""

from __future__ import annotations

import lzma
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from sitegen.config.operator_files import MAX_FILE_BYTES
from sitegen.config.yaml_nodes import shown_reason, shown_value
from sitegen.filters.json_nodes import JsonFileError
from sitegen.filters.osv import Advisory, parse_bytes


class ArchiveError(ValueError):
    """Why an advisory archive cannot be used (safe to show: names members, never a URL)."""


@dataclass(frozen=True)
class ArchiveLimits:
    # PyPI's archive holds some 20,000 advisories, npm's a few hundred thousand (most of them
    # malware reports): room for several times the largest, not for a bomb of empty entries.
    members: int = 1_000_000
    member_bytes: int = MAX_FILE_BYTES
    total_bytes: int = 2 << 30
    # zipfile reads the central directory in one read before it makes an object of each
    # entry: one far larger than ``members`` entries need is refused before that.
    directory_bytes: int = 256 << 20
    # The versions listed and range events of every affected entry, all told: they are what
    # an advisory keeps of its file, some 60 to 110 bytes of memory each against a few bytes
    # of JSON, so ``total_bytes`` of a member repeating ``"1",`` would hold twenty gigabytes.
    # OSV's archives list a few million (PyPI's and Maven's enumerate affected versions).
    versions: int = 20_000_000


def read_archive(path: Path, limits: ArchiveLimits = ArchiveLimits()) -> tuple[Advisory, ...]:
    """Every advisory of the archive at ``path``; ArchiveError when it cannot be used."""
    try:
        with path.open("rb") as raw:
            size = raw.seek(0, 2)
            raw.seek(0)
            # A member is read in pieces of at most what is asked (its cap) and zipfile's
            # minimum read.
            reads = max(limits.directory_bytes, limits.member_bytes + (64 << 10))
            bounded = _BoundedReads(raw, size, reads)
            with zipfile.ZipFile(bounded) as archive:  # type: ignore[arg-type]
                return _advisories(archive, limits)
    except ArchiveError:
        raise
    except JsonFileError as exc:
        raise ArchiveError(
            f"member {shown_value(str(exc.file))}: {_where(exc)}{exc.message}"
        ) from None
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        EOFError,
        ValueError,
        zlib.error,  # damaged compressed data
        lzma.LZMAError,
        NotImplementedError,  # a compression method zipfile does not know
    ) as exc:
        # zipfile's reason may quote member names as the archive spells them, twice, each up
        # to 65,535 bytes: it goes into the log and every mirror's run record.
        raise ArchiveError(f"not a readable zip archive: {shown_reason(str(exc))}") from None
    except OSError as exc:
        raise ArchiveError(f"cannot read: {exc.strerror or exc}") from None


def _where(exc: JsonFileError) -> str:
    return f"{exc.where}: " if exc.where else ""


def _advisories(archive: zipfile.ZipFile, limits: ArchiveLimits) -> tuple[Advisory, ...]:
    members = archive.infolist()
    if len(members) > limits.members:
        raise ArchiveError(f"more than {limits.members} members")
    advisories: list[Advisory] = []
    total = kept = 0
    for info in members:
        name = info.filename
        unsafe = unsafe_name(name)
        if unsafe:
            raise ArchiveError(f"unsafe member name {shown_value(name)}: {unsafe}")
        if info.is_dir() or not name.lower().endswith(".json"):
            continue
        if info.flag_bits & 0x1:
            raise ArchiveError(f"member {shown_value(name)} is encrypted")
        if info.file_size > limits.member_bytes:
            raise ArchiveError(
                f"member {shown_value(name)} is larger than {_mib(limits.member_bytes)}"
            )
        # The sizes the archive states may lie: what is read is what counts.
        with archive.open(info) as stream:
            data = stream.read(limits.member_bytes + 1)
        if len(data) > limits.member_bytes:
            raise ArchiveError(
                f"member {shown_value(name)} is larger than {_mib(limits.member_bytes)}"
            )
        total += len(data)
        if total > limits.total_bytes:
            raise ArchiveError(f"its members decompress to more than {_mib(limits.total_bytes)}")
        # A severity entry the scorer cannot read (a feed's data, no operator can fix it)
        # makes its advisory unscored, which blocks at any min_score, rather than refuse the
        # whole feed.
        parsed = parse_bytes(data, Path(name), unscored_ok=True)
        kept += sum(_versions(advisory) for advisory in parsed)
        if kept > limits.versions:
            raise ArchiveError(
                f"its advisories list more than {limits.versions:,} versions and range events"
            )
        advisories.extend(parsed)
    if not advisories:
        # A feed that suddenly holds nothing (an error page zipped, a wrong path) must not
        # clear every block its last copy kept.
        raise ArchiveError("holds no advisories (no *.json member)")
    return tuple(advisories)


def _versions(advisory: Advisory) -> int:
    """How many versions and range events an advisory keeps."""
    return sum(
        len(entry.versions) + sum(len(r.events) for r in entry.ranges)
        for entry in advisory.affected
    )


def unsafe_name(name: str) -> str | None:
    """Why a member name could not be a file's name below a directory, or None. Nothing is
    extracted, but a name that climbs out or hides control characters is no archive of
    advisories: such an archive is refused rather than trusted."""
    if not name or not name.isprintable():
        return "empty, or holds control characters"
    if "\\" in name:
        return "holds a backslash"
    path = PurePosixPath(name)
    if path.is_absolute() or (len(name) > 1 and name[1] == ":"):
        return "an absolute path"
    if ".." in path.parts:
        return "climbs out of the archive (..)"
    return None


def _mib(size: int) -> str:
    return f"{size / (1 << 20):g} MiB"


class _BoundedReads:
    """The archive's file as zipfile reads it, refusing any one read larger than ``limit``
    (zipfile reads the central directory whole, and a member's data up to what is asked)."""

    def __init__(self, raw: BinaryIO, size: int, limit: int) -> None:
        self._raw = raw
        self._size = size
        self._limit = limit

    def read(self, n: int | None = -1) -> bytes:
        wanted = self._size - self._raw.tell() if n is None or n < 0 else n
        if wanted > self._limit:
            raise ArchiveError(f"its zip directory is larger than {_mib(self._limit)}")
        return self._raw.read(wanted)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def seekable(self) -> bool:
        return True
