"""Index one package file: its repodata record, as conda-index builds it, from the file itself.

The record is ``info/index.json`` as the package carries it, less the keys that describe the
build machine, plus ``size``, ``md5`` and ``sha256`` of the file; ``info/about.json`` supplies
the descriptive fields that ``channeldata.json`` and the pages show (which of either is
published is :mod:`sitegen.conda.package_metadata`), ``info/run_exports.json`` its entry in the
subdir's CEP-12 ``run_exports.json`` (see :mod:`sitegen.conda.run_exports`). All are read with
``conda-package-streaming`` (the conda project's own reader) in the pass that feeds the digests.

Package files are untrusted input: every way one can be broken or hostile ends in
:class:`BadPackage` with a short, categorical reason (counted in the run report), never in an
exception that would stop the others. What is read is capped: a metadata member larger than
:data:`MAX_MEMBER`, or an archive of more than :func:`scan_limit` decompressed bytes, is
refused, so a decompression bomb costs neither memory nor unbounded time.

Installing a package extracts it whole, every member in turn into one folder (both inner
archives of a ``.conda``), so every member is looked at: one written later over the metadata
read (by name, or through a link: see :class:`Links`) would publish one record and install another.
"""

from __future__ import annotations

import errno
import io
import json
import os
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sitegen.conda.hashing_reader import CHUNK, HashingReader, Pread
from sitegen.conda.member_path import Links, TooManyLinks, in_info, in_info_part, landing
from sitegen.conda.package_metadata import about_fields, published_index, unwritable
from sitegen.conda.record_check import check_record
from sitegen.conda.run_exports import EMPTY, entry_of
from sitegen.conda.schema import CONDA_SUFFIX, TAR_BZ2_SUFFIX, section_of

if TYPE_CHECKING:
    from sitegen.conda.info_tar import Members

INDEX_JSON = "info/index.json"
ABOUT_JSON = "info/about.json"
RUN_EXPORTS_JSON = "info/run_exports.json"
MAX_MEMBER = 8 << 20  # index.json / about.json larger than this are not metadata
# ...nor are they with more values than this. Each JSON value becomes a Python object of 50 to
# 100 bytes: 8 MiB of "{}," (a KiB compressed) would hold 200 MiB per package. A record's
# values are a few dozen, its depends and constrains up to some thousands.
MAX_JSON_VALUES = 100_000
# A .conda's zip directory is read in one piece and held as one object per entry: a .conda
# has three entries (a few hundred bytes); millions of them would take gigabytes.
MAX_ZIP_READ = 1 << 20
MIN_SCAN = 256 << 20  # decompressed bytes always allowed in an archive (each of a .conda's)
SCAN_RATIO = 100  # ...and beyond that, this many times the file's own size
# The version of the rules index_package indexes by: bump it whenever what it accepts or what
# it makes of a file changes (a check added or eased, a field of the record, about or
# run_exports made otherwise). A local source's index cache keeps each verdict with the version
# it was reached by and indexes the file again under another (see sitegen.sync.local_index);
# else a package refused now stays published, or its record as made, until the file changes.
INDEX_VERSION = 12
REASON_UNREADABLE = "unreadable or corrupt archive"
REASON_TRUNCATED = "truncated archive"
REASON_NO_INFO = "archive lacks its info/ part"
REASON_NO_PKG = "archive lacks its pkg/ part"
REASON_NO_INDEX = "info/index.json missing"
REASON_BAD_INDEX = "info/index.json is not a JSON object"
REASON_KEY_TWICE = "info/index.json names a key twice"
REASON_INDEX_KEYS = "info/index.json lacks name, version, build or subdir"
REASON_UNSAFE_PATH = "unsafe path inside the archive"
REASON_TOO_LARGE = "absurd size inside the archive"
REASON_CHANGED = "changed or vanished while being read"
REASON_CANNOT_READ = "cannot be read"  # followed by what the OS said
REASON_NOT_FILE = "not a regular file"
REASON_TWO_INDEXES = "info/index.json twice in the archive"
REASON_INFO_IN_PKG = "info/ files in the archive's pkg/ part"
REASON_EXTRA_PART = "archive holds a part besides info/ and pkg/"


class BadPackage(Exception):
    """A package file that cannot be indexed; ``reason`` is categorical, ``detail`` specific."""

    def __init__(self, reason: str, detail: str = "") -> None:
        # The detail quotes the package (its index.json's name, its member names): on one
        # printable line, as `sitegen add` prints it, whatever control characters it holds.
        detail = detail if detail.isprintable() else repr(detail)
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class FileStat:
    """What identifies one version of a file on disk: a change to any means read it again.

    The mtime alone cannot tell: a file rewritten in place with its mtime set back (``touch
    -r``, ``cp -p``, ``rsync --times``) keeps size, mtime and inode. Its ctime cannot be set
    back: every write, ``utime``, rename, chmod or new hard link moves it to the present."""

    size: int
    mtime_ns: int
    inode: int
    ctime_ns: int

    @classmethod
    def of(cls, result: os.stat_result) -> FileStat:
        return cls(result.st_size, result.st_mtime_ns, result.st_ino, result.st_ctime_ns)


@dataclass
class IndexedPackage:
    fn: str
    subdir: str
    record: dict[str, Any]  # the repodata record
    about: dict[str, Any] = field(default_factory=dict)
    stat: FileStat | None = None
    # CEP-12: its run_exports as published (``{}`` when it exports nothing); None when unknown
    # (its info/run_exports.json is not sound, or lies past what is read).
    run_exports: bytes | None = None


def scan_limit(size: int) -> int:
    """Decompressed bytes an archive (each inner one of a ``.conda``) may hold."""
    return max(MIN_SCAN, SCAN_RATIO * size)


def index_package(path: Path, fn: str | None = None, pread: Pread = os.pread) -> IndexedPackage:
    """Index the package file at ``path`` (named ``fn``, default its own name); BadPackage when
    it cannot be published. ``pread`` reads the file's bytes (tests stand in a reader that
    changes the file between two reads)."""
    fn = fn or path.name
    if not fn.endswith((CONDA_SUFFIX, TAR_BZ2_SUFFIX)):
        raise BadPackage(REASON_NOT_FILE, "not a .conda or .tar.bz2 name")
    try:
        # O_NONBLOCK: a file swapped for a named pipe since it was listed must not make the
        # open wait for a writer (reads of a regular file ignore the flag).
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise _unreadable(exc) from None
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise BadPackage(REASON_NOT_FILE)
        reader = HashingReader(fd, pread)
        index, about, exports = _read_info(reader, fn, before.st_size)
        size = reader.finish()
        after = os.fstat(fd)
    except OSError as exc:
        raise _unreadable(exc) from None
    finally:
        os.close(fd)
    if size != before.st_size or FileStat.of(after) != FileStat.of(before):
        raise BadPackage(REASON_CHANGED, "written to during the read")
    try:
        now = FileStat.of(os.stat(path, follow_symlinks=False))
    except OSError:
        raise BadPackage(REASON_CHANGED, "gone after the read") from None
    if now != FileStat.of(before):
        raise BadPackage(REASON_CHANGED, "replaced during the read")
    record = published_index(index)
    record.update(md5=reader.md5.hexdigest(), sha256=reader.sha256.hexdigest())
    record["size"] = size
    subdir = record.get("subdir")
    reason = check_record(fn, record, section_of(fn), subdir if isinstance(subdir, str) else "")
    if reason is not None:
        raise BadPackage(reason, f"index.json names {_stem(index)}")
    return IndexedPackage(fn, record["subdir"], record, about, FileStat.of(before), exports)


def _unreadable(exc: OSError) -> BadPackage:
    """A file gone, or swapped for a link, since it was listed changed; any other error
    (permissions, the disk) is the OS's to say, which tells the operator what to do."""
    if exc.errno in (errno.ENOENT, errno.ELOOP):
        return BadPackage(REASON_CHANGED, exc.strerror or str(exc))
    return BadPackage(f"{REASON_CANNOT_READ}: {exc.strerror or type(exc).__name__}")


class _CappedReads:
    """The file as the zip reader reads it: no single read beyond :data:`MAX_ZIP_READ` (its
    central directory comes in one read, whatever size the archive claims; members come in
    the decompressor's chunks)."""

    def __init__(self, stream: io.BufferedReader) -> None:
        self.stream = stream

    def read(self, size: int | None = -1) -> bytes:
        to_end = size is None or size < 0  # the zip reader reads its end record so
        data = self.stream.read(MAX_ZIP_READ + 1 if to_end else min(size, MAX_ZIP_READ + 1))
        if len(data) > MAX_ZIP_READ:
            raise BadPackage(REASON_TOO_LARGE, f"a zip read of more than {MAX_ZIP_READ} bytes")
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self.stream.seek(offset, whence)

    def tell(self) -> int:
        return self.stream.tell()

    def seekable(self) -> bool:
        return True


def _stem(index: dict[str, Any]) -> str:
    return f"{index.get('name')}-{index.get('version')}-{index.get('build')}"


def _read_info(
    reader: HashingReader, fn: str, size: int
) -> tuple[dict[str, Any], dict[str, Any], bytes | None]:
    """index.json, the about fields and the run_exports, through conda-package-streaming."""
    # Imported on first use: only local sources read package files.
    from sitegen.conda.info_tar import bz2_ends, conda_members, tar_bz2_members

    # The info/ part usually comes first: a .tar.bz2 cut short whose metadata is intact would
    # be indexed (the digests taken of its shorter bytes) without ever decompressing the rest.
    if fn.endswith(TAR_BZ2_SUFFIX) and not bz2_ends(reader.fd, size):
        raise BadPackage(REASON_TRUNCATED, "no bzip2 end-of-stream marker")
    stream = io.BufferedReader(reader, CHUNK)
    members: dict[str, bytes] = {}
    links = Links()  # both inner archives of a .conda are extracted into one folder
    archive: zipfile.ZipFile | None = None
    with _archive_errors():
        if fn.endswith(CONDA_SUFFIX):
            archive = zipfile.ZipFile(_CappedReads(stream))
            names = archive.namelist()
            if not any(n.startswith("pkg-") for n in names):
                raise BadPackage(REASON_NO_PKG)
            # The inner archives carry the stem the package was built under: read them by
            # that, so that a renamed file is reported as such (its index.json disagrees).
            info = [n for n in names if n.startswith("info-") and n.endswith(".tar.zst")]
            if len(info) != 1:
                raise BadPackage(REASON_NO_INFO)
            components = conda_members(archive, info[0])
        else:
            components = tar_bz2_members(stream)
        exports_known = _collect(components, members, scan_limit(size), links, archive is not None)
    if INDEX_JSON not in members:
        raise BadPackage(REASON_NO_INDEX)
    index = _json(members[INDEX_JSON])
    if not isinstance(index, dict):
        raise BadPackage(REASON_BAD_INDEX)
    if not all(isinstance(index.get(k), str) for k in ("name", "version", "build", "subdir")):
        raise BadPackage(REASON_INDEX_KEYS)
    # Python's JSON reader takes what repodata cannot carry: a lone surrogate escape
    # ("\\ud800") cannot be written as UTF-8 (the index cache and repodata would fail to
    # encode, ending the whole run), and NaN or 1e999 would be published as null. Refused as
    # upstream records holding them are.
    problem = unwritable(index)
    if problem is not None:
        raise BadPackage(problem)
    stem = fn.removesuffix(CONDA_SUFFIX)
    if archive is not None and stem == _stem(index):
        _check_conda_parts(archive.namelist(), stem)
        with _archive_errors():
            _check_pkg_part(conda_members(archive, f"pkg-{stem}.tar.zst"), scan_limit(size), links)
    try:
        # Only descriptive: a broken about.json costs the package its summary, not its place.
        about = _json(members[ABOUT_JSON]) if ABOUT_JSON in members else {}
    except BadPackage:
        about = {}
    if RUN_EXPORTS_JSON not in members:
        return index, about_fields(about), EMPTY if exports_known else None
    try:
        read = _json(members[RUN_EXPORTS_JSON])
    except BadPackage:
        read = None  # not sound: costs a build tool the read of the package, nothing more
    exports = entry_of(read) if unwritable(read) is None else None
    return index, about_fields(about), exports


@contextmanager
def _archive_errors() -> Iterator[None]:
    """What reading an archive's contents raises, as the BadPackage it makes of the file."""
    from sitegen.conda.info_tar import HeadersTooLarge

    try:
        yield
    except BadPackage:
        raise
    except (HeadersTooLarge, TooManyLinks) as exc:
        raise BadPackage(REASON_TOO_LARGE, str(exc)) from None
    except LookupError:
        raise BadPackage(REASON_NO_INFO) from None
    except EOFError as exc:
        raise BadPackage(REASON_TRUNCATED, str(exc)) from None
    except OSError as exc:
        if exc.errno is not None:  # the file itself, not its contents
            raise
        raise BadPackage(REASON_UNREADABLE, str(exc)) from None
    except Exception as exc:  # tarfile, zipfile, zstd and bz2 each raise their own
        raise BadPackage(REASON_UNREADABLE, f"{type(exc).__name__}: {exc}") from None


def _check_conda_parts(names: list[str], stem: str) -> None:
    """conda finds a .conda's inner archives by the file's own stem (the one entry whose name
    starts with ``info-<stem>``, and ``pkg-<stem>``): without them, it cannot install the
    file, whatever the archives named for another file hold. rattler extracts every
    ``.tar.zst`` entry into the package's folder: a third one would add to what is read."""
    for part, reason in (("info", REASON_NO_INFO), ("pkg", REASON_NO_PKG)):
        found = [n for n in names if n.startswith(f"{part}-{stem}")]
        if found != [f"{part}-{stem}.tar.zst"]:
            raise BadPackage(reason, f"no {part}-{stem}.tar.zst alone of its name")
    parts = (f"info-{stem}.tar.zst", f"pkg-{stem}.tar.zst")
    extra = [n for n in names if n.rstrip("/\\").endswith(".tar.zst") and n not in parts]
    if extra:
        raise BadPackage(REASON_EXTRA_PART, repr(extra[0])[:200])


def _landing(member: tarfile.TarInfo, limit: int, links: Links) -> str:
    """Where extracting ``member`` writes it (see :func:`landing`), once its name, the links
    before it and its place in the archive are checked (any: the installer extracts all)."""
    where = landing(member.name)
    if where is None or links.through(where, member):
        raise BadPackage(REASON_UNSAFE_PATH, repr(member.name)[:200])
    if member.offset_data > limit:
        raise BadPackage(REASON_TOO_LARGE, f"more than {limit} decompressed bytes")
    if member.size > limit:
        raise BadPackage(REASON_TOO_LARGE, f"{member.name[:200]}: {member.size} bytes")
    return where


def _collect(
    components: Members, members: dict[str, bytes], limit: int, links: Links, conda: bool
) -> bool:
    """Read index.json, about.json and run_exports.json out of the tar stream, checking every
    member, to the stream's end: a ``.tar.bz2``'s payload too (bzip2 is slow to decompress,
    but the file is read once), since the installer extracts every member in turn and the
    last one written to a path stays. So a second index.json anywhere is refused, and the last
    about.json and run_exports.json are the ones read. False when the last run_exports.json
    could not be read (its entry is unknown, not none). ``conda``: the stream is a .conda's
    info- archive (see :func:`in_info_part`)."""
    exports_known = True
    for tar, member in components:
        landing = _landing(member, limit, links)
        if conda and not in_info_part(landing, member):
            raise BadPackage(REASON_UNSAFE_PATH, repr(member.name)[:200])
        if landing == INDEX_JSON and INDEX_JSON in members:
            raise BadPackage(REASON_TWO_INDEXES, repr(member.name)[:200])
        if landing == RUN_EXPORTS_JSON and not (member.isfile() and member.size <= MAX_MEMBER):
            # run_exports.json only describes: one that is not a small file is left unread.
            members.pop(RUN_EXPORTS_JSON, None)
            exports_known = False
            continue
        if landing not in (INDEX_JSON, ABOUT_JSON, RUN_EXPORTS_JSON):
            continue
        if not member.isfile():
            raise BadPackage(REASON_UNSAFE_PATH, f"{member.name} is not a regular file")
        if member.size > MAX_MEMBER:
            raise BadPackage(REASON_TOO_LARGE, f"{member.name}: {member.size} bytes")
        handle = tar.extractfile(member)
        data = handle.read(MAX_MEMBER + 1) if handle is not None else b""
        if len(data) != member.size:
            raise BadPackage(REASON_TRUNCATED, f"{member.name}: short read")
        members[landing] = data
        exports_known = exports_known or landing == RUN_EXPORTS_JSON
    return exports_known


def _check_pkg_part(components: Members, limit: int, links: Links) -> None:
    """A .conda's pkg- archive, checked member by member as the info- one is: none may land in
    info/. conda extracts it into the folder the info- archive goes to (rattler in the zip's
    order, after it when it comes later), where it would replace or add to what was read."""
    for _tar, member in components:
        landing = _landing(member, limit, links)
        if in_info(landing):
            raise BadPackage(REASON_INFO_IN_PKG, repr(member.name)[:200])


def _json(data: bytes) -> Any:
    # Every value but the first follows a comma, a colon or an opening bracket: counted in
    # the bytes (strings holding them count too), before a single object is made.
    values = data.count(b",") + data.count(b":") + data.count(b"[") + 1
    if values > MAX_JSON_VALUES:
        raise BadPackage(REASON_TOO_LARGE, f"more than {MAX_JSON_VALUES} JSON values")
    try:
        # Decoded as UTF-8 first: given bytes, Python's reader also takes UTF-16, UTF-32 and a
        # byte order mark, which rattler (and JSON as exchanged, RFC 8259) does not.
        return json.loads(data.decode("utf-8"), object_pairs_hook=_unique_keys)
    except _KeyTwice as exc:
        raise BadPackage(REASON_KEY_TWICE, repr(exc.args[0])[:200]) from None
    except (ValueError, RecursionError):
        raise BadPackage(REASON_BAD_INDEX) from None


class _KeyTwice(Exception):
    """An object of the JSON names this key twice."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Which of two values counts depends on the reader (Python's takes the last, others the
    # first, rattler refuses the file): the record published would not be the package's.
    made: dict[str, Any] = {}
    for key, value in pairs:
        if key in made:
            raise _KeyTwice(key)
        made[key] = value
    return made
