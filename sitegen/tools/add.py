"""``sitegen add CHANNEL FILE...``: the upload path for CI jobs, into a channel's local source.

Every file is checked first (a readable conda package whose name, version, build and subdir
agree with its file name, for a subdir the source publishes); only when all pass are they
copied, each atomically (written beside under a dot-name ending in ``.partial``, which indexing
ignores, flushed, then renamed), into the source folder. A file of that name already in the
folder is replaced where it is; a new one goes to ``<folder>/<subdir>/``. A file named by a
link is the file the link leads to, added under its own name. Publishing is then a
mirror run of that source (the caller's part).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sitegen.conda.index import BadPackage, IndexedPackage, index_package
from sitegen.config import MirrorConfig, SiteConfig
from sitegen.store.temp_names import short_name
from sitegen.sync.local import folder_of, is_local

log = logging.getLogger("sitegen")

CHUNK = 1 << 20


class AddError(Exception):
    """Nothing (more) was added: ``usage`` for a request that cannot be carried out (unknown
    channel, no local source), else bad files or a failed copy; one line per problem."""

    def __init__(self, *lines: str, usage: bool = False) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines
        self.usage = usage


def add_files(config: SiteConfig, channel_path: str, paths: list[Path]) -> MirrorConfig:
    """Check every file, then copy each into the channel's local source; the local mirror
    to publish."""
    mirror = local_mirror(config, channel_path)
    good, problems = check_files(mirror, paths)
    if problems:
        raise AddError(*problems, "nothing was added")
    for checked in good:
        try:
            target = copy_in(mirror, checked)
        except OSError as exc:
            raise AddError(f"{checked.path}: {exc.strerror or exc}") from None
        log.info("added %s", target)
    return mirror


@dataclass(frozen=True)
class Checked:
    path: Path
    package: IndexedPackage


def local_mirror(config: SiteConfig, channel_path: str) -> MirrorConfig:
    """The first local source feeding the channel."""
    channel = next((c for c in config.channels if c.path == channel_path.strip("/")), None)
    if channel is None:
        names = ", ".join(c.path for c in config.channels)
        raise AddError(
            f"no channel {channel_path!r} in the configuration; channels: {names}", usage=True
        )
    mirror = next((m for m in channel.mirrors if is_local(m)), None)
    if mirror is None:
        raise AddError(
            f"channel {channel.path!r} has no local source (a mirror with `path:`)", usage=True
        )
    return mirror


def check_files(mirror: MirrorConfig, paths: list[Path]) -> tuple[list[Checked], list[str]]:
    """Each file indexed as a run would; (the good ones, one problem line per bad one)."""
    good: list[Checked] = []
    problems: list[str] = []
    for path in paths:
        # A link named on the command line is the operator's to name: followed, as cp and
        # rsync do, to the file it leads to, which is checked and copied under its own name,
        # the package's (the link's is often an alias, such as latest.conda). A run never
        # follows a link it finds in a source folder.
        try:
            real = path.resolve(strict=True)
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror or exc}")
            continue
        except RuntimeError as exc:  # a loop of links
            problems.append(f"{path}: {exc}")
            continue
        try:
            package = index_package(real)
        except BadPackage as exc:
            problems.append(f"{path}: {exc}")
            continue
        if package.subdir not in mirror.subdirs:
            listed = ", ".join(mirror.subdirs)
            subdir = package.subdir if package.subdir.isprintable() else repr(package.subdir)
            problems.append(f"{path}: subdir {subdir} is not published ({listed})")
            continue
        good.append(Checked(real, package))
    return good, problems


def destination(folder: Path, package: IndexedPackage) -> Path:
    """Where the package goes: over a file of the same name, else into its subdir folder."""
    for candidate in (folder / package.fn, folder / package.subdir / package.fn):
        if candidate.exists():
            return candidate
    return folder / package.subdir / package.fn


def copy_in(mirror: MirrorConfig, checked: Checked) -> Path:
    """Copy one checked file into the source folder atomically; its new path. The bytes are
    hashed on the way: a file that changed since it was checked is refused."""
    target = destination(folder_of(mirror), checked.package)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.parent / f".{short_name(target.name)}.{secrets.token_hex(4)}.partial"
    digest = hashlib.sha256()
    try:
        with open(checked.path, "rb") as src, open(temp, "xb") as dst:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                dst.write(chunk)
            dst.flush()
            os.fsync(dst.fileno())
        if digest.hexdigest() != checked.package.record["sha256"]:
            raise OSError(f"{checked.path} changed while it was being added")
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    directory = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return target
