"""End to end, failures and conflicts: a failing mirror leaves the others and its own
previous state alone, the first of two mirrors wins a conflict, a file failing its checksum is
not published."""

from __future__ import annotations

import json
import logging
import socket
from dataclasses import replace
from pathlib import Path

import pytest

from sitegen.cli import main
from sitegen.tools.example_channel import write_channel
from testkit.example_mirror import (
    CHANNEL,
    LINUX,
    PACKAGES,
    channel_report,
    package_gets,
    spec,
)
from testkit.records import as_upstream
from testkit.site import (
    assert_channel_consistent,
    channel_config,
    mirror_unchecked,
    published,
    read_repodata,
    sha256_of,
    site_config,
    snapshot,
)
from testkit.upstream import ExampleUpstream, serve_bytes

pytestmark = pytest.mark.integration


# --------------------------------------------------------------------------- failures


def _closed_port() -> int:
    """A loopback port with nothing listening (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_failing_mirror_does_not_stop_the_others(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {site}\n"
        "download: {retries: 0, timeout: 5}\n"
        "channels:\n"
        f"  cloud/broken:\n    url: http://127.0.0.1:{_closed_port()}/gone\n"
        "    subdirs: [linux-64]\n"
        f"  {CHANNEL}:\n    url: {example_upstream.url}\n    subdirs: [linux-64]\n"
    )
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 1
    assert published(site, CHANNEL, "linux-64") == LINUX
    assert_channel_consistent(site, CHANNEL)
    assert not (site / "cloud" / "broken" / "linux-64" / "repodata.json").exists()
    (run,) = [json.loads(p.read_bytes()) for p in (site / "history" / "runs").glob("*.json")]
    broken, good = run["mirrors"]
    assert broken["status"] == "failed" and broken["errors"]
    assert good["status"] == "completed" and not good["errors"]


async def test_a_failing_mirror_keeps_its_previous_state(
    tmp_path: Path, upstream_server_factory
) -> None:
    root = tmp_path / "upstream"
    write_channel(root, PACKAGES, zst=True)
    server = upstream_server_factory(root)
    site = tmp_path / "site"
    config = channel_config(site, server.url)
    await mirror_unchecked(config)
    before = snapshot(site / CHANNEL)
    server.stop()  # upstream goes away entirely

    report = await mirror_unchecked(config)

    assert report.failed
    assert all(c.status == "failed" for c in report.channels)
    assert snapshot(site / CHANNEL) == before


async def test_two_mirrors_merge_and_the_first_wins_a_conflict(
    tmp_path: Path, upstream_server_factory
) -> None:
    zlib = spec("zlib", version="1.3.1")
    first_specs = [spec("python", version="3.12.4"), zlib]
    # The second upstream's zlib has the same filenames but other bytes.
    second_specs = [spec("numpy", "py312", "2.1.0"), replace(zlib, seed=1)]
    first_docs = write_channel(tmp_path / "a", first_specs, zst=True)
    second_docs = write_channel(tmp_path / "b", second_specs, zst=True)
    first, second = upstream_server_factory(tmp_path / "a"), upstream_server_factory(tmp_path / "b")
    site = tmp_path / "site"
    config = site_config(
        site,
        f"""
        channels:
          {CHANNEL}:
            mirrors:
              - name: first
                url: {first.url}
                subdirs: [linux-64]
              - name: second
                url: {second.url}
                subdirs: [linux-64]
        """,
    )
    report = await mirror_unchecked(config)

    repodata = assert_channel_consistent(site, CHANNEL)
    expected = {fn for p in (*first_specs, *second_specs) for fn in p.filenames}
    assert published(site, CHANNEL, "linux-64") == expected
    for fn in zlib.filenames:
        key = "packages.conda" if fn.endswith(".conda") else "packages"
        assert as_upstream(repodata["linux-64"][key][fn]) == first_docs["linux-64"][key][fn]
        assert repodata["linux-64"][key][fn] != second_docs["linux-64"][key][fn]
        assert (
            sha256_of(site / CHANNEL / "linux-64" / fn) == first_docs["linux-64"][key][fn]["sha256"]
        )
    first_report, second_report = report.mirrors
    assert first_report.conflicts == []
    assert sorted(second_report.conflicts) == sorted(
        f"linux-64/{fn}: differs from the copy offered by first; kept first's"
        for fn in zlib.filenames
    )
    # The loser's copy of zlib is never downloaded.
    assert not [p for p in package_gets(second) if "zlib" in p]


async def test_checksum_mismatch_is_not_published(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    bad = spec("numpy", "py311", "2.1.0").filename("conda")
    good_size = (example_upstream.root / "linux-64" / bad).stat().st_size
    server = example_upstream.server
    server.add_fault(f"/linux-64/{bad}", serve_bytes(b"\0" * good_size))  # every attempt
    site = tmp_path / "site"
    report = await mirror_unchecked(channel_config(site, example_upstream.url))

    assert report.failed and report.status == "failed"
    assert server.count(f"/linux-64/{bad}") == 2  # retried once (retries: 1), then given up
    assert not (site / CHANNEL / "linux-64" / bad).exists()
    assert published(site, CHANNEL, "linux-64") == LINUX - {bad}
    current = read_repodata(site / CHANNEL / "linux-64", "current_repodata.json")
    assert bad not in current["packages.conda"]
    assert_channel_consistent(site, CHANNEL)
    (error,) = channel_report(report, "linux-64").errors
    assert bad in error and "sha256" in error

    # Once upstream serves the right bytes, the next run completes the subdir.
    server.clear_faults()
    report = await mirror_unchecked(channel_config(site, example_upstream.url))
    assert not report.failed
    assert published(site, CHANNEL, "linux-64") == LINUX
    assert_channel_consistent(site, CHANNEL)


async def test_verify_replaces_a_corrupted_file_of_the_same_size(
    example_upstream: ExampleUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url)
    await mirror_unchecked(config)
    victim = site / CHANNEL / "linux-64" / spec("zlib", version="1.3.1").filename("tar.bz2")
    good = victim.read_bytes()
    victim.write_bytes(bytes(b ^ 0xFF for b in good))  # same size, other bytes
    server = example_upstream.server
    server.reset()

    await mirror_unchecked(config)  # trusts the size: nothing fetched
    assert package_gets(server) == []
    assert victim.read_bytes() != good

    with caplog.at_level(logging.INFO, logger="sitegen"):
        report = await mirror_unchecked(config, verify=True)
    assert not report.failed
    assert f"{victim.name} fails its checksum" in caplog.text  # damaged: a warning
    assert package_gets(server) == [f"/linux-64/{victim.name}"]
    assert victim.read_bytes() == good
    assert_channel_consistent(site, CHANNEL)
