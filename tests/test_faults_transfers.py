"""Broken package transfers (resets, truncation, lies, drips, hangs, redirect loops) are never
published, and the metadata twins and the log stay right. Real HTTP on 127.0.0.1."""

from __future__ import annotations

import bz2
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import zstandard

from sitegen.cli import main
from sitegen.sync.report import COMPLETED, FAILED
from sitegen.tools.example_channel import PackageSpec
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
    on_disk,
    seed_jitter,
    serve_small_upstream,
)
from testkit.faults import corrupt, hang, oversize, redirect, reset_after, short_length, slow_drip
from testkit.invariant import assert_site_invariant, make_sandbox
from testkit.site import mirror_unchecked
from testkit.small_channel import CHANNEL, filenames, site_config, write_config
from testkit.upstream import FaultHook, UpstreamServer, drop_connection, truncate

pytestmark = pytest.mark.integration


seeded = pytest.fixture(autouse=True, name="seeded")(seed_jitter)
upstream = pytest.fixture(name="upstream")(serve_small_upstream)


# --------------------------------------------------------------------------- broken transfers


@dataclass(frozen=True)
class Transfer:
    """A way to botch the victim's download, and what the run must say about it."""

    name: str
    install: Callable[[UpstreamServer, str, int | None], None]
    errors: tuple[str, ...]  # the report names one of these


def _hook(factory: Callable[[], FaultHook]) -> Callable[[UpstreamServer, str, int | None], None]:
    def install(server: UpstreamServer, path: str, times: int | None) -> None:
        server.add_fault(path, factory(), times)

    return install


def _redirect_loop(server: UpstreamServer, path: str, times: int | None) -> None:
    server.add_fault(path, redirect(path + ".moved"), times)
    server.add_fault(path + ".moved", redirect(path), times)


TRANSFERS = [
    Transfer("reset", _hook(lambda: reset_after(300)), ("ReadError", "RemoteProtocolError")),
    Transfer("truncated", _hook(lambda: truncate(300)), ("RemoteProtocolError",)),
    Transfer("dropped", _hook(drop_connection), ("RemoteProtocolError",)),
    Transfer(
        "longer than listed",
        _hook(oversize),
        ("checksum mismatch: more than the expected",),
    ),
    Transfer("content-length lies", _hook(lambda: short_length(100)), ("checksum mismatch: size",)),
    Transfer("wrong bytes", _hook(corrupt), ("checksum mismatch: sha256",)),
    Transfer("slow drip", _hook(lambda: slow_drip(16, 0.05)), ("TooSlowError",)),
    Transfer("never answers", _hook(hang), ("ReadTimeout", "TooSlowError")),
    Transfer("redirect loop", _redirect_loop, ("too many redirects",)),
]


def _victims() -> dict[str, PackageSpec]:
    """One new upstream package per kind of broken transfer, all hit in the same run."""
    return {
        t.name: PackageSpec(
            f"victim{i}", "1.0", f"h{i}_0", license="MIT", formats=("conda",), payload_size=1500
        )
        for i, t in enumerate(TRANSFERS)
    }


async def test_broken_transfers_are_never_published(upstream: Upstream, tmp_path: Path) -> None:
    site = make_sandbox(tmp_path)
    cfg = await first_run(upstream, site, retries=1, timeout=0.5)
    before = {fn: (site / CHANNEL / LINUX / fn).read_bytes() for fn in on_disk(site)}
    victims = _victims()
    upstream.publish([*upstream.specs, *victims.values(), BYSTANDER])
    for transfer in TRANSFERS:
        transfer.install(
            upstream.server, upstream.path(victims[transfer.name].filename("conda")), None
        )
    upstream.server.reset()
    report = await mirror_unchecked(cfg)

    assert report.status == FAILED and report.failed
    assert [m.status for m in report.mirrors] == [COMPLETED]  # the mirror itself was read fine
    linux = channel_report(report, LINUX)
    assert linux.status == "published" and linux.added == [BYSTANDER_FN]
    errors = {e.split(": ", 1)[0]: e.split(": ", 1)[1] for e in linux.errors}
    assert len(errors) == len(linux.errors) == len(TRANSFERS)
    for transfer in TRANSFERS:
        fn = victims[transfer.name].filename("conda")
        error = errors[f"linux-64/{fn}"]
        assert any(e in error for e in transfer.errors), (transfer.name, error)
        attempts = upstream.server.count(upstream.path(fn))
        if transfer.name == "redirect loop":
            # One attempt (a loop is not worth retrying): the request and 10 redirects.
            assert attempts + upstream.server.count(upstream.path(fn) + ".moved") == 11
        elif transfer.name == "dropped":
            # retries: 1; an attempt sent on a kept-alive connection that is closed unanswered
            # (which may be the keep-alive race) goes once more to a fresh connection.
            assert 2 <= attempts <= 4, attempts
        else:
            assert attempts == 2, transfer.name  # retries: 1
    expected = filenames(upstream.specs, LINUX) - {v.filename("conda") for v in victims.values()}
    assert BYSTANDER_FN in expected
    assert listed(site) == on_disk(site) == expected
    for fn, data in before.items():
        assert (site / CHANNEL / LINUX / fn).read_bytes() == data
    assert_site_invariant(site)


async def test_transient_broken_transfers_are_retried(upstream: Upstream, tmp_path: Path) -> None:
    site = make_sandbox(tmp_path)
    victims = _victims()
    upstream.publish([*upstream.specs, *victims.values()])
    for transfer in TRANSFERS:
        transfer.install(
            upstream.server, upstream.path(victims[transfer.name].filename("conda")), 1
        )
    report = await mirror_unchecked(site_config(site, upstream.server.url, retries=1, timeout=0.5))
    assert report.status == COMPLETED and not report.failed, report.channels
    assert listed(site) == on_disk(site) == filenames(upstream.specs, LINUX)
    for victim in victims.values():
        # One botched answer, then the file itself (a redirect loop also asks once more).
        assert upstream.server.count(upstream.path(victim.filename("conda"))) == 2
    assert_site_invariant(site)


# --------------------------------------------------------------------------- the compressed twins


async def test_metadata_twins_match_after_faulty_runs(upstream: Upstream, tmp_path: Path) -> None:
    """After a run with failures, .zst/.bz2 still decompress to exactly repodata.json."""
    site = make_sandbox(tmp_path)
    upstream.publish([*upstream.specs, VICTIM, BYSTANDER])
    upstream.server.add_fault(upstream.path(VICTIM_FN), corrupt())
    report = await mirror_unchecked(site_config(site, upstream.server.url, repodata_bz2=True))
    assert report.failed
    directory = site / CHANNEL / LINUX
    body = (directory / "repodata.json").read_bytes()
    assert bz2.decompress((directory / "repodata.json.bz2").read_bytes()) == body
    zst = (directory / "repodata.json.zst").read_bytes()
    assert zstandard.ZstdDecompressor().stream_reader(zst).read() == body
    assert VICTIM_FN not in body.decode()
    assert_site_invariant(site)


def test_failures_are_logged(
    upstream: Upstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    site = make_sandbox(tmp_path)
    upstream.publish([*upstream.specs, VICTIM])
    upstream.server.add_fault(upstream.path(VICTIM_FN), corrupt())
    config = write_config(tmp_path / "channels.yaml", site, upstream.server.url)
    with caplog.at_level(logging.INFO, logger="sitegen"):
        assert main(["mirror", "-c", str(config), "--no-progress"]) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(VICTIM_FN in e and "checksum mismatch: sha256" in e for e in errors), errors
    assert_site_invariant(site)
