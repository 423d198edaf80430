"""End to end, dry runs: ``--dry-run`` counts what a run would do and changes nothing on
disk."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sitegen.cli import main
from sitegen.store.site import Site
from sitegen.sync.history import History
from sitegen.sync.report import INTERRUPTED, RUNNING, RunReport
from sitegen.tools.example_channel import PackageSpec, write_channel
from testkit.example_mirror import (
    CHANNEL,
    LINUX,
    PACKAGES,
    channel_report,
    package_gets,
    spec,
)
from testkit.site import (
    channel_config,
    mirror_unchecked,
    published,
    snapshot,
)
from testkit.upstream import ExampleUpstream

pytestmark = pytest.mark.integration


async def test_dry_run_changes_nothing_and_counts(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url)
    await mirror_unchecked(config)
    readline = spec("readline")
    new_zlib = PackageSpec(name="zlib", version="1.3.2", build="h1234567_0", license="Zlib")
    write_channel(
        example_upstream.root, [p for p in PACKAGES if p is not readline] + [new_zlib], zst=True
    )
    before = snapshot(site, exclude={".sitegen/lock"})
    server = example_upstream.server
    server.reset()

    report = await mirror_unchecked(config, dry_run=True)

    assert snapshot(site, exclude={".sitegen/lock"}) == before
    assert package_gets(server) == []
    linux = channel_report(report, "linux-64")
    assert linux.status == "dry-run"
    assert linux.downloaded_files == 2
    assert linux.downloaded_bytes == sum(
        (example_upstream.root / "linux-64" / fn).stat().st_size for fn in new_zlib.filenames
    )
    assert linux.deleted_files == 2
    assert sorted(linux.added) == sorted(new_zlib.filenames)
    assert sorted(linux.removed) == sorted(readline.filenames)
    noarch = channel_report(report, "noarch")
    assert (noarch.status, noarch.downloaded_files, noarch.deleted_files) == ("dry-run", 0, 0)

    # The real run afterwards still sees upstream as changed (dry-run stored no validators).
    report = await mirror_unchecked(config)
    assert channel_report(report, "linux-64").downloaded_files == 2
    assert published(site, CHANNEL, "linux-64") == (LINUX - set(readline.filenames)) | set(
        new_zlib.filenames
    )


async def test_a_dry_run_leaves_the_record_of_a_killed_run_to_the_next_run(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    """A run killed outright leaves its record 'running'; a dry run does not rewrite it
    (nothing on disk changes, and pages rendered before would disagree with the ledger): the
    next real run records it as interrupted."""
    site = tmp_path / "site"
    config = channel_config(site, example_upstream.url)
    await mirror_unchecked(config)
    history = History(Site(site))
    killed = RunReport(id="20990101T000000Z-99", started=time.time(), status=RUNNING, pid=99)
    history.save(killed)
    before = snapshot(site, exclude={".sitegen/lock"})

    assert not (await mirror_unchecked(config, dry_run=True)).failed

    after = snapshot(site, exclude={".sitegen/lock"})
    assert {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)} == set()
    [record] = [r for r in history.runs() if r.id == killed.id]
    assert record.status == RUNNING
    await mirror_unchecked(config)
    [record] = [r for r in history.runs() if r.id == killed.id]
    assert record.status == INTERRUPTED


def test_dry_run_via_cli_prints_counts(
    example_upstream: ExampleUpstream, tmp_path: Path, capsys
) -> None:
    site = tmp_path / "site"
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {site}\n"
        f"channels:\n  {CHANNEL}:\n    url: {example_upstream.url}\n    subdirs: [linux-64]\n"
    )
    assert main(["mirror", "-c", str(config_path), "--dry-run", "--no-progress"]) == 0
    out = capsys.readouterr().out
    size = sum((example_upstream.root / "linux-64" / fn).stat().st_size for fn in LINUX)
    assert (
        f"{CHANNEL}/linux-64: would download 42 files ({size} bytes), delete 0, publish 42"
        " files" in out
    )
    assert package_gets(example_upstream.server) == []
    assert not (site / CHANNEL).exists()
    assert not (site / "history").exists()


def test_dry_run_lines_count_one_file_as_one_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A subdir of one package file prints ``publish 1 file``."""
    one = PackageSpec(name="zlib", version="1.3.2", build="h1234567_0", formats=("conda",))
    write_channel(tmp_path / "up", [one])
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {tmp_path / 'site'}\n"
        f"channels:\n  x/y: {{url: 'file://{tmp_path}/up', subdirs: [linux-64]}}\n"
    )
    assert main(["mirror", "-c", str(config), "--dry-run", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "x/y/linux-64: would download 1 file" in out
    assert "publish 1 file\n" in out
