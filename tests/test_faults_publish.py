"""Failures inside publication (a replacement's two steps, the renames, the publishing marker, a
stop between steps): the report says what is published. Real HTTP on 127.0.0.1."""

from __future__ import annotations

import errno
import os
import re
import signal
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from sitegen.config import SiteConfig
from sitegen.layout import run_page_path
from sitegen.store.site import Site
from sitegen.sync import publish as publish_module
from sitegen.sync.history import History
from sitegen.sync.report import STOPPED
from sitegen.tools.example_channel import PackageSpec
from sitegen.web.render import render_site
from testkit.fault_runs import (
    BYSTANDER,
    BYSTANDER_FN,
    LINUX,
    VICTIM,
    VICTIM_FN,
    Upstream,
    channel_report,
    first_run,
    listed,
    seed_jitter,
    serve_small_upstream,
)
from testkit.invariant import assert_site_invariant, make_sandbox, site_digest
from testkit.site import mirror_unchecked
from testkit.small_channel import CHANNEL, filenames

pytestmark = pytest.mark.integration


seeded = pytest.fixture(autouse=True, name="seeded")(seed_jitter)
upstream = pytest.fixture(name="upstream")(serve_small_upstream)


def _reuploaded_beta(specs: list[PackageSpec]) -> list[PackageSpec]:
    """The channel with beta's file uploaded again under its name, with other bytes."""
    return [replace(s, seed=1) if s.name == "beta" else s for s in specs]


def _second_compression_fails(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any, Any], None]:
    """The second repodata.json.zst of the run fails for a full disk (that of the second step
    of a two-step publish); returns the real compression, to put back."""
    compressions: list[int] = []
    real = publish_module.zstd_stream

    def second_fails(source: Any, out: Any) -> None:
        compressions.append(source.size())
        if len(compressions) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(source, out)

    monkeypatch.setattr(publish_module, "zstd_stream", second_fails)
    return real


def _serves_upstreams_bytes(site: Path, upstream: Upstream, fn: str) -> bool:
    """Whether the site's linux-64 file ``fn`` holds what upstream serves under that name."""
    return (site / CHANNEL / LINUX / fn).read_bytes() == (upstream.root / LINUX / fn).read_bytes()


def _results_shown(cfg: SiteConfig, run_id: str) -> list[str]:
    """The pages rendered now: what the run's page and the history page say of linux-64."""
    render_site(cfg)
    row = re.compile(
        rf"<td>{re.escape(CHANNEL)}/{LINUX}</td>\s*<td data-label=\"Result\">"
        r"<span class=\"badge badge-\w+\">([^<]*)</span>"
    )
    pages = (cfg.output / run_page_path(run_id), cfg.output / "history" / "index.html")
    run_page, history = (page.read_text(encoding="utf-8") for page in pages)
    # The history page shows the newest run first.
    return [row.findall(run_page)[0], row.findall(history)[0]]


async def test_disk_full_while_a_replacements_shards_are_written_keeps_previous_state(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upstream re-uploads beta (its only file) with other bytes; the disk has no room for the
    shard of its new record. The subdir fails before anything of it is published: the old
    repodata.json still lists beta, whose old bytes stay in place, as the report says; the
    next run, with room again, publishes the new bytes."""
    site = make_sandbox(tmp_path)
    cfg = await first_run(upstream, site)
    beta = "beta-2.0-h1_0.conda"
    before = site_digest(site)
    upstream.publish(_reuploaded_beta(upstream.specs))
    write_addressed = Site.write_addressed

    def full(self: Site, folder: Path, name: str, data: bytes) -> bool:
        if not (folder / name).exists():  # a shard new to the disk: no room for it
            raise OSError(errno.ENOSPC, "No space left on device", str(folder / name))
        return write_addressed(self, folder, name, data)

    monkeypatch.setattr(Site, "write_addressed", full)
    report = await mirror_unchecked(cfg)
    linux = channel_report(report, LINUX)
    assert linux.status == "failed"
    (error,) = linux.errors
    assert error.startswith("linux-64: could not publish: No space left on device")
    assert error.endswith("kept the previous state")
    # Its new bytes wait under a staging name of this (live) process, for a later run to clear.
    after = {path: digest for path, digest in site_digest(site).items() if "-staged-" not in path}
    assert after == before
    assert beta in listed(site)
    assert_site_invariant(site, settled=False)

    monkeypatch.setattr(Site, "write_addressed", write_addressed)
    report = await mirror_unchecked(cfg)
    assert channel_report(report, LINUX).updated == [beta]
    assert _serves_upstreams_bytes(site, upstream, beta)
    assert_site_invariant(site)


async def test_disk_full_in_a_replacements_second_step_says_what_is_published(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upstream re-uploads beta; its subdir is published without it first, then the disk
    fills while the repodata listing its new bytes is compressed. The report says the subdir
    is published without the replaced file (not that it kept its previous state), which the
    repodata shows; the next run lists the new bytes."""
    site = make_sandbox(tmp_path)
    cfg = await first_run(upstream, site)
    beta = "beta-2.0-h1_0.conda"
    upstream.publish(_reuploaded_beta(upstream.specs))
    real = _second_compression_fails(monkeypatch)
    report = await mirror_unchecked(cfg)
    linux = channel_report(report, LINUX)
    assert linux.status == "failed"
    (error,) = linux.errors
    assert error.startswith("linux-64: could not publish: No space left on device")
    assert error.endswith("published without the files replaced upstream")
    assert beta not in listed(site)
    assert_site_invariant(site)
    shown = "published without the files replaced upstream"
    assert _results_shown(cfg, report.id) == [shown, shown]

    monkeypatch.setattr(publish_module, "zstd_stream", real)
    report = await mirror_unchecked(cfg)
    assert channel_report(report, LINUX).added == [beta]
    assert _serves_upstreams_bytes(site, upstream, beta)
    assert_site_invariant(site)


@pytest.mark.parametrize(
    "step", ["sitegen.sync.publish_shards.prune_shards", "sitegen.sync.publish.prune_subdir"]
)
async def test_disk_full_after_the_renames_reports_the_subdir_published(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    """Once repodata.json is renamed in, the subdir is published: a disk error in the pruning
    after it (the retired-shards state not written, a file not deleted) leaves something for
    the next run to tidy, and the report still says what was published, never "failed, kept
    the previous state"."""
    site = make_sandbox(tmp_path)
    cfg = await first_run(upstream, site)
    upstream.publish([*upstream.specs, VICTIM])

    def full(*_args: object) -> list[str]:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(step, full)
    report = await mirror_unchecked(cfg)
    linux = channel_report(report, LINUX)
    assert (linux.status, linux.errors) == ("published", [])
    assert VICTIM_FN in linux.added
    assert VICTIM_FN in listed(site)
    assert_site_invariant(site)


async def test_a_publishing_marker_that_cannot_be_removed_reports_the_subdir_published(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The subdir's files are renamed in, then its publishing marker cannot be removed (an I/O
    error): the subdir is published, as the report says; the next run that publishes it,
    finding the marker, writes its siblings again and removes it."""
    site = make_sandbox(tmp_path)
    cfg = await first_run(upstream, site)
    upstream.publish([*upstream.specs, VICTIM])
    remove = Site.remove

    def failing(self: Site, path: Path) -> bool:
        if path.parent.name == CHANNEL.rpartition("/")[2] and path.name == LINUX:
            raise OSError(errno.EIO, "Input/output error", str(path))
        return remove(self, path)

    monkeypatch.setattr(Site, "remove", failing)
    report = await mirror_unchecked(cfg)
    linux = channel_report(report, LINUX)
    assert (linux.status, linux.errors) == ("published", [])
    assert VICTIM_FN in linux.added
    assert VICTIM_FN in listed(site)
    marker = site / ".sitegen" / "publishing" / CHANNEL / LINUX
    assert marker.exists()

    monkeypatch.setattr(Site, "remove", remove)
    upstream.publish([s for s in upstream.specs if s != VICTIM])
    report = await mirror_unchecked(cfg)
    assert channel_report(report, LINUX).removed == [VICTIM_FN]
    assert not marker.exists()
    assert_site_invariant(site)


async def test_a_replacements_failed_second_step_reports_what_its_first_step_published(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upstream re-uploads beta and adds eta; the first step publishes eta (without beta),
    then the second fails. The failed run's record says eta was added and how many files the
    subdir publishes: the next run compares with the repodata that lists eta and never would."""
    site = make_sandbox(tmp_path)
    cfg = await first_run(upstream, site)
    specs = _reuploaded_beta(upstream.specs)
    upstream.publish([*specs, BYSTANDER])
    real = _second_compression_fails(monkeypatch)
    report = await mirror_unchecked(cfg)
    linux = channel_report(report, LINUX)
    assert linux.status == "failed"
    assert BYSTANDER_FN in listed(site)
    assert linux.added == [BYSTANDER_FN]
    assert linux.packages == len(listed(site))
    assert_site_invariant(site)

    monkeypatch.setattr(publish_module, "zstd_stream", real)
    report = await mirror_unchecked(cfg)
    assert channel_report(report, LINUX).added == ["beta-2.0-h1_0.conda"]
    assert_site_invariant(site)


async def test_a_replacement_that_cannot_be_moved_into_place_says_what_is_published(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upstream re-uploads beta; its subdir is published without it, then its new bytes
    cannot be moved into place (an I/O error). The report says the subdir is published
    without the replaced file, not that it kept its previous state; the next run lists the
    new bytes."""
    site = make_sandbox(tmp_path)
    cfg = await first_run(upstream, site)
    beta = "beta-2.0-h1_0.conda"
    upstream.publish(_reuploaded_beta(upstream.specs))
    real = Site.commit

    def commit(self: Site, temp: Path, target: Path) -> None:
        if target.name == beta:
            raise OSError(errno.EIO, "Input/output error", str(target))
        real(self, temp, target)

    monkeypatch.setattr(Site, "commit", commit)
    report = await mirror_unchecked(cfg)
    linux = channel_report(report, LINUX)
    assert linux.status == "failed"
    (error,) = linux.errors
    assert error.endswith("published without the files replaced upstream")
    assert beta not in listed(site)
    assert linux.removed == [beta]
    # Its new bytes wait under a staging name of this (live) process, for a later run to clear.
    assert_site_invariant(site, settled=False)

    monkeypatch.setattr(Site, "commit", real)
    report = await mirror_unchecked(cfg)
    assert channel_report(report, LINUX).added == [beta]
    assert _serves_upstreams_bytes(site, upstream, beta)
    assert_site_invariant(site)


async def test_a_stop_between_a_replacements_two_steps_reports_what_its_first_step_published(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upstream re-uploads beta and adds eta; SIGINT lands once the first step (eta, without
    beta) is renamed in. The stopped run's record says what that step published (eta added,
    beta's old record gone) and that the subdir is published without the file replaced
    upstream: the next run compares with the repodata that lists eta and never would."""
    site = make_sandbox(tmp_path)
    cfg = await first_run(upstream, site)
    beta = "beta-2.0-h1_0.conda"
    upstream.publish([*_reuploaded_beta(upstream.specs), BYSTANDER])
    renaming = Site.write_many
    sent: list[int] = []

    def write_many(self: Site, items: list[tuple[Path, Any]]) -> list[Path]:
        written = renaming(self, items)
        if not sent and any(
            target.name == "repodata.json" and target.parent.name == LINUX for target, _ in items
        ):
            sent.append(signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)  # the first step is renamed in; stop now
        return written

    monkeypatch.setattr(Site, "write_many", write_many)
    report = await mirror_unchecked(cfg)
    assert sent and report.status == STOPPED
    assert listed(site) == filenames(upstream.specs, LINUX) - {beta}
    (record,) = [r for r in History(Site(site)).runs() if r.status == STOPPED]
    linux = channel_report(record, LINUX)
    assert (linux.added, linux.removed) == ([BYSTANDER_FN], [beta])
    assert linux.packages == len(listed(site))
    (error,) = linux.errors
    assert error.endswith("published without the files replaced upstream")
    assert_site_invariant(site)
    shown = "published without the files replaced upstream"
    assert _results_shown(cfg, record.id) == [shown, shown]

    monkeypatch.setattr(Site, "write_many", renaming)
    report = await mirror_unchecked(cfg)
    assert channel_report(report, LINUX).added == [beta]
    assert listed(site) == filenames(upstream.specs, LINUX)
    assert_site_invariant(site)
