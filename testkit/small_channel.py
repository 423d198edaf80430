"""A tiny upstream channel and the site configurations that mirror it, for the tests that put
a run through faults: every file is under 2 KB and retries and timeouts are short, so a faulty
upstream costs seconds, not minutes."""

from __future__ import annotations

import contextlib
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import zstandard

from sitegen.cli import main
from sitegen.config import SiteConfig, parse_config
from sitegen.tools.example_channel import PackageSpec, write_channel
from testkit.invariant import assert_site_invariant, make_sandbox
from testkit.upstream import UpstreamServer

CHANNEL = "cloud/example"


def small_packages(seed: int = 0, extra: tuple[PackageSpec, ...] = ()) -> list[PackageSpec]:
    """A tiny channel: four linux-64 builds (both formats, .conda only, .tar.bz2 only) and a
    noarch package; every file is under 2 KB, so transfers are instant unless a fault says no."""
    specs = [
        PackageSpec("alpha", "1.0", "h0_0", license="MIT", formats=("conda", "tar.bz2")),
        PackageSpec("beta", "2.0", "h1_0", license="BSD-3-Clause", formats=("conda",)),
        PackageSpec("gamma", "0.1", "h2_0", license="MIT", formats=("tar.bz2",)),
        PackageSpec("epsilon", "3.1", "h3_0", license="MIT", formats=("conda",)),
        PackageSpec("delta", "1.0", "pyh0_0", subdir="noarch", noarch="python", formats=("conda",)),
        *extra,
    ]
    return [replace(spec, seed=seed) for spec in specs]


def filenames(specs: list[PackageSpec], subdir: str | None = None) -> set[str]:
    return {fn for s in specs if subdir in (None, s.subdir) for fn in s.filenames}


def config_text(
    site: Path,
    url: str,
    *,
    subdirs: str = "[linux-64]",
    retries: int = 1,
    timeout: float = 2.0,
    concurrency: int = 4,
    max_fraction: float = 0.5,
    repodata_bz2: bool = False,
) -> str:
    """A channels.yaml mirroring ``url`` into ``site`` as :data:`CHANNEL`, with short
    retries and timeouts so a faulty upstream costs seconds, not minutes."""
    return textwrap.dedent(
        f"""\
        output: {site}
        download: {{concurrency: {concurrency}, per_host: {concurrency}, retries: {retries}, timeout: {timeout}}}
        prune: {{max_fraction: {max_fraction}}}
        repodata: {{bz2: {str(repodata_bz2).lower()}}}
        channels:
          {CHANNEL}:
            url: {url}
            subdirs: {subdirs}
        """
    )


def site_config(site: Path, url: str, **kwargs: Any) -> SiteConfig:
    return parse_config(config_text(site, url, **kwargs))


def write_config(path: Path, site: Path, url: str, **kwargs: Any) -> Path:
    path.write_text(config_text(site, url, **kwargs))
    return path


def set_repodata(root: Path, subdir: str, data: bytes, zst: bytes | None = None) -> None:
    """Serve exactly these repodata bytes (and this .zst, by default the bytes compressed)."""
    (root / subdir / "repodata.json").write_bytes(data)
    compressed = zstandard.ZstdCompressor(level=3).compress(data) if zst is None else zst
    (root / subdir / "repodata.json.zst").write_bytes(compressed)


@contextlib.contextmanager
def mirrored_small(tmp_path: Path) -> Iterator[tuple[Path, Path, UpstreamServer]]:
    """(config path, site, upstream server) of a site that mirrored :func:`small_packages`
    (linux-64 and noarch) cleanly, its upstream still serving."""
    root = tmp_path / "upstream"
    write_channel(root, small_packages(), zst=True)
    site = make_sandbox(tmp_path)
    with UpstreamServer(root) as server:
        config = write_config(tmp_path / "channels.yaml", site, server.url, retries=1)
        assert main(["mirror", "-c", str(config), "--no-progress"]) == 0
        assert_site_invariant(site)
        yield config, site, server


@contextlib.contextmanager
def mirrored_by_two(
    tmp_path: Path,
) -> Iterator[tuple[Path, Path, UpstreamServer, UpstreamServer]]:
    """(config path, site, first server, second server) of a site whose channel is fed by two
    mirrors, the first serving the first of :func:`small_packages`, the second the rest
    (linux-64), mirrored once; both still serving."""
    first_root, second_root = tmp_path / "first", tmp_path / "second"
    write_channel(first_root, small_packages()[:1], zst=False)
    write_channel(second_root, small_packages()[1:], zst=False)
    site = make_sandbox(tmp_path)
    with UpstreamServer(first_root) as first, UpstreamServer(second_root) as second:
        config = tmp_path / "channels.yaml"
        config.write_text(
            f"output: {site}\n"
            "download: {concurrency: 4, per_host: 4, retries: 1, timeout: 5}\n"
            "channels:\n"
            f"  {CHANNEL}:\n"
            "    mirrors:\n"
            f"      - {{name: first, url: '{first.url}', subdirs: [linux-64]}}\n"
            f"      - {{name: second, url: '{second.url}', subdirs: [linux-64]}}\n"
        )
        assert main(["mirror", "-c", str(config), "--no-progress"]) == 0
        yield config, site, first, second


def keep_mirrored_small(tmp_path: Path) -> Iterator[tuple[Path, Path, UpstreamServer]]:
    """:func:`mirrored_small` for the length of a test: a module takes it as its ``mirrored``
    fixture, ``pytest.fixture(name="mirrored")(keep_mirrored_small)``."""
    with mirrored_small(tmp_path) as mirrored:
        yield mirrored
