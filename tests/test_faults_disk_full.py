"""A tmpfs that really fills up during download and publish: the run fails cleanly and the
previous state (and its origins) stays served. Real HTTP on 127.0.0.1."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from sitegen.cli import main
from sitegen.config import load_config
from sitegen.passive.listen import listener_address, open_listeners, serve_fetcher
from sitegen.store.origins import load_origins
from sitegen.store.site import Site
from sitegen.sync.report import FAILED
from sitegen.tools.example_channel import PackageSpec, write_channel
from testkit.fault_runs import (
    LINUX,
    VICTIM,
    VICTIM_FN,
    Upstream,
    channel_report,
    first_run,
    listed,
    on_disk,
    seed_jitter,
    serve_small_upstream,
)
from testkit.invariant import assert_site_invariant, make_sandbox, site_digest
from testkit.require import missing
from testkit.site import mirror_unchecked, rewrite_repodata
from testkit.small_channel import CHANNEL, filenames, write_config
from testkit.upstream import UpstreamHandler, UpstreamServer

pytestmark = pytest.mark.integration


seeded = pytest.fixture(autouse=True, name="seeded")(seed_jitter)
upstream = pytest.fixture(name="upstream")(serve_small_upstream)


# --------------------------------------------------------------------------- disk full


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs: a disk that can really fill up (root only; skipped elsewhere)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        missing(f"cannot mount a tmpfs (needs root): {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill_disk(disk: Path, leave: int) -> None:
    """Fill the file system of ``disk`` with a filler file until ``leave`` bytes are free."""
    filler = disk / "filler"
    # Unbuffered: a write cut short by the full disk leaves nothing behind that closing the
    # file would try (and fail) to write again.
    with open(filler, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    os.truncate(filler, max(0, filler.stat().st_size - leave))
    assert leave <= shutil.disk_usage(disk).free < leave + 65536


def _temps(site: Path) -> list[Path]:
    return list(site.rglob(".sitegen-tmp-*"))


async def test_disk_full_during_download_fails_cleanly(
    upstream: Upstream, small_disk: Path
) -> None:
    site = make_sandbox(small_disk)
    cfg = await first_run(upstream, site)
    before = site_digest(site)
    big = PackageSpec("big", "1.0", "h0_0", formats=("conda",), payload_size=1_200_000)
    upstream.publish([*upstream.specs, big])
    assert (upstream.root / LINUX / big.filename("conda")).stat().st_size > 256 * 1024

    def fill_then_serve(handler: UpstreamHandler) -> bool:
        # The disk fills once the download is under way: before it, the free-space guard
        # would stop the run with nothing downloaded (tests/test_free_space.py).
        fill_disk(small_disk, leave=192 * 1024)
        return False

    upstream.server.add_fault(upstream.path(big.filename("conda")), fill_then_serve, times=1)
    report = await mirror_unchecked(cfg)

    assert report.status == FAILED
    linux = channel_report(report, LINUX)
    (error,) = linux.errors
    assert error.startswith(f"linux-64/{big.filename('conda')}: ")
    assert "No space left on device" in error
    assert upstream.server.count(upstream.path(big.filename("conda"))) == 1  # not retried
    assert site_digest(site) == before  # the previous repodata and files, untouched
    assert not _temps(site)
    assert_site_invariant(site)


def _bloat(document: dict[str, Any], times: int = 40_000) -> None:
    """A repodata patch that makes repodata.json large but its .zst tiny."""
    for section in ("packages", "packages.conda"):
        for record in document[section].values():
            record["description"] = "patched " * times


async def test_disk_full_during_publish_keeps_previous_state(
    upstream: Upstream, small_disk: Path
) -> None:
    site = make_sandbox(small_disk)
    cfg = await first_run(upstream, site)
    before = site_digest(site)
    rewrite_repodata(upstream.root, LINUX, _bloat)
    assert (upstream.root / LINUX / "repodata.json.zst").stat().st_size < 16 * 1024
    fill_disk(small_disk, leave=640 * 1024)  # room for the .zst; not the JSON files

    report = await mirror_unchecked(cfg)

    assert report.status == FAILED
    linux = channel_report(report, LINUX)
    assert linux.status == "failed"
    (error,) = linux.errors
    assert error.startswith("linux-64: could not publish: No space left on device")
    assert error.endswith("kept the previous state")
    assert channel_report(report, "noarch").errors == []
    assert site_digest(site) == before  # no new .zst beside an old repodata.json
    assert not _temps(site)
    assert_site_invariant(site)


async def test_disk_full_during_publish_keeps_the_origins_of_the_previous_state(
    upstream: Upstream, small_disk: Path, tmp_path: Path
) -> None:
    """A channel fed by two passive mirrors; a file only the second one lists. The second
    mirror drops it while the first one's repodata grows past the free space: publishing
    fails and the previous repodata.json, which lists the file, stays served. The origins map
    must still say where that file comes from, so the pull-through fetcher fetches it; once a
    run publishes, the map names exactly what is published. (Passive: the site invariant, which
    wants every listed file on disk, does not apply.)"""
    two_root = tmp_path / "two"
    write_channel(two_root, [VICTIM], zst=True)
    site = make_sandbox(small_disk)
    with UpstreamServer(two_root) as two:
        mirrors = "".join(
            f"      - {{name: {name}, url: '{url}', subdirs: [linux-64], mode: passive}}\n"
            for name, url in (("one", upstream.server.url), ("two", two.url))
        )
        config_path = tmp_path / "channels.yaml"
        config_path.write_text(
            f"output: {site}\ndownload: {{retries: 0, timeout: 5}}\n"
            f"channels:\n  {CHANNEL}:\n    mirrors:\n{mirrors}"
        )
        cfg = load_config(config_path)
        report = await mirror_unchecked(cfg)
        assert not report.failed, report.channels
        everything = filenames(upstream.specs, LINUX) | {VICTIM_FN}
        assert listed(site) == everything and on_disk(site) == set()
        assert load_origins(Site(site), CHANNEL, LINUX).mirror_of(VICTIM_FN) == "two"

        rewrite_repodata(two_root, LINUX, lambda d: d.update(packages={}, **{"packages.conda": {}}))
        # repodata.json and current_repodata.json ~0.5 MB each: more than is left, but less
        # than the disk holds once the filler goes.
        rewrite_repodata(upstream.root, LINUX, partial(_bloat, times=12_000))
        fill_disk(small_disk, leave=640 * 1024)
        report = await mirror_unchecked(cfg)
        linux = channel_report(report, LINUX)
        assert linux.status == "failed"
        (error,) = linux.errors
        assert error.startswith("linux-64: could not publish: No space left on device")
        assert listed(site) == everything
        assert load_origins(Site(site), CHANNEL, LINUX).mirror_of(VICTIM_FN) == "two"
        listeners = await open_listeners("127.0.0.1", 0)
        async with trio.open_nursery() as nursery:
            fetcher = await nursery.start(serve_fetcher, cfg, listeners)
            reply = await fetcher.reply("GET", f"/{CHANNEL}/{LINUX}/{VICTIM_FN}")
            nursery.cancel_scope.cancel()
        assert (reply.status, reply.outcome) == (200, "fetched"), reply.body
        assert on_disk(site) == {VICTIM_FN}

        (small_disk / "filler").unlink()
        report = await mirror_unchecked(cfg)
        assert channel_report(report, LINUX).status == "published", report.channels
    assert listed(site) == everything - {VICTIM_FN} and on_disk(site) == set()
    origins = load_origins(Site(site), CHANNEL, LINUX)
    assert set(origins.files) == everything - {VICTIM_FN}


async def test_disk_full_during_a_pull_through_fetch_is_not_told_to_the_client(
    upstream: Upstream, small_disk: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The fetcher cannot store a file it downloads (the disk fills): its client gets 502 and
    a reason that says nothing of the site's disk; the fetcher's log says what failed."""
    big = PackageSpec("big", "1.0", "h0_0", formats=("conda",), payload_size=1_200_000)
    upstream.publish([*upstream.specs, big])
    site = make_sandbox(small_disk)
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {site}\ndownload: {{retries: 0, timeout: 5}}\n"
        f"channels:\n  {CHANNEL}:\n    url: {upstream.server.url}\n"
        "    subdirs: [linux-64]\n    mode: passive\n"
    )
    cfg = load_config(config_path)
    assert not (await mirror_unchecked(cfg)).failed
    fill_disk(small_disk, leave=192 * 1024)
    listeners = await open_listeners("127.0.0.1", 0)
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_fetcher, cfg, listeners)
        async with httpx.AsyncClient(base_url=f"http://{listener_address(listeners)}") as client:
            reply = await client.get(f"/{CHANNEL}/{LINUX}/{big.filename('conda')}")
        nursery.cancel_scope.cancel()
    assert reply.status_code == 502
    assert "cannot store it on this server" in reply.text, reply.text
    assert "No space" not in reply.text and str(small_disk) not in reply.text, reply.text
    assert "No space left on device" in caplog.text
    assert not _temps(site) and big.filename("conda") not in on_disk(site)


def test_disk_full_during_publish_exits_1_with_a_clear_message(
    upstream: Upstream, small_disk: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    site = make_sandbox(small_disk)
    config = write_config(small_disk / "channels.yaml", site, upstream.server.url)
    assert main(["mirror", "-c", str(config), "--no-progress"]) == 0
    before = site_digest(site)
    rewrite_repodata(upstream.root, LINUX, _bloat)
    fill_disk(small_disk, leave=640 * 1024)
    capfd.readouterr()
    code = main(["mirror", "-c", str(config), "--no-progress"])
    assert code == 1
    assert site_digest(site) == before
    assert not _temps(site)
    assert_site_invariant(site)
    (record,) = [
        json.loads(p.read_bytes())
        for p in (site / "history" / "runs").glob("*.json")
        if json.loads(p.read_bytes())["status"] != "completed"
    ]
    assert record["status"] == "failed"
    assert any("No space left on device" in e for c in record["channels"] for e in c["errors"])
