"""``sitegen remove``: delete a channel or subdir that is published but no longer configured,
with its pages and state; what is refused, and what a dry run says."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sitegen.cli import EXIT_CONFIG, EXIT_OK
from sitegen.layout import subdir_state_paths
from sitegen.store.site import Site
from sitegen.sync.history import History
from testkit.removal import Mirror, assert_gone, build_with_old_taken_out, mentions
from testkit.site import assert_channel_consistent, snapshot

pytestmark = pytest.mark.integration

built = pytest.fixture(name="built")(build_with_old_taken_out)


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
