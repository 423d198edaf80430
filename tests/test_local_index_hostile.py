"""Local sources: hostile packages (bombs, huge headers, swapped files) are refused before
they cost memory or block the run."""

from __future__ import annotations

import os
import tarfile
import threading
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from sitegen.conda.index import (
    MAX_MEMBER,
    REASON_CHANGED,
    REASON_NOT_FILE,
    REASON_TOO_LARGE,
    BadPackage,
    index_package,
)
from sitegen.sync.local_index import FoundFile, read_one, scan_folder
from testkit.fifo import finished_without_writer
from testkit.local import (
    CHANNEL,
    SPECS,
    Link,
    drop,
    drop_all,
    index_of,
    info_members,
    local_config,
    run,
    write_conda,
    write_header_bomb,
    write_member_flood,
    write_payload_bomb,
    write_tar_bz2,
)
from testkit.site import published

pytestmark = pytest.mark.unit


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


def test_links_of_countless_places_are_refused_before_they_are_held(tmp_path: Path) -> None:
    """Where each link lies is kept, to see members written through one: links of long names
    (thousands of folders deep, a few KiB compressed) are refused before they take gigabytes."""
    links = [(f"l{i}/" + "a/" * 9_999 + "x", Link("y")) for i in range(8)]
    path = write_tar_bz2(tmp_path / "deep-1.0-0.tar.bz2", [*info_members(index_of("deep")), *links])
    assert refusal_and_peak(path) == (REASON_TOO_LARGE, True)


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

    assert finished_without_writer(fifo, read)
    assert outcome == [REASON_NOT_FILE]


def test_countless_empty_members_are_read_in_bounded_memory(tmp_path: Path) -> None:
    """tarfile keeps every member it reads: 40,000 empty ones (a few KiB of bzip2, well within
    the scan limit) held 11 MiB more until the file was read, 250 MiB more at half a million
    (7 KiB of bzip2), and the run reads several files at once. Each member is checked and let
    go, so the cost is that of a package of a few; the package is sound."""
    path = write_member_flood(tmp_path / "flood-1.0-0.tar.bz2", index_of("flood"), 40_000)
    assert path.stat().st_size < 16 << 10
    tracemalloc.start()
    try:
        indexed = index_package(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert indexed.record["name"] == "flood"
    assert peak < 16 << 20, peak
