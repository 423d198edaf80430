"""``repodata: {bz2}`` over whole runs: turning it either way takes effect on the next run even
when nothing changed upstream, and ``verify`` checks (``--repair`` fixes) the site both ways."""

from __future__ import annotations

import bz2
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from sitegen.config import SiteConfig
from sitegen.layout import REPODATA_BZ2
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import write_channel
from sitegen.tools.verify import verify_site
from testkit.invariant import assert_site_invariant, make_sandbox
from testkit.small_channel import CHANNEL, site_config, small_packages
from testkit.upstream import UpstreamServer

pytestmark = pytest.mark.integration

SUBDIRS = ("linux-64", "noarch")


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "upstream"
    write_channel(root, small_packages(), zst=True)
    with UpstreamServer(root) as server:
        yield server.url


def _bz2s(site: Path) -> list[Path]:
    return [site / CHANNEL / s / REPODATA_BZ2 for s in SUBDIRS]


async def _run(config: SiteConfig) -> None:
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert not report.failed
    assert_site_invariant(config.output)


async def test_toggling_the_setting_takes_effect_on_the_next_run(
    upstream: str, tmp_path: Path
) -> None:
    """Nothing changes upstream between the runs: only the setting makes them rebuild."""
    off = site_config(make_sandbox(tmp_path), upstream)  # noarch comes too
    await _run(off)
    assert not any(path.exists() for path in _bz2s(off.output))

    await _run(replace(off, repodata_bz2=True))
    for path in _bz2s(off.output):
        body = (path.parent / "repodata.json").read_bytes()
        assert bz2.decompress(path.read_bytes()) == body

    await _run(off)
    assert not any(path.exists() for path in _bz2s(off.output))


async def test_verify_checks_and_repairs_the_bz2_when_on(upstream: str, tmp_path: Path) -> None:
    config = site_config(make_sandbox(tmp_path), upstream, repodata_bz2=True)
    await _run(config)
    directory = config.output / CHANNEL / "linux-64"
    body = (directory / "repodata.json").read_bytes()
    (directory / REPODATA_BZ2).write_bytes(bz2.compress(b"{}"))
    (config.output / CHANNEL / "noarch" / REPODATA_BZ2).unlink()

    report = await verify_site(config)
    found = {(p.path, p.detail) for p in report.problems}
    assert found == {
        (f"{CHANNEL}/linux-64/{REPODATA_BZ2}", "does not hold repodata.json"),
        (f"{CHANNEL}/noarch/{REPODATA_BZ2}", "missing"),
    }
    assert (await verify_site(config, repair=True)).ok
    assert bz2.decompress((directory / REPODATA_BZ2).read_bytes()) == body
    assert (await verify_site(config)).problems == []


async def test_verify_reports_and_repair_removes_a_bz2_when_off(
    upstream: str, tmp_path: Path
) -> None:
    config = site_config(make_sandbox(tmp_path), upstream)
    await _run(config)
    assert (await verify_site(config)).problems == []  # no .bz2 is not a problem
    directory = config.output / CHANNEL / "linux-64"
    stale = directory / REPODATA_BZ2
    stale.write_bytes(bz2.compress((directory / "repodata.json").read_bytes()))

    report = await verify_site(config)
    assert [p.path for p in report.problems] == [f"{CHANNEL}/linux-64/{REPODATA_BZ2}"]
    assert not report.ok
    repaired = await verify_site(config, repair=True)
    assert repaired.ok and len(repaired.problems) == 1
    assert not stale.exists()
    assert (await verify_site(config)).problems == []


async def test_a_frozen_channel_keeps_its_bz2_until_the_run_after_the_unfreeze(
    upstream: str, tmp_path: Path
) -> None:
    """A freeze keeps the channel exactly as it is, a .bz2 of an earlier setting too."""
    on = site_config(make_sandbox(tmp_path), upstream, repodata_bz2=True)
    await _run(on)
    kept = {path: path.read_bytes() for path in _bz2s(on.output)}
    off = replace(on, repodata_bz2=False)
    frozen = replace(off, channels=[replace(c, frozen=True) for c in off.channels])
    await _run(frozen)
    assert {path: path.read_bytes() for path in _bz2s(on.output)} == kept
    await _run(off)
    assert not any(path.exists() for path in _bz2s(on.output))


@pytest.mark.parametrize("published", [True, False])
async def test_verify_takes_a_frozen_channels_bz2_as_it_was_published(
    upstream: str, tmp_path: Path, published: bool
) -> None:
    """Turned either way while the channel is frozen, the setting waits for the unfreeze: the
    .bz2 published before (or its absence) is no problem, and --repair leaves it as it is."""
    before = site_config(make_sandbox(tmp_path), upstream, repodata_bz2=published)
    await _run(before)
    kept = {path: path.read_bytes() for path in _bz2s(before.output) if path.exists()}
    now = replace(before, repodata_bz2=not published)
    frozen = replace(now, channels=[replace(c, frozen=True) for c in now.channels])
    await _run(frozen)

    assert (await verify_site(frozen)).problems == []
    assert (await verify_site(frozen, repair=True)).problems == []
    assert {path: path.read_bytes() for path in _bz2s(before.output) if path.exists()} == kept
