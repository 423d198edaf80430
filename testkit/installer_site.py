"""A site mirroring the installer folder of :mod:`testkit.installers`: the folder's files
upstream, the configuration of the site, its runs, and what they leave on disk."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from sitegen.config import SiteConfig, parse_config
from sitegen.sync.report import InstallerReport, RunReport
from sitegen.sync.run import MirrorOptions, run_mirror
from testkit.installers import serve_index, write_folder
from testkit.upstream import UpstreamServer

# The files of the upstream folder: the site takes "Miniconda3-*" but "*.exe" (config_text).
LATEST = "Miniconda3-latest-Linux-x86_64.sh"
OLD = "Miniconda3-py311_23.1.0-1-Linux-x86_64.sh"
MAC = "Miniconda3-latest-MacOSX-arm64.pkg"
WINDOWS = "Miniconda3-latest-Windows-x86_64.exe"


def payload(name: str, version: int = 1, size: int = 3000) -> bytes:
    """``size`` bytes standing for ``version`` of the installer ``name``."""
    seed = hashlib.sha256(f"{name}-{version}".encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


FILES = {
    OLD: payload(OLD, size=2500),
    MAC: payload(MAC, size=4000),
    WINDOWS: payload(WINDOWS, size=3500),
    LATEST: payload(LATEST),
}


def config_text(site: Path, url: str, extra: str = "", channels: str = "channels: {}\n") -> str:
    """channels.yaml of a site mirroring the folder ``miniconda`` of ``url`` beside
    ``channels``; ``extra`` lines go into the folder's settings."""
    return (
        f"output: {site}\n"
        "download: {concurrency: 4, per_host: 4, retries: 1, timeout: 10}\n"
        + channels
        + "installers:\n"
        "  miniconda:\n"
        f"    url: {url}/miniconda/\n"
        '    include: ["Miniconda3-*"]\n'
        '    exclude: ["*.exe"]\n' + "".join(f"    {line}\n" for line in extra.splitlines())
    )


def example_channel(url: str) -> str:
    """The ``channels:`` of a site mirroring the example upstream at ``url`` (linux-64)."""
    return f"channels:\n  cloud/example:\n    url: {url}\n    subdirs: [linux-64]\n"


def config_file(tmp_path: Path, site: Path, url: str, channels: str) -> Path:
    """channels.yaml (in ``tmp_path``) of :func:`config_text`, for the command line."""
    path = tmp_path / "channels.yaml"
    path.write_text(config_text(site, url, channels=channels))
    return path


def make_config(site: Path, url: str, extra: str = "", **kwargs: str) -> SiteConfig:
    """The parsed :func:`config_text`."""
    return parse_config(config_text(site, url, extra, **kwargs))


def mirror(config: SiteConfig, **options: Any) -> RunReport:
    """One run of ``config`` with ``options``, from synchronous code."""
    return trio.run(run_mirror, config, MirrorOptions(progress=False, **options))


def folder_report(report: RunReport) -> InstallerReport:
    """The report of the run's one installer folder."""
    (found,) = report.installers
    return found


def downloads(server: UpstreamServer) -> list[str]:
    """The installer files fetched whole (not the one-byte asks for their size)."""
    return sorted(
        r.path.rsplit("/", 1)[1]
        for r in server.requests
        if r.path.startswith("/miniconda/") and r.path != "/miniconda/" and not r.header("range")
    )


def on_disk(site: Path) -> dict[str, bytes]:
    """Name -> bytes of the files the site's folder holds, but its page."""
    folder = site / "miniconda"
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name != "index.html"}


def serve_installer_folder(
    tmp_path: Path, upstream_server_factory: Callable[..., UpstreamServer]
) -> tuple[UpstreamServer, Path]:
    """FILES in an installer folder served at ``/miniconda/``: (server, folder). A module takes
    it as its ``upstream`` fixture, ``pytest.fixture(name="upstream")(serve_installer_folder)``."""
    folder = tmp_path / "upstream" / "miniconda"
    write_folder(folder, FILES)
    server = upstream_server_factory(folder.parent)
    serve_index(server, "/miniconda/")
    return server, folder
