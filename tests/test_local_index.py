"""Local sources: a folder of real packages indexed like rattler's indexer does, published by
hard link, and indexed again only where a file is new, changed or read under older rules."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import pytest
import trio

from sitegen.conda.index import (
    REASON_NO_INFO,
    REASON_UNREADABLE,
)
from sitegen.layout import local_index_path
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import PackageSpec
from testkit.local import (
    BUILD_KEYS,
    CHANNEL,
    SPECS,
    drop,
    drop_all,
    index_of,
    info_members,
    local_config,
    run,
    write_conda,
)
from testkit.site import assert_channel_consistent, published, read_repodata, sha256_of, snapshot

pytestmark = pytest.mark.unit


def test_build_machine_keys_stay_out_of_records_as_conda_index_leaves_them(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "incoming"
    spec = PackageSpec("old", "1.0", "0", depends=("libc",), extra=BUILD_KEYS)
    path = drop(folder, spec, "conda")
    site = tmp_path / "site"
    config = local_config(site, folder)
    assert not run(config).failed
    record = read_repodata(site / CHANNEL / "linux-64")["packages.conda"][path.name]
    assert not set(record) & set(BUILD_KEYS)
    assert record["depends"] == ["libc"] and record["sha256"] == sha256_of(path)
    # A cache written while records still carried them: the next run publishes them without.
    cache_path = local_index_path(site, "internal-own")
    cache = json.loads(cache_path.read_text())
    cache[path.name]["record"].update(BUILD_KEYS)
    del cache[path.name]["version"]
    cache_path.write_text(json.dumps(cache))
    assert not run(config).failed
    record = read_repodata(site / CHANNEL / "linux-64")["packages.conda"][path.name]
    assert not set(record) & set(BUILD_KEYS)


def test_a_package_cannot_claim_when_the_channel_indexed_it(tmp_path: Path) -> None:
    """``indexed_timestamp`` says when the channel first published a file (clients cut
    ``exclude-newer`` windows by it): an index.json carrying one of its own, far in the past,
    was published as it was, so a build dropped today passed as one indexed years ago."""
    folder = tmp_path / "incoming"
    claimed = 946_684_800_000  # 2000-01-01
    spec = PackageSpec("old", "1.0", "0", extra={"indexed_timestamp": claimed})
    path = drop(folder, spec, "conda")
    site = tmp_path / "site"
    before = int(time.time() * 1000)
    assert not run(local_config(site, folder)).failed
    record = read_repodata(site / CHANNEL / "linux-64")["packages.conda"][path.name]
    assert record["indexed_timestamp"] >= before


def test_files_are_hard_linked_and_the_folder_is_left_as_it_was(tmp_path: Path) -> None:
    folder = tmp_path / "incoming"
    files = drop_all(folder, SPECS[:2])
    before = snapshot(folder)
    site = tmp_path / "site"
    report = run(local_config(site, folder))
    assert not report.failed
    assert snapshot(folder) == before
    for fn, source in files.items():
        assert os.stat(site / CHANNEL / "linux-64" / fn).st_ino == os.stat(source).st_ino
    channeldata = json.loads((site / CHANNEL / "channeldata.json").read_text())
    foo = channeldata["packages"]["foo"]
    assert foo["summary"] == "foo, an example package for sitegen"  # from about.json
    assert foo["version"] == "1.1"
    # about.json's fields go to channeldata.json, not into repodata records.
    assert (
        "summary"
        not in read_repodata(site / CHANNEL / "linux-64")["packages.conda"]["foo-1.1-h2_1.conda"]
    )


def test_drop_replace_delete_between_runs(tmp_path: Path) -> None:
    folder = tmp_path / "incoming"
    site = tmp_path / "site"
    config = local_config(site, folder)
    first = drop(folder, SPECS[1], "conda")
    assert not run(config).failed
    assert published(site, CHANNEL, "linux-64") == {first.name}
    # Replaced by other bytes (written beside and renamed over, as `sitegen add` does).
    replacement = PackageSpec(**{**_fields(SPECS[1]), "seed": 7})
    temp = drop(tmp_path / "elsewhere", replacement, "conda")
    os.replace(temp, first)
    assert not run(config).failed
    record = read_repodata(site / CHANNEL / "linux-64")["packages.conda"][first.name]
    assert record["sha256"] == sha256_of(first)
    assert_channel_consistent(site, CHANNEL)
    first.unlink()
    # One file of one: the deletion guard holds it unless told otherwise.
    report = trio.run(run_mirror, config, MirrorOptions(progress=False, force_delete=True))
    assert not report.failed
    assert published(site, CHANNEL, "linux-64") == set()
    assert not (site / CHANNEL / "linux-64" / first.name).exists()


def _fields(spec: PackageSpec) -> dict:
    return {name: getattr(spec, name) for name in spec.__dataclass_fields__}


def _indexed(caplog: pytest.LogCaptureFixture, config) -> list[str]:
    """Run; what the run said it indexed (read in full)."""
    caplog.clear()
    with caplog.at_level("INFO", logger="sitegen"):
        assert not run(config).failed
    return [m for m in caplog.messages if "new or changed files" in m]


def _rewrite_keeping_mtime(path: Path, offset: int) -> None:
    """Change one byte in place (same inode, same size), then set the mtime back, as ``cp -p``,
    ``touch -r`` or ``rsync --times`` over the file would."""
    before = path.stat()
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
    )


def test_a_reindex_reads_only_new_or_changed_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "incoming"
    site = tmp_path / "site"
    config = local_config(site, folder)
    path = drop(folder, SPECS[1], "conda")
    assert _indexed(caplog, config)
    # Publishing linked the file, which moved its ctime: the cache took the new one along.
    assert _indexed(caplog, config) == []
    # Rewritten in place with size, mtime and inode as they were (here a byte of the zip's
    # local header that readers skip: still a valid package, of another sha256). The published
    # file is a hard link to it: the record must be read again, or it names the old sha256.
    _rewrite_keeping_mtime(path, 10)
    assert _indexed(caplog, config)
    record = read_repodata(site / CHANNEL / "linux-64")["packages.conda"][path.name]
    assert record["sha256"] == sha256_of(path) == sha256_of(site / CHANNEL / "linux-64" / path.name)
    assert_channel_consistent(site, CHANNEL)
    # Published again (its record changed): the new link's ctime was kept too.
    assert _indexed(caplog, config) == []
    # A cache written before the ctime was kept: each file is read once more, no error.
    cache_path = local_index_path(site, "internal-own")
    cache = json.loads(cache_path.read_text())
    for entry in cache.values():
        del entry["ctime_ns"]
    cache_path.write_text(json.dumps(cache))
    assert _indexed(caplog, config)
    assert "ctime_ns" in json.loads(cache_path.read_text())[path.name]
    assert _indexed(caplog, config) == []


def test_a_changed_mtime_reads_the_file_again(tmp_path: Path) -> None:
    folder = tmp_path / "incoming"
    site = tmp_path / "site"
    config = local_config(site, folder)
    path = drop(folder, SPECS[1], "tar.bz2")
    assert not run(config).failed
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF
    path.write_bytes(data)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    report = run(config)
    # A top-level file whose subdir cannot be read is reported under noarch.
    assert report.mirrors[0].subdirs["noarch"].rejected_examples == {path.name: REASON_UNREADABLE}


def test_an_entry_indexed_under_older_rules_is_indexed_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The cache keeps each file's verdict under its size, mtime, inode and ctime: one written
    under older rules (a package since refused, a record since made otherwise) was published
    as it was until the file changed. Each entry carries the rules it was made by: the first
    run after they change reads the folder once more, the next reads nothing."""
    folder = tmp_path / "incoming"
    good = drop(folder, SPECS[1], "conda").name
    built = write_conda(tmp_path / "src" / "orig-1.0-0.conda", info_members(index_of("edited")))
    renamed = folder / "edited-1.0-0.conda"
    shutil.copyfile(built, renamed)
    site = tmp_path / "site"
    config = local_config(site, folder)
    assert _indexed(caplog, config)
    # As a sitegen of older rules left it: the renamed .conda accepted, with a record made the
    # way the good file's is; the good file's record with an indexed_timestamp of its own.
    cache_path = local_index_path(site, "internal-own")
    cache = json.loads(cache_path.read_text())
    claimed = 946_684_800_000  # 2000-01-01
    cache[good]["record"]["indexed_timestamp"] = claimed
    record = {**cache[good]["record"], **index_of("edited"), "size": renamed.stat().st_size}
    record.update(md5=hashlib.md5(renamed.read_bytes()).hexdigest(), sha256=sha256_of(renamed))
    del cache[renamed.name]["reason"]
    cache[renamed.name].update(record=record, run_exports="{}")
    for entry in cache.values():
        entry.pop("version", None)
    cache_path.write_text(json.dumps(cache))
    assert _indexed(caplog, config)
    assert published(site, CHANNEL, "linux-64") == {good}
    records = read_repodata(site / CHANNEL / "linux-64")["packages.conda"]
    assert records[good]["indexed_timestamp"] != claimed
    report = run(config)
    assert report.mirrors[0].subdirs["noarch"].rejected_examples == {renamed.name: REASON_NO_INFO}
    assert _indexed(caplog, config) == []
