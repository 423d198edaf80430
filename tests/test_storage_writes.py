"""Site's writes of whole files: flushes to disk, several files published in turn or not
at all, a file left alone when unchanged, the origins map, appends in place."""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path

import msgspec
import pytest

from sitegen.layout import origins_path
from sitegen.store import site as storage
from sitegen.store.compare import same_content
from sitegen.store.interface import PendingWrite
from sitegen.store.origins import Origins, read_origins, write_origins
from sitegen.store.site import Site
from testkit.fifo import finished_without_writer
from testkit.storage import entries, site_of_kind

site = pytest.fixture(params=["unnamed", "named"], name="site")(site_of_kind)


@pytest.mark.unit
def test_sync_flushes_each_filesystem_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = Site(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    site.sync([tmp_path / "a", tmp_path / "b"])  # the real syncfs(2): no error

    calls: list[int] = []

    def fake_syncfs(fd: int) -> int:
        calls.append(os.fstat(fd).st_dev)
        return 0

    monkeypatch.setattr(storage, "libc_syncfs", lambda: fake_syncfs)
    site.sync([tmp_path / "a", tmp_path / "b", tmp_path])
    assert calls == [os.stat(tmp_path).st_dev]


@pytest.mark.unit
def test_a_failed_flush_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_syncfs(fd: int) -> int:
        ctypes.set_errno(errno.EIO)
        return -1

    monkeypatch.setattr(storage, "libc_syncfs", lambda: failing_syncfs)
    with pytest.raises(OSError) as info:
        Site(tmp_path).sync([tmp_path])
    assert info.value.errno == errno.EIO
    assert info.value.filename == str(tmp_path)


@pytest.mark.unit
def test_write_many_publishes_streamed_files_in_turn_or_drops_unchanged_ones(site: Site) -> None:
    directory = site.path("chan")
    site.ensure_dir(directory)
    (directory / "same.json").write_bytes(b"same bytes")
    (directory / "old.json").write_bytes(b"old")

    def streamed(name: str, *pieces: bytes) -> PendingWrite:
        pending = site.pending(directory / name)
        for piece in pieces:
            pending.write(piece)
        return pending

    same, new = streamed("same.json", b"same ", b"bytes"), streamed("old.json", b"n", b"ew")
    before = (directory / "same.json").stat().st_mtime_ns
    written = site.write_many(
        [
            (directory / "a.txt", b"a"),
            (directory / "same.json", same),
            (directory / "old.json", new),
        ]
    )
    assert written == [directory / "a.txt", directory / "old.json"]
    assert (directory / "old.json").read_bytes() == b"new"
    assert (directory / "same.json").stat().st_mtime_ns == before  # left alone
    assert sorted(p.name for p in directory.iterdir()) == ["a.txt", "old.json", "same.json"]


@pytest.mark.unit
def test_a_failed_write_many_discards_the_streamed_files_too(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = site.path("chan")
    pending = site.pending(directory / "repodata.json")
    pending.write(b"{}")

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        site.write_many([(directory / "repodata.json", pending), (directory / "x.zst", b"x")])
    assert list(directory.iterdir()) == []
    pending.discard()  # already done: safe again


@pytest.mark.unit
def test_a_write_many_failing_at_a_later_file_discards_the_earlier_ones(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills while the second file is flushed: no target changes, and the first
    file's temporary (a named one where the filesystem has no O_TMPFILE) goes too."""
    directory = site.path("chan")
    site.ensure_dir(directory)
    (directory / "repodata.json").write_bytes(b"old")
    calls: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError, match="No space"):
        site.write_many(
            [(directory / "repodata.json.zst", b"zst"), (directory / "repodata.json", b"new")]
        )
    assert entries(directory) == ["repodata.json"]
    assert (directory / "repodata.json").read_bytes() == b"old"


@pytest.mark.unit
def test_a_file_made_of_pieces_is_written_only_when_it_changes(site: Site) -> None:
    directory = site.path("chan")
    site.ensure_dir(directory)
    target = directory / "repodata.json"
    made: list[bytes] = []

    def pieces(*parts: bytes):
        for part in parts:
            made.append(part)
            yield part

    first = site.pending_unless_same(target, pieces(b"ab", b"cd"))  # no file yet
    assert first is not None and b"".join(first.chunks()) == b"abcd"
    first.discard()
    target.write_bytes(b"abcdef")
    assert site.pending_unless_same(target, pieces(b"ab", b"cd", b"ef")) is None
    for parts, expected in (
        ((b"ab", b"cX", b"ef", b"gh"), b"abcXefgh"),  # differs in the middle
        ((b"ab", b"cd"), b"abcd"),  # shorter
        ((b"ab", b"cd", b"ef", b"g"), b"abcdefg"),  # longer
    ):
        made.clear()
        pending = site.pending_unless_same(target, pieces(*parts))
        assert pending is not None and made == list(parts)  # each piece made once
        assert b"".join(pending.chunks()) == expected
        pending.discard()
    assert target.read_bytes() == b"abcdef"
    assert entries(directory) == ["repodata.json"]


@pytest.mark.unit
def test_write_bytes_flushes_before_naming_and_leaves_nothing_when_it_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Metadata files are fsynced before they are renamed into place (README, Crashes and
    stops); a full disk keeps the previous file and leaves no temporary behind."""
    site = Site(tmp_path)
    target = tmp_path / "channeldata.json"
    target.write_bytes(b"old")
    seen: list[bool] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        seen.append(target.read_bytes() == b"old")  # the new bytes are not named yet
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    assert site.write_bytes(target, b"new") is True
    assert seen == [True] and target.read_bytes() == b"new"

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        site.write_bytes(target, b"newer")
    assert target.read_bytes() == b"new"
    assert entries(tmp_path) == ["channeldata.json"]


@pytest.mark.unit
def test_the_origins_map_is_written_sorted_whatever_its_order(site: Site) -> None:
    """Two runs that gathered the same origins in another order write the same bytes (no
    rewrite, no diff), file names in order, and the map reads back as it was."""
    files = {"b-1-0.conda": "forge", "a-1-0.tar.bz2": "main", "c-2-0.conda": "forge"}
    bases = {"main": "https://main.example/pkgs/", "forge": ""}
    written = []
    for order in (files, dict(reversed(files.items()))):
        write_origins(site, "ch", "linux-64", order, dict(reversed(bases.items())))
        written.append(origins_path(site.root, "ch", "linux-64").read_bytes())
    assert written[0] == written[1]
    assert written[0].index(b'"a-1-0') < written[0].index(b'"b-1-0') < written[0].index(b'"c-2-0')
    assert written[0].index(b'"forge":""') < written[0].index(b'"main":"https')
    back = read_origins(origins_path(site.root, "ch", "linux-64"))
    assert back.files == files and back.package_bases == bases


@pytest.mark.unit
def test_a_large_origins_map_is_written_in_pieces_as_one_encoding_of_it(site: Site) -> None:
    """Made and compared a piece at a time, the map is byte for byte what msgspec encodes of
    the whole (names that need escaping, past the first piece, in code point order), and an
    unchanged one is left alone."""
    names = [f"p{i:05d}-1-0.conda" for i in range(20_000)]
    names += ['q"uote-1-0.conda', "zé-1-0.conda", "Z\\back-1-0.conda", "\u2028-1-0.conda"]
    files = {fn: ("main" if i % 3 else "forge\t") for i, fn in enumerate(reversed(names))}
    bases = {"main": "https://main.example/pkgs/", "forge\t": ""}
    write_origins(site, "ch", "linux-64", files, bases)
    path = origins_path(site.root, "ch", "linux-64")
    whole = msgspec.json.encode(Origins(files=files, package_bases=bases), order="sorted")
    assert path.read_bytes() == whole
    before = path.stat()
    write_origins(site, "ch", "linux-64", dict(sorted(files.items())), bases)
    assert path.stat().st_ino == before.st_ino and path.stat().st_mtime_ns == before.st_mtime_ns
    files[names[-3]] = "main"
    write_origins(site, "ch", "linux-64", files, bases)
    assert read_origins(path).files == files
    assert entries(path.parent) == [path.name]


@pytest.mark.unit
def test_same_content_compares_a_large_file_to_its_last_byte(tmp_path: Path) -> None:
    """Compared a piece at a time: a difference in the last piece counts; something other
    than a file under the name is not the same, and a named pipe is not opened."""
    data = bytes(range(256)) * 40_000  # ~10 MB: past two pieces
    target = tmp_path / "map.json"
    target.write_bytes(data)
    assert same_content(target, data)
    assert not same_content(target, data[:-1] + b"x")
    assert not same_content(target, data + b"x")
    assert same_content(tmp_path / "empty", b"") is False
    (tmp_path / "empty").write_bytes(b"")
    assert same_content(tmp_path / "empty", b"")
    os.mkfifo(tmp_path / "pipe")
    assert not same_content(tmp_path / "pipe", b"")


@pytest.mark.unit
def test_append_adds_in_place_and_never_writes_through_a_symlink(tmp_path: Path) -> None:
    """The one write in place (a listing cache's rows): the offset of what it added, and
    nothing outside the site or through a symlink, which a rename would have replaced."""
    site = Site(tmp_path / "site")
    target = site.state_dir / "rows"
    site.ensure_dir(target.parent)
    target.write_bytes(b"abc")
    assert site.append(target, [b"de", memoryview(b"f")]) == 3
    assert target.read_bytes() == b"abcdef"
    outside = tmp_path / "outside"
    outside.write_bytes(b"kept")
    link = site.state_dir / "link"
    link.symlink_to(outside)
    with pytest.raises(OSError):
        site.append(link, [b"x"])
    for elsewhere in (outside, site.root / ".." / "outside"):
        with pytest.raises(storage.UnsafePathError):
            site.append(elsewhere, [b"x"])
    assert outside.read_bytes() == b"kept"


@pytest.mark.unit
def test_a_named_pipe_under_a_file_written_in_pieces_is_replaced_without_waiting(
    site: Site,
) -> None:
    """A named pipe where repodata.json or the origins map is written must not hold the run
    (and its site lock) waiting for a writer: it is not the file, and the new one replaces it."""
    directory = site.path("chan")
    site.ensure_dir(directory)
    target = directory / "repodata.json"
    os.mkfifo(target)
    outcome: list[bytes] = []

    def write() -> None:
        pending = site.pending_unless_same(target, iter([b"ab", b"cd"]))
        assert pending is not None
        with pending:
            pending.commit(durable=True)
        outcome.append(target.read_bytes())

    assert finished_without_writer(target, write)
    assert outcome == [b"abcd"]
