"""``keep_removed``: package files whose records the upstream stops listing stay on disk,
unlisted, until a filter forbids them, the setting goes or the channel is removed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import trio

from sitegen.cli import main
from sitegen.conda.records import Record
from sitegen.config import ConfigError, SiteConfig, parse_config
from sitegen.layout import kept_records_path, origins_path
from sitegen.sync import publish
from sitegen.sync.keep import kept_files, read_kept
from sitegen.sync.report import RunReport
from sitegen.sync.run import MirrorOptions, run_mirror
from testkit.site import channel_config, published, rewrite_repodata, site_config
from testkit.upstream import ExampleUpstream

CHANNEL = "cloud/example"
OLD_ZLIB = {"zlib-1.2.13-h446ffa6_0.conda", "zlib-1.2.13-h446ffa6_0.tar.bz2"}
READLINE = "readline-8.2-hd24c132_1.conda"


def record(fn: str, name: str = "zlib", license: str = "Zlib") -> Record:
    version = fn.split("-")[1]
    return Record(fn, "linux-64", {"name": name, "version": version, "license": license})


@pytest.mark.unit
def test_only_files_no_upstream_lists_that_are_on_disk_and_allowed_are_kept() -> None:
    a, b, c, d, e = (record(f"zlib-1.{i}-0.conda") for i in range(5))
    allowed_seen: list[set[str]] = []

    def allowed(records: dict[str, Record]) -> set[str]:
        allowed_seen.append(set(records))
        return set(records) - {d.fn}  # a filter forbids d

    kept = kept_files(
        before={a.fn: a},  # kept by an earlier run
        previous={b.fn: b, c.fn: c, d.fn: d, e.fn: e},  # published until now
        listed=[{c.fn: c}],  # c is still upstream: a filter left it out, it goes
        published={e.fn: e},  # e is still published
        present={a.fn, b.fn, c.fn, d.fn, e.fn},
        allowed=allowed,
    )
    assert kept == {a.fn: a, b.fn: b}
    assert allowed_seen == [{a.fn, b.fn, d.fn}]
    # Gone from disk (a passive mirror never fetched it): nothing to keep.
    assert kept_files({a.fn: a}, {}, [], {}, set(), allowed) == {}


async def run(config: SiteConfig) -> RunReport:
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert not report.failed, report.errors
    return report


def keep_config(site: Path, url: str, *, keep: bool = True, filters: str = "") -> SiteConfig:
    extra = f"keep_removed: {str(keep).lower()}\n" + (f"filters: {filters}\n" if filters else "")
    return channel_config(site, url, extra=extra)


def upstream_names(root: Path) -> set[str]:
    names = set()
    for subdir in ("linux-64", "noarch"):
        document = json.loads((root / subdir / "repodata.json").read_bytes())
        for key in ("packages", "packages.conda"):
            names.update(r["name"] for r in document.get(key, {}).values())
    return names


async def cli(*args: str) -> int:
    """The command line, in a thread (it runs trio itself)."""
    return await trio.to_thread.run_sync(main, list(args))


def drop_old_zlib(document: dict[str, Any]) -> None:
    for key in ("packages", "packages.conda"):
        document[key] = {fn: r for fn, r in document[key].items() if fn not in OLD_ZLIB}


@pytest.mark.integration
async def test_files_upstream_drops_stay_until_a_filter_forbids_them(
    example_upstream: ExampleUpstream, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site"
    folder = site / CHANNEL / "linux-64"
    await run(keep_config(site, example_upstream.url))
    assert published(site, CHANNEL, "linux-64") >= OLD_ZLIB | {READLINE}
    state = kept_records_path(site, CHANNEL, "linux-64")
    assert not state.exists()

    # Upstream drops zlib 1.2.13: unlisted, but its files stay (an explicit lock file names
    # them), their records in the state.
    rewrite_repodata(example_upstream.root, "linux-64", drop_old_zlib)
    dry = await run_mirror(keep_config(site, example_upstream.url), MirrorOptions(dry_run=True))
    assert [(c.kept_files, c.deleted_files) for c in dry.channels if c.subdir == "linux-64"] == [
        (2, 0)
    ]
    report = await run(keep_config(site, example_upstream.url))
    assert [(c.kept_files, c.deleted_files) for c in report.channels if c.subdir == "linux-64"] == [
        (2, 0)
    ]
    assert not published(site, CHANNEL, "linux-64") & OLD_ZLIB
    assert all((folder / fn).is_file() for fn in OLD_ZLIB)
    assert set(read_kept(site, CHANNEL, "linux-64")) == OLD_ZLIB
    # Frozen (or held back), the subdir goes on keeping them, and its report says so.
    frozen = channel_config(site, example_upstream.url, extra="keep_removed: true\nfrozen: true\n")
    report = await run(frozen)
    [linux] = [c for c in report.channels if c.subdir == "linux-64"]
    assert (linux.status, linux.kept_files) == ("frozen", 2)
    # What a filter leaves out goes at once, though: readline is still upstream.
    await run(keep_config(site, example_upstream.url, filters="{names: {exclude: [readline]}}"))
    assert not (folder / READLINE).exists()
    assert all((folder / fn).is_file() for fn in OLD_ZLIB)
    # An allowlist decides what is listed, not what is forbidden: one without zlib leaves the
    # kept files as they are.
    names = sorted(upstream_names(example_upstream.root) - {"zlib", "readline"})
    allow = f"{{names: {{include: [{', '.join(names)}], exclude: [readline]}}}}"
    await run(keep_config(site, example_upstream.url, filters=allow))
    assert all((folder / fn).is_file() for fn in OLD_ZLIB)

    # `sitegen verify` checks kept files against their records; nothing can fetch one again,
    # so --repair deletes one that does not match.
    config_file = tmp_path / "channels.yaml"
    config_file.write_text(
        f"output: {site}\nchannels:\n  {CHANNEL}:\n    url: {example_upstream.url}\n    subdirs: [linux-64]\n    keep_removed: true\n"
    )
    capsys.readouterr()
    assert await cli("verify", "-c", str(config_file)) == 0
    # The summary counts them among the files checked, and says how many they are.
    listed = sum(len(published(site, CHANNEL, subdir)) for subdir in ("linux-64", "noarch"))
    summary = capsys.readouterr().out.splitlines()[-1]
    assert re.fullmatch(
        rf"checked {listed + 2} files \(2 kept unlisted\), \S+ KB; 0 problems", summary
    )
    assert await cli("status", "-c", str(config_file)) == 0
    assert "(2 kept unlisted)" in capsys.readouterr().out
    assert await cli("status", "-c", str(config_file), "--json") == 0
    assert [c["kept"] for c in json.loads(capsys.readouterr().out)["channels"]] == [2]
    damaged, intact = sorted(OLD_ZLIB)
    (folder / damaged).write_bytes(bytes((folder / damaged).stat().st_size))
    capsys.readouterr()
    assert await cli("verify", "-c", str(config_file)) == 1
    assert f"{CHANNEL}/linux-64/{damaged}" in capsys.readouterr().out
    assert await cli("verify", "-c", str(config_file), "--repair") == 0
    assert not (folder / damaged).exists() and (folder / intact).is_file()
    assert set(read_kept(site, CHANNEL, "linux-64") or {}) == {intact}
    assert await cli("verify", "-c", str(config_file)) == 0

    # A filter that forbids their record: they go, and their state with them.
    await run(keep_config(site, example_upstream.url, filters="{specs: {exclude: ['zlib <1.3']}}"))
    assert not any((folder / fn).exists() for fn in OLD_ZLIB)
    assert not state.exists()


@pytest.mark.integration
async def test_without_the_setting_or_once_it_is_off_dropped_files_go(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    kept, plain = tmp_path / "kept", tmp_path / "plain"
    for site, keep in ((kept, True), (plain, False)):
        await run(keep_config(site, example_upstream.url, keep=keep))
    rewrite_repodata(example_upstream.root, "linux-64", drop_old_zlib)
    for site, keep in ((kept, True), (plain, False)):
        await run(keep_config(site, example_upstream.url, keep=keep))
    assert all((kept / CHANNEL / "linux-64" / fn).is_file() for fn in OLD_ZLIB)
    assert not any((plain / CHANNEL / "linux-64" / fn).exists() for fn in OLD_ZLIB)

    await run(keep_config(kept, example_upstream.url, keep=False))
    assert not any((kept / CHANNEL / "linux-64" / fn).exists() for fn in OLD_ZLIB)
    assert not kept_records_path(kept, CHANNEL, "linux-64").exists()


@pytest.mark.unit
def test_the_setting_is_a_boolean_named_with_its_line_and_no_gated_channels(
    tmp_path: Path,
) -> None:
    text = "channels:\n  c:\n    url: https://up.test/c\n    subdirs: [noarch]\n"
    assert (
        parse_config(f"output: {tmp_path}\n{text}    keep_removed: true\n").channels[0].keep_removed
    )
    with pytest.raises(ConfigError, match=r"channels.yaml:6: channels.c.keep_removed"):
        parse_config(f"output: {tmp_path}\n{text}    keep_removed: forever\n")
    # A gate is an allowlist, which kept files outlive: what is no longer approved must go.
    gated = f"{text}  g:\n    approval: {{from: c}}\n    keep_removed: true\n"
    (tmp_path / "approvals.yaml").write_text("")
    with pytest.raises(ConfigError, match=r"channels.g.keep_removed: .*approval-gated"):
        parse_config(f"output: {tmp_path}\n{gated}", base_dir=tmp_path)


def two_mirrors(site: Path, url: str, b_filters: str = "") -> SiteConfig:
    """Mirror a lists only python (an allowlist: it would not forbid zlib); b, all of it."""
    b = f", filters: {b_filters}" if b_filters else ""
    body = f"""
channels:
  {CHANNEL}:
    keep_removed: true
    mirrors:
      - {{name: a, url: "{url}", subdirs: [linux-64], filters: {{names: {{include: [python]}}}}}}
      - {{name: b, url: "{url}", subdirs: [linux-64]{b}}}
"""
    return site_config(site, body)


@pytest.mark.integration
async def test_a_kept_file_answers_to_the_filters_of_the_mirror_it_came_from(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    folder = site / CHANNEL / "linux-64"
    await run(two_mirrors(site, example_upstream.url))
    rewrite_repodata(example_upstream.root, "linux-64", drop_old_zlib)
    await run(two_mirrors(site, example_upstream.url))
    kept = read_kept(site, CHANNEL, "linux-64")
    assert kept is not None and {r.origin for r in kept.values()} == {"b"}
    assert all((folder / fn).is_file() for fn in OLD_ZLIB)
    # b, which supplied them, now forbids them: they go (a's allowlist forbids nothing).
    await run(two_mirrors(site, example_upstream.url, "{specs: {exclude: ['zlib <1.3']}}"))
    assert not any((folder / fn).exists() for fn in OLD_ZLIB)


@pytest.mark.integration
async def test_kept_records_are_saved_first_and_unreadable_ones_hold_the_subdir(
    example_upstream: ExampleUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    folder = site / CHANNEL / "linux-64"
    state = kept_records_path(site, CHANNEL, "linux-64")
    await run(keep_config(site, example_upstream.url))
    rewrite_repodata(example_upstream.root, "linux-64", drop_old_zlib)

    # The publication fails (a full disk; a kill there alike): the records to keep are saved
    # already, so no later run takes the files for ones nothing keeps.
    async def failing(*args: object, **kwargs: object) -> bool:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(publish, "publish_subdir", failing)
        report = await run_mirror(keep_config(site, example_upstream.url), MirrorOptions())
    assert report.failed and published(site, CHANNEL, "linux-64") >= OLD_ZLIB
    assert set(read_kept(site, CHANNEL, "linux-64") or {}) == OLD_ZLIB

    # Kept records that cannot be read: the subdir is held as it is (published now, the files
    # upstream just dropped would be kept by nothing), until they can be read or go.
    await run(keep_config(site, example_upstream.url))
    assert all((folder / fn).is_file() for fn in OLD_ZLIB)
    state.write_bytes(b"\x93damaged")
    forbid = "{names: {exclude: [readline]}}"
    before = (folder / "repodata.json").read_bytes()
    report = await run_mirror(keep_config(site, example_upstream.url, filters=forbid))
    [linux] = [c for c in report.channels if c.subdir == "linux-64"]
    assert linux.status == "held" and "kept files (keep_removed) cannot be read" in linux.errors[0]
    assert (folder / "repodata.json").read_bytes() == before
    assert (folder / READLINE).is_file() and all((folder / fn).is_file() for fn in OLD_ZLIB)
    state.unlink()
    await run(keep_config(site, example_upstream.url, filters=forbid))
    assert not (folder / READLINE).exists() and not any((folder / fn).exists() for fn in OLD_ZLIB)


@pytest.mark.integration
async def test_a_failed_publication_forgets_no_kept_file_its_previous_state_keeps(
    example_upstream: ExampleUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    folder = site / CHANNEL / "linux-64"
    await run(keep_config(site, example_upstream.url))
    rewrite_repodata(example_upstream.root, "linux-64", drop_old_zlib)
    await run(keep_config(site, example_upstream.url))
    assert set(read_kept(site, CHANNEL, "linux-64") or {}) == OLD_ZLIB

    # A filter now forbids the kept files, but the publication fails (a full disk; a kill
    # there alike): the previous state stays, and so do its kept files and their records.
    async def failing(*args: object, **kwargs: object) -> bool:
        raise OSError(28, "No space left on device")

    forbid = "{specs: {exclude: ['zlib <1.3']}}"
    with monkeypatch.context() as patched:
        patched.setattr(publish, "publish_subdir", failing)
        report = await run_mirror(keep_config(site, example_upstream.url, filters=forbid))
    assert report.failed
    assert all((folder / fn).is_file() for fn in OLD_ZLIB)
    assert set(read_kept(site, CHANNEL, "linux-64") or {}) == OLD_ZLIB
    origins = json.loads(origins_path(site, CHANNEL, "linux-64").read_bytes())
    assert set(origins["files"]) == published(site, CHANNEL, "linux-64")

    # The filter taken back before a run publishes: they are still kept.
    await run(keep_config(site, example_upstream.url))
    assert all((folder / fn).is_file() for fn in OLD_ZLIB)
    assert set(read_kept(site, CHANNEL, "linux-64") or {}) == OLD_ZLIB
    # Published with the filter, they go, and so do their records.
    await run(keep_config(site, example_upstream.url, filters=forbid))
    assert not any((folder / fn).exists() for fn in OLD_ZLIB)
    assert read_kept(site, CHANNEL, "linux-64") == {}


@pytest.mark.integration
async def test_a_lost_origins_map_keeps_what_a_feeding_mirror_allows_and_a_dry_run_tells_of_unreadable_records(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    folder = site / CHANNEL / "linux-64"
    await run(keep_config(site, example_upstream.url))
    rewrite_repodata(example_upstream.root, "linux-64", drop_old_zlib)
    # The map that says which mirror each published file came from is lost: the files upstream
    # dropped are judged by the mirrors feeding the subdir, not deleted for want of one.
    origins_path(site, CHANNEL, "linux-64").unlink()
    await run(keep_config(site, example_upstream.url))
    assert all((folder / fn).is_file() for fn in OLD_ZLIB)

    # A dry run over kept records that cannot be read says so, and counts no deletion.
    kept_records_path(site, CHANNEL, "linux-64").write_bytes(b"\x93damaged")
    forbid = "{names: {exclude: [readline]}}"
    dry = await run_mirror(
        keep_config(site, example_upstream.url, filters=forbid), MirrorOptions(dry_run=True)
    )
    [linux] = [c for c in dry.channels if c.subdir == "linux-64"]
    assert linux.status == "held" and linux.deleted_files == 0
    assert "kept files (keep_removed) cannot be read" in linux.errors[0]


@pytest.mark.integration
async def test_a_kept_tar_bz2_goes_once_its_conda_twin_is_published_under_prefer_conda(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    folder = site / CHANNEL / "linux-64"
    tar, conda = "zlib-1.3.1-hecd8fb3_0.tar.bz2", "zlib-1.3.1-hecd8fb3_0.conda"
    prefer = "{formats: prefer-conda}"
    held: dict[str, Any] = {}

    def only_tar(document: dict[str, Any]) -> None:
        held.update(document["packages.conda"].pop(conda))

    def repacked(document: dict[str, Any]) -> None:  # the .conda appears, the .tar.bz2 goes
        document["packages.conda"][conda] = dict(held)
        del document["packages"][tar]

    rewrite_repodata(example_upstream.root, "linux-64", only_tar)
    await run(keep_config(site, example_upstream.url, filters=prefer))
    assert tar in published(site, CHANNEL, "linux-64")
    rewrite_repodata(example_upstream.root, "linux-64", repacked)
    await run(keep_config(site, example_upstream.url, filters=prefer))
    assert conda in published(site, CHANNEL, "linux-64")
    assert not (folder / tar).exists()


@pytest.mark.integration
async def test_kept_records_damaged_or_lost_after_a_clean_run_are_noticed_by_the_next(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    """Nothing else changes: the run that finds the site as the last clean run left it skips
    the work only while the kept records are as it left them too."""
    damaged, lost = tmp_path / "damaged", tmp_path / "lost"
    for site in (damaged, lost):
        await run(keep_config(site, example_upstream.url))
    rewrite_repodata(example_upstream.root, "linux-64", drop_old_zlib)
    for site in (damaged, lost):
        await run(keep_config(site, example_upstream.url))
        assert set(read_kept(site, CHANNEL, "linux-64") or {}) == OLD_ZLIB

    kept_records_path(damaged, CHANNEL, "linux-64").write_bytes(b"\x93damaged")
    report = await run_mirror(keep_config(damaged, example_upstream.url))
    [linux] = [c for c in report.channels if c.subdir == "linux-64"]
    assert report.failed and linux.status == "held"
    assert "kept files (keep_removed) cannot be read" in linux.errors[0]
    assert all((damaged / CHANNEL / "linux-64" / fn).is_file() for fn in OLD_ZLIB)

    # Lost, they keep nothing: the files they kept go.
    kept_records_path(lost, CHANNEL, "linux-64").unlink()
    report = await run(keep_config(lost, example_upstream.url))
    [linux] = [c for c in report.channels if c.subdir == "linux-64"]
    assert (linux.kept_files, linux.deleted_files) == (0, 2)
    assert not any((lost / CHANNEL / "linux-64" / fn).exists() for fn in OLD_ZLIB)


@pytest.mark.integration
async def test_a_run_that_finds_nothing_changed_records_and_logs_the_files_kept(
    example_upstream: ExampleUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A run that recognises the inputs of the last clean run records itself with that run's
    counts: the files a subdir keeps unlisted among them, and it says so in the log."""
    site = tmp_path / "site"
    await run(keep_config(site, example_upstream.url))
    rewrite_repodata(example_upstream.root, "linux-64", drop_old_zlib)
    await run(keep_config(site, example_upstream.url))
    caplog.clear()
    with caplog.at_level("INFO", logger="sitegen"):
        report = await run(keep_config(site, example_upstream.url))
    assert "nothing changed upstream or in the configuration since the last run" in caplog.text
    assert {c.subdir: c.kept_files for c in report.channels} == {"linux-64": 2, "noarch": 0}
    assert f"{CHANNEL}/linux-64: keeps 2 files its upstream no longer lists" in caplog.text
