"""PendingFile: a package file stays invisible until committed, then appears whole."""

from __future__ import annotations

import ctypes
import errno
import inspect
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sitegen.layout import origins_path
from sitegen.store import site as storage
from sitegen.store.interface import PendingWrite, SiteStorage
from sitegen.store.origins import Origins, read_origins, write_origins
from sitegen.store.pending import PendingFile
from sitegen.store.site import TEMP_PREFIX, Site
from testkit.site import record_fdatasync


def _entries(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


@pytest.fixture(params=["unnamed", "named"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Site:
    site = Site(tmp_path / "site")
    if request.param == "named":
        site.unnamed_files = False  # as on a filesystem without O_TMPFILE
    return site


@pytest.mark.unit
def test_unnamed_files_are_used_where_the_filesystem_allows(tmp_path: Path) -> None:
    site = Site(tmp_path)
    with site.pending(tmp_path / "sub" / "a.conda") as pending:
        assert pending.temp is None
    assert site.unnamed_files is True
    assert _entries(tmp_path / "sub") == []  # the probe left nothing either


@pytest.mark.unit
def test_without_o_tmpfile_a_temporary_name_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(os, "O_TMPFILE")
    site = Site(tmp_path)
    with site.pending(tmp_path / "a.conda") as pending:
        assert pending.temp is not None
        assert _entries(tmp_path) == [pending.temp.name]
    assert site.unnamed_files is False
    assert _entries(tmp_path) == []


@pytest.mark.unit
def test_nothing_is_visible_under_the_target_before_commit(site: Site) -> None:
    target = site.root / "linux-64" / "a-1.0-0.conda"
    with site.pending(target) as pending:
        pending.write(b"x" * 100_000)
        assert not target.exists()
        if site.unnamed_files:
            assert _entries(target.parent) == []
        else:
            assert all(n.startswith(TEMP_PREFIX) for n in _entries(target.parent))
        pending.commit()
    assert target.read_bytes() == b"x" * 100_000
    assert _entries(target.parent) == [target.name]


@pytest.mark.unit
def test_commit_gets_the_same_permissions_as_any_new_file(site: Site) -> None:
    site.ensure_dir(site.root)
    reference = site.root / "reference"
    reference.write_bytes(b"")
    target = site.root / "a.conda"
    with site.pending(target) as pending:
        pending.commit()
    assert target.stat().st_mode == reference.stat().st_mode


@pytest.mark.unit
def test_commit_replaces_an_existing_file(site: Site) -> None:
    target = site.root / "a.conda"
    site.ensure_dir(site.root)
    target.write_bytes(b"old bytes")
    with site.pending(target) as pending:
        pending.write(b"new")
        assert target.read_bytes() == b"old bytes"
        pending.commit()
    assert target.read_bytes() == b"new"
    assert _entries(site.root) == ["a.conda"]


@pytest.mark.unit
def test_discard_leaves_nothing_and_may_repeat(site: Site) -> None:
    target = site.root / "a.conda"
    pending = site.pending(target)
    pending.write(b"half")
    pending.discard()
    pending.discard()
    assert _entries(site.root) == []
    with pytest.raises(RuntimeError), site.pending(target) as pending:
        pending.write(b"half")
        raise RuntimeError("the download failed")
    assert _entries(site.root) == []


@pytest.mark.unit
def test_short_writes_and_many_buffers_are_carried_on(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pwritev may write less than asked, and takes at most 1024 buffers a call."""
    real = os.pwritev
    calls: list[int] = []

    def short_pwritev(fd: int, buffers: list[bytes], offset: int) -> int:
        assert len(buffers) <= 1024
        calls.append(len(buffers))
        # At most 5,000 bytes a call, cutting through buffers.
        taken, left = [], 5000
        for buffer in buffers:
            view = memoryview(buffer)[:left]
            taken.append(view)
            left -= len(view)
            if not left:
                break
        return real(fd, taken, offset)

    monkeypatch.setattr(storage.os, "pwritev", short_pwritev)
    buffers = [bytes([i % 256]) * (1 + i % 7) for i in range(3000)]
    target = site.root / "many.conda"
    with site.pending(target) as pending:
        pending.write_at([b"head"], 0)
        pending.write_at(buffers, 4)
        pending.commit()
    assert target.read_bytes() == b"head" + b"".join(buffers)
    assert len(calls) > 3


@pytest.mark.unit
def test_positioned_writes_from_threads_assemble_the_file(site: Site) -> None:
    parts = [bytes([i]) * 300_001 for i in range(8)]
    target = site.root / "big.conda"
    with site.pending(target) as pending:
        threads = [
            threading.Thread(
                target=pending.write_at, args=([part[:999], part[999:]], i * len(part))
            )
            for i, part in reversed(list(enumerate(parts)))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert b"".join(pending.chunks(size=65_536)) == b"".join(parts)
        pending.commit()
    assert target.read_bytes() == b"".join(parts)


@pytest.mark.integration
def test_a_killed_writer_leaves_nothing_behind(tmp_path: Path) -> None:
    """The process dies mid-write: a nameless file vanishes with it, no cleanup needed."""
    directory = tmp_path / "linux-64"
    code = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from sitegen.store.site import Site\n"
        "d = Path(sys.argv[1])\n"
        "p = Site(d.parent).pending(d / 'a.conda')\n"
        "p.write(b'x' * 1_000_000)\n"
        "os._exit(0 if p.temp is None else 3)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(directory)], check=False)
    assert result.returncode == 0, "the filesystem here has no O_TMPFILE"
    assert _entries(directory) == []


@pytest.mark.unit
def test_the_probe_refuses_a_directory_that_cannot_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/proc not mounted (or linking through it refused): named temporaries instead."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise FileNotFoundError("/proc/self/fd")

    monkeypatch.setattr(storage.os, "link", refuse)
    site = Site(tmp_path)
    with site.pending(tmp_path / "a.conda") as pending:
        assert pending.temp is not None
        pending.write(b"ok")
        pending.commit()
    assert (tmp_path / "a.conda").read_bytes() == b"ok"
    assert _entries(tmp_path) == ["a.conda"]


@pytest.mark.unit
def test_a_file_in_a_directory_not_made_yet(site: Site) -> None:
    for subdir in ("linux-64", "noarch"):  # the second is new after the first was probed
        target = site.root / "chan" / subdir / "a.conda"
        with site.pending(target) as pending:
            pending.write(subdir.encode())
            pending.commit()
        assert target.read_bytes() == subdir.encode()


@pytest.mark.unit
def test_a_write_error_reported_at_close_keeps_the_name_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Network filesystems may report a failed write only when the file is closed: a named
    temporary is closed before it is renamed, so such a file never gets the target's name."""
    site = Site(tmp_path)
    site.unnamed_files = False
    target = tmp_path / "a.conda"
    pending = site.pending(target)
    pending.write(b"bytes the server never stored")
    real_close = os.close

    def failing_close(fd: int) -> None:
        real_close(fd)
        if fd == pending_fd:
            raise OSError(errno.EIO, "Input/output error")

    pending_fd = pending.fd
    monkeypatch.setattr(storage.os, "close", failing_close)
    with pytest.raises(OSError, match="Input/output"):
        pending.commit()
    pending.discard()
    assert _entries(tmp_path) == []


@pytest.mark.unit
def test_running_out_of_descriptors_is_an_error_not_a_missing_feature(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def no_descriptors(path: object, flags: int, *args: object, **kwargs: object) -> int:
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            raise OSError(errno.EMFILE, "Too many open files")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(storage.os, "open", no_descriptors)
    site = Site(tmp_path)
    with pytest.raises(OSError, match="Too many open files"):
        site.pending(tmp_path / "a.conda")
    assert site.unnamed_files is None  # asked again next time


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

    monkeypatch.setattr(storage, "_syncfs", lambda: fake_syncfs)
    site.sync([tmp_path / "a", tmp_path / "b", tmp_path])
    assert calls == [os.stat(tmp_path).st_dev]


@pytest.mark.unit
def test_a_failed_flush_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_syncfs(fd: int) -> int:
        ctypes.set_errno(errno.EIO)
        return -1

    monkeypatch.setattr(storage, "_syncfs", lambda: failing_syncfs)
    with pytest.raises(OSError) as info:
        Site(tmp_path).sync([tmp_path])
    assert info.value.errno == errno.EIO
    assert info.value.filename == str(tmp_path)


@pytest.mark.unit
@pytest.mark.parametrize("durable", [True, False])
def test_a_durable_commit_puts_the_bytes_on_disk_before_the_name(
    site: Site, monkeypatch: pytest.MonkeyPatch, durable: bool
) -> None:
    target = site.root / "a.conda"
    synced = record_fdatasync(monkeypatch, lambda fd: (os.fstat(fd).st_size, target.exists()))
    with site.pending(target) as pending:
        pending.write(b"d" * 1000)
        pending.commit(durable)
    assert synced == ([(1000, False)] if durable else [])
    assert target.read_bytes() == b"d" * 1000


@pytest.mark.unit
@pytest.mark.parametrize(
    ("protocol", "implementation"), [(SiteStorage, Site), (PendingWrite, PendingFile)]
)
def test_the_filesystem_backend_implements_the_storage_interface(
    protocol: type, implementation: type
) -> None:
    """Every operation of the interface exists on the filesystem backend, called the same way
    (parameter names, kinds and defaults), so callers typed against the interface work."""
    for name, member in vars(protocol).items():
        if name.startswith("_") and name not in ("__enter__", "__exit__"):
            continue
        if isinstance(member, property):
            assert isinstance(getattr(implementation, name), property), name
            continue
        if not callable(member):
            continue
        expected = inspect.signature(member)
        actual = inspect.signature(getattr(implementation, name))
        assert [(p.name, p.kind, p.default) for p in actual.parameters.values()] == [
            (p.name, p.kind, p.default) for p in expected.parameters.values()
        ], name


@pytest.mark.unit
def test_a_site_and_its_pending_files_are_storage_instances(tmp_path: Path) -> None:
    site = Site(tmp_path)
    assert isinstance(site, SiteStorage)  # also its data members: root
    with site.pending(tmp_path / "a.conda") as pending:
        assert isinstance(pending, PendingWrite)


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
    assert _entries(directory) == ["repodata.json"]


@pytest.mark.unit
def test_the_origins_map_is_written_sorted_whatever_its_order(site: Site) -> None:
    """Two runs that gathered the same origins in another order write the same bytes (no
    rewrite, no diff), file names in order, and the map reads back as it was."""
    files = {"b-1-0.conda": "forge", "a-1-0.tar.bz2": "main", "c-2-0.conda": "forge"}
    bases = {"main": "https://main.example/pkgs/", "forge": ""}
    written = []
    for order in (files, dict(reversed(files.items()))):
        origins = Origins(files=order, package_bases=dict(reversed(bases.items())))
        write_origins(site, "ch", "linux-64", origins)
        written.append(origins_path(site.root, "ch", "linux-64").read_bytes())
    assert written[0] == written[1]
    assert written[0].index(b'"a-1-0') < written[0].index(b'"b-1-0') < written[0].index(b'"c-2-0')
    assert written[0].index(b'"forge":""') < written[0].index(b'"main":"https')
    back = read_origins(origins_path(site.root, "ch", "linux-64"))
    assert back.files == files and back.package_bases == bases


@pytest.mark.unit
@pytest.mark.parametrize(
    "parts",
    [
        ("..", "outside"),
        ("chan", "..", "..", "outside"),
        ("chan/../linux-64",),  # lands inside, but a dot segment is never a published path
        ("chan", "."),
        ("chan//linux-64",),
        ("chan", "a\\b"),
        ("chan", "a\x00b"),
        ("/etc", "passwd"),
    ],
)
def test_a_path_with_an_unsafe_segment_is_refused(tmp_path: Path, parts: tuple[str, ...]) -> None:
    """Nothing is written outside the output directory (README, Guarantees): channel paths,
    subdirs and file names from the configuration or upstream never climb out of the site."""
    site = Site(tmp_path / "site")
    with pytest.raises(storage.UnsafePathError):
        site.path(*parts)
    assert site.path("chan", "linux-64") == site.root / "chan" / "linux-64"


@pytest.mark.unit
def test_a_path_through_a_symlink_leading_out_of_the_site_is_refused(tmp_path: Path) -> None:
    site = Site(tmp_path / "site")
    site.ensure_dir(site.root)
    (tmp_path / "elsewhere").mkdir()
    (site.root / "chan").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(storage.UnsafePathError):
        site.path("chan", "linux-64")
    # A sibling whose name merely starts with the site's is outside it all the same.
    (tmp_path / "site-other").mkdir()
    (site.root / "near").symlink_to(tmp_path / "site-other")
    with pytest.raises(storage.UnsafePathError):
        site.path("near", "linux-64")
    (site.root / "inside").mkdir()
    (site.root / "alias").symlink_to(site.root / "inside")
    assert site.path("alias", "linux-64") == site.root / "alias" / "linux-64"


@pytest.mark.unit
def test_temporaries_and_staged_files_are_dot_names_of_their_writer(site: Site) -> None:
    """Every temporary (a staged replacement too) is a dot-name the web server configs deny,
    never a published name, carries its writer's pid, and two are never the same file."""
    target = site.root / "linux-64" / "a-1.0-0.conda"
    temps = {site.temp_for(target), site.temp_for(target), site.staging_for(target)}
    assert len(temps) == 3
    for temp in temps:
        assert temp.parent == target.parent and temp.name != target.name
        assert temp.name.startswith(f"{TEMP_PREFIX}{os.getpid()}-")
        assert storage.temp_writer_alive(temp.name) is False  # this process: nothing in flight


@pytest.mark.integration
def test_cleaning_spares_the_temporaries_of_a_live_writer(tmp_path: Path) -> None:
    """Temporaries of a dead process go; those of another live one (the passive fetcher
    writing a file) stay, whether cleaned per directory or across the site."""
    site = Site(tmp_path / "site")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        directory = site.root / "chan" / "linux-64"
        site.ensure_dir(directory)
        left = directory / f"{TEMP_PREFIX}{dead.pid}-a-1.0-0.conda.0000"
        busy = directory / f"{TEMP_PREFIX}{live.pid}-b-1.0-0.conda.0000"
        for path in (left, busy):
            path.write_bytes(b"x")
        assert site.clean_temp_files(directory) == 1
        assert _entries(directory) == [busy.name]
        left.write_bytes(b"x")
        assert site.clean_temp_tree() == 1
        assert _entries(directory) == [busy.name]
    finally:
        live.kill()
        live.wait()
    assert site.clean_temp_tree() == 1
    assert _entries(directory) == []


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
    assert _entries(tmp_path) == ["channeldata.json"]


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
    assert _entries(directory) == ["repodata.json"]
    assert (directory / "repodata.json").read_bytes() == b"old"


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
