"""PendingFile: a package file stays invisible until committed, then appears whole."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sitegen.store import site as storage
from sitegen.store.site import TEMP_PREFIX, Site
from testkit.site import record_fdatasync
from testkit.storage import entries, site_of_kind

site = pytest.fixture(params=["unnamed", "named"], name="site")(site_of_kind)


@pytest.mark.unit
def test_unnamed_files_are_used_where_the_filesystem_allows(tmp_path: Path) -> None:
    site = Site(tmp_path)
    with site.pending(tmp_path / "sub" / "a.conda") as pending:
        assert pending.temp is None
    assert site.unnamed_files is True
    assert entries(tmp_path / "sub") == []  # the probe left nothing either


@pytest.mark.unit
def test_without_o_tmpfile_a_temporary_name_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(os, "O_TMPFILE")
    site = Site(tmp_path)
    with site.pending(tmp_path / "a.conda") as pending:
        assert pending.temp is not None
        assert entries(tmp_path) == [pending.temp.name]
    assert site.unnamed_files is False
    assert entries(tmp_path) == []


@pytest.mark.unit
def test_nothing_is_visible_under_the_target_before_commit(site: Site) -> None:
    target = site.root / "linux-64" / "a-1.0-0.conda"
    with site.pending(target) as pending:
        pending.write(b"x" * 100_000)
        assert not target.exists()
        if site.unnamed_files:
            assert entries(target.parent) == []
        else:
            assert all(n.startswith(TEMP_PREFIX) for n in entries(target.parent))
        pending.commit()
    assert target.read_bytes() == b"x" * 100_000
    assert entries(target.parent) == [target.name]


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
    assert entries(site.root) == ["a.conda"]


@pytest.mark.unit
def test_discard_leaves_nothing_and_may_repeat(site: Site) -> None:
    target = site.root / "a.conda"
    pending = site.pending(target)
    pending.write(b"half")
    pending.discard()
    pending.discard()
    assert entries(site.root) == []
    with pytest.raises(RuntimeError), site.pending(target) as pending:
        pending.write(b"half")
        raise RuntimeError("the download failed")
    assert entries(site.root) == []


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
    assert entries(directory) == []


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
    assert entries(tmp_path) == ["a.conda"]


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
    assert entries(tmp_path) == []


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
