"""Local sources: the index cache takes along the ctime a publishing hard link gives a file
only for the bytes the run hashed; a file rewritten in place later is read again."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from sitegen.config import SiteConfig
from sitegen.store.site import Site
from sitegen.sync.download import DownloadOutcome
from sitegen.sync.local import LocalSources, index_all, link_all
from sitegen.sync.plan import Plan
from sitegen.tools.example_channel import PackageSpec
from testkit.local import drop, local_config

pytestmark = pytest.mark.unit

CHANNEL = "internal/own"


class RewritingSite(Site):
    """Rewrites the first file it published in place (one byte, same size, its mtime set back,
    as ``cp -p`` or ``rsync --times`` would) while it publishes the next one."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.first: Path | None = None

    def adopt(
        self, source: Path, target: Path, check: Callable[[Path], object], link: bool = True
    ) -> None:
        if self.first is None:
            self.first = source
        elif self.first != source:
            before = self.first.stat()
            with open(self.first, "r+b") as handle:
                handle.seek(10)  # the zip's local header: still a valid package
                byte = handle.read(1)
                handle.seek(10)
                handle.write(bytes([byte[0] ^ 0xFF]))
            os.utime(self.first, ns=(before.st_atime_ns, before.st_mtime_ns))
        super().adopt(source, target, check, link)


async def _index(site: Site, config: SiteConfig) -> LocalSources:
    return await index_all(site, config.channels[0].mirrors, {})


def test_a_file_rewritten_after_it_was_published_is_read_again(tmp_path: Path) -> None:
    folder, root = tmp_path / "incoming", tmp_path / "site"
    config = local_config(root, folder)
    for seed in (1, 2):
        drop(folder, PackageSpec(f"pkg{seed}", "1.0", "h0_0", seed=seed), "conda")
    site = RewritingSite(root)
    sources = trio.run(_index, site, config)
    repodata = sources.indexes["internal-own"].repodata["linux-64"]
    records = sorted(repodata.records.values(), key=lambda r: r.fn)
    site.ensure_dir(site.path(CHANNEL, "linux-64"))
    plans = {
        (CHANNEL, "linux-64"): Plan(to_download=records, to_stage=[], to_remove=[], to_withdraw=[])
    }
    outcomes: dict[tuple[str, str], DownloadOutcome] = {}
    trio.run(link_all, site, sources, plans, outcomes)
    assert [o.failed for o in outcomes.values()] == [set()]
    # The first file's bytes changed after it was hashed and published: its record must be
    # read again, or it names the old sha256 while the site serves the new bytes.
    assert site.first is not None
    again = trio.run(_index, Site(root), config)
    repodata = again.indexes["internal-own"].repodata["linux-64"]
    record = repodata.records[site.first.name]
    assert record.raw["sha256"] == hashlib.sha256(site.first.read_bytes()).hexdigest()
