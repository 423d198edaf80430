"""The packages a ``move: true`` source moved out of its folder outlive its mirror's name: the
store is kept by mirror name, so once that name is gone from channels.yaml (the channel renamed
or taken out), ``sitegen remove`` gives them back to the folder instead of deleting the only
copies, and refuses when it cannot."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from sitegen.cli import EXIT_CONFIG, EXIT_OK, main
from sitegen.layout import local_store_folder_path, local_store_path
from sitegen.tools.example_channel import PackageSpec
from testkit.local import drop
from testkit.site import assert_channel_consistent, published, sha256_of, snapshot

pytestmark = pytest.mark.unit

OLD, OLD_MIRROR = "internal/own", "internal-own"
FOO = PackageSpec("foo", "1.0", "h1_0")
BAR = PackageSpec("bar", "2.0", "h2_0")


class Site:
    """A site run through the CLI, channels.yaml rewritten in between."""

    def __init__(self, tmp_path: Path, folder: Path | None = None) -> None:
        self.root = tmp_path / "site"
        self.folder = folder or tmp_path / "incoming"
        self.other = tmp_path / "other"  # another channel's folder
        self.other.mkdir()
        self.config = tmp_path / "channels.yaml"

    def configure(self, *channels: tuple[str, Path]) -> None:
        text = f"output: {self.root}\nchannels:\n"
        for path, folder in channels:
            text += f"  {path}:\n    path: {folder}\n    subdirs: [linux-64]\n    move: true\n"
        self.config.write_text(text)

    def run(self, *args: str) -> int:
        return main([*args, "-c", str(self.config)])

    def mirror(self) -> None:
        assert self.run("mirror", "--no-progress") == EXIT_OK

    def store(self) -> Path:
        return local_store_path(self.root, OLD_MIRROR)

    def everything(self) -> dict[str, tuple[int, str]]:
        return {
            **{f"site/{k}": v for k, v in snapshot(self.root, [".sitegen/lock"]).items()},
            **{f"folder/{k}": v for k, v in snapshot(self.folder).items()},
        }


def moved_then_unconfigured(site: Site) -> dict[str, str]:
    """internal/own moves foo (dropped flat) and bar (in linux-64/) out of the folder, then
    is taken out of channels.yaml; fn -> sha256 of what it moved."""
    foo = drop(site.folder, FOO, "conda")
    bar = drop(site.folder, BAR, "tar.bz2", by_subdir=True)
    digests = {p.name: sha256_of(p) for p in (foo, bar)}
    site.configure((OLD, site.folder))
    site.mirror()
    assert not foo.exists() and not bar.exists()
    site.configure(("internal/other", site.other))
    site.mirror()
    return digests


def test_removing_the_channel_returns_its_moved_packages_to_the_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = Site(tmp_path)
    digests = moved_then_unconfigured(site)
    # Into the folder's linux-64/ folder, where there is one (as bar was dropped), else its
    # top level.
    foo, bar = (
        site.folder / "linux-64" / FOO.filename("conda"),
        site.folder / "linux-64" / BAR.filename("tar.bz2"),
    )

    capsys.readouterr()
    assert site.run("remove", OLD, "--dry-run") == EXIT_OK
    said = capsys.readouterr().out
    assert f"would return .sitegen/local/{OLD_MIRROR}/linux-64/{foo.name} to {foo}\n" in said
    assert f"would return .sitegen/local/{OLD_MIRROR}/linux-64/{bar.name} to {bar}\n" in said
    assert not foo.exists() and not bar.exists()

    assert site.run("remove", OLD) == EXIT_OK
    assert {foo.name: sha256_of(foo), bar.name: sha256_of(bar)} == digests
    assert not site.store().exists() and not (site.root / OLD).exists()
    # Whichever channel reads the folder next publishes them, and moves them in turn.
    site.configure(("internal/other", site.other), ("internal/renamed", site.folder))
    site.mirror()
    assert published(site.root, "internal/renamed", "linux-64") == set(digests)
    assert_channel_consistent(site.root, "internal/renamed")
    assert not foo.exists() and not bar.exists()


def test_across_filesystems_they_are_returned_as_verified_copies(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the test's directory")
    folder = Path(tempfile.mkdtemp(dir=shm, prefix="sitegen-return-"))
    try:
        site = Site(tmp_path, folder)
        digests = moved_then_unconfigured(site)
        assert site.run("remove", OLD) == EXIT_OK
        returned = {p.name: sha256_of(p) for p in folder.rglob("*") if p.is_file()}
        assert returned == digests  # and no temporaries left beside them
        assert not site.store().exists()
    finally:
        shutil.rmtree(folder)


def test_with_the_folder_gone_the_removal_is_refused_unless_told_to_delete_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = Site(tmp_path)
    digests = moved_then_unconfigured(site)
    shutil.rmtree(site.folder)
    before = site.everything()
    for args in ([], ["--dry-run"]):
        capsys.readouterr()
        assert site.run("remove", OLD, *args) == EXIT_CONFIG
        said = capsys.readouterr().err
        assert f".sitegen/local/{OLD_MIRROR}/ holds the only copies of 2 package files" in said
        assert all(f"linux-64/{fn}" in said for fn in digests)
        assert f"the folder {site.folder} no longer exists" in said
        assert "--delete-moved" in said and "nothing was removed" in said
        assert site.everything() == before
    # A store whose folder is not recorded is refused as well: nowhere to return them.
    site.folder.mkdir()
    local_store_folder_path(site.root, OLD_MIRROR).unlink()
    capsys.readouterr()
    assert site.run("remove", OLD) == EXIT_CONFIG
    assert "its folder is not recorded" in capsys.readouterr().err
    assert list(site.folder.iterdir()) == []

    capsys.readouterr()
    assert site.run("remove", OLD, "--dry-run", "--delete-moved") == EXIT_OK
    said = capsys.readouterr().out
    for fn in digests:
        assert f"would delete .sitegen/local/{OLD_MIRROR}/linux-64/{fn} (moved out" in said
    assert site.run("remove", OLD, "--delete-moved") == EXIT_OK
    assert not site.store().exists() and list(site.folder.iterdir()) == []


def test_a_name_taken_in_the_folder_is_never_written_over(tmp_path: Path) -> None:
    site = Site(tmp_path)
    digests = moved_then_unconfigured(site)
    # A new build of foo dropped since; bar's very bytes put back by hand.
    newer = drop(site.folder, PackageSpec("foo", "1.0", "h1_0", seed=3), "conda")
    newer_digest = sha256_of(newer)
    bar = site.folder / "linux-64" / BAR.filename("tar.bz2")
    shutil.copyfile(site.store() / "linux-64" / bar.name, bar)

    assert site.run("remove", OLD) == EXIT_OK
    assert sha256_of(newer) == newer_digest
    aside = site.folder / f"{newer.name}.returned-from-{OLD_MIRROR}"
    assert sha256_of(aside) == digests[newer.name]
    assert sha256_of(bar) == digests[bar.name]
    assert sorted(p.name for p in site.folder.rglob("*") if p.is_file()) == sorted(
        [newer.name, aside.name, bar.name]
    )
    assert not site.store().exists()


def test_a_newer_build_a_reading_source_moved_is_not_replaced_by_the_old_one(
    tmp_path: Path,
) -> None:
    """The channel renamed, a new build of foo dropped and moved by the renamed channel's own
    source: the old store's foo must not go back into the folder, where it would replace it."""
    site = Site(tmp_path)
    foo = drop(site.folder, FOO, "conda")
    old_digest = sha256_of(foo)
    site.configure((OLD, site.folder))
    site.mirror()
    drop(site.folder, PackageSpec("foo", "1.0", "h1_0", seed=3), "conda")
    new_digest = sha256_of(foo)
    site.configure(("internal/renamed", site.folder))
    site.mirror()
    assert not foo.exists()

    assert site.run("remove", OLD) == EXIT_OK
    aside = site.folder / f"{foo.name}.returned-from-{OLD_MIRROR}"
    assert sha256_of(aside) == old_digest and not foo.exists()
    site.mirror()
    directory = site.root / "internal/renamed/linux-64"
    assert published(site.root, "internal/renamed", "linux-64") == {foo.name}
    assert sha256_of(directory / foo.name) == new_digest


@pytest.mark.parametrize("renamed", ["channel", "mirror"])
def test_a_renamed_channel_or_mirror_publishes_what_the_old_name_moved(
    tmp_path: Path, renamed: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The run of the source that reads the folder under its new name gives the old name's
    store back to the folder first, and says so: nothing goes missing from the channel."""
    site = Site(tmp_path)
    foo = drop(site.folder, FOO, "conda")
    bar = drop(site.folder, BAR, "tar.bz2", by_subdir=True)
    digests = {p.name: sha256_of(p) for p in (foo, bar)}
    site.configure((OLD, site.folder))
    site.mirror()
    assert not foo.exists() and not bar.exists()
    channel, mirror = ("internal/renamed", "internal-renamed")
    if renamed == "channel":
        site.configure((channel, site.folder))
    else:
        channel, mirror = OLD, "own-builds"
        text = site.config.read_text().replace(
            "    move: true\n", "    move: true\n    name: own-builds\n"
        )
        site.config.write_text(text)

    with caplog.at_level("WARNING", logger="sitegen"):
        site.mirror()
    assert published(site.root, channel, "linux-64") == set(digests)
    assert_channel_consistent(site.root, channel)
    new_store = local_store_path(site.root, mirror) / "linux-64"
    assert {fn: sha256_of(new_store / fn) for fn in digests} == digests
    assert not site.store().exists() and not foo.exists() and not bar.exists()
    said = "\n".join(caplog.messages)
    assert (
        f"{mirror}: 2 packages the mirror {OLD_MIRROR}, no longer configured, had moved out of"
        f" {site.folder} went back into it from .sitegen/local/{OLD_MIRROR}/"
    ) in said
    if renamed == "channel":
        # Nothing left for the removal of the old channel to give back.
        assert site.run("remove", OLD) == EXIT_OK
        assert published(site.root, channel, "linux-64") == set(digests)
        assert {fn: sha256_of(new_store / fn) for fn in digests} == digests


def test_the_folder_recorded_follows_a_path_changed_once_moves_stopped(tmp_path: Path) -> None:
    """The store records the folder its mirror last named: ``path:`` changed along with
    ``move: true`` turned off, the store kept the old folder, so once the channel was renamed
    its packages were given back to a folder nothing read (or no longer there) instead of the
    one the mirror had read last, and went missing from the renamed channel."""
    site = Site(tmp_path)
    foo = drop(site.folder, FOO, "conda")
    site.configure((OLD, site.folder))
    site.mirror()
    assert not foo.exists()
    builds = tmp_path / "builds"
    bar = drop(builds, BAR, "conda")
    text = f"output: {site.root}\nchannels:\n  {{}}:\n    path: {builds}\n    subdirs: [linux-64]\n"
    site.config.write_text(text.format(OLD))
    site.mirror()
    assert published(site.root, OLD, "linux-64") == {foo.name, bar.name}
    site.config.write_text(text.format("internal/renamed"))
    site.mirror()
    assert published(site.root, "internal/renamed", "linux-64") == {foo.name, bar.name}
    assert sorted(p.name for p in builds.iterdir()) == sorted([foo.name, bar.name])
    assert not site.store().exists() and list(site.folder.iterdir()) == []


@pytest.mark.parametrize("old_name", ["builds.conda", "builds.tar.bz2"])
def test_a_file_kept_aside_is_ignored_whatever_the_old_mirror_is_named(
    tmp_path: Path, old_name: str
) -> None:
    """A mirror name may end like a package file name: the name a returned file is kept aside
    under must still not be read as a package (it would be reported as a bad one each run)."""
    site = Site(tmp_path)
    foo = drop(site.folder, FOO, "conda")
    site.configure((OLD, site.folder))
    site.config.write_text(
        site.config.read_text().replace("move: true\n", f"move: true\n    name: {old_name}\n")
    )
    site.mirror()
    assert not foo.exists()
    drop(site.folder, PackageSpec("foo", "1.0", "h1_0", seed=3), "conda")
    site.configure((OLD, site.folder))  # the mirror back to its default name
    site.mirror()
    (aside,) = site.folder.glob(f"{foo.name}.returned-from-*")
    assert sha256_of(site.root / OLD / "linux-64" / foo.name) != sha256_of(aside)
    history = site.root / "history" / "runs"
    last = max(history.glob("*.json"))
    assert aside.name not in last.read_text()  # not among the files it rejected
