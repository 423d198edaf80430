"""Real mirror runs of the example channel through filters, and what they publish and count.

``P`` is the package list of :func:`sitegen.tools.example_channel.example_packages` (seed 0),
whose inventory the docstring of tests/test_mirror_filters.py writes out; expectations are
written from it, never computed by running filter code.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sitegen.config import SiteConfig
from sitegen.sync.report import RunReport
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import example_packages, write_channel
from testkit.site import fns, published, site_config
from testkit.upstream import UpstreamServer

if TYPE_CHECKING:  # only testkit.require imports pytest at run time (see testkit/__init__.py)
    import pytest

CHANNEL = "cloud/example"
P = example_packages(seed=0)
LINUX = fns(P, subdir="linux-64")
NOARCH = fns(P, subdir="noarch")
CONDA, TAR = "conda", "tar.bz2"
NOT_ALLOWED = "not in allowlist"


def serve_example_channel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The example channel, served for the whole module (no test changes it): its URL. A
    module takes it as its ``upstream`` fixture, ``pytest.fixture(scope="module",
    name="upstream")(serve_example_channel)``."""
    root = tmp_path_factory.mktemp("upstream")
    write_channel(root, P, zst=True)
    with UpstreamServer(root) as server:
        yield server.url


def _flow(filters: str) -> str:
    return textwrap.dedent(filters).strip()


def config_at(
    site: Path, url: str, level: str, filters: str, subdirs: str = "[linux-64]"
) -> SiteConfig:
    """One mirror of the example channel with `filters` (a YAML flow mapping) at `level`."""
    filters = _flow(filters)
    site_filters = f"filters: {filters}\n" if level == "site" else ""
    channel_filters = f"    filters: {filters}\n" if level == "channel" else ""
    mirror_filters = f"        filters: {filters}\n" if level == "mirror" else ""
    body = (
        site_filters
        + "channels:\n"
        + f"  {CHANNEL}:\n"
        + channel_filters
        + "    mirrors:\n"
        + "      - name: example\n"
        + f"        url: {url}\n"
        + f"        subdirs: {subdirs}\n"
        + mirror_filters
    )
    return site_config(site, body)


async def mirror(config: SiteConfig) -> RunReport:
    """One run of ``config``, which must not fail."""
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert not report.failed, (report.errors, report.mirrors, report.channels)
    return report


def excluded(report: RunReport, subdir: str, index: int = 0) -> dict[str, int]:
    """Reason -> count of the files the ``index``-th mirror's filters left out of ``subdir``."""
    return report.mirrors[index].subdirs[subdir].excluded


def check(
    report: RunReport,
    site: Path,
    subdir: str,
    kept: set[str],
    reasons: dict[str, int],
    *,
    channel: str = CHANNEL,
    index: int = 0,
) -> None:
    """The subdir publishes exactly `kept`, and the report counts exactly `reasons`."""
    assert published(site, channel, subdir) == kept
    assert excluded(report, subdir, index) == reasons
    assert report.mirrors[index].subdirs[subdir].kept == len(kept)
