"""Folders of package files for local sources: good packages from the project's builder, and
broken or hostile ones assembled member by member."""

from __future__ import annotations

import bz2
import io
import json
import tarfile
import textwrap
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import trio
import zstandard

from sitegen.config import SiteConfig, parse_config
from sitegen.sync.report import RunReport
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import Format, PackageSpec, build_package
from testkit.site import published

# What old and current build tools write into index.json about the build machine and the old
# package format; conda-index leaves all of it out of repodata.
BUILD_KEYS = {
    "arch": "x86_64",
    "platform": "linux",
    "has_prefix": True,
    "mtime": 1_600_000_000,
    "ucs": 4,
    "requires_features": {},
    "binstar": {"channel": "main"},
    "target-triplet": "x86_64-any-linux",
    "machine": "x86_64",
    "operatingsystem": "linux",
}


def drop(folder: Path, spec: PackageSpec, fmt: Format, by_subdir: bool = False) -> Path:
    """Build one real package into the folder (top level, or its ``<subdir>/`` folder)."""
    directory = folder / spec.subdir if by_subdir else folder
    path = directory / spec.filename(fmt)
    build_package(path, spec.index_json(), spec.payload(), fmt=fmt)
    return path


def drop_all(
    folder: Path, specs: Iterable[PackageSpec], by_subdir: bool = False
) -> dict[str, Path]:
    """Every spec in each of its formats; fn -> path."""
    out = {}
    for spec in specs:
        for fmt in spec.formats:
            path = drop(folder, spec, fmt, by_subdir)
            out[path.name] = path
    return out


CHANNEL = "internal/own"  # the channel of local_config
MIRROR = "internal-own"  # the name of its one mirror, the folder
# Two linux-64 packages, one build each, for a folder a test drops files into one by one.
FOO = PackageSpec("foo", "1.0", "h1_0")
BAR = PackageSpec("bar", "2.0", "h2_0")

# Good packages of both subdirs, with the fields an index must carry over.
SPECS = [
    PackageSpec(
        "foo",
        "1.0",
        "h1_0",
        depends=("bar >=1", "libc"),
        constrains=("baz <2",),
        license="MIT",
        license_family="MIT",
        timestamp_ms=1_700_000_000_123,
        extra={"track_features": "", "features": ""},
    ),
    PackageSpec("foo", "1.1", "h2_1", build_number=1, timestamp_ms=1_700_000_100_000),
    PackageSpec("bar", "2.0", "py_0", subdir="noarch", noarch="python", depends=("python",)),
    PackageSpec("gen", "0.1", "0", subdir="noarch", noarch="generic", license="BSD-3-Clause"),
]


def run(config: SiteConfig) -> RunReport:
    """One mirror run of ``config``, from synchronous code."""
    return trio.run(run_mirror, config, MirrorOptions(progress=False))


def local_config(
    site: Path, folder: Path, subdirs: str = "[linux-64]", extra: str = ""
) -> SiteConfig:
    """A site with one channel, ``internal/own``, fed by the folder."""
    text = f"""
    output: {site}
    channels:
      internal/own:
        path: {folder}
        subdirs: {subdirs}
    """
    return parse_config(textwrap.dedent(text) + textwrap.indent(textwrap.dedent(extra), "    "))


def run_and_refusals(tmp_path: Path, folder: Path) -> tuple[set[str], dict[str, str]]:
    """Mirror ``folder`` (:func:`local_config`) into ``tmp_path/site``: the file names its
    ``linux-64`` publishes, and the refused ones with their reasons."""
    site = tmp_path / "site"
    report = trio.run(run_mirror, local_config(site, folder), MirrorOptions(progress=False))
    assert not report.failed
    refused: dict[str, str] = {}
    for sub in report.mirrors[0].subdirs.values():
        refused.update(sub.rejected_examples)
    return published(site, "internal/own", "linux-64"), refused


# --------------------------------------------------------------------------- hand-made archives


class Link(NamedTuple):
    """A tar member that is a link to ``target``: a symlink, or a hard link."""

    target: str
    hard: bool = False


class Directory(NamedTuple):
    """A tar member that is a directory."""

    mode: int = 0o755


Member = tuple[str, bytes | int | Link | Directory]


def tar_of(members: Iterable[Member]) -> bytes:
    """An uncompressed tar; a member given as an int claims that size and holds no bytes (the
    archive ends right after its header)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if isinstance(data, Link):
                info.type = tarfile.LNKTYPE if data.hard else tarfile.SYMTYPE
                info.linkname = data.target
                tar.addfile(info)
                continue
            if isinstance(data, Directory):
                info.type, info.mode = tarfile.DIRTYPE, data.mode
                tar.addfile(info)
                continue
            if isinstance(data, int):
                info.size = data
                buffer.write(info.tobuf(tarfile.GNU_FORMAT))
                return buffer.getvalue()
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def info_members(index: Any, about: Any = None) -> list[Member]:
    text = index if isinstance(index, bytes) else json.dumps(index).encode()
    members: list[Member] = [("info/index.json", text)]
    if about is not None:
        members.append(("info/about.json", json.dumps(about).encode()))
    return members


def write_tar_bz2(path: Path, members: Iterable[Member]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bz2.compress(tar_of(members)))
    return path


def write_header_bomb(
    path: Path, index: dict[str, Any], headers: Iterable[tuple[bytes, int]]
) -> Path:
    """A .tar.bz2 whose info/ members come after tar extended headers (``type``: a pax header,
    a GNU long name...) of ``size`` bytes each, filled with "a": a few KiB on disk however
    large they are."""
    compressor = bz2.BZ2Compressor(9)
    chunk = b"a" * (1 << 20)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        for kind, size in headers:
            header = tarfile.TarInfo("././@LongLink")
            header.type, header.size = kind, size
            out.write(compressor.compress(header.tobuf(tarfile.GNU_FORMAT)))
            left = size + (-size % tarfile.BLOCKSIZE)
            while left:
                out.write(compressor.compress(chunk[: min(left, len(chunk))]))
                left -= min(left, len(chunk))
        # The member the extended headers apply to, then the package's metadata.
        out.write(compressor.compress(tarfile.TarInfo("info/x").tobuf(tarfile.GNU_FORMAT)))
        out.write(compressor.compress(tar_of(info_members(index))))
        out.write(compressor.flush())
    return path


def index_member(index: dict[str, Any]) -> bytes:
    """info/index.json as the first member of a tar (its header, text and padding), with no end
    of archive: what follows it is the caller's."""
    data = json.dumps(index).encode()
    header = tarfile.TarInfo("info/index.json")
    header.size = len(data)
    return header.tobuf(tarfile.GNU_FORMAT) + data + bytes(-len(data) % tarfile.BLOCKSIZE)


def write_member_flood(path: Path, index: dict[str, Any], count: int) -> Path:
    """A .tar.bz2 of info/index.json and then ``count`` empty members, all named ``share/x``:
    half a KiB of tar each, a few bytes of bzip2 per thousand."""
    compressor = bz2.BZ2Compressor(9)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        out.write(compressor.compress(index_member(index)))
        block = tarfile.TarInfo("share/x").tobuf(tarfile.GNU_FORMAT) * 1000
        for _ in range(count // 1000):
            out.write(compressor.compress(block))
        out.write(compressor.compress(bytes(2 * tarfile.BLOCKSIZE)))
        out.write(compressor.flush())
    return path


def write_payload_bomb(
    path: Path, index: dict[str, Any], payload: int, about: dict[str, Any] | None = None
) -> Path:
    """A .tar.bz2 whose info/index.json comes first, followed by ``payload`` bytes of zeros in
    members of 240 MiB each, then info/about.json (when given) and the end of the archive: one
    bzip2 stream after another, 16 MiB of zeros taking 45 bytes, so a terabyte takes 3 MiB."""
    block, member = 16 << 20, 240 << 20
    zeros = bz2.compress(bytes(block))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        out.write(bz2.compress(index_member(index)))
        for number in range(payload // member):
            header = tarfile.TarInfo(f"info/pad{number}")
            header.size = member
            out.write(bz2.compress(header.tobuf(tarfile.GNU_FORMAT)))
            out.write(zeros * (member // block))
        out.write(bz2.compress(tar_of(info_members(index, about)[1:])))
    return path


def write_conda(
    path: Path,
    info: Iterable[Member] | None,
    pkg: bool = True,
    pkg_members: Iterable[Member] = (("share/x.txt", b"x"),),
    info_first: bool = False,
    more: Iterable[tuple[str, Iterable[Member]]] = (),
) -> Path:
    """A .conda: metadata.json, a pkg- and an info- archive (each left out on request; the
    info- one first, as conda-package-handling 1.x wrote them, on request), then ``more``
    zip entries, each (name, the members of the zstd tar it holds)."""
    stem = path.name[: -len(".conda")]
    compress = zstandard.ZstdCompressor().compress
    parts = []
    if pkg:
        parts.append((f"pkg-{stem}.tar.zst", pkg_members))
    if info is not None:
        parts.insert(0 if info_first else len(parts), (f"info-{stem}.tar.zst", info))
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("metadata.json", json.dumps({"conda_pkg_format_version": 2}))
        for name, members in [*parts, *more]:
            archive.writestr(name, compress(tar_of(members)))
    return path


def index_of(name: str, version: str = "1.0", build: str = "0", **more: Any) -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "build": build,
        "build_number": 0,
        "subdir": "linux-64",
        "depends": [],
        **more,
    }
