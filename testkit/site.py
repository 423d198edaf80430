"""Assertions about a published site and helpers to build configs and expectations for it.

The central check, :func:`assert_subdir_consistent`, is the site's promise to clients: every
record of every published metadata file names a file that exists with exactly that size and
sha256, no package file sits on disk unreferenced, ``.zst`` (and ``.bz2`` where published) hold
exactly ``repodata.json``, and ``current_repodata.json`` is a subset of it.
"""

from __future__ import annotations

import bz2
import hashlib
import json
import os
import textwrap
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import trio
import zstandard

from sitegen.config import SiteConfig, parse_config
from sitegen.sync.report import RunReport
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import PackageSpec
from sitegen.tools.status import collect_status

PACKAGE_SUFFIXES = (".conda", ".tar.bz2")


# --------------------------------------------------------------------------- reading the site


def read_repodata(subdir_dir: Path, name: str = "repodata.json") -> dict[str, Any]:
    return json.loads((subdir_dir / name).read_bytes())


def record_filenames(document: dict[str, Any]) -> set[str]:
    """Every filename a repodata document lists, in both sections."""
    return set(document.get("packages", {})) | set(document.get("packages.conda", {}))


def published(site: Path, channel: str, subdir: str) -> set[str]:
    """The filenames the published repodata.json of a channel subdir lists."""
    return record_filenames(read_repodata(site / channel / subdir))


def files_on_disk(directory: Path) -> set[str]:
    if not directory.is_dir():
        return set()
    return {p.name for p in directory.iterdir() if p.name.endswith(PACKAGE_SUFFIXES)}


def files_holding(site: Path, secret: str) -> list[str]:
    """The files under the site whose names or bytes hold ``secret``, compressed ones (the
    repodata's .zst, the shards) read decompressed."""
    found = []
    for path in site.rglob("*"):
        if secret in path.name:
            found.append(str(path.relative_to(site)))
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.suffix == ".zst":
            data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
        if secret.encode() in data:
            found.append(str(path.relative_to(site)))
    return sorted(found)


def sha256_of(path: Path) -> str:
    """The sha256 of the file at ``path``, in hex; read in chunks, as packages can be large."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def snapshot(root: Path, exclude: Iterable[str] = ()) -> dict[str, tuple[int, str]]:
    """relative path -> (mtime_ns, sha256) for every file below root."""
    skip = set(exclude)
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and rel not in skip:
            out[rel] = (path.stat().st_mtime_ns, sha256_of(path))
    return out


# --------------------------------------------------------------------------- assertions


def assert_subdir_consistent(subdir_dir: Path) -> dict[str, Any]:
    """Check one published subdir; returns its repodata.json document."""
    raw = (subdir_dir / "repodata.json").read_bytes()
    document = json.loads(raw)
    subdir = subdir_dir.name
    assert document["info"]["subdir"] == subdir
    for key, suffix in (("packages", ".tar.bz2"), ("packages.conda", ".conda")):
        for fn, record in document[key].items():
            assert fn.endswith(suffix), f"{subdir}/{fn} is listed under {key!r}"
            path = subdir_dir / fn
            assert path.is_file(), f"{subdir}/{fn} is listed but not on disk"
            assert path.stat().st_size == record["size"], f"{subdir}/{fn}: wrong size"
            assert sha256_of(path) == record["sha256"], f"{subdir}/{fn}: wrong sha256"
    listed = record_filenames(document)
    assert files_on_disk(subdir_dir) == listed, f"{subdir}: unreferenced files on disk"
    assert not [p.name for p in subdir_dir.iterdir() if p.name.startswith(".sitegen-tmp-")]

    assert (
        zstandard.ZstdDecompressor().decompress(
            (subdir_dir / "repodata.json.zst").read_bytes(), max_output_size=1 << 30
        )
        == raw
    )
    bz2_path = subdir_dir / "repodata.json.bz2"  # published only with `repodata: {bz2: true}`
    if bz2_path.exists():
        assert bz2.decompress(bz2_path.read_bytes()) == raw

    current = read_repodata(subdir_dir, "current_repodata.json")
    assert current["info"] == document["info"]
    for key in ("packages", "packages.conda"):
        for fn, record in current[key].items():
            assert document[key].get(fn) == record, f"current_repodata: {subdir}/{fn} differs"
    return document


def assert_channel_consistent(site: Path, channel: str) -> dict[str, dict[str, Any]]:
    """Check every published subdir of a channel; returns repodata per subdir."""
    root = site / channel
    assert (root / "channeldata.json").is_file(), f"{channel}/channeldata.json is missing"
    json.loads((root / "channeldata.json").read_bytes())
    assert (root / "noarch" / "repodata.json").is_file(), f"{channel}: no noarch/repodata.json"
    out = {}
    for directory in sorted(p for p in root.iterdir() if (p / "repodata.json").is_file()):
        out[directory.name] = assert_subdir_consistent(directory)
    return out


# --------------------------------------------------------------------------- expectations


def fns(
    specs: Iterable[PackageSpec],
    name: str | None = None,
    version: str | None = None,
    *,
    build: str = "",
    subdir: str | None = None,
    fmt: str | None = None,
) -> set[str]:
    """Filenames of the example specs with this name / version / build prefix / subdir / format."""
    out = set()
    for spec in specs:
        if name is not None and spec.name != name:
            continue
        if version is not None and spec.version != version:
            continue
        if not spec.build.startswith(build):
            continue
        if subdir is not None and spec.subdir != subdir:
            continue
        for form in spec.formats:
            if fmt is None or form == fmt:
                out.add(spec.filename(form))
    return out


# --------------------------------------------------------------------------- configs


def site_config(site: Path, body: str, *, download: str | None = None) -> SiteConfig:
    """A SiteConfig writing to ``site``; ``body`` holds ``channels:`` (and ``filters:``)."""
    download = download or "download: {concurrency: 8, per_host: 8, retries: 1, timeout: 10}"
    text = f"output: {site}\n{download}\n" + textwrap.dedent(body).lstrip("\n")
    return parse_config(text)


# The channel path channel_config mirrors to unless told another.
CHANNEL = "cloud/example"


def channel_config(
    site: Path,
    url: str,
    *,
    channel: str = CHANNEL,
    subdirs: str = "[linux-64]",
    extra: str = "",
) -> SiteConfig:
    """site_config for one channel mirrored from ``url``; ``extra`` goes under the channel
    (``filters:``, ``mode:``...)."""
    body = f"""
channels:
  {channel}:
    url: {url}
    subdirs: {subdirs}
"""
    return site_config(site, body + textwrap.indent(textwrap.dedent(extra).lstrip("\n"), "    "))


async def mirror_unchecked(config: SiteConfig, **options: Any) -> RunReport:
    """``config``'s mirrors run once without progress output, whatever the outcome: the report
    says how it went. ``options`` are :class:`MirrorOptions`'."""
    return await run_mirror(config, MirrorOptions(progress=False, **options))


async def mirror_checked(config: SiteConfig, **options: Any) -> RunReport:
    """:func:`mirror_unchecked`, and the run must not have failed."""
    report = await mirror_unchecked(config, **options)
    assert not report.failed, report.errors
    return report


async def mirror_numpy_with_dependencies(site: Path, url: str) -> RunReport:
    """Mirror numpy and what it needs (include_dependencies) from the example upstream at
    ``url`` into ``site``, as ``cloud/example`` linux-64: the subset a client installs numpy
    from. The run must succeed."""
    extra = """
        filters:
          specs: {include: [numpy]}
          include_dependencies: true
        """
    report = await run_mirror(channel_config(site, url, extra=extra), MirrorOptions(progress=False))
    assert not report.failed
    return report


async def mirror_watching_progress(config: SiteConfig) -> tuple[RunReport, list[dict[str, Any]]]:
    """Run ``config``'s mirrors while asking ``sitegen status`` what the run reports, as an
    operator would: the report and the first progress status showed (none if never)."""
    seen: list[dict[str, Any]] = []

    async def watch() -> None:
        while not seen:
            status = await trio.to_thread.run_sync(collect_status, config)
            if status.active is not None and status.active.progress:
                seen.append(status.active.progress)
            await trio.sleep(0.05)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch)
        report = await run_mirror(config, MirrorOptions(progress=False))
        nursery.cancel_scope.cancel()
    return report, seen


def rewrite_repodata(root: Path, subdir: str, change: Callable[[dict[str, Any]], None]) -> None:
    """Edit upstream's repodata.json in place (like a repodata patch), keeping .zst in step."""
    path = root / subdir / "repodata.json"
    document = json.loads(path.read_bytes())
    change(document)
    data = json.dumps(document, indent=2, sort_keys=True).encode()
    path.write_bytes(data)
    if (root / subdir / "repodata.json.zst").exists():
        (root / subdir / "repodata.json.zst").write_bytes(zstandard.compress(data))


# --------------------------------------------------------------------------- flushes to disk


def record_fdatasync(monkeypatch: Any, observe: Callable[[int], Any]) -> list[Any]:
    """Make os.fdatasync also note ``observe(fd)`` of each call (it still flushes)."""
    calls: list[Any] = []
    real = os.fdatasync

    def recording(fd: int) -> None:
        calls.append(observe(fd))
        real(fd)

    monkeypatch.setattr(os, "fdatasync", recording)
    return calls


def write_cli_config(tmp_path: Path, url: str, download: str = "") -> tuple[Path, Path]:
    """channels.yaml in tmp_path, mirroring linux-64 of url as c/x into tmp_path/site;
    returns (site, config path)."""
    site = tmp_path / "site"
    config_path = tmp_path / "channels.yaml"
    settings = f"download: {download}\n" if download else ""
    config_path.write_text(
        f"output: {site}\n{settings}channels:\n  c/x:\n    url: {url}\n    subdirs: [linux-64]\n"
    )
    return site, config_path
