"""Local sources: a folder of real packages indexed like rattler's indexer does, published by
hard link, merged with upstream mirrors; broken and hostile packages are skipped with reasons."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import threading
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest
import trio

from sitegen.conda.index import (
    MAX_MEMBER,
    REASON_BAD_INDEX,
    REASON_CHANGED,
    REASON_INDEX_KEYS,
    REASON_NO_INFO,
    REASON_NO_PKG,
    REASON_NOT_FILE,
    REASON_TOO_LARGE,
    REASON_TRUNCATED,
    REASON_TWO_INDEXES,
    REASON_UNREADABLE,
    REASON_UNSAFE_PATH,
    BadPackage,
    index_package,
)
from sitegen.conda.record_check import (
    REASON_BAD_FIELDS,
    REASON_BAD_FILENAME,
    REASON_BAD_TEXT,
    REASON_NAME_MISMATCH,
    REASON_SUBDIR_MISMATCH,
)
from sitegen.config import parse_config
from sitegen.layout import local_index_path
from sitegen.sync.local_index import FoundFile, read_one, scan_folder
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import PackageSpec, write_channel
from testkit.local import (
    drop,
    drop_all,
    index_of,
    info_members,
    local_config,
    write_conda,
    write_header_bomb,
    write_payload_bomb,
    write_tar_bz2,
)
from testkit.site import assert_channel_consistent, published, read_repodata, snapshot

pytestmark = pytest.mark.unit

CHANNEL = "internal/own"
# Fields rattler's indexer writes that sitegen leaves out on purpose (see README, Local sources).
RATTLER_ONLY = {"indexed_timestamp", "arch", "platform", "run_exports"}

# What old and current build tools write into index.json about the build machine and the old
# package format; conda-index leaves all of it out of repodata.
BUILD_KEYS = {
    "arch": "x86_64",
    "platform": "linux",
    "has_prefix": True,
    "mtime": 1_600_000_000,
    "ucs": 4,
    "requires_features": {},
    "binstar": {"channel": "main"},
    "target-triplet": "x86_64-any-linux",
    "machine": "x86_64",
    "operatingsystem": "linux",
}

SPECS = [
    PackageSpec(
        "foo",
        "1.0",
        "h1_0",
        depends=("bar >=1", "libc"),
        constrains=("baz <2",),
        license="MIT",
        license_family="MIT",
        timestamp_ms=1_700_000_000_123,
        extra={"track_features": "", "features": ""},
    ),
    PackageSpec("foo", "1.1", "h2_1", build_number=1, timestamp_ms=1_700_000_100_000),
    PackageSpec("bar", "2.0", "py_0", subdir="noarch", noarch="python", depends=("python",)),
    PackageSpec("gen", "0.1", "0", subdir="noarch", noarch="generic", license="BSD-3-Clause"),
]


def run(config) -> object:
    return trio.run(run_mirror, config, MirrorOptions(progress=False))


def rattler_records(folder: Path, tmp_path: Path) -> dict[str, dict[str, dict]]:
    """What rattler's indexer writes for the same packages (run on a copy laid out by subdir,
    the layout it reads): subdir -> fn -> record."""
    import rattler.index

    copy = tmp_path / "rattler-copy"
    for path in folder.rglob("*"):
        if path.is_file():
            subdir = json.loads(read_index_json(path))["subdir"]
            (copy / subdir).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, copy / subdir / path.name)
    (copy / "noarch").mkdir(exist_ok=True)
    asyncio.run(rattler.index.index_fs(copy, write_zst=False, write_shards=False))
    out = {}
    for subdir_dir in copy.iterdir():
        if (subdir_dir / "repodata.json").is_file():
            document = read_repodata(subdir_dir)
            out[subdir_dir.name] = {**document["packages"], **document["packages.conda"]}
    return out


def read_index_json(path: Path) -> bytes:
    from conda_package_streaming.package_streaming import stream_conda_info

    for tar, member in stream_conda_info(str(path)):
        if member.name == "info/index.json":
            return tar.extractfile(member).read()
    raise AssertionError(f"{path} has no index.json")


@pytest.mark.parametrize("by_subdir", [False, True], ids=["flat", "by-subdir"])
def test_records_equal_rattlers_indexer_field_by_field(tmp_path: Path, by_subdir: bool) -> None:
    folder = tmp_path / "incoming"
    drop_all(folder, SPECS, by_subdir=by_subdir)
    # What build tools write beside: the build machine's keys, a null license, run_exports.
    drop(folder, PackageSpec("old", "1.0", "0", extra=BUILD_KEYS), "tar.bz2", by_subdir)
    index = index_of("rex", license=None)
    run_exports = ("info/run_exports.json", json.dumps({"weak": ["rex >=1.0"]}).encode())
    paths = ("info/paths.json", json.dumps({"paths": [], "paths_version": 1}).encode())
    rex = folder / "linux-64" if by_subdir else folder
    write_conda(rex / "rex-1.0-0.conda", [*info_members(index), run_exports, paths])
    site = tmp_path / "site"
    report = run(local_config(site, folder))
    assert not report.failed
    assert_channel_consistent(site, CHANNEL)
    expected = rattler_records(folder, tmp_path)
    for subdir in ("linux-64", "noarch"):
        ours = read_repodata(site / CHANNEL / subdir)
        ours = {**ours["packages"], **ours["packages.conda"]}
        theirs = expected[subdir]
        assert set(ours) == set(theirs) and ours
        for fn, record in ours.items():
            reference = theirs[fn]
            for key in set(reference) - RATTLER_ONLY:
                assert record.get(key) == reference[key], (fn, key)
            # What only we write: what index.json holds and rattler drops when empty or null.
            for key in set(record) - set(reference):
                assert key in ("constrains", "features", "depends", "license"), (fn, key)
                assert record[key] in ([], "", None), (fn, key)


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
    assert record["depends"] == ["libc"] and record["sha256"] == _sha256(path)
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
    assert record["sha256"] == _sha256(first)
    assert_channel_consistent(site, CHANNEL)
    first.unlink()
    # One file of one: the deletion guard holds it unless told otherwise.
    report = trio.run(run_mirror, config, MirrorOptions(progress=False, force_delete=True))
    assert not report.failed
    assert published(site, CHANNEL, "linux-64") == set()
    assert not (site / CHANNEL / "linux-64" / first.name).exists()


def _fields(spec: PackageSpec) -> dict:
    return {name: getattr(spec, name) for name in spec.__dataclass_fields__}


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


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
    assert record["sha256"] == _sha256(path) == _sha256(site / CHANNEL / "linux-64" / path.name)
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


def test_bad_packages_are_skipped_with_their_reasons(tmp_path: Path) -> None:
    folder = tmp_path / "incoming"
    good = drop_all(folder, SPECS[:2])
    bad: dict[str, str] = {}

    def add(path: Path, reason: str) -> None:
        bad[path.name] = reason

    whole = drop(tmp_path / "src", PackageSpec("cut", "1", "0", formats=("conda",)), "conda")
    (folder / whole.name).write_bytes(whole.read_bytes()[:-30])
    add(folder / whole.name, REASON_UNREADABLE)
    whole = drop(tmp_path / "src", PackageSpec("cutbz", "1", "0"), "tar.bz2")
    (folder / whole.name).write_bytes(whole.read_bytes()[:-40])
    add(folder / whole.name, REASON_TRUNCATED)
    (folder / "noise-1-0.tar.bz2").write_bytes(os.urandom(500))
    add(folder / "noise-1-0.tar.bz2", REASON_TRUNCATED)
    (folder / "garbage-1-0.conda").write_bytes(b"PK\x03\x04" + os.urandom(300))
    add(folder / "garbage-1-0.conda", REASON_UNREADABLE)
    add(write_conda(folder / "hollow-1-0.conda", None, pkg=False), REASON_NO_PKG)
    add(write_conda(folder / "noinfo-1-0.conda", None), REASON_NO_INFO)
    add(
        write_tar_bz2(folder / "notjson-1-0.tar.bz2", info_members(b"{name: oops")),
        REASON_BAD_INDEX,
    )
    add(
        write_conda(folder / "list-1-0.conda", info_members(b"[1, 2]")),
        REASON_BAD_INDEX,
    )
    keys = index_of("nokeys")
    del keys["version"]
    add(write_tar_bz2(folder / "nokeys-1.0-0.tar.bz2", info_members(keys)), REASON_INDEX_KEYS)
    add(
        write_conda(folder / "renamed-9.9-0.conda", info_members(index_of("other"))),
        REASON_NAME_MISMATCH,
    )
    traversal = [("info/../../etc/evil", b"x"), *info_members(index_of("trav"))]
    add(write_tar_bz2(folder / "trav-1.0-0.tar.bz2", traversal), REASON_UNSAFE_PATH)
    # Decompression bombs: an index.json of 64 MiB (a few KiB compressed), and a member that
    # claims a terabyte ahead of index.json. Neither is read.
    huge = json.dumps({**index_of("bomb"), "pad": " " * (64 << 20)}).encode()
    add(write_conda(folder / "bomb-1.0-0.conda", [("info/index.json", huge)]), REASON_TOO_LARGE)
    claim = [("info/paths.json", 1 << 40), *info_members(index_of("claim"))]
    add(write_tar_bz2(folder / "claim-1.0-0.tar.bz2", claim), REASON_TOO_LARGE)
    # A linux-64 package in the noarch folder.
    wrong = PackageSpec("misplaced", "1", "0", formats=("conda",))
    moved = drop(tmp_path / "src", wrong, "conda")
    (folder / "noarch").mkdir()
    shutil.move(moved, folder / "noarch" / moved.name)
    add(folder / "noarch" / moved.name, REASON_SUBDIR_MISMATCH)
    assert len(huge) > MAX_MEMBER

    site = tmp_path / "site"
    report = run(local_config(site, folder))
    assert not report.failed
    assert published(site, CHANNEL, "linux-64") == set(good)
    assert_channel_consistent(site, CHANNEL)
    mirror = report.mirrors[0]
    examples = {}
    for sub in mirror.subdirs.values():
        examples.update(sub.rejected_examples)
    assert examples == bad
    counted = sum(sum(sub.rejected.values()) for sub in mirror.subdirs.values())
    assert counted == len(bad)


def test_a_package_with_two_index_jsons_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two members that extract to info/index.json make a package whose record depends on
    which one a reader takes (the first one read was published, a tar extraction keeps the
    last): refused, whatever the format and wherever the second one lies in the info/ part
    ("./info/index.json" lands on the same file), while the good packages are published."""
    folder = tmp_path / "incoming"
    good = drop_all(folder, SPECS[:1])
    about = ("info/about.json", json.dumps({"summary": "one of two"}).encode())
    other = json.dumps(index_of("dup", depends=["something-else"])).encode()
    payload = ("lib/libdup.so", b"\x7fELF")
    refused = [
        write_tar_bz2(
            folder / "dup-1.0-0.tar.bz2",
            [*info_members(index_of("dup")), about, ("info/index.json", other), payload],
        ),
        write_tar_bz2(
            folder / "dup-2.0-0.tar.bz2",
            [*info_members(index_of("dup", "2.0")), about, ("./info/index.json", other), payload],
        ),
        write_conda(
            folder / "dup-3.0-0.conda",
            [*info_members(index_of("dup", "3.0")), about, ("info/index.json", other)],
        ),
    ]
    site = tmp_path / "site"
    with caplog.at_level("WARNING", logger="sitegen"):
        report = run(local_config(site, folder))
    assert not report.failed
    assert published(site, CHANNEL, "linux-64") == set(good)
    examples = report.mirrors[0].subdirs["noarch"].rejected_examples
    assert examples == {p.name: REASON_TWO_INDEXES for p in refused}
    for path in refused:
        assert f"skipped {path.name}: {REASON_TWO_INDEXES}" in caplog.text


def test_a_conda_whose_inner_archives_name_another_file_is_refused(tmp_path: Path) -> None:
    """conda reads a .conda's inner archives by the file's own name (info-<stem>.tar.zst,
    pkg-<stem>.tar.zst) and cannot install one whose archives carry another stem: such a
    file, renamed with its index.json edited to agree, was published all the same."""
    folder = tmp_path / "incoming"
    good = drop_all(folder, SPECS[:1])
    built = write_conda(tmp_path / "src" / "orig-1.0-0.conda", info_members(index_of("edited")))
    renamed = folder / "edited-1.0-0.conda"
    shutil.copyfile(built, renamed)
    with pytest.raises(BadPackage) as refused:
        index_package(renamed)
    assert refused.value.reason == REASON_NO_INFO
    # What conda itself makes of it.
    from conda_package_streaming.package_streaming import stream_conda_info

    with pytest.raises(LookupError):
        next(iter(stream_conda_info(str(renamed))))

    site = tmp_path / "site"
    report = run(local_config(site, folder))
    assert not report.failed
    assert published(site, CHANNEL, "linux-64") == set(good)
    assert report.mirrors[0].subdirs["noarch"].rejected_examples == {renamed.name: REASON_NO_INFO}


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
    record.update(md5=hashlib.md5(renamed.read_bytes()).hexdigest(), sha256=_sha256(renamed))
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


def test_metadata_that_repodata_cannot_carry_skips_the_package_not_the_run(
    tmp_path: Path,
) -> None:
    """Python's JSON reader takes a lone surrogate escape and NaN or 1e999 in index.json: the
    first cannot be written as UTF-8 (it ended the whole run, no mirror published), the others
    would be published as null. Such packages are skipped as upstream records are; a broken
    about.json field only costs the package that field."""
    folder = tmp_path / "incoming"
    good = drop_all(folder, SPECS[:2])
    stem = '"version": "1.0", "build": "0", "subdir": "linux-64", "depends": []'
    bad = {
        "surrogate-1.0-0.conda": ('{"name": "surrogate", "license": "\\ud800", ', REASON_BAD_TEXT),
        "nan-1.0-0.tar.bz2": ('{"name": "nan", "build_number": 0, "x": NaN, ', REASON_BAD_FIELDS),
        "huge-1.0-0.conda": ('{"name": "huge", "x": [1e999], ', REASON_BAD_FIELDS),
    }
    for fn, (head, _reason) in bad.items():
        members = [("info/index.json", (head + stem + "}").encode())]
        writer = write_conda if fn.endswith(".conda") else write_tar_bz2
        writer(folder / fn, members)
    about = info_members(index_of("about"), {"summary": "\ud800", "home": "https://x.org"})
    about_fn = write_conda(folder / "about-1.0-0.conda", about).name

    site = tmp_path / "site"
    report = run(local_config(site, folder))
    assert not report.failed
    assert published(site, CHANNEL, "linux-64") == {*good, about_fn}
    assert_channel_consistent(site, CHANNEL)
    examples = {}
    for sub in report.mirrors[0].subdirs.values():
        examples.update(sub.rejected_examples)
    assert examples == {fn: reason for fn, (_head, reason) in bad.items()}
    channeldata = json.loads((site / CHANNEL / "channeldata.json").read_text())
    assert channeldata["packages"]["about"]["home"] == "https://x.org"
    assert "summary" not in channeldata["packages"]["about"]


def test_a_file_name_that_is_not_printable_text_is_rejected_as_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A dropped file whose name is not UTF-8 ended the whole run (the index cache and the run
    report could not be written), and one with a newline or terminal escapes wrote them into
    the log as they were. Neither can be published: each is rejected without being read, shown
    quoted on one line; the good packages are published."""
    folder = tmp_path / "incoming"
    good = drop_all(folder, SPECS[:2])
    source = bytes(next(iter(good.values())))
    names = [b"g\xffood-1.0-0.conda", b"x\nERROR forged line\x1b[2J-1.0-0.conda"]
    for name in names:
        os.link(source, bytes(folder) + b"/" + name)
    site = tmp_path / "site"
    with caplog.at_level("WARNING", logger="sitegen"):
        report = run(local_config(site, folder))
    assert not report.failed
    assert published(site, CHANNEL, "linux-64") == set(good)
    examples = {}
    for sub in report.mirrors[0].subdirs.values():
        examples.update(sub.rejected_examples)
    shown = [repr(os.fsdecode(name)) for name in names]
    assert examples == dict.fromkeys(shown, REASON_BAD_FILENAME)
    assert all(message.isprintable() for message in caplog.messages), caplog.messages


@pytest.mark.parametrize(
    "headers",
    [
        [(tarfile.GNUTYPE_LONGNAME, 64 << 20)],
        [(tarfile.XHDTYPE, 64 << 20)],
        [(tarfile.XHDTYPE, 512 << 10)] * 128,
    ],
    ids=["gnu-long-name", "pax-header", "chain-of-pax-headers"],
)
def test_tar_extended_headers_are_refused_before_they_are_read(
    tmp_path: Path, headers: list[tuple[bytes, int]]
) -> None:
    """tarfile reads a pax header or a GNU long name whole, and a chain of them at once, before
    any member is seen: 64 MiB of them (a few KiB compressed) must be refused, not held."""
    path = write_header_bomb(tmp_path / "hdr-1.0-0.tar.bz2", index_of("hdr"), headers)
    assert path.stat().st_size < 64 << 10
    assert refusal_and_peak(path) == (REASON_TOO_LARGE, True)
    # A long member name inside info/ (a GNU long name header) is no reason to refuse.
    long_name = [(f"info/{'l' * 300}", b"x"), *info_members(index_of("long"))]
    indexed = index_package(write_tar_bz2(tmp_path / "long-1.0-0.tar.bz2", long_name))
    assert indexed.record["name"] == "long"


def test_a_bomb_after_index_json_is_not_decompressed_to_its_end(tmp_path: Path) -> None:
    """The scan limit held only until index.json turned up: then the read went on for
    about.json through members of up to the limit each, however many. A terabyte of zeros in
    3 MiB of bzip2 behind index.json held the run (and a stop, which waits for the file) for
    an hour. The read ends at the limit, and the package is refused: every member must be seen
    (one written over index.json would be what is installed)."""
    path = write_payload_bomb(
        tmp_path / "late-1.0-0.tar.bz2", index_of("late"), 1 << 40, {"summary": "far away"}
    )
    assert path.stat().st_size < 4 << 20
    refused: list[BadPackage] = []

    def read() -> None:
        with pytest.raises(BadPackage) as caught:
            index_package(path)
        refused.append(caught.value)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(120)
    assert not reader.is_alive(), "still decompressing"
    assert [exc.reason for exc in refused] == [REASON_TOO_LARGE]
    # Within the limit, about.json after index.json is read as ever.
    near = write_payload_bomb(
        tmp_path / "near-1.0-0.tar.bz2", index_of("near"), 0, {"summary": "close by"}
    )
    assert index_package(near).about == {"summary": "close by"}


def test_a_conda_with_a_huge_zip_directory_is_refused_before_it_is_held(tmp_path: Path) -> None:
    """A .conda has three entries; one claiming tens of thousands (a zip directory of a few
    MiB, held by the zip reader as one object per entry) is refused without being read."""
    path = write_conda(tmp_path / "many-1.0-0.conda", info_members(index_of("many")))
    with zipfile.ZipFile(path, "a") as archive:
        for i in range(12_000):
            archive.writestr(f"{'x' * 100}-{i}", b"")
    assert refusal_and_peak(path, 4 << 20) == (REASON_TOO_LARGE, True)


def test_metadata_of_countless_tiny_values_is_refused_before_it_is_parsed(
    tmp_path: Path,
) -> None:
    """8 MiB of empty JSON containers (a KiB or two compressed) became millions of Python
    objects: some 200 MiB to parse an index.json, over 400 MiB per package kept through the
    run, so a few dozen such files of a few KiB each took every package of the run down with
    the process. Metadata of that many values is refused unparsed (about.json's only costs
    the package its summary); the good packages are published."""
    folder = tmp_path / "incoming"
    good = drop_all(folder, SPECS[:1])
    containers = [{}] * ((MAX_MEMBER - 4096) // 4)
    bomb = index_of("objects", x=containers)
    path = write_conda(folder / "objects-1.0-0.conda", info_members(bomb))
    assert path.stat().st_size < 64 << 10
    # The 8 MiB read, not what parsing them would make of them.
    assert refusal_and_peak(path, 32 << 20) == (REASON_TOO_LARGE, True)
    about = info_members(index_of("about"), {"summary": "kept", "extra": containers})
    about_fn = write_tar_bz2(folder / "about-1.0-0.tar.bz2", about).name
    assert index_package(folder / about_fn).about == {}
    # A run_exports.json of as many values costs the package its entry (a build tool reads
    # the package itself), not its place, and is not parsed either.
    exports = [
        *info_members(index_of("exports")),
        ("info/run_exports.json", b"[" + b"[]," * ((MAX_MEMBER - 4096) // 3) + b"[]]"),
    ]
    exports_path = write_conda(tmp_path / "exports-1.0-0.conda", exports)
    tracemalloc.start()
    try:
        indexed_exports = index_package(exports_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert indexed_exports.run_exports is None
    assert peak < 32 << 20, peak

    site = tmp_path / "site"
    report = run(local_config(site, folder))
    assert not report.failed
    assert published(site, CHANNEL, "linux-64") == {*good, about_fn}
    examples = report.mirrors[0].subdirs["noarch"].rejected_examples
    assert examples == {path.name: REASON_TOO_LARGE}


def refusal_and_peak(path: Path, budget: int = 16 << 20) -> tuple[str, bool]:
    """Why indexing ``path`` refuses it, and whether that took less than ``budget`` bytes."""
    tracemalloc.start()
    try:
        with pytest.raises(BadPackage) as refused:
            index_package(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return refused.value.reason, peak < budget


def test_a_file_gone_between_listing_and_reading_is_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "incoming"
    path = drop(folder, SPECS[1], "conda")
    (found,) = scan_folder(folder)
    path.unlink()
    assert read_one(folder, found).reason == REASON_CHANGED
    assert found == FoundFile(path.name, None, found.stat)


def test_a_file_replaced_by_a_fifo_before_it_is_read_does_not_block(tmp_path: Path) -> None:
    """Between the listing and the read a package may become a named pipe: opening it must not
    wait for a writer (that would hold the run, and its site lock, for good)."""
    fifo = tmp_path / "pipe-1.0-0.conda"
    os.mkfifo(fifo)
    outcome: list[str] = []

    def read() -> None:
        try:
            index_package(fifo)
        except BadPackage as exc:
            outcome.append(exc.reason)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(30)
    blocked = reader.is_alive()
    if blocked:  # let the thread go: a writer that closes at once
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join()
    assert not blocked
    assert outcome == [REASON_NOT_FILE]


def test_local_builds_beside_an_upstream_subset_first_listed_wins(tmp_path: Path) -> None:
    upstream = tmp_path / "upstream"
    clash = PackageSpec("foo", "1.1", "h2_1", build_number=1, seed=99)
    from_upstream = [clash, PackageSpec("zlib", "1.3", "h0", formats=("conda",))]
    write_channel(upstream, from_upstream)
    folder = tmp_path / "incoming"
    local = drop_all(folder, [SPECS[1], PackageSpec("skipme", "1", "0")])
    site = tmp_path / "site"
    config = parse_config(
        f"""
output: {site}
channels:
  {CHANNEL}:
    mirrors:
      - name: builds
        path: {folder}
        subdirs: [linux-64]
        filters: {{names: {{exclude: [skipme]}}}}
      - name: forge
        url: file://{upstream}
        subdirs: [linux-64]
"""
    )
    report = run(config)
    assert not report.failed
    assert_channel_consistent(site, CHANNEL)
    records = read_repodata(site / CHANNEL / "linux-64")
    listed = {**records["packages"], **records["packages.conda"]}
    assert set(listed) == set(clash.filenames) | {"zlib-1.3-h0.conda"}
    for fn in clash.filenames:
        assert listed[fn]["sha256"] == _sha256(local[fn])  # the local build wins
    forge = next(m for m in report.mirrors if m.name == "forge")
    assert forge.conflicts
    builds = next(m for m in report.mirrors if m.name == "builds")
    assert sum(builds.subdirs["linux-64"].excluded.values()) == 2
    current = read_repodata(site / CHANNEL / "linux-64", "current_repodata.json")
    assert "foo-1.1-h2_1.conda" in current["packages.conda"]


def test_an_absent_folder_fails_the_mirror_and_keeps_what_was_published(tmp_path: Path) -> None:
    folder = tmp_path / "incoming"
    drop_all(folder, SPECS[:2])
    site = tmp_path / "site"
    config = local_config(site, folder)
    assert not run(config).failed
    before = published(site, CHANNEL, "linux-64")
    shutil.rmtree(folder)
    report = run(config)
    assert report.failed
    assert "cannot list the folder" in report.mirrors[0].errors[0]
    assert published(site, CHANNEL, "linux-64") == before
    assert_channel_consistent(site, CHANNEL)


def test_a_relative_path_is_a_configuration_error() -> None:
    from sitegen.config import ConfigError

    with pytest.raises(ConfigError, match="path must be absolute"):
        parse_config("output: s\nchannels:\n  a/b:\n    path: incoming\n    subdirs: [noarch]\n")


def test_a_folder_inside_the_site_is_a_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The web server serves the site directory whole: a local source's folder inside it had
    every file dropped there served as it was, a package refused as hostile and those of a
    private channel (without a token) alike. Such a folder, reached through a link too, is a
    configuration error naming file, line and key; so is an --out that puts the site around
    it. Beside the site, it is fine."""
    from sitegen.cli import main
    from sitegen.config import ConfigError

    site = tmp_path / "site"
    site.mkdir()
    (tmp_path / "link").symlink_to(site)
    for folder in (site / "incoming", tmp_path / "link" / "incoming", site):
        text = f"output: {site}\nchannels:\n  a/b:\n    path: {folder}\n    subdirs: [noarch]\n"
        with pytest.raises(ConfigError) as caught:
            parse_config(text)
        message = str(caught.value)
        assert message.startswith("channels.yaml:4: channels.a/b: mirror 'a-b': its folder"), (
            message
        )
        assert "inside the site directory" in message
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {tmp_path / 'elsewhere'}\nchannels:\n  a/b:\n"
        f"    path: {site / 'incoming'}\n    subdirs: [noarch]\n"
    )
    assert main(["mirror", "-c", str(config_path), "--out", str(site)]) == 2
    err = capsys.readouterr().err
    assert "configuration error: --out: channel 'a/b', mirror 'a-b': its folder" in err, err
    assert list(site.iterdir()) == []
    beside = tmp_path / "incoming"
    parse_config(f"output: {site}\nchannels:\n  a/b:\n    path: {beside}\n    subdirs: [noarch]\n")


def test_a_local_source_cannot_be_passive() -> None:
    from sitegen.config import ConfigError

    text = "output: s\nchannels:\n  a/b:\n    path: /in\n    subdirs: [noarch]\n    mode: passive\n"
    with pytest.raises(
        ConfigError, match=r"channels.a/b.mode: a mirror with 'path' cannot be passive"
    ):
        parse_config(text)


def test_across_filesystems_the_files_are_copied(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the test's directory")
    folder = Path(tempfile.mkdtemp(dir=shm, prefix="sitegen-local-"))
    try:
        files = drop_all(folder, SPECS[:1])
        site = tmp_path / "site"
        report = run(local_config(site, folder))
        assert not report.failed
        assert_channel_consistent(site, CHANNEL)
        for fn, source in files.items():
            published_file = site / CHANNEL / "linux-64" / fn
            assert os.stat(published_file).st_ino != os.stat(source).st_ino
            assert published_file.read_bytes() == source.read_bytes()
    finally:
        shutil.rmtree(folder)
