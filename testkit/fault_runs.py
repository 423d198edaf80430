"""Runs of sitegen against a small channel served on 127.0.0.1, as the fault tests make them.

:class:`Upstream` serves :func:`testkit.faults.small_packages` (and whatever a test publishes
instead), :func:`serve_small_upstream` for one test; :func:`seed_jitter` makes the retries'
backoff jitter the same in every run; :func:`first_run` mirrors it cleanly (the tests make the
next runs with :func:`testkit.site.mirror_unchecked`), and :func:`listed`, :func:`on_disk` and
:func:`channel_report` read what a run left and said.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sitegen.config import SiteConfig
from sitegen.sync.report import COMPLETED, ChannelSubdirReport, RunReport
from sitegen.tools.example_channel import PackageSpec, write_channel
from testkit.invariant import assert_site_invariant
from testkit.site import mirror_unchecked
from testkit.small_channel import CHANNEL, filenames, site_config, small_packages
from testkit.upstream import UpstreamServer

LINUX = "linux-64"
# Added upstream after the first run: one that the fault hits, one that must arrive anyway.
VICTIM = PackageSpec("zeta", "1.0", "h9_0", license="MIT", formats=("conda",), payload_size=1500)
BYSTANDER = PackageSpec("eta", "1.0", "h8_0", license="MIT", formats=("tar.bz2",))
VICTIM_FN = VICTIM.filename("conda")
BYSTANDER_FN = BYSTANDER.filename("tar.bz2")


@dataclass
class Upstream:
    root: Path
    server: UpstreamServer
    specs: list[PackageSpec]

    def path(self, fn: str, subdir: str = LINUX) -> str:
        return f"/{subdir}/{fn}"

    def publish(self, specs: list[PackageSpec]) -> None:
        """Replace the upstream channel's content (the server reads files per request)."""
        self.specs = specs
        write_channel(self.root, specs, zst=True)


@contextlib.contextmanager
def small_upstream(tmp_path: Path) -> Iterator[Upstream]:
    """An :class:`Upstream` serving :func:`small_packages` from ``tmp_path / "upstream"``."""
    root = tmp_path / "upstream"
    specs = small_packages()
    write_channel(root, specs, zst=True)
    with UpstreamServer(root) as server:
        yield Upstream(root, server, specs)


def serve_small_upstream(tmp_path: Path) -> Iterator[Upstream]:
    """:func:`small_upstream` for the length of a test: a module takes it as its ``upstream``
    fixture, ``pytest.fixture(name="upstream")(serve_small_upstream)``."""
    with small_upstream(tmp_path) as upstream:
        yield upstream


def seed_jitter() -> None:
    """Seeds ``random`` for the backoff jitter: deterministic, not that any outcome depends
    on it. A module takes it as a fixture of every test,
    ``pytest.fixture(autouse=True, name="seeded")(seed_jitter)``."""
    random.seed(1234)


def channel_report(report: RunReport, subdir: str) -> ChannelSubdirReport:
    """What the run says of :data:`CHANNEL`'s ``subdir``."""
    (found,) = [c for c in report.channels if c.channel == CHANNEL and c.subdir == subdir]
    return found


def listed(site: Path, subdir: str = LINUX) -> set[str]:
    """The package files the site's repodata.json lists."""
    document = json.loads((site / CHANNEL / subdir / "repodata.json").read_bytes())
    return set(document["packages"]) | set(document["packages.conda"])


def on_disk(site: Path, subdir: str = LINUX) -> set[str]:
    """The package files in the site's subdir directory."""
    directory = site / CHANNEL / subdir
    return {p.name for p in directory.iterdir() if p.name.endswith((".conda", ".tar.bz2"))}


async def first_run(upstream: Upstream, site: Path, **config: Any) -> SiteConfig:
    """Mirror the initial channel cleanly; returns the config for the next runs."""
    cfg = site_config(site, upstream.server.url, **config)
    report = await mirror_unchecked(cfg)
    assert report.status == COMPLETED and not report.failed, report
    assert listed(site) == on_disk(site) == filenames(upstream.specs, LINUX)
    assert_site_invariant(site)
    return cfg
