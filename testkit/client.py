"""A real conda client for tests: py-rattler solves and installs from 127.0.0.1 channels (or
from a site on disk, by ``file://`` URL).

Everything is explicit so runs are deterministic and stay on the loopback interface: the
platform, the virtual packages (never detected from the host), the repodata and package
caches (under the caller's directory) and the HTTP client (no auth, mirror or retry
middleware, so a fault injected by a test server is seen, not retried away).

The functions are synchronous (they run py-rattler's asyncio coroutines with
``asyncio.run``); from a trio test call them through ``trio.to_thread.run_sync``.
"""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from rattler import (
    BuildString,
    Channel,
    Client,
    Gateway,
    GenericVirtualPackage,
    MatchSpec,
    PackageName,
    RepoDataRecord,
    SourceConfig,
    Subdir,
    Version,
    install,
    solve,
)

# What a plain x86_64 Linux box offers, pinned rather than detected.
DEFAULT_VIRTUAL_PACKAGES: tuple[tuple[str, str, str], ...] = (
    ("__unix", "0", "0"),
    ("__linux", "5.10", "0"),
    ("__glibc", "2.17", "0"),
    ("__archspec", "1", "x86_64"),
)
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


class ClientError(RuntimeError):
    """The solve or install failed, or the prefix does not hold what was installed."""


@dataclass(frozen=True, slots=True)
class InstalledPackage:
    name: str
    version: str
    build: str
    channel: str  # the channel URL the record came from
    url: str  # the package file's URL
    file_name: str

    @property
    def dist(self) -> str:
        return f"{self.name}-{self.version}-{self.build}"


def _check_loopback(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "file" and parts.hostname in (None, ""):
        return  # a site on this machine's disk
    if parts.scheme not in ("http", "https") or parts.hostname not in _LOOPBACK_HOSTS:
        raise ValueError(
            f"test channels must be http(s) URLs on 127.0.0.1 or file:// URLs, not {url!r}"
        )


def _channel(source: str | Channel) -> Channel:
    """A channel by URL, or one resolved already (by name, under a channel alias)."""
    channel = source if isinstance(source, Channel) else Channel(source)
    _check_loopback(channel.base_url)
    return channel


def virtual_packages(
    spec: Sequence[tuple[str, str, str]] = DEFAULT_VIRTUAL_PACKAGES,
) -> list[GenericVirtualPackage]:
    return [
        GenericVirtualPackage(PackageName(name), Version(version), BuildString(build))
        for name, version, build in spec
    ]


def make_client(timeout: int = 30) -> Client:
    """An HTTP client with no middleware: no credentials lookup, no mirrors, no retries."""
    return Client(timeout=timeout)


def make_gateway(cache_dir: Path, *, zstd: bool = True, bz2: bool = True) -> Gateway:
    """A gateway caching repodata under ``cache_dir``; sharded repodata is not probed."""
    config = SourceConfig(zstd_enabled=zstd, bz2_enabled=bz2, sharded_enabled=False)
    return Gateway(
        cache_dir=cache_dir,
        default_config=config,
        client=make_client(),
        max_concurrent_requests=8,
    )


async def solve_records(
    channel_urls: Sequence[str | Channel],
    specs: Sequence[str],
    *,
    platform: str = "linux-64",
    cache_dir: Path,
    virtual: Sequence[tuple[str, str, str]] = DEFAULT_VIRTUAL_PACKAGES,
    gateway: Gateway | None = None,
) -> list[RepoDataRecord]:
    sources = [_channel(source) for source in channel_urls]
    gateway = gateway or make_gateway(Path(cache_dir) / "repodata")
    return await solve(
        sources=sources,
        specs=[MatchSpec(spec, strict=False) for spec in specs],
        gateway=gateway,
        platforms=[Subdir(platform), Subdir("noarch")],
        virtual_packages=virtual_packages(virtual),
        channel_relations="disabled",
        timeout=datetime.timedelta(seconds=60),
    )


def _installed(record: RepoDataRecord) -> InstalledPackage:
    return InstalledPackage(
        name=record.name.normalized,
        version=str(record.version),
        build=str(record.build),
        channel=record.channel or "",
        url=record.url,
        file_name=record.file_name,
    )


def verify_prefix(prefix: Path, packages: Sequence[InstalledPackage]) -> None:
    """Every package has its ``conda-meta`` record and every file it lists exists."""
    for package in packages:
        meta = prefix / "conda-meta" / f"{package.dist}.json"
        if not meta.is_file():
            raise ClientError(f"{package.dist} is not recorded in {prefix / 'conda-meta'}")
        document = json.loads(meta.read_text())
        files = document.get("files") or []
        if not files:
            raise ClientError(f"{package.dist} installed no files")
        for relpath in files:
            if not (prefix / relpath).is_file():
                raise ClientError(f"{package.dist}: {relpath} is missing from the prefix")


async def solve_and_install_async(
    channel_urls: Sequence[str | Channel],
    specs: Sequence[str],
    prefix: Path,
    platform: str = "linux-64",
    *,
    cache_dir: Path,
    virtual: Sequence[tuple[str, str, str]] = DEFAULT_VIRTUAL_PACKAGES,
) -> list[InstalledPackage]:
    """:func:`solve_and_install` as an asyncio coroutine."""
    cache_dir = Path(cache_dir)
    records = await solve_records(
        channel_urls, specs, platform=platform, cache_dir=cache_dir, virtual=virtual
    )
    await install(
        records,
        target_prefix=Path(prefix),
        cache_dir=cache_dir / "pkgs",
        platform=Subdir(platform),
        execute_link_scripts=False,
        show_progress=False,
        client=make_client(),
    )
    installed = sorted((_installed(r) for r in records), key=lambda p: p.name)
    verify_prefix(Path(prefix), installed)
    return installed


def solve_and_install(
    channel_urls: Sequence[str | Channel],
    specs: Sequence[str],
    prefix: Path,
    platform: str = "linux-64",
    *,
    cache_dir: Path,
    virtual: Sequence[tuple[str, str, str]] = DEFAULT_VIRTUAL_PACKAGES,
) -> list[InstalledPackage]:
    """Solve ``specs`` against ``channel_urls``, install into ``prefix``, verify the prefix.

    Returns the installed packages sorted by name. Raises the py-rattler exception when the
    solve or a download fails, :class:`ClientError` when the prefix is incomplete.
    """
    return asyncio.run(
        solve_and_install_async(
            channel_urls, specs, prefix, platform, cache_dir=cache_dir, virtual=virtual
        )
    )


def solve_only(
    channel_urls: Sequence[str],
    specs: Sequence[str],
    platform: str = "linux-64",
    *,
    cache_dir: Path,
    virtual: Sequence[tuple[str, str, str]] = DEFAULT_VIRTUAL_PACKAGES,
) -> list[InstalledPackage]:
    """Solve without installing; returns the chosen packages sorted by name."""
    records = asyncio.run(
        solve_records(channel_urls, specs, platform=platform, cache_dir=cache_dir, virtual=virtual)
    )
    return sorted((_installed(r) for r in records), key=lambda p: p.name)


def solver(
    channel_urls: Sequence[str],
    cache_dir: Path,
    *,
    virtual: Sequence[tuple[str, str, str]] = DEFAULT_VIRTUAL_PACKAGES,
) -> Callable[..., list[tuple[str, str]] | None]:
    """specs -> the (channel URL, filename)s of their linux-64 solution (one environment
    holding them all) from ``channel_urls``, or None when the solve fails; one repodata cache
    for every call."""
    gateway = make_gateway(cache_dir)

    def solve_one(*specs: str) -> list[tuple[str, str]] | None:
        coroutine = solve_records(
            channel_urls, specs, cache_dir=cache_dir, virtual=virtual, gateway=gateway
        )
        try:
            records = asyncio.run(coroutine)
        except Exception:  # py-rattler's SolverError: unsatisfiable
            return None
        return [(r.channel or "", r.file_name) for r in records]

    return solve_one
