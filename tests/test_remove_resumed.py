"""``sitegen remove`` in an order a crash can stop anywhere: a removal stopped midway is
finished by the next, one given up is recorded by the run that builds the channel again."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from sitegen.cli import EXIT_CONFIG, EXIT_OK
from sitegen.config import load_config
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
from testkit.removal import Mirror, assert_gone, build_with_old_taken_out
from testkit.site import assert_channel_consistent, read_repodata, record_filenames, snapshot

pytestmark = pytest.mark.integration

built = pytest.fixture(name="built")(build_with_old_taken_out)


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


def test_a_removal_killed_writing_its_journal_is_finished_and_leaves_no_temporary(
    built: Mirror, capsys: pytest.CaptureFixture[str]
) -> None:
    """Killed before the journal had its name: its temporary is the killed removal's debris,
    which the removal run again clears with the rest, so that the site verifies clean."""
    m = built
    killed = m.killed(".sitegen/removing/", "remove", "c/old")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert [p.name for p in (m.site / ".sitegen/removing").iterdir()] != []

    assert m.run("remove", "c/old") == EXIT_OK
    assert_gone(m, "c/old", "c-old")
    assert not (m.site / ".sitegen/removing").exists()
    capsys.readouterr()
    assert m.run("verify") == EXIT_OK, capsys.readouterr().out


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


def test_journals_behind_a_link_out_of_the_site_are_neither_read_nor_written_by_a_run(
    built: Mirror, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The journals' folder a link planted in the state: what lies past it is not the state's,
    so the run that builds the channel again neither records a removal from it nor writes
    there, and says so."""
    m = built
    stop_after_the_files(m)
    outside = tmp_path / "outside"
    (m.site / ".sitegen/removing").rename(outside)
    (m.site / ".sitegen/removing").symlink_to(outside)
    kept = snapshot(outside)
    m.configure(("c/x", "linux-64"), ("c/old", "linux-64"))
    assert m.run("unfreeze", "c/old") == EXIT_OK
    with caplog.at_level("WARNING", logger="sitegen"):
        m.mirror()
    assert removals(m) == []
    assert snapshot(outside) == kept
    said = caplog.text
    assert f".sitegen/removing: a link out of the site, to {outside}" in said, said
