"""Download counts and the access of channels: a removed channel's counts go with it, and the
public statistics never show what a channel served while it was private."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from sitegen import layout
from sitegen.cli import EXIT_CONFIG, EXIT_FAILED, EXIT_LOCKED, EXIT_OK, main
from sitegen.config import load_config
from sitegen.stats.counter import line_counter
from sitegen.stats.report import PassiveCounts, build_doc
from sitegen.stats.run import run_stats
from sitegen.stats.state import StatsState, decode_state, encode_state, load_state
from sitegen.stats.tally import Tally
from sitegen.store.lock import SiteLock
from testkit.upstream import ExampleUpstream

SECRET = "topsecret-1.0-0.conda"  # a package only the private channel ever had


class StatsSite:
    """A site mirrored from the example upstream with `stats:`, and its access log."""

    def __init__(self, tmp_path: Path, upstream: ExampleUpstream) -> None:
        self.site = tmp_path / "site"
        self.log = tmp_path / "access.log"
        self.log.touch()
        self.config = tmp_path / "channels.yaml"
        self.url = upstream.url

    def configure(
        self, *channels: tuple[str, bool], keep_runs: int = 1000, stats: bool = True
    ) -> None:
        """``channels``: (path, private)."""
        text = f"output: {self.site}\ndownload: {{retries: 0}}\n"
        text += f"stats:\n  logs: [{self.log}]\n" if stats else ""
        text += f"history: {{keep_runs: {keep_runs}}}\n"
        text += "channels:\n"
        for path, private in channels:
            text += f"  {path}:\n    url: {self.url}\n    subdirs: [linux-64]\n"
            text += "    access: private\n" if private else ""
        self.config.write_text(text)

    def served(self, path: str, day: date | None = None) -> None:
        stamp = (day or datetime.now(UTC).date()).strftime("%d/%b/%Y:10:00:00 +0000")
        with self.log.open("a") as handle:
            handle.write(f'192.0.2.1 - - [{stamp}] "GET {path} HTTP/1.1" 200 1000 "-" "conda"\n')

    def run(self, *args: str) -> int:
        return main([*args, "-c", str(self.config)])

    def mirror(self) -> None:
        assert self.run("mirror", "--no-progress") == EXIT_OK

    def counted(self) -> set[str]:
        """The channel|subdir|file keys of the downloads the stats state keeps."""
        tally, _ = load_state(layout.stats_state_path(self.site))
        return set(tally.all_time)

    def public_text(self) -> str:
        return (self.site / layout.STATS_PAGE).read_text()


@pytest.fixture
def stats_site(tmp_path: Path, example_upstream: ExampleUpstream) -> StatsSite:
    return StatsSite(tmp_path, example_upstream)


@pytest.mark.integration
def test_a_removed_channels_counts_go_with_it(
    stats_site: StatsSite, capsys: pytest.CaptureFixture[str]
) -> None:
    s = stats_site
    s.configure(("c/x", False), ("c/old", True))
    s.served(f"/c/old/linux-64/{SECRET}")
    s.served("/c/x/linux-64/zlib-1.3.1-h0_0.conda")
    s.mirror()
    assert f"c/old|linux-64|{SECRET}" in s.counted()
    s.configure(("c/x", False))
    s.mirror()
    capsys.readouterr()
    assert s.run("remove", "c/old", "--dry-run") == EXIT_OK
    said = capsys.readouterr().out
    assert "would remove .sitegen/stats/state.msgpack: the download counts of c/old" in said
    assert f"c/old|linux-64|{SECRET}" in s.counted()

    # The statistics' own lock keeps the removal out, as the site lock does.
    with SiteLock(layout.stats_dir(s.site)):
        assert s.run("remove", "c/old") == EXIT_LOCKED
    assert (s.site / "c/old/linux-64/repodata.json").is_file()
    # A removal stopped after it saved the state without c/old, before stats.json: the
    # same command finishes it.
    tally, cursors = load_state(layout.stats_state_path(s.site))
    tally.forget("c/old")
    layout.stats_state_path(s.site).write_bytes(encode_state(tally, cursors))

    assert s.run("remove", "c/old") == EXIT_OK
    assert s.counted() == {"c/x|linux-64|zlib-1.3.1-h0_0.conda"}
    assert SECRET not in (s.site / layout.STATS_JSON).read_text()

    # A public channel configured where the private one was starts with no count.
    s.configure(("c/x", False), ("c/old", False))
    s.mirror()
    assert SECRET not in (s.site / layout.STATS_JSON).read_text()
    assert "topsecret" not in s.public_text() and "zlib" in s.public_text()


@pytest.mark.integration
def test_what_a_removed_subdir_served_before_its_removal_stays_uncounted(
    stats_site: StatsSite,
) -> None:
    """Lines the web server wrote before the removal but no count had read yet: read after
    it, they counted for the channel, which is still configured, and its removed subdir."""
    s = stats_site
    s.configure(("c/x", False))
    s.mirror()
    # Published before, no longer among the channel's subdirs.
    shutil.copytree(s.site / "c/x/linux-64", s.site / "c/x/osx-64")
    s.served("/c/x/osx-64/gone-1.0-0.conda")
    s.served("/c/x/linux-64/zlib-1.3.1-h0_0.conda")
    assert s.run("stats") == EXIT_OK
    s.served("/c/x/osx-64/gone-1.0-0.conda")  # after that count, before the removal
    assert s.run("remove", "c/x/osx-64") == EXIT_OK
    assert s.counted() == {"c/x|linux-64|zlib-1.3.1-h0_0.conda"}
    s.served("/c/x/linux-64/zlib-1.3.1-h0_0.conda")
    assert s.run("stats") == EXIT_OK
    assert s.counted() == {"c/x|linux-64|zlib-1.3.1-h0_0.conda"}
    doc = json.loads((s.site / layout.STATS_JSON).read_text())
    assert [(c["channel"], c["downloads"]) for c in doc["channels"]] == [("c/x", 2)]
    assert [p["name"] for p in doc["packages"]] == ["zlib"]


@pytest.mark.integration
def test_a_channel_configured_again_after_its_removal_counts_nothing_of_the_old_one(
    stats_site: StatsSite,
) -> None:
    s = stats_site
    s.configure(("c/x", False), ("c/old", False))
    s.mirror()
    s.configure(("c/x", False))
    s.mirror()
    s.served("/c/old/linux-64/oldpkg-1.0-0.conda")  # served since that run's count
    assert s.run("remove", "c/old") == EXIT_OK
    s.configure(("c/x", False), ("c/old", False))
    s.mirror()
    assert s.counted() == set()
    assert "oldpkg" not in (s.site / layout.STATS_JSON).read_text()


@pytest.mark.unit
def test_forgetting_a_subdir_keeps_the_rest_of_its_channel() -> None:
    tally = Tally()
    stamp = "05/Dec/2026:10:00:00 +0000"
    lines = [
        f'192.0.2.1 - - [{stamp}] "GET /c/a/{path} HTTP/1.1" {status} 9 "-" "conda"'
        for path, status in [
            ("linux-64/a-1-0.conda", 206),
            ("noarch/b-1-0.conda", 200),
            ("noarch/gone-1-0.conda", 404),
        ]
    ]
    line_counter(tally, ["c/a", "c/ab"], date(2026, 12, 5)).add([text.encode() for text in lines])
    assert tally.forget("c/a", ["linux-64"])
    assert set(tally.all_time) == {"c/a|noarch|b-1-0.conda"}
    assert tally.open_days["2026-12-05"].ranges == set()
    assert not tally.forget("c/a", ["linux-64"]) and not tally.forget("c/ab")
    assert tally.forget("c/a") and tally.all_time == {}
    assert all(rows == {} for rows in tally.missing.values())


@pytest.mark.integration
def test_a_line_dated_far_ahead_neither_keeps_its_day_nor_marks_channels_private_through_it(
    stats_site: StatsSite,
) -> None:
    """A log line dated next year (a server clock set wrong): skipped, and said so. Counted,
    it kept that day's salt and client hashes until then, and marked the channel private now
    as private through it, so that its counts stayed hidden long after it went public."""
    s = stats_site
    today = datetime.now(UTC).date()
    s.configure(("c/x", False), ("c/a", True))
    s.served(f"/c/a/linux-64/{SECRET}")
    s.served("/c/x/linux-64/zlib-1.3.1-h0_0.conda", today + timedelta(days=400))
    s.mirror()  # counts, then renders
    tally, _ = load_state(layout.stats_state_path(s.site))
    assert tally.skipped == {"future": 1}
    assert list(tally.open_days) == [today.isoformat()]
    assert tally.private == {"c/a": today.isoformat()}
    assert json.loads((s.site / layout.STATS_JSON).read_text())["skipped"] == {"future": 1}
    assert "1 log line was skipped (malformed, overlong, hostile or dated in the future)" in (
        s.public_text()
    )

    s.configure(("c/x", False), ("c/a", False))
    s.mirror()
    s.served("/c/a/linux-64/zlib-1.3.1-h0_0.conda", today + timedelta(days=1))
    run_stats(load_config(s.config), today + timedelta(days=1))
    doc = json.loads((s.site / layout.STATS_JSON).read_text())
    assert [(p["channel"], p["name"], p["downloads"]) for p in doc["packages"]] == [
        ("c/a", "zlib", 1)
    ]


@pytest.mark.integration
def test_a_channel_turned_public_shows_no_count_of_its_private_days(stats_site: StatsSite) -> None:
    s = stats_site
    today = datetime.now(UTC).date()
    s.configure(("c/x", False), ("c/a", True))
    s.served(f"/c/a/linux-64/{SECRET}")
    s.served("/c/x/linux-64/zlib-1.3.1-h0_0.conda")
    s.mirror()
    assert SECRET in (s.site / layout.STATS_JSON).read_text()  # served only with a token
    # Served while private, read only once the channel is public, by a state that does not
    # know (one from before it kept the days of private channels): the run ledger says when.
    s.served("/c/a/linux-64/latesecret-1.0-0.conda")
    tally, cursors = load_state(layout.stats_state_path(s.site))
    tally.private.clear()
    layout.stats_state_path(s.site).write_bytes(encode_state(tally, cursors))

    s.configure(("c/x", False), ("c/a", False))
    # Pages rendered before the next count: stats.json counted c/a as private, in full.
    assert s.run("render") == EXIT_OK
    assert "topsecret" not in s.public_text() and "zlib" in s.public_text()
    assert "c/a/" not in s.public_text()
    # A ledger record that cannot be read may be the one that notes c/a private: nothing is
    # counted while it cannot be read.
    damaged = layout.runs_dir(s.site) / "20260101T000000.000Z-1.json"
    damaged.write_text('{"id": "20260101T000000.000Z-1", "access": {"channels": {"c/a": "priv')
    counted = layout.stats_state_path(s.site).read_bytes()
    doc = (s.site / layout.STATS_JSON).read_bytes()
    assert s.run("stats") == EXIT_CONFIG
    assert layout.stats_state_path(s.site).read_bytes() == counted
    assert (s.site / layout.STATS_JSON).read_bytes() == doc
    damaged.unlink()
    s.mirror()  # counts, then renders
    text = (s.site / layout.STATS_JSON).read_text()
    assert "secret" not in text and "secret" not in s.public_text()
    doc = json.loads(text)
    assert doc["private"] == [] and doc["totals"]["downloads"] == 3  # site-wide sums keep them
    assert [(p["channel"], p["name"]) for p in doc["packages"]] == [("c/x", "zlib")]

    # The days after: counted and shown, on the statistics page and the package's own page.
    s.served("/c/a/linux-64/zlib-1.3.1-h0_0.conda", today + timedelta(days=1))
    run_stats(load_config(s.config), today + timedelta(days=1))
    assert s.run("render") == EXIT_OK
    doc = json.loads((s.site / layout.STATS_JSON).read_text())
    assert {(p["channel"], p["name"], p["downloads"]) for p in doc["packages"]} == {
        ("c/x", "zlib", 1),
        ("c/a", "zlib", 1),
    }
    assert "secret" not in s.public_text()
    assert "<b>1</b> in all" in (s.site / "c/a/packages/zlib.html").read_text()


@pytest.mark.integration
def test_a_mirror_run_while_sitegen_stats_counts_fails_the_count_only(
    stats_site: StatsSite, caplog: pytest.LogCaptureFixture
) -> None:
    """The statistics' own lock held (a `sitegen stats` counting) when a run ends: the run
    ended in a traceback, past its notification; now its count fails, said so, and the
    lines wait for the next count."""
    s = stats_site
    s.configure(("c/x", False))
    s.mirror()
    s.served("/c/x/linux-64/zlib-1.3.1-h0_0.conda")
    with SiteLock(layout.stats_dir(s.site)):
        assert s.run("mirror", "--no-progress") == EXIT_FAILED
    assert "counting downloads failed: another sitegen run" in caplog.text
    assert (s.site / layout.STATS_PAGE).is_file()  # the pages were rendered all the same
    assert s.counted() == set()
    assert s.run("stats") == EXIT_OK
    assert s.counted() == {"c/x|linux-64|zlib-1.3.1-h0_0.conda"}


@pytest.mark.integration
def test_a_run_whose_count_failed_keeps_the_records_that_note_a_channel_private(
    stats_site: StatsSite,
) -> None:
    """A record noting a channel private is what tells a later count through which day the
    channel served as private. Pruned by a run whose own count failed (here: a damaged record
    stops every count), it was gone before any count noted it, and what the channel served
    privately since the last count was shown on the public page once counted."""
    s = stats_site
    today = datetime.now(UTC).date()
    s.configure(("c/x", False), ("c/a", True), keep_runs=1)
    s.mirror()  # counts: c/a private through today
    # As if that run and its count were two days ago: c/a noted private through then.
    (private_run,) = layout.runs_dir(s.site).glob("*.json")
    record = json.loads(private_run.read_text())
    record["started"] -= 2 * 86400
    record["ended"] -= 2 * 86400
    private_run.write_text(json.dumps(record))
    tally, cursors = load_state(layout.stats_state_path(s.site))
    tally.private["c/a"] = (today - timedelta(days=2)).isoformat()
    layout.stats_state_path(s.site).write_bytes(encode_state(tally, cursors))
    s.served(f"/c/a/linux-64/{SECRET}", today - timedelta(days=1))  # with a token, yesterday

    s.configure(("c/x", False), ("c/a", False), keep_runs=1)
    damaged = layout.runs_dir(s.site) / "20200101T000000.000Z-1.json"
    damaged.write_text('{"id": "20200101T000000.000Z-1", "access": {"chann')
    assert s.run("mirror", "--no-progress") == EXIT_FAILED  # counting failed
    assert private_run.is_file()  # kept past the retention until a count notes it
    damaged.unlink()
    s.mirror()  # counts, then prunes
    assert not private_run.is_file()
    assert f"c/a|linux-64|{SECRET}" in s.counted()  # counted, not shown
    assert SECRET not in (s.site / layout.STATS_JSON).read_text()
    assert "topsecret" not in s.public_text()


@pytest.mark.integration
def test_a_damaged_record_stops_the_retention_and_the_warning_names_it(
    stats_site: StatsSite, caplog: pytest.LogCaptureFixture
) -> None:
    """Without `stats:`, a record that cannot be read stops every run's retention (it may be
    the one noting a channel private) until someone moves it away: the warning says which
    file, and that."""
    s = stats_site
    s.configure(("c/x", False), keep_runs=1, stats=False)
    s.mirror()
    (first,) = layout.runs_dir(s.site).glob("*.json")
    damaged = layout.runs_dir(s.site) / "20200101T000000.000Z-1.json"
    damaged.write_text('{"id": "20200101T000000.000Z-1", "access": {"chann')
    s.mirror()
    assert first.is_file()  # kept past the retention
    assert f"{damaged}: an unreadable run record" in caplog.text
    assert "check it, then move it out of history/runs/" in caplog.text
    damaged.unlink()
    s.mirror()
    assert not first.is_file()


@pytest.mark.integration
def test_statistics_configured_after_the_records_noting_a_channel_private_went(
    stats_site: StatsSite,
) -> None:
    """Without `stats:`, the retention removed the record noting a channel private; the logs
    still held what it served then, shown once `stats:` was configured."""
    s = stats_site
    s.configure(("c/x", False), ("c/a", True), keep_runs=1, stats=False)
    s.served(f"/c/a/linux-64/{SECRET}")  # with a token
    s.mirror()
    s.configure(("c/x", False), ("c/a", False), keep_runs=1, stats=False)
    s.mirror()  # the record noting c/a private goes past the retention
    assert len(list(layout.runs_dir(s.site).glob("*.json"))) == 1
    s.configure(("c/x", False), ("c/a", False), keep_runs=1)
    s.mirror()
    assert f"c/a|linux-64|{SECRET}" in s.counted()  # counted, not shown
    assert SECRET not in (s.site / layout.STATS_JSON).read_text()
    assert "topsecret" not in s.public_text()


@pytest.mark.unit
def test_forgetting_a_subdir_of_a_passive_channel_drops_its_fetcher_outcomes() -> None:
    """The fetcher's outcomes are kept per subdir: removing one leaves the channel's outcomes
    those of the downloads it still counts (they added up to more before)."""
    stamp = "05/Dec/2026:10:00:00 +0000"
    lines = [
        f'192.0.2.1 - - [{stamp}] "GET /c/a/{path} HTTP/1.1" 200 9 "-" "conda" "{told}"'
        for path, told in [
            ("osx-64/a-1-0.conda", "fetched"),
            ("osx-64/b-1-0.conda", "stored"),
            ("noarch/c-1-0.conda", "-"),
        ]
    ]
    tally = Tally()
    line_counter(tally, ["c/a"], date(2026, 12, 5)).add([text.encode() for text in lines])
    assert tally.forget("c/a", ["osx-64"])
    doc = build_doc(tally, ["c/a"], ["c/a"], date(2026, 12, 5))
    (channel,) = doc.channels
    assert channel.downloads == 1
    assert channel.passive == PassiveCounts(fetched=0, stored=0, disk=1)


@pytest.mark.unit
def test_outcomes_an_older_state_kept_by_channel_stay_the_channels() -> None:
    """Counted by channel only, they belong to no subdir: a subdir's removal leaves them."""
    old = StatsState(passive={"2026-12-05": {"c/a|fetched": 2}})
    tally, _ = decode_state(msgspec.msgpack.encode(old))
    assert tally.passive == {"2026-12-05": {"c/a||fetched": 2}}
    doc = build_doc(tally, ["c/a"], ["c/a"], date(2026, 12, 5))
    assert doc.channels[0].passive == PassiveCounts(fetched=2)
    assert not tally.forget("c/a", ["linux-64"])
    assert tally.forget("c/a") and tally.passive == {"2026-12-05": {}}
