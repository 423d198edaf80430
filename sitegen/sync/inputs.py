"""Recognise a run whose inputs are exactly those the site was last built from.

What a run publishes is a pure function of the configuration of the channels it rebuilds, of
the upstream repodata of their mirrors, and of what the channels publish whose packages the
dependency closure walks as published: frozen ones, and those the run does not rebuild (filters
hold fixed dates, never "now"; approvals are resolved against the time before; notices count by
which are in force). After a clean run, the digest of those inputs is recorded together with
a signature of every file the run stands behind. A later run that computes the same digest and
finds those files as they were has nothing to do: it skips parsing, filtering, merging and
publishing, which at conda-forge scale turns an hourly run with nothing new upstream from tens
of seconds into about one.

Anything else (a changed upstream body, an edited filter, a new sitegen version, a published
file or the kept records of a ``keep_removed`` channel touched by hand or by ``verify
--repair``, a previous run that failed or was held) gives a different digest or signature, and
the run does the full work.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from sitegen import __version__
from sitegen.conda.notices import active_notices
from sitegen.config import ChannelConfig, SiteConfig
from sitegen.layout import (
    RUN_EXPORTS_FILES,
    channeldata_path,
    inputs_path,
    kept_records_path,
    metadata_files,
    notices_path,
    origins_path,
    present_metadata_files,
)
from sitegen.store.site import Site
from sitegen.sync.prune import package_files

log = logging.getLogger("sitegen")

# Settings that decide when a mirror runs, or where an error message points, not what it holds.
_NOT_INPUTS = frozenset({"line", "schedule"})


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items() if k not in _NOT_INPUTS}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


class InputsDigest:
    """Accumulates everything the output of one run depends on."""

    def __init__(
        self, config: SiteConfig, channels: list[ChannelConfig], now: datetime | None = None
    ) -> None:
        self._hash = hashlib.sha256()
        moment = now or datetime.now(UTC)
        settings = {
            # The one input that moves with time: a notice past its expiry leaves the
            # channel's notices.json (and a run with otherwise the same inputs rewrites it).
            "notices": {
                c.path: [n.notice_id for n in active_notices(c.notices, moment)] for c in channels
            },
            "sitegen": __version__,
            # What a run publishes per subdir: a site built before a file joined the list
            # (the shard index), or before `repodata: {bz2}` was turned on or off, is rebuilt
            # once, even if nothing else changed.
            "metadata": [*metadata_files(config.repodata_bz2), *RUN_EXPORTS_FILES],
            # msgspec's builtins, the same values as dataclasses.asdict in C: a filter level's
            # advisories from a feed are tens of thousands of objects (asdict: seconds).
            "filters": msgspec.to_builtins(config.filters),
            "channels": msgspec.to_builtins(channels),
        }
        self._hash.update(msgspec.json.encode(_canonical(settings)))

    def add_repodata(self, mirror: str, subdir: str, body: bytes | None, sha256: str = "") -> None:
        """One mirror subdir as this run read it: the exact bytes served, or None when upstream
        does not serve it; ``sha256``: theirs (hex), when already taken. Whether they came
        with a 200 or from the cache after a 304 does not matter."""
        self._hash.update(msgspec.json.encode([mirror, subdir, body is not None]))
        if body is not None:
            self._hash.update(bytes.fromhex(sha256) if sha256 else hashlib.sha256(body).digest())

    def add_run_exports(self, mirror: str, subdir: str, state: str | None) -> None:
        """A mirror subdir's CEP-12 run_exports.json as this run read it: the sha256 of its
        body, or why there is none (see sitegen.sync.run_exports_fetch)."""
        self._hash.update(msgspec.json.encode([mirror, subdir, "run_exports", state]))

    def add_published(self, channel: str, subdir: str, repodata: Path) -> None:
        """A channel subdir whose published records stand in for its mirrors in the dependency
        closure (frozen, or not rebuilt by the run): what it publishes is an input of the
        run, known by its ``repodata.json``'s size and mtime (a publication replaces the file)."""
        try:
            stat = os.stat(repodata)
            state: list[int] | None = [stat.st_size, stat.st_mtime_ns]
        except OSError:
            state = None
        self._hash.update(msgspec.json.encode([channel, subdir, state]))

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


@dataclass
class BuiltFrom:
    """The inputs of the last clean run over a set of channels, and what it left on disk."""

    digest: str
    files: dict[str, list[int]]  # site-relative path -> [size, mtime_ns]
    mirrors: list[dict[str, Any]] = field(default_factory=list)  # MirrorReport as JSON
    channels: list[dict[str, Any]] = field(default_factory=list)  # ChannelSubdirReport as JSON


def file_signature(
    site: Site, channels: list[ChannelConfig], passive: set[str]
) -> dict[str, list[int]]:
    """Size and mtime of every file a run over these channels published, and of the state that
    says what the next run keeps: the records of the files a ``keep_removed`` channel keeps
    unlisted (damaged, the next run holds the subdir; lost, the files they kept go).

    Package files count only in subdirs that no passive mirror feeds: there the pull-through
    fetcher adds files between runs, and it verifies each one itself.
    """
    paths: list[Path] = []
    for channel in channels:
        paths.append(site.path(channeldata_path(channel.path)))
        paths.append(site.path(notices_path(channel.path)))
        for subdir in channel.subdirs:
            directory = site.path(channel.path, subdir)
            # Every name that may be present: a .bz2 left or put there while the setting is
            # off makes the next run publish (which removes it).
            paths.extend(directory / name for name in present_metadata_files())
            paths.append(origins_path(site.root, channel.path, subdir))
            paths.append(kept_records_path(site.root, channel.path, subdir))
            feeding = [m for m in channel.mirrors if subdir in m.subdirs]
            if not any(m.name in passive for m in feeding):
                paths.extend(directory / fn for fn in sorted(package_files(directory)))
    signature: dict[str, list[int]] = {}
    for path in paths:
        try:
            stat = os.stat(path)
        except OSError:
            continue  # absent then, absent now: still equal
        signature[path.relative_to(site.root).as_posix()] = [stat.st_size, stat.st_mtime_ns]
    return signature


class BuiltFromStore:
    """``<site>/.sitegen/inputs/<channels key>.json``: one record per set of channels run."""

    def __init__(self, site: Site, channels: list[ChannelConfig]) -> None:
        self.site = site
        key = hashlib.sha256("\0".join(sorted(c.path for c in channels)).encode()).hexdigest()
        self.path = inputs_path(site.root, key[:24])

    def load(self) -> BuiltFrom | None:
        try:
            return msgspec.json.decode(self.path.read_bytes(), type=BuiltFrom)
        except (OSError, msgspec.DecodeError, msgspec.ValidationError):
            return None

    def matching(self, digest: str, files: dict[str, list[int]]) -> BuiltFrom | None:
        """The record of the run that built the site from inputs of this digest, when every
        file it published is still as it left it."""
        built = self.load()
        if built is None or built.digest != digest or built.files != files:
            return None
        return built

    def save(self, built: BuiltFrom) -> None:
        """Record the inputs of a clean run, so an identical next run can skip the work; a
        failure only costs the full work next time."""
        try:
            self.site.write_bytes(self.path, msgspec.json.encode(built))
        except OSError as exc:
            log.warning("could not record this run's inputs: %s", exc)

    def forget(self) -> None:
        """Called before a run changes anything: a crash mid-publish must not leave a record
        that vouches for the files of the previous run."""
        self.site.remove(self.path)
