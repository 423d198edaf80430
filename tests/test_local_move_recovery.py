"""``move: true`` when files change under it or it is cut short: a file replaced or rewritten
since it was checked stays, files a killed move set aside are recovered, and what moved stays
published readable, also once move is turned off."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import trio

from sitegen.layout import local_store_path
from sitegen.store.site import Site
from sitegen.store.take import aside_of
from sitegen.sync import local_move
from sitegen.tools.example_channel import PackageSpec
from sitegen.tools.verify import verify_site
from testkit.local import BAR, CHANNEL, FOO, MIRROR, drop, local_config, run
from testkit.site import assert_channel_consistent, published, read_repodata, sha256_of

pytestmark = pytest.mark.unit


def test_across_filesystems_a_file_replaced_since_it_was_checked_stays(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the test's directory")
    folder = Path(tempfile.mkdtemp(dir=shm, prefix="sitegen-move-"))
    try:
        source = folder / "a.conda"
        source.write_bytes(b"first")
        seen = os.stat(source)
        identity = (seen.st_size, seen.st_mtime_ns, seen.st_ino)
        replacement = folder / ".a.partial"
        replacement.write_bytes(b"second")
        os.replace(replacement, source)  # a new version, dropped after the run checked it
        site = Site(tmp_path / "site")
        target = site.path(".sitegen", "local", "m", "linux-64", "a.conda")
        site.take(source, target, lambda path: None, identity)
        assert source.read_bytes() == b"second"  # kept for the next run
        again = os.stat(source)
        site.take(
            source, target, lambda path: None, (again.st_size, again.st_mtime_ns, again.st_ino)
        )
        assert not source.exists() and target.read_bytes() == b"second"
    finally:
        shutil.rmtree(folder)


def test_on_one_filesystem_a_file_replaced_since_it_was_checked_stays(tmp_path: Path) -> None:
    """The folder's name holds a newer file than the version the run checked: it neither goes
    into the store unchecked (over the version stored there) nor is lost."""
    folder = tmp_path / "incoming"
    folder.mkdir()
    source = folder / "a.conda"
    source.write_bytes(b"first")
    seen = os.stat(source)
    identity = (seen.st_size, seen.st_mtime_ns, seen.st_ino)
    site = Site(tmp_path / "site")
    target = site.path(".sitegen", "local", "m", "linux-64", "a.conda")
    site.ensure_dir(target.parent)
    target.write_bytes(b"stored, checked")
    replacement = folder / ".a.partial"
    replacement.write_bytes(b"second")
    os.replace(replacement, source)  # a new version, dropped after the run checked it
    site.take(source, target, lambda path: None, identity)
    assert source.read_bytes() == b"second"  # kept for the next run
    assert target.read_bytes() == b"stored, checked"
    assert sorted(p.name for p in folder.iterdir()) == ["a.conda"]
    again = os.stat(source)
    site.take(source, target, lambda path: None, (again.st_size, again.st_mtime_ns, again.st_ino))
    assert not source.exists() and target.read_bytes() == b"second"
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("move", [False, True])
def test_a_package_dropped_unreadable_to_others_is_published_readable(
    tmp_path: Path, move: bool
) -> None:
    # A file written by mkstemp (0600) and renamed into the folder: a hard link would share
    # that mode, and the web server could not read the file repodata lists.
    folder, site = tmp_path / "incoming", tmp_path / "site"
    config = local_config(site, folder, extra="move: true\n" if move else "")
    foo = drop(folder, FOO, "conda")
    digest = sha256_of(foo)
    foo.chmod(0o600)
    old = os.umask(0o022)
    try:
        assert not run(config).failed
        assert not run(config).failed
    finally:
        os.umask(old)
    published_file = site / CHANNEL / "linux-64" / foo.name
    assert sha256_of(published_file) == digest
    assert published_file.stat().st_mode & 0o777 == 0o644
    kept = local_store_path(site, MIRROR) / "linux-64" / foo.name if move else foo
    assert sha256_of(kept) == digest  # moved into the store, or left in the folder
    assert foo.exists() is not move


def test_files_a_killed_move_left_aside_are_recovered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A run killed between a move's two renames leaves the file as a dot-file in the folder,
    which indexing skips: the next run puts it back, removes it when it is there anyway, or
    finishes its move, and says so, instead of leaving it there for ever."""
    folder, site = tmp_path / "incoming", tmp_path / "site"
    foo = drop(folder, FOO, "conda")
    bar = drop(folder, BAR, "conda", by_subdir=True)
    # A name of more than 120 bytes is shortened in the aside name: the index cache knows it.
    long = drop(folder, PackageSpec("l" * 130, "1.0", "0"), "conda")
    rebuilt = drop(folder, PackageSpec("rebuilt", "1.0", "0"), "conda")
    assert not run(local_config(site, folder)).failed  # indexed and published, not moved
    digests = {p.name: sha256_of(p) for p in (foo, bar, long)}
    for path in (foo, long, rebuilt):
        os.rename(path, aside_of(path))  # killed right after the first rename
    assert aside_of(long).name != f".{long.name}.sitegen-taking"
    os.link(bar, aside_of(bar))  # killed while putting the file back: it has both names
    # The name taken since by a new build: the one set aside is what the site publishes.
    drop(folder, PackageSpec("rebuilt", "1.0", "0", seed=4), "conda")
    digests[rebuilt.name] = sha256_of(rebuilt)
    config = local_config(site, folder, extra="move: true\n")
    with caplog.at_level("WARNING", logger="sitegen"):
        assert not run(config).failed
    store = local_store_path(site, MIRROR) / "linux-64"
    for path in (foo, bar, long, rebuilt):
        assert not path.exists() and not aside_of(path).exists()
        assert sha256_of(store / path.name) == digests[path.name]
    assert published(site, CHANNEL, "linux-64") == set(digests)
    assert_channel_consistent(site, CHANNEL)
    said = "\n".join(caplog.messages)
    for path, done in [
        (foo, f"put back as {foo.name}"),
        (long, f"put back as {long.name}"),
        (bar, "removed: it is"),
        (rebuilt, "moved into the store"),
    ]:
        assert f"{aside_of(path)} was set aside by a move that did not finish: {done}" in said


def test_a_file_set_aside_that_is_nowhere_else_stays(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Its name taken by another file, and its bytes neither published nor stored: it stays,
    and is never written over by a later move of that name."""
    folder, site = tmp_path / "incoming", tmp_path / "site"
    config = local_config(site, folder, extra="move: true\n")
    foo = drop(folder, FOO, "conda")
    os.rename(foo, aside_of(foo))
    drop(folder, PackageSpec("foo", "1.0", "h1_0", seed=6), "conda")
    digest = sha256_of(aside_of(foo))
    with caplog.at_level("WARNING", logger="sitegen"):
        report = run(config)
    assert "did not finish: left there" in "\n".join(caplog.messages)
    assert any("set aside by an earlier move is in the way" in e for e in report.errors)
    assert sha256_of(aside_of(foo)) == digest
    assert published(site, CHANNEL, "linux-64") == {foo.name}


def test_moved_files_stay_published_once_move_is_turned_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The store holds the only copies of what moved: a mirror that no longer says ``move:
    true`` still reads it (and repairs from it, and finishes a move a kill left aside), and
    moves nothing more."""
    folder, site = tmp_path / "incoming", tmp_path / "site"
    foo = drop(folder, FOO, "conda")
    bar = drop(folder, BAR, "conda", by_subdir=True)
    digests = {p.name: sha256_of(p) for p in (foo, bar)}
    assert not run(local_config(site, folder, extra="move: true\n")).failed
    assert not foo.exists() and not bar.exists()
    os.rename(local_store_path(site, MIRROR) / "linux-64" / bar.name, aside_of(bar))
    config = local_config(site, folder)
    baz = drop(folder, PackageSpec("baz", "1.0", "h3_0"), "conda")
    with caplog.at_level("WARNING", logger="sitegen"):
        assert not run(config).failed
    assert f"{aside_of(bar)} was set aside by a move that did not finish" in caplog.text
    assert published(site, CHANNEL, "linux-64") == {foo.name, bar.name, baz.name}
    assert_channel_consistent(site, CHANNEL)
    assert baz.exists()  # no more moves
    directory = site / CHANNEL / "linux-64"
    (directory / foo.name).unlink()
    assert trio.run(verify_site, config, True).ok
    assert sha256_of(directory / foo.name) == digests[foo.name]


def test_a_file_rewritten_in_place_before_its_move_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the run's read of a file and its move, the file is rewritten in place (same
    inode and size) with its mtime set back (``cp -p``, ``rsync --times``). Size, mtime and
    inode still matched the version read, so on one filesystem it was renamed into the store
    unchecked, with the cache entry of the bytes read: the store's copy (the only one once
    the folder's is gone) no longer matched the record published. Its ctime, which nobody can
    set back, tells: it stays in the folder, and the next run reads it again."""
    folder, site = tmp_path / "incoming", tmp_path / "site"
    config = local_config(site, folder, extra="move: true\n")
    foo = drop(folder, FOO, "conda")
    foo.chmod(0o600)  # published as a copy: the site's file is not the folder's
    seen = foo.stat()
    rewritten = bytearray(foo.read_bytes())
    rewritten[-100] ^= 0xFF
    real_published_here = local_move.published_here

    def rewrite_then_look(*args: object, **kwargs: object) -> dict[str, str]:
        if foo.exists() and foo.read_bytes() != rewritten:
            with open(foo, "r+b") as handle:  # in place: same inode
                handle.write(rewritten)
            os.utime(foo, ns=(seen.st_atime_ns, seen.st_mtime_ns))
        return real_published_here(*args, **kwargs)

    monkeypatch.setattr(local_move, "published_here", rewrite_then_look)
    report = run(config)
    record = read_repodata(site / CHANNEL / "linux-64")["packages.conda"][foo.name]
    stored = local_store_path(site, MIRROR) / "linux-64" / foo.name
    assert foo.read_bytes() == rewritten
    assert not stored.exists()
    assert record["sha256"] != sha256_of(foo)
    assert any("not moved from the folder" in line for line in report.errors)
