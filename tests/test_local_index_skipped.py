"""Local sources: broken packages and metadata repodata cannot carry are skipped with their
reasons, and the run goes on."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from sitegen.conda.index import (
    MAX_MEMBER,
    REASON_BAD_INDEX,
    REASON_INDEX_KEYS,
    REASON_NO_INFO,
    REASON_NO_PKG,
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
from sitegen.tools.example_channel import PackageSpec
from testkit.local import (
    CHANNEL,
    SPECS,
    drop,
    drop_all,
    index_of,
    info_members,
    local_config,
    run,
    write_conda,
    write_tar_bz2,
)
from testkit.site import assert_channel_consistent, published

pytestmark = pytest.mark.unit


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


def test_metadata_that_repodata_cannot_carry_skips_the_package_not_the_run(
    tmp_path: Path,
) -> None:
    """Python's JSON reader takes a lone surrogate escape and NaN or 1e999 in index.json: the
    first cannot be written as UTF-8 (it ended the whole run, no mirror published), the others
    would be published as null. Such packages are skipped as upstream records are, and so is
    one without a build_number; a broken about.json field only costs the package that field."""
    folder = tmp_path / "incoming"
    good = drop_all(folder, SPECS[:2])
    stem = '"version": "1.0", "build": "0", "subdir": "linux-64", "depends": []'
    bad = {
        "surrogate-1.0-0.conda": (
            '{"name": "surrogate", "build_number": 0, "license": "\\ud800", ',
            REASON_BAD_TEXT,
        ),
        "nan-1.0-0.tar.bz2": ('{"name": "nan", "build_number": 0, "x": NaN, ', REASON_BAD_FIELDS),
        "huge-1.0-0.conda": (
            '{"name": "huge", "build_number": 0, "x": [1e999], ',
            REASON_BAD_FIELDS,
        ),
        # No build_number: conda and rattler refuse the record.
        "nonumber-1.0-0.conda": ('{"name": "nonumber", ', REASON_BAD_FIELDS),
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
