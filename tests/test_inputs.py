"""A run whose inputs are those the site was built from skips the work, and only then.

Over real HTTP against the example upstream; ``parse_repodata`` is counted to tell a run that
did the work from one that recognised its inputs.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sitegen.conda.notices import ChannelNotice
from sitegen.conda.records import parse_repodata
from sitegen.config import ChannelConfig, FilterSpec
from sitegen.store.site import Site
from sitegen.sync import fetch as mirror_mod
from sitegen.sync.inputs import InputsDigest, file_signature
from sitegen.sync.report import RunReport
from testkit.site import (
    assert_channel_consistent,
    mirror_unchecked,
    rewrite_repodata,
    site_config,
    snapshot,
)
from testkit.upstream import ExampleUpstream, respond

CHANNEL = "cloud/example"


def config_for(site: Path, url: str, extra: str = "", schedule: str = "") -> Any:
    body = f"""
channels:
  {CHANNEL}:
    url: {url}
    subdirs: [linux-64, noarch]
{extra}"""
    if schedule:
        body += f"    schedule: '{schedule}'\n"
    return site_config(site, body)


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The subdirs parsed by mirror runs, in order."""
    seen: list[str] = []

    def counting(data: bytes, subdir: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(subdir)
        return parse_repodata(data, subdir, *args, **kwargs)

    monkeypatch.setattr(mirror_mod, "parse_repodata", counting)
    return seen


def kept(report: RunReport) -> dict[str, int]:
    return {s: sub.kept for s, sub in report.mirrors[0].subdirs.items()}


@pytest.mark.integration
async def test_unchanged_rerun_skips_the_work_and_reports_the_same(
    example_upstream: ExampleUpstream,
    tmp_path: Path,
    parses: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    site = tmp_path / "site"
    config = config_for(site, example_upstream.url)
    first = await mirror_unchecked(config)
    assert sorted(parses) == ["linux-64", "noarch"]
    before = snapshot(site / CHANNEL)
    parses.clear()
    caplog.clear()

    with caplog.at_level(logging.INFO, logger="sitegen"):
        second = await mirror_unchecked(config)

    assert parses == []
    assert sum(" kept " in r.getMessage() for r in caplog.records) == 1  # one summary
    assert second.status == "completed" and not second.failed
    assert kept(second) == kept(first) and all(kept(first).values())
    assert {s.upstream for s in second.mirrors[0].subdirs.values()} == {"unchanged"}
    assert sorted((c.subdir, c.status, c.packages) for c in second.channels) == sorted(
        (c.subdir, "unchanged", c.packages) for c in first.channels
    )
    assert snapshot(site / CHANNEL) == before


@pytest.mark.integration
async def test_a_changed_upstream_is_parsed_again(
    example_upstream: ExampleUpstream, tmp_path: Path, parses: list[str]
) -> None:
    site = tmp_path / "site"
    config = config_for(site, example_upstream.url)
    await mirror_unchecked(config)
    linux = example_upstream.root / "linux-64"
    dropped = sorted(example_upstream.repodata["linux-64"]["packages.conda"])[0]
    rewrite_repodata(example_upstream.root, "linux-64", lambda d: d["packages.conda"].pop(dropped))
    parses.clear()

    report = await mirror_unchecked(config)

    assert "linux-64" in parses
    assert not (site / CHANNEL / "linux-64" / dropped).exists()
    assert (linux / dropped).exists()
    assert not report.failed
    assert_channel_consistent(site, CHANNEL)


@pytest.mark.integration
async def test_a_touched_site_is_rebuilt(
    example_upstream: ExampleUpstream, tmp_path: Path, parses: list[str]
) -> None:
    site = tmp_path / "site"
    config = config_for(site, example_upstream.url)
    await mirror_unchecked(config)
    directory = site / CHANNEL / "linux-64"
    victim = sorted(directory.glob("*.conda"))[0]
    victim.unlink()
    parses.clear()

    await mirror_unchecked(config)

    assert sorted(parses) == ["linux-64", "noarch"]
    assert victim.is_file()  # downloaded again
    parses.clear()
    (site / CHANNEL / "noarch" / "current_repodata.json").unlink()

    await mirror_unchecked(config)

    assert sorted(parses) == ["linux-64", "noarch"]
    assert_channel_consistent(site, CHANNEL)
    parses.clear()
    await mirror_unchecked(config)
    assert parses == []


@pytest.mark.integration
async def test_configuration_changes_count_but_schedules_do_not(
    example_upstream: ExampleUpstream, tmp_path: Path, parses: list[str]
) -> None:
    site = tmp_path / "site"
    await mirror_unchecked(config_for(site, example_upstream.url))
    parses.clear()

    await mirror_unchecked(config_for(site, example_upstream.url, schedule="0 * * * *"))
    assert parses == []

    filtered = config_for(
        site, example_upstream.url, extra="    filters: {names: {exclude: [ghostscript]}}\n"
    )
    report = await mirror_unchecked(filtered)
    assert sorted(parses) == ["linux-64", "noarch"]
    assert report.mirrors[0].excluded_totals()
    assert not list((site / CHANNEL).glob("*/ghostscript-*"))
    parses.clear()
    await mirror_unchecked(filtered)
    assert parses == []


@pytest.mark.integration
async def test_options_that_ask_for_work_always_do_it(
    example_upstream: ExampleUpstream, tmp_path: Path, parses: list[str]
) -> None:
    site = tmp_path / "site"
    config = config_for(site, example_upstream.url)
    await mirror_unchecked(config)
    for options in ({"verify": True}, {"dry_run": True}, {"force_delete": True}):
        parses.clear()
        await mirror_unchecked(config, **options)
        assert sorted(parses) == ["linux-64", "noarch"], options


@pytest.mark.integration
async def test_a_run_with_failures_is_not_taken_as_a_base(
    example_upstream: ExampleUpstream, tmp_path: Path, parses: list[str]
) -> None:
    site = tmp_path / "site"
    config = config_for(site, example_upstream.url)
    missing = sorted(example_upstream.repodata["linux-64"]["packages.conda"])[0]
    example_upstream.server.add_fault(f"/linux-64/{missing}", respond(403))
    first = await mirror_unchecked(config)
    assert first.failed
    assert not (site / CHANNEL / "linux-64" / missing).exists()
    example_upstream.server.clear_faults()
    parses.clear()

    second = await mirror_unchecked(config)

    assert sorted(parses) == ["linux-64", "noarch"]
    assert not second.failed
    assert (site / CHANNEL / "linux-64" / missing).is_file()


# --------------------------------------------------------------------------- pure parts


@pytest.mark.unit
def test_digest_covers_filters_and_bytes_not_lines_or_schedules(tmp_path: Path) -> None:
    config = config_for(tmp_path / "site", "http://127.0.0.1:1")
    channels = list(config.channels)

    def digest(channels: list[ChannelConfig], body: bytes | None = b"{}") -> str:
        inputs = InputsDigest(config, channels)
        inputs.add_repodata("example", "linux-64", body)
        return inputs.hexdigest()

    base = digest(channels)
    assert digest(channels) == base
    mirror = channels[0].mirrors[0]
    moved = replace(channels[0], line=99, mirrors=(replace(mirror, line=7, schedule="@hourly"),))
    assert digest([moved]) == base
    filtered = replace(channels[0], filters=FilterSpec(exclude_names=("python",)))
    assert digest([filtered]) != base
    assert digest(channels, body=b"{ }") != base
    assert digest(channels, body=None) != base


@pytest.mark.unit
def test_a_notice_expiring_counts_as_a_change_and_notices_json_is_watched(tmp_path: Path) -> None:
    """The one input that moves with time: once a notice expires, the inputs differ, so the
    run that follows takes it out of notices.json; a notices.json touched by hand counts as a
    touched site."""
    config = config_for(tmp_path / "site", "http://127.0.0.1:1")
    expires = datetime(2027, 1, 1, tzinfo=UTC)
    notice = ChannelNotice("maintenance on Friday", expires=expires)
    channels = [replace(config.channels[0], notices=(notice,))]

    def digest(now: datetime) -> str:
        inputs = InputsDigest(config, channels, now)
        inputs.add_repodata("example", "linux-64", b"{}")
        return inputs.hexdigest()

    before = digest(expires - timedelta(days=1))
    assert digest(expires - timedelta(hours=1)) == before
    assert digest(expires + timedelta(seconds=1)) != before
    site = Site(tmp_path / "site")
    (site.root / CHANNEL).mkdir(parents=True)
    (site.root / CHANNEL / "notices.json").write_text("{}")
    assert f"{CHANNEL}/notices.json" in file_signature(site, channels, passive=set())


@pytest.mark.unit
def test_signature_skips_package_files_of_passive_subdirs(tmp_path: Path) -> None:
    config = config_for(tmp_path / "site", "http://127.0.0.1:1")
    site = Site(tmp_path / "site")
    directory = site.path(CHANNEL, "linux-64")
    directory.mkdir(parents=True)
    (directory / "repodata.json").write_text("{}")
    (directory / "a-1-0.conda").write_bytes(b"x")
    channels = list(config.channels)
    name = channels[0].mirrors[0].name

    active = file_signature(site, channels, passive=set())
    passive = file_signature(site, channels, passive={name})

    assert f"{CHANNEL}/linux-64/a-1-0.conda" in active
    assert f"{CHANNEL}/linux-64/a-1-0.conda" not in passive
    assert f"{CHANNEL}/linux-64/repodata.json" in passive


@pytest.mark.unit
def test_digest_covers_site_filters_the_sitegen_version_and_the_bz2_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each of these changes what a run publishes: the shortcut must not take the old site
    for the new inputs (README, What a run does: the channels' configuration and sitegen's
    version; turning bz2 on or off rebuilds every subdir)."""
    from sitegen.sync import inputs as inputs_mod

    config = config_for(tmp_path / "site", "http://127.0.0.1:1")

    def digest(config: Any) -> str:
        inputs = InputsDigest(config, list(config.channels))
        inputs.add_repodata("example", "linux-64", b"{}")
        return inputs.hexdigest()

    base = digest(config)
    assert digest(replace(config, filters=FilterSpec(exclude_names=("python",)))) != base
    assert digest(replace(config, repodata_bz2=not config.repodata_bz2)) != base
    monkeypatch.setattr(inputs_mod, "__version__", "0.0.0+other")
    assert digest(config) != base


@pytest.mark.unit
def test_signature_sees_every_published_file_change_size_or_mtime(tmp_path: Path) -> None:
    """Every file a run publishes counts (channeldata.json, each metadata file, a .bz2 left
    while the setting is off, the origins map the fetcher reads, the records of the files a
    keep_removed channel keeps), and a change of either its size or its mtime is a change."""
    import os

    from sitegen.layout import kept_records_path, origins_path

    config = config_for(tmp_path / "site", "http://127.0.0.1:1")
    site = Site(tmp_path / "site")
    channels = list(config.channels)
    directory = site.path(CHANNEL, "linux-64")
    directory.mkdir(parents=True)
    files = [
        site.path(CHANNEL, "channeldata.json"),
        directory / "repodata.json",
        directory / "repodata.json.bz2",
        origins_path(site.root, CHANNEL, "linux-64"),
        kept_records_path(site.root, CHANNEL, "linux-64"),
        directory / "a-1-0.conda",
    ]
    for path in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"1234")
        os.utime(path, ns=(1_700_000_000_000_000_000,) * 2)
    base = file_signature(site, channels, passive=set())
    for path in files:
        assert path.relative_to(site.root).as_posix() in base, path
    for path in files:
        path.write_bytes(b"abcd")  # same size, another mtime
        assert file_signature(site, channels, passive=set()) != base, path
        path.write_bytes(b"12345")
        os.utime(path, ns=(1_700_000_000_000_000_000,) * 2)  # the old mtime, another size
        assert file_signature(site, channels, passive=set()) != base, path
        path.write_bytes(b"1234")
        os.utime(path, ns=(1_700_000_000_000_000_000,) * 2)
        assert file_signature(site, channels, passive=set()) == base, path


@pytest.mark.unit
def test_a_forgotten_record_vouches_for_nothing(tmp_path: Path) -> None:
    """A run forgets the record before it changes anything, so a crash mid-publish cannot
    leave a record that takes the half-changed site for the last clean one."""
    from sitegen.sync.inputs import BuiltFrom, BuiltFromStore

    config = config_for(tmp_path / "site", "http://127.0.0.1:1")
    site = Site(tmp_path / "site")
    store = BuiltFromStore(site, list(config.channels))
    files = {f"{CHANNEL}/linux-64/repodata.json": [2, 1]}
    store.save(BuiltFrom("d" * 64, files))
    assert store.matching("d" * 64, files) is not None
    store.forget()
    assert store.matching("d" * 64, files) is None
