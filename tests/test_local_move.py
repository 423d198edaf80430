"""``move: true``: a local source's files leave its folder once, and only once, their records
are published; they stay published from the site's store, and nothing is lost on failure."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import trio

from sitegen.cli import EXIT_OK, main
from sitegen.config import parse_config
from sitegen.config.yaml_nodes import ConfigError
from sitegen.layout import local_store_path
from sitegen.tools.example_channel import PackageSpec
from sitegen.tools.verify import verify_site
from testkit.local import BAR, CHANNEL, FOO, MIRROR, drop, local_config, run
from testkit.site import assert_channel_consistent, published, read_repodata, sha256_of

pytestmark = pytest.mark.unit


def test_published_files_are_moved_into_the_store_and_stay_published(tmp_path: Path) -> None:
    folder, site = tmp_path / "incoming", tmp_path / "site"
    config = local_config(site, folder, extra="move: true\n")
    foo = drop(folder, FOO, "conda")
    bar = drop(folder, BAR, "tar.bz2", by_subdir=True)
    digests = {p.name: sha256_of(p) for p in (foo, bar)}
    assert not run(config).failed
    assert not foo.exists() and not bar.exists()
    store = local_store_path(site, MIRROR) / "linux-64"
    directory = site / CHANNEL / "linux-64"
    for fn, digest in digests.items():
        assert sha256_of(store / fn) == digest
        assert os.stat(directory / fn).st_ino == os.stat(store / fn).st_ino
    # The next run finds the folder empty: the moved packages stay published, untouched.
    assert not run(config).failed
    assert published(site, CHANNEL, "linux-64") == set(digests)
    assert_channel_consistent(site, CHANNEL)
    # A replacement dropped in the folder replaces the moved one, and is moved in turn.
    drop(folder, PackageSpec("foo", "1.0", "h1_0", seed=3), "conda")
    new_digest = sha256_of(foo)
    assert not run(config).failed
    assert not foo.exists()
    record = read_repodata(directory)["packages.conda"][foo.name]
    assert record["sha256"] == new_digest == sha256_of(store / foo.name)
    # A moved file lost from the site comes back from the store.
    (directory / bar.name).unlink()
    assert trio.run(verify_site, config, True).ok
    assert sha256_of(directory / bar.name) == digests[bar.name]


def test_moved_files_are_not_read_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The store's index takes each moved file's cache entry along, with the ctime the move
    gave it: the files are read once, when they are dropped, not again from the store."""
    folder, site = tmp_path / "incoming", tmp_path / "site"
    config = local_config(site, folder, extra="move: true\n")
    drop(folder, FOO, "conda")
    drop(folder, BAR, "tar.bz2", by_subdir=True)
    assert not run(config).failed
    caplog.clear()
    with caplog.at_level("INFO", logger="sitegen"):
        assert not run(config).failed
    assert [m for m in caplog.messages if "new or changed files" in m] == []
    assert published(site, CHANNEL, "linux-64") == {
        "foo-1.0-h1_0.conda",
        "bar-2.0-h2_0.tar.bz2",
    }


def test_only_published_files_move(tmp_path: Path) -> None:
    folder, site = tmp_path / "incoming", tmp_path / "site"
    extra = "move: true\nfilters: {names: {exclude: [bar]}}\n"
    config = local_config(site, folder, extra=extra)
    foo = drop(folder, FOO, "conda")
    bar = drop(folder, BAR, "conda")
    assert not run(config).failed
    assert not foo.exists()
    assert bar.exists()  # filtered out: not published, so not moved


def test_a_failed_move_leaves_the_file_in_the_folder(tmp_path: Path) -> None:
    folder, site = tmp_path / "incoming", tmp_path / "site"
    config = local_config(site, folder, extra="move: true\n")
    foo = drop(folder, FOO, "conda")
    digest = sha256_of(foo)
    # The store's subdir cannot be made: a file stands where it would go.
    store = local_store_path(site, MIRROR)
    store.mkdir(parents=True)
    (store / "linux-64").write_bytes(b"in the way")
    report = run(config)
    assert any("not moved from the folder" in e for e in report.errors)
    assert sha256_of(foo) == digest
    assert published(site, CHANNEL, "linux-64") == {foo.name}
    (store / "linux-64").unlink()
    assert not run(config).failed
    assert not foo.exists() and sha256_of(store / "linux-64" / foo.name) == digest


def test_without_move_the_folder_is_left_alone(tmp_path: Path) -> None:
    folder, site = tmp_path / "incoming", tmp_path / "site"
    foo = drop(folder, FOO, "conda")
    assert not run(local_config(site, folder)).failed
    assert foo.exists() and not local_store_path(site, MIRROR).exists()


def test_move_is_for_local_sources_only() -> None:
    text = "output: /tmp/s\nchannels:\n  a/b:\n    url: https://example.org/c\n"
    with pytest.raises(ConfigError, match="no files to move"):
        parse_config(text + "    subdirs: [linux-64]\n    move: true\n")


def test_a_folder_another_source_reads_cannot_be_moved_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a move: true source takes out of its folder leaves it for every source reading
    it: another channel reading the folder (or a folder inside it, or one holding it) lost
    each package moved, silently while under the deletion guard's fraction. Such a
    configuration is an error naming file, line and key, links resolved; folders apart, or
    sources that both leave the folder alone, are fine."""
    incoming = tmp_path / "incoming"
    (incoming / "linux-64").mkdir(parents=True)
    (tmp_path / "link").symlink_to(incoming)
    site = tmp_path / "site"

    def text(*sources: tuple[str, str, Path, bool]) -> str:
        """channels.yaml with one channel per source (channel, mirror, folder, move); each
        mirror's line is 5 + 6 * its position."""
        lines = [f"output: {site}", "channels:"]
        for channel, name, folder, move in sources:
            lines += [f"  {channel}:", "    mirrors:", f"      - name: {name}"]
            lines += [f"        path: {folder}", "        subdirs: [linux-64]"]
            lines.append(f"        move: {str(move).lower()}")
        return "\n".join(lines) + "\n"

    def refused(config: str) -> str:
        with pytest.raises(ConfigError) as caught:
            parse_config(config)
        return str(caught.value)

    def why(mover: Path, reader: str, line: int, where: str) -> str:
        return (
            f"move: true takes the packages it publishes out of its folder {mover}, and mirror"
            f" 'reader' of channel {reader!r} (line {line}) reads {where}: each package moved"
            " would be gone from that mirror too; keep a moving source's folder apart from every"
            " other source's"
        )

    inner = incoming / "linux-64"
    for mover, reader, where in (
        (incoming, incoming, "the same folder"),
        (incoming, tmp_path / "link", "the same folder"),
        (incoming, inner, f"{inner}, inside it"),
        (inner, incoming, f"{incoming}, which holds it"),
        (tmp_path / "link", tmp_path / "link" / "linux-64", f"{tmp_path}/link/linux-64, inside it"),
    ):
        config = text(("a/m", "mover", mover, True), ("b/r", "reader", reader, False))
        assert refused(config) == (
            f"channels.yaml:5: channels.a/m: mirror 'mover': {why(mover, 'b/r', 11, where)}"
        )
        # Listed first, the reader is named all the same.
        config = text(("b/r", "reader", reader, False), ("a/m", "mover", mover, True))
        assert refused(config) == (
            f"channels.yaml:11: channels.a/m: mirror 'mover': {why(mover, 'b/r', 5, where)}"
        )
    # In one channel, and two movers (reported on the second).
    same_channel = text(("a/m", "mover", incoming, True), ("a/r", "reader", incoming, False))
    same_channel = same_channel.replace("  a/r:\n    mirrors:\n", "")
    assert refused(same_channel).startswith("channels.yaml:5: channels.a/m: mirror 'mover'")
    assert "mirror 'reader' of channel 'a/m' (line 9)" in refused(same_channel)
    both = text(("b/r", "reader", incoming, True), ("a/m", "mover", incoming, True))
    assert refused(both).startswith("channels.yaml:11: channels.a/m: mirror 'mover': move: true")
    assert refused(both).count("move: true takes") == 1
    # Apart, or nothing moved: fine.
    parse_config(
        text(("a/m", "mover", incoming, True), ("b/r", "r", tmp_path / "incoming2", False))
    )
    parse_config(text(("a/m", "mover", incoming, False), ("b/r", "reader", incoming, False)))
    # Through the command line: exit 2, nothing run.
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(text(("a/m", "mover", incoming, True), ("b/r", "reader", inner, False)))
    assert main(["mirror", "-c", str(config_path)]) == 2
    err = capsys.readouterr().err
    assert f"{config_path}:5: channels.a/m: mirror 'mover': move: true takes" in err, err
    assert not site.exists()


def test_across_filesystems_the_move_is_a_verified_copy(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the test's directory")
    folder = Path(tempfile.mkdtemp(dir=shm, prefix="sitegen-move-"))
    try:
        foo = drop(folder, FOO, "conda")
        digest = sha256_of(foo)
        site = tmp_path / "site"
        assert not run(local_config(site, folder, extra="move: true\n")).failed
        assert not foo.exists()
        stored = local_store_path(site, MIRROR) / "linux-64" / foo.name
        assert sha256_of(stored) == digest
        assert os.stat(site / CHANNEL / "linux-64" / foo.name).st_ino == os.stat(stored).st_ino
        assert not [p for p in stored.parent.iterdir() if p.name != foo.name]  # no temporaries
    finally:
        shutil.rmtree(folder)


def test_sitegen_add_to_a_moving_source(tmp_path: Path) -> None:
    folder, site = tmp_path / "incoming", tmp_path / "site"
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {site}\nchannels:\n  {CHANNEL}:\n    path: {folder}\n"
        "    subdirs: [linux-64]\n    move: true\n"
    )
    built = drop(tmp_path / "build", FOO, "conda")
    assert main(["add", CHANNEL, str(built), "-c", str(config)]) == EXIT_OK
    assert published(site, CHANNEL, "linux-64") == {built.name}
    assert not [p for p in folder.rglob("*") if p.is_file()]
    store = local_store_path(site, MIRROR) / "linux-64"
    assert sha256_of(store / built.name) == sha256_of(built)
    # A new build of the same name replaces the moved one.
    again = drop(tmp_path / "rebuild", PackageSpec("foo", "1.0", "h1_0", seed=5), "conda")
    assert main(["add", CHANNEL, str(again), "-c", str(config)]) == EXIT_OK
    assert sha256_of(site / CHANNEL / "linux-64" / built.name) == sha256_of(again)
    assert sha256_of(store / built.name) == sha256_of(again)
    assert not [p for p in folder.rglob("*") if p.is_file()]
