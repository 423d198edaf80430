"""``sitegen remove`` at its edges: empty folders, channels configured inside or in place of the
removed one, symlinks, tokens, the lock, and the last channel of a site."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sitegen.access.server_files import AccessPaths
from sitegen.cli import EXIT_CONFIG, EXIT_LOCKED, EXIT_OK
from sitegen.config import load_config
from sitegen.store.lock import SiteLock
from sitegen.store.site import Site
from sitegen.tools.remove import (
    plan_removal,
    remove_directories,
    remove_files,
    remove_metadata,
    remove_pages,
)
from testkit.removal import Mirror, assert_gone, build_with_old_taken_out
from testkit.site import assert_channel_consistent, snapshot
from testkit.upstream import ExampleUpstream

pytestmark = pytest.mark.integration

built = pytest.fixture(name="built")(build_with_old_taken_out)


def test_empty_folders_go_with_the_removal_and_nothing_else(
    built: Mirror, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Folders holding nothing but empty folders (a subdir emptied by hand, a tool's empty
    scratch folder) go with the channel; a folder holding anything, a symlink, and what lies
    outside the site stay."""
    m = built
    outside = tmp_path / "outside" / "empty"
    outside.mkdir(parents=True)
    (m.site / "c/old/osx-64/shards").mkdir(parents=True)  # a subdir emptied by hand
    (m.site / "c/old/linux-64/scratch/a").mkdir(parents=True)
    (m.site / "c/old/noarch/keep/a").mkdir(parents=True)
    (m.site / "c/old/noarch/keep/a/note.txt").write_text("someone's")
    (m.site / "c/old/noarch/keep/b").mkdir()
    (m.site / "c/old/scratch").mkdir()
    (m.site / "c/old/scratch/link").symlink_to(outside)  # an empty folder outside the site

    with caplog.at_level("WARNING", logger="sitegen"):
        assert m.run("remove", "c/old") == EXIT_OK
    left = sorted(p.relative_to(m.site).as_posix() for p in (m.site / "c/old").rglob("*"))
    assert left == [
        "c/old/noarch",
        "c/old/noarch/keep",
        "c/old/noarch/keep/a",
        "c/old/noarch/keep/a/note.txt",
        "c/old/scratch",
        "c/old/scratch/link",
    ]
    kept = [r.getMessage() for r in caplog.records if "kept, not empty" in r.getMessage()]
    assert [k.split(":")[0] for k in kept] == ["c/old/noarch", "c/old"]
    assert outside.is_dir()
    assert (m.site / "c/x/linux-64/repodata.json").is_file()


def test_the_empty_folder_of_a_channel_configured_inside_the_removed_one_stays(
    built: Mirror,
) -> None:
    """c/old/new is configured but not published yet (its first run failed): its folder is
    its own, not the removed channel's, even empty."""
    m = built
    m.configure(("c/x", "linux-64"), ("c/old/new", "linux-64"))
    (m.site / "c/old/new").mkdir()
    config = load_config(m.config)
    site = Site(m.site)
    removal = plan_removal(config, "c/old")
    for stage in (remove_metadata, remove_files):
        stage(site, removal)
    remove_pages(config, site, removal)
    assert remove_directories(config, site, removal) == ["c/old"]
    assert [p.name for p in (m.site / "c/old").iterdir()] == ["new"]


def test_a_run_holding_the_lock_keeps_the_removal_out(
    built: Mirror, caplog: pytest.LogCaptureFixture
) -> None:
    m = built
    before = m.everything()
    with SiteLock(m.site / ".sitegen"):
        assert m.run("remove", "c/old") == EXIT_LOCKED
    assert "another sitegen run" in caplog.text and "nothing was removed" in caplog.text
    assert m.everything() == before
    assert m.run("remove", "c/old") == EXIT_OK


def test_a_channel_configured_where_the_removed_one_kept_its_pages_stays(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    """c/packages is a configured channel of its own once c is not: the removal of c leaves
    it, though c's package pages were in that folder."""
    m = Mirror(tmp_path, example_upstream)
    m.configure(("c", "linux-64"))
    m.mirror()
    m.configure(("c/packages", "linux-64"), ("c/approvals", "linux-64"))
    m.mirror()
    kept = snapshot(m.site / "c/packages"), snapshot(m.site / "c/approvals")

    assert m.run("remove", "c") == EXIT_OK
    assert not (m.site / "c/linux-64").exists() and not (m.site / "c/index.html").exists()
    assert (snapshot(m.site / "c/packages"), snapshot(m.site / "c/approvals")) == kept
    assert_channel_consistent(m.site, "c/packages")
    assert_channel_consistent(m.site, "c/approvals")


def test_symlinks_among_the_channels_own_names_go_themselves_not_what_they_name(
    built: Mirror, tmp_path: Path
) -> None:
    m = built
    outside = tmp_path / "outside"
    (outside / "pages").mkdir(parents=True)
    (outside / "index.html").write_text("not the site's")
    (outside / "pages" / "numpy.html").write_text("not the site's")
    for name, target in [
        ("index.html", outside / "index.html"),
        ("channeldata.json", outside / "index.html"),
        ("approvals", outside / "pages"),
    ]:
        (m.site / "c/old" / name).unlink(missing_ok=True)
        (m.site / "c/old" / name).symlink_to(target)
    before = snapshot(outside)

    assert m.run("remove", "c/old", "--dry-run") == EXIT_OK
    assert m.run("remove", "c/old") == EXIT_OK
    assert snapshot(outside) == before
    assert not (m.site / "c/old/index.html").is_symlink()
    assert not (m.site / "c/old/channeldata.json").is_symlink()
    assert not (m.site / "c/old/linux-64").exists()


def test_tokens_added_for_a_removed_channel_do_not_read_one_configured_later_in_its_place(
    tmp_path: Path, example_upstream: ExampleUpstream, capsys: pytest.CaptureFixture[str]
) -> None:
    m = Mirror(tmp_path, example_upstream)

    def configure(*paths: str) -> None:
        text = f"output: {m.site}\nchannels:\n"
        for path in paths:
            text += f"  {path}:\n    url: {m.url}\n    subdirs: [linux-64]\n    access: private\n"
        m.config.write_text(text)

    configure("c/keep", "c/old")
    m.mirror()
    assert m.run("token", "add", "alice", "--channel", "c/old", "--channel", "c/keep") == EXIT_OK
    assert m.run("token", "add", "bob", "--channel", "c/old") == EXIT_OK
    store = AccessPaths.of(load_config(m.config)).store
    configure("c/keep")
    m.mirror()

    capsys.readouterr()
    assert m.run("remove", "c/old", "--dry-run") == EXIT_OK
    said = capsys.readouterr().out
    assert f"would remove {store.path}: c/old from the scope of alice, bob" in said
    assert {r.name: r.channels for r in store.load()}["bob"] == ("c/old",)

    assert m.run("remove", "c/old") == EXIT_OK
    assert {r.name: r.channels for r in store.load()} == {"alice": ("c/keep",), "bob": ()}
    # A private channel configured under the same path later: no reader until one is added.
    configure("c/keep", "c/old")
    m.mirror()
    capsys.readouterr()
    assert m.run("token", "list") == EXIT_OK
    rows = {line.split()[0]: line.split()[2] for line in capsys.readouterr().out.splitlines()}
    assert rows["alice"] == "c/keep" and rows["bob"] == "-"


def test_the_last_channel_of_a_site_can_be_removed(
    built: Mirror, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """`channels: {}` is a configuration: runs mirror nothing and leave what the site
    publishes as it is, `status` lists it, and `sitegen remove` takes the last channel."""
    m = built
    m.config.write_text(f"output: {m.site}\nchannels: {{}}\n")
    before = m.everything()
    with caplog.at_level("INFO", logger="sitegen"):
        m.mirror()
    assert "no channel is configured" in caplog.text

    # Its files and metadata as they were (its pages go with the render, as documented).
    def served(files: dict[str, tuple[int, str]]) -> dict[str, tuple[int, str]]:
        pages = (".html", "search.json")
        return {k: v for k, v in files.items() if k.startswith("c/x/") and not k.endswith(pages)}

    assert served(m.everything()) == served(before) != {}
    capsys.readouterr()
    assert m.run("status") == EXIT_OK
    assert "sitegen remove c/x/linux-64" in capsys.readouterr().out
    for channel, mirror in (("c/x", "c-x"), ("c/old", "c-old")):
        assert m.run("remove", channel) == EXIT_OK
        assert_gone(m, channel, mirror)
    assert not (m.site / "c").exists()


@pytest.mark.parametrize("linked", ["c/old/linux-64", "c/old/noarch", "c/old"])
def test_a_channel_with_a_folder_linked_out_of_the_site_is_refused_whole(
    built: Mirror, tmp_path: Path, capsys: pytest.CaptureFixture[str], linked: str
) -> None:
    """What the link serves is not the site's to delete, and its channel cannot go without it
    (its state gone, the link still served): a channel whose subdir is a link out is refused
    as one that is itself a link is, the folder named and nothing touched."""
    m = built
    outside = tmp_path / "outside"
    (m.site / linked).rename(outside)
    (m.site / linked).symlink_to(outside)
    before, kept = m.everything(), snapshot(outside)
    capsys.readouterr()
    for args in (("--dry-run",), ()):
        assert m.run("remove", "c/old", *args) == EXIT_CONFIG
        said = capsys.readouterr().err
        assert f"{linked}: a link out of the site, to {outside}" in said, said
        assert "nothing was removed" in said
    assert m.everything() == before and snapshot(outside) == kept


def cli(m: Mirror, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "sitegen", *args, "-c", str(m.config)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(
    "linked",
    [
        ".sitegen/origins/c/old",
        ".sitegen/origins/c",
        ".sitegen/indexed",
        ".sitegen/upstream/c-old",
        ".sitegen/removing",  # where its journal is written, then deleted
    ],
)
def test_a_channel_whose_state_folder_is_linked_out_of_the_site_is_refused_whole(
    built: Mirror, tmp_path: Path, linked: str
) -> None:
    """What lies past a link planted in the private state is not the site's to delete: the
    removal is refused whole, the folder named, as for a link among the channel's folders."""
    m = built
    outside = tmp_path / "outside"
    if (m.site / linked).exists():
        (m.site / linked).rename(outside)
    outside.mkdir(exist_ok=True)
    (outside / "precious.txt").write_text("not the site's")
    (outside / "linux-64.json").write_text("{}")
    (m.site / linked).symlink_to(outside)
    before, kept = m.everything(), snapshot(outside)
    for args in (("--dry-run",), ()):
        done = cli(m, "remove", "c/old", *args)
        assert done.returncode == EXIT_CONFIG, done.stderr
        assert f"{linked}: a link out of the site, to {outside}" in done.stderr, done.stderr
        assert "nothing was removed" in done.stderr
    assert m.everything() == before and snapshot(outside) == kept


def test_a_state_folder_that_is_itself_a_link_still_takes_removals(
    built: Mirror, tmp_path: Path
) -> None:
    """``.sitegen`` on another disk, through a link: the operator's choice, which a removal
    works through as it does in place."""
    m = built
    elsewhere = tmp_path / "state-disk"
    (m.site / ".sitegen").rename(elsewhere)
    (m.site / ".sitegen").symlink_to(elsewhere)
    done = cli(m, "remove", "c/old")
    assert done.returncode == EXIT_OK, done.stderr
    assert_gone(m, "c/old", "c-old")
    assert (m.site / ".sitegen").is_symlink()
