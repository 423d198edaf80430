"""``sitegen remove``: delete a channel or subdir that is published but no longer configured,
with its pages and state, in an order a crash can stop anywhere."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sitegen.access.server_files import AccessPaths
from sitegen.cli import EXIT_CONFIG, EXIT_LOCKED, EXIT_OK, main
from sitegen.config import load_config
from sitegen.layout import subdir_state_paths
from sitegen.store.lock import SiteLock
from sitegen.store.site import Site
from sitegen.sync.history import History
from sitegen.sync.removal_journal import begin
from sitegen.sync.report import RunReport
from sitegen.tools.remove import (
    plan_removal,
    remove_directories,
    remove_files,
    remove_metadata,
    remove_pages,
)
from sitegen.tools.remove_state import remove_state
from testkit.site import assert_channel_consistent, read_repodata, record_filenames, snapshot
from testkit.upstream import ExampleUpstream

pytestmark = pytest.mark.integration


class Mirror:
    """A site built by real runs of the example upstream, channels.yaml edited in between."""

    def __init__(self, tmp_path: Path, upstream: ExampleUpstream) -> None:
        self.site = tmp_path / "site"
        self.config = tmp_path / "channels.yaml"
        self.url = upstream.url

    def configure(self, *channels: tuple[str, str]) -> None:
        text = f"output: {self.site}\nchannels:\n"
        for path, subdirs in channels:
            text += f"  {path}:\n    url: {self.url}\n    subdirs: [{subdirs}]\n"
        self.config.write_text(text)

    def run(self, *args: str) -> int:
        return main([*args, "-c", str(self.config)])

    def mirror(self) -> None:
        assert self.run("mirror", "--no-progress") == EXIT_OK

    def state(self) -> list[str]:
        """Every file and folder under .sitegen/, site-relative."""
        root = self.site / ".sitegen"
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))

    def everything(self) -> dict[str, tuple[int, str]]:
        # The lock file takes the pid of each holder: not a change to the site.
        return snapshot(self.site, exclude=[".sitegen/lock"])


@pytest.fixture
def built(tmp_path: Path, example_upstream: ExampleUpstream) -> Mirror:
    """c/x and c/old mirrored (c/old frozen by command), then c/old taken out of the file."""
    m = Mirror(tmp_path, example_upstream)
    m.configure(("c/x", "linux-64"), ("c/old", "linux-64"))
    m.mirror()
    assert m.run("freeze", "c/old", "--reason", "kept for an audit") == EXIT_OK
    m.configure(("c/x", "linux-64"))
    m.mirror()
    assert (m.site / "c/old/linux-64/repodata.json").is_file()
    return m


def mentions(paths: list[str], channel: str, mirror: str) -> list[str]:
    return [p for p in paths if f"/{channel}/" in f"/{p}/" or mirror in p.split("/")]


def assert_gone(m: Mirror, channel: str, mirror: str) -> None:
    assert not (m.site / channel).exists()
    assert mentions(m.state(), channel, mirror) == []
    assert channel not in (m.site / ".sitegen/frozen.json").read_text()
    assert f'href="{channel}/' not in (m.site / "index.html").read_text()


def test_remove_a_channel_then_a_new_one_of_the_same_name_starts_clean(
    built: Mirror, capsys: pytest.CaptureFixture[str]
) -> None:
    m = built
    kept = snapshot(m.site / "c/x")
    state_before = m.state()
    assert mentions(state_before, "c/old", "c-old")  # what a run and a render keep for it
    assert 'href="c/old/' not in (m.site / "index.html").read_text()  # gone since the render

    assert m.run("remove", "c/old") == EXIT_OK
    assert_gone(m, "c/old", "c-old")
    assert not (m.site / "c").joinpath("old").exists() and (m.site / "c/x").is_dir()
    # The other channel is as it was, file for file, and consistent.
    assert snapshot(m.site / "c/x") == kept
    assert_channel_consistent(m.site, "c/x")
    # Its state went, the other channel's stayed (but the record of the inputs of the run
    # over both channels, which vouched for files of c/old too).
    after = m.state()
    for path in state_before:
        if not mentions([path], "c/old", "c-old") and path.count("/") and "inputs/" not in path:
            assert path in after, path
    assert len([p for p in after if p.startswith("inputs/")]) == 1
    # The removal is in the ledger (counts only) and on the history pages.
    [record] = [r for r in History(Site(m.site)).runs() if r.options.get("remove")]
    assert record.options == {"remove": "c/old"}
    assert {(c.channel, c.subdir, c.status) for c in record.channels} == {
        ("c/old", "linux-64", "removed"),
        ("c/old", "noarch", "removed"),
    }
    assert sum(c.deleted_files for c in record.channels) > 1
    assert all(c.removed == [] for c in record.channels)
    assert "removed by sitegen remove" in (m.site / f"history/{record.id}.html").read_text()
    # The landing page's last run is still the last mirror run.
    [last_run] = [r for r in History(Site(m.site)).runs() if not r.removal][:1]
    opening = (m.site / "index.html").read_text().split("Last run", 1)[1].split("</p>", 1)[0]
    assert f"history/{last_run.id}.html" in opening and record.id not in opening

    # A channel of the same name later: not frozen by the freeze of the one removed, all new.
    m.configure(("c/x", "linux-64"), ("c/old", "linux-64"))
    m.mirror()
    capsys.readouterr()
    assert m.run("status", "--json") == EXIT_OK
    assert json.loads(capsys.readouterr().out)["frozen"] == []
    [run] = [r for r in History(Site(m.site)).runs() if not r.options.get("remove")][:1]
    linux = [c for c in run.channels if (c.channel, c.subdir) == ("c/old", "linux-64")]
    assert linux[0].status == "published" and linux[0].added
    assert_channel_consistent(m.site, "c/old")


def test_remove_one_subdir_of_a_configured_channel(built: Mirror) -> None:
    m = built
    # The example upstream has one platform subdir: a copy of linux-64 (with its state)
    # stands in for another one published before and taken out of the mirror's subdirs.
    shutil.copytree(m.site / "c/x/linux-64", m.site / "c/x/osx-64")
    for source, target in zip(
        subdir_state_paths(m.site, "c/x", "linux-64"),
        subdir_state_paths(m.site, "c/x", "osx-64"),
        strict=True,
    ):
        if source.is_file():
            shutil.copy2(source, target)
    copied = [p for p in subdir_state_paths(m.site, "c/x", "osx-64") if p.exists()]
    assert len(copied) >= 3
    kept = snapshot(m.site / "c/x/linux-64")

    assert m.run("remove", "c/x/osx-64") == EXIT_OK
    assert not (m.site / "c/x/osx-64").exists()
    assert not any(p.exists() for p in copied)
    assert snapshot(m.site / "c/x/linux-64") == kept
    assert any(p.exists() for p in subdir_state_paths(m.site, "c/x", "linux-64"))
    assert (m.site / "c/x/index.html").is_file()
    assert_channel_consistent(m.site, "c/x")
    # The unconfigured channel beside it is not touched.
    assert (m.site / "c/old/linux-64/repodata.json").is_file()


def test_removing_the_last_subdir_of_a_channel_says_the_channel_goes_with_it(
    built: Mirror, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    m = built

    def said(path: str) -> tuple[str, str]:
        capsys.readouterr()
        assert m.run("remove", path, "--dry-run") == EXIT_OK
        dry = capsys.readouterr().out.splitlines()[-1]
        caplog.clear()
        with caplog.at_level("INFO", logger="sitegen"):
            assert m.run("remove", path) == EXIT_OK
        [done] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("removed ")]
        return dry, done

    dry, done = said("c/old/linux-64")
    assert dry.startswith("would remove the subdir c/old/linux-64 (c/old/linux-64: ")
    assert done.startswith("removed the subdir c/old/linux-64 (c/old/linux-64: ")
    assert (m.site / "c/old/channeldata.json").is_file()
    # The last one: the channel's own files, pages and state go too, and that is what it says.
    dry, done = said("c/old/noarch")
    last = "the channel c/old with its last subdir c/old/noarch (c/old/noarch: "
    assert dry.startswith(f"would remove {last}")
    assert done.startswith(f"removed {last}")
    assert not (m.site / "c/old").exists()


def test_refusals_touch_nothing(
    built: Mirror, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m = built
    (m.site / "c/x/osx-64").mkdir()  # a folder, but no published subdir
    before = m.everything()
    refused = {
        "c/x": "still configures the channel c/x",
        "c/x/linux-64": "still configures the subdir c/x/linux-64",
        "c/x/noarch": "still configures the subdir c/x/noarch",
        "c/x/osx-64": "nothing is published at c/x/osx-64",
        "c/nothing": "nothing is published at c/nothing",
        "c": "nothing is published at c",
        "c/old/packages": "nothing is published at c/old/packages",
        "../site/c/old": "is not a channel or subdir path",
        "c/./old": "is not a channel or subdir path",
        ".sitegen": "is not a channel or subdir path",
        "history": "belongs to sitegen itself",
        str(tmp_path / "upstream"): "is outside the site",
    }
    for path, why in refused.items():
        capsys.readouterr()
        assert m.run("remove", path) == EXIT_CONFIG, path
        assert why in capsys.readouterr().err, path
    assert m.everything() == before
    # The site's own absolute path of a removable channel is accepted.
    assert m.run("remove", str(m.site / "c/old"), "--dry-run") == EXIT_OK


def test_a_path_that_is_not_utf8_is_refused_naming_it(built: Mirror) -> None:
    """A path typed in a Latin-1 terminal reaches Python with a lone surrogate: no channel,
    subdir or folder sitegen publishes has one. Refused as a usage error, not a traceback."""
    before = built.everything()
    command = [sys.executable, "-m", "sitegen", "remove", b"c/\xf6ld", "-c", str(built.config)]
    for dry_run in ([], ["--dry-run"]):
        done = subprocess.run([*command, *dry_run], capture_output=True, timeout=60, check=False)
        assert done.returncode == EXIT_CONFIG, done.stderr
        assert done.stderr == b"sitegen: configuration error: PATH b'c/\\xf6ld': not UTF-8 text" + (
            b" (is the terminal's?)\n"
        )
    assert built.everything() == before


def test_dry_run_lists_what_would_go_and_deletes_nothing(
    built: Mirror, capsys: pytest.CaptureFixture[str]
) -> None:
    m = built
    before, state = m.everything(), m.state()
    capsys.readouterr()
    assert m.run("remove", "c/old", "--dry-run") == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert all(line.startswith("would remove ") for line in lines)
    listed = [line.removeprefix("would remove ") for line in lines]
    assert any(line.startswith("c/old/linux-64/ (") for line in listed)
    assert any(line.startswith("c/old/noarch/ (") for line in listed)
    assert "c/old/channeldata.json" in listed
    assert ".sitegen/origins/c/old/linux-64.json" in listed
    assert ".sitegen/upstream/c-old/" in listed
    assert not [line for line in listed if "download counts" in line]  # the site counts none
    assert m.everything() == before and m.state() == state


def test_a_dry_run_counts_what_the_removal_then_says_it_removed(
    built: Mirror, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Every file of the subdirs is counted (metadata and shards too), alike by the dry run,
    the removal's summary and its record; the dry run ends on the summary the removal logs."""
    m = built
    on_disk = {
        s: sum(1 for p in (m.site / "c/old" / s).rglob("*") if not p.is_dir())
        for s in ("linux-64", "noarch")
    }
    capsys.readouterr()
    assert m.run("remove", "c/old", "--dry-run") == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    for subdir, files in on_disk.items():
        assert f"would remove c/old/{subdir}/ ({files} files)" in lines

    with caplog.at_level("INFO", logger="sitegen"):
        assert m.run("remove", "c/old") == EXIT_OK
    [said] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("removed ")]
    assert f": {sum(on_disk.values())} files, " in said
    assert lines[-1] == f"would remove {said.removeprefix('removed ')}"
    [record] = [r for r in History(Site(m.site)).runs() if r.options.get("remove")]
    assert {c.subdir: c.deleted_files for c in record.channels} == on_disk


def test_a_removal_stopped_midway_is_finished_by_the_next(
    built: Mirror, capsys: pytest.CaptureFixture[str]
) -> None:
    m = built
    config = load_config(m.config)
    site = Site(m.site)
    removal = plan_removal(config, "c/old")
    assert removal.subdirs == ("linux-64", "noarch") and removal.whole_channel

    def named_files_present() -> None:
        for subdir in removal.subdirs:
            directory = m.site / "c/old" / subdir
            names = record_filenames(read_repodata(directory))
            assert all((directory / fn).is_file() for fn in names)

    # Killed after the metadata went: clients see an empty channel, nothing missing.
    remove_metadata(site, removal)
    named_files_present()
    assert record_filenames(read_repodata(m.site / "c/old/linux-64")) == set()
    assert not (m.site / "c/old/linux-64/repodata_shards.msgpack.zst").exists()
    assert (m.site / "c/old/linux-64/repodata.json.zst").exists() is False
    # ... or after the files too: still found, by status and by the next removal.
    remove_files(site, removal)
    named_files_present()
    capsys.readouterr()
    assert m.run("status", "--json") == EXIT_OK
    unconfigured = [u["path"] for u in json.loads(capsys.readouterr().out)["unconfigured"]]
    assert unconfigured == ["c/old/linux-64", "c/old/noarch"]

    assert m.run("remove", "c/old") == EXIT_OK
    assert_gone(m, "c/old", "c-old")
    assert_channel_consistent(m.site, "c/x")


@pytest.mark.parametrize("left", ["empty folders", "nothing"])
def test_a_removal_stopped_past_its_last_repodata_is_finished_and_recorded(
    built: Mirror, capsys: pytest.CaptureFixture[str], left: str
) -> None:
    """Killed once the last repodata.json went (the folders emptied, or removed too) but
    before the record: nothing on disk names the channel any more; the journal does."""
    m = built
    config = load_config(m.config)
    site = Site(m.site)
    removal = plan_removal(config, "c/old")
    begin(site, removal)
    remove_metadata(site, removal)
    remove_files(site, removal)
    remove_state(site, config, removal.channel, removal.subdirs, removal.whole_channel)
    remove_pages(config, site, removal)
    if left == "nothing":
        remove_directories(config, site, removal)
    else:
        for subdir in removal.subdirs:
            (m.site / "c/old" / subdir / "repodata.json").unlink()
        assert (m.site / "c/old/linux-64").is_dir()
    capsys.readouterr()
    assert m.run("status", "--json") == EXIT_OK
    assert json.loads(capsys.readouterr().out)["unconfigured"] == []
    assert not [r for r in History(site).runs() if r.options.get("remove")]

    assert m.run("remove", "c/old") == EXIT_OK
    assert_gone(m, "c/old", "c-old")
    [record] = [r for r in History(site).runs() if r.options.get("remove")]
    assert {(c.channel, c.subdir, c.status) for c in record.channels} == {
        ("c/old", "linux-64", "removed"),
        ("c/old", "noarch", "removed"),
    }
    # Counted before the first deletion, so the record is the one a clean removal writes.
    assert sum(c.deleted_files for c in record.channels) > 1
    # The journal went, and its folder with it.
    assert not (m.site / ".sitegen/removing").exists()
    # Finished: the same command now finds nothing to do.
    assert m.run("remove", "c/old") == EXIT_CONFIG


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


def test_a_removal_given_up_then_built_again_is_planned_and_recorded_anew(
    built: Mirror, caplog: pytest.LogCaptureFixture
) -> None:
    """Stopped midway, then the channel configured and built again, then taken out once more:
    the earlier removal's journal (its start, its counts) no longer describes the site, and
    the removal that follows records what it found itself."""
    m = built
    site = Site(m.site)
    removal = plan_removal(load_config(m.config), "c/old")
    begin(site, removal)
    remove_metadata(site, removal)
    m.configure(("c/x", "linux-64"), ("c/old", "linux-64"))
    assert m.run("unfreeze", "c/old") == EXIT_OK
    m.mirror()
    [rebuilt] = [r for r in History(site).runs() if not r.removal][:1]
    m.configure(("c/x", "linux-64"))
    (m.site / "c/old/linux-64/extra.conda").write_bytes(b"dropped since")
    on_disk = {
        s: sum(1 for p in (m.site / "c/old" / s).rglob("*") if not p.is_dir())
        for s in ("linux-64", "noarch")
    }

    with caplog.at_level("WARNING", logger="sitegen"):
        assert m.run("remove", "c/old") == EXIT_OK
    set_aside = [r for r in caplog.records if "journal of an unfinished removal" in r.message]
    assert len(set_aside) == 1 and rebuilt.id in set_aside[0].message
    assert_gone(m, "c/old", "c-old")
    # Before it: the earlier removal, recorded by the run as interrupted (see below).
    unfinished, record = removals(m)
    assert unfinished.status == "interrupted" and unfinished.started < rebuilt.started
    assert record.started > rebuilt.started
    assert {c.subdir: c.deleted_files for c in record.channels} == on_disk


def files_in(m: Mirror, channel: str) -> dict[str, int]:
    return {
        s: sum(1 for p in (m.site / channel / s).rglob("*") if not p.is_dir())
        for s in ("linux-64", "noarch")
    }


def stop_after_the_files(m: Mirror) -> tuple[float, dict[str, int]]:
    """A removal of c/old stopped once its files went: its start, and what it deleted of each
    subdir (all but the repodata.json naming nothing)."""
    site = Site(m.site)
    removal = plan_removal(load_config(m.config), "c/old")
    journal = begin(site, removal)
    remove_metadata(site, removal)
    remove_files(site, removal)
    assert files_in(m, "c/old") == {"linux-64": 1, "noarch": 1}
    return journal.started, {s: files - 1 for s, files in journal.files.items()}


def removals(m: Mirror) -> list[RunReport]:
    return sorted((r for r in History(Site(m.site)).runs() if r.removal), key=lambda r: r.started)


def test_what_a_removal_given_up_deleted_is_recorded_by_the_run_that_builds_it_again(
    built: Mirror,
) -> None:
    """Stopped midway, then the channel configured and built again: once it is published anew
    nothing tells what the removal had deleted, so the run records it first, as that removal
    interrupted; the removal that follows records what it found itself, each file once."""
    m = built
    started, deleted = stop_after_the_files(m)
    m.configure(("c/x", "linux-64"), ("c/old", "linux-64"))
    assert m.run("unfreeze", "c/old") == EXIT_OK
    m.mirror()
    m.mirror()  # the journal is set aside: nothing more to record
    m.configure(("c/x", "linux-64"))
    on_disk = files_in(m, "c/old")

    assert m.run("remove", "c/old") == EXIT_OK
    assert_gone(m, "c/old", "c-old")
    unfinished, finished = removals(m)
    assert unfinished.options == finished.options == {"remove": "c/old"}
    assert (unfinished.status, unfinished.started) == ("interrupted", started)
    assert {c.subdir: (c.status, c.deleted_files) for c in unfinished.channels} == {
        s: ("removed", n) for s, n in deleted.items()
    }
    assert {c.subdir: c.deleted_files for c in finished.channels} == on_disk


def test_a_removal_given_up_and_finished_unbuilt_counts_each_file_once(built: Mirror) -> None:
    """The channel configured again, but not built before it is taken out once more: the
    removal that finishes the one recorded as interrupted counts only what was left."""
    m = built
    started, deleted = stop_after_the_files(m)
    m.configure(("c/x", "linux-64"), ("c/old", "linux-64"))
    assert m.run("mirror", "--no-progress", "--only", "c-x") == EXIT_OK
    m.configure(("c/x", "linux-64"))

    assert m.run("remove", "c/old") == EXIT_OK
    assert_gone(m, "c/old", "c-old")
    unfinished, finished = removals(m)
    assert (unfinished.status, unfinished.started) == ("interrupted", started)
    assert {c.subdir: c.deleted_files for c in unfinished.channels} == deleted
    assert finished.status == "completed" and finished.started > started
    assert {c.subdir: c.deleted_files for c in finished.channels} == {"linux-64": 1, "noarch": 1}
