"""Counting hostile and endless access logs: bad lines are skipped and counted, long lines
are not held in memory, and endless distinct paths, tool versions and clients do not grow the
run's memory or the state."""

from __future__ import annotations

import json
import os
import textwrap
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from sitegen import layout
from sitegen.cli import EXIT_OK, main
from sitegen.config import parse_config
from sitegen.stats import counter, logline, missing, open_day
from sitegen.stats.run import run_stats
from sitegen.stats.state import load_state

pytestmark = pytest.mark.unit


def _config_text(tmp_path: Path, log: Path) -> str:
    """channels.yaml of one channel whose downloads are counted from ``log``."""
    return textwrap.dedent(f"""\
        output: {tmp_path / "site"}
        channels:
          cloud/x: {{url: "https://conda.example/x", subdirs: [linux-64]}}
        stats: {{logs: [{log}]}}
        """)


def test_run_stats_survives_hostile_logs_and_counts_them_as_skipped(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    good = (
        b'192.0.2.1 - - [05/Dec/2026:10:00:00 +0000] "GET /cloud/x/linux-64/a-1-0.conda'
        b' HTTP/1.1" 200 10 "-" "pixi/0.39.0"\n'
    )
    with open(log, "wb") as out:
        out.write(good)
        out.write(b"192.0.2.1 - - [" + b"A" * (10 * 1024 * 1024) + b"\n")  # a 10 MB line
        out.write(os.urandom(4096).replace(b"\n", b"") + b"\n")
        out.write(b'192.0.2.1 - - [05/Dec/2026:10:00:00 +0000] "GET /\xff\xfe HTTP/1.1" 404 0')
        out.write(b' "-" "\xc3\x28"\n')
        out.write(good.replace(b"a-1-0.conda", b"%3Cscript%3E-1-0.conda"))
        out.write(good.replace(b"/cloud/x/", b"/cloud/x/../../"))
        out.write(good)
    config = parse_config(_config_text(tmp_path, log))
    result = run_stats(config, today=date(2026, 12, 6))
    assert result.skipped == {"hostile": 3, "malformed": 1, "too_long": 1}
    assert result.downloads == 2 and result.lines == 6
    doc = json.loads((tmp_path / "site" / "stats.json").read_bytes())
    assert doc["skipped"] == result.skipped
    assert [(f["file"], f["downloads"]) for f in doc["files"]] == [("a-1-0.conda", 2)]
    assert run_stats(config, today=date(2026, 12, 6)).lines == 0  # nothing new


def test_a_time_off_the_clock_skips_its_own_line_only(tmp_path: Path) -> None:
    """A minute past 59 is a bad time: its line is skipped, and only it. The day of a time
    is cached by its hour (the minutes cannot move a whole-hour offset's day), so the bad
    line's "no day" stood for every line of its hour after it, which were skipped as dated in
    the future, never to be read again."""
    log = tmp_path / "access.log"
    day = datetime.now(UTC).strftime("%d/%b/%Y")
    lines = [
        f'192.0.2.1 - - [{day}:00:{minute} +0000] "GET /cloud/x/linux-64/a-1-0.conda'
        f' HTTP/1.1" 200 10 "-" "conda/24.1.0"\n'
        for minute in ("60:00", "30:00", "59:59")
    ]
    log.write_text("".join(lines))
    config = tmp_path / "channels.yaml"
    config.write_text(_config_text(tmp_path, log))
    assert main(["stats", "-c", str(config)]) == EXIT_OK
    doc = json.loads((tmp_path / "site" / "stats.json").read_bytes())
    assert doc["skipped"] == {"bad_time": 1}
    assert doc["totals"]["downloads"] == 2


def test_endless_distinct_paths_do_not_grow_the_runs_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each request for a package file under a path of its own (anyone can ask for those)
    was remembered for the rest of the run: a log of millions of them took gigabytes."""
    monkeypatch.setattr(logline, "HEAD_CACHE_LIMIT", 100)
    monkeypatch.setattr(counter, "CACHE_LIMIT", 100)
    log = tmp_path / "access.log"
    day = datetime.now(UTC).strftime("%d/%b/%Y")
    with log.open("w") as out:
        for i in range(10_000):
            out.write(
                f'192.0.2.1 - - [{day}:00:00:00 +0000] "GET /{i:05d}{"x" * 2000}'
                f'/linux-64/a-1-0.conda HTTP/1.1" 404 10 "-" "conda/24.1.0"\n'
            )
    config = tmp_path / "channels.yaml"
    config.write_text(_config_text(tmp_path, log))
    tracemalloc.start()
    try:
        assert main(["stats", "-c", str(config)]) == EXIT_OK
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20  # the 20 MB of paths are not all held at once


def test_endless_tool_versions_do_not_grow_the_counts(tmp_path: Path) -> None:
    """A user agent names any version it likes (conda/1.0.<n>): each one was a row of the
    state and of stats.json for good, however many. A period keeps its most used versions
    (as many as it keeps 404s), stats.json lists as many, and the clients of the others
    count under their tool with no version, so that each tool's count stays whole."""
    log = tmp_path / "access.log"
    today = datetime.now(UTC).date()
    versions = 2 * missing.KEEP + 500
    with log.open("w") as out:
        for back in (200, 199, 0):  # two days rolled into their month, and today
            day = (today - timedelta(days=back)).strftime("%d/%b/%Y")
            for i in range(versions):
                out.write(
                    f'192.0.2.{i % 200} - - [{day}:00:00:00 +0000] "GET /cloud/x/linux-64/'
                    f'repodata.json HTTP/1.1" 200 10 "-" "conda/{back}.0.{i}"\n'
                )
    config = tmp_path / "channels.yaml"
    config.write_text(_config_text(tmp_path, log))
    assert main(["stats", "-c", str(config)]) == EXIT_OK
    counts, _cursors = load_state(layout.stats_state_path(tmp_path / "site"))
    assert all(len(rows) <= missing.KEEP + 1 for rows in counts.tools.values())
    doc = json.loads((tmp_path / "site" / "stats.json").read_bytes())
    assert len(doc["tools"]) <= missing.KEEP + 1
    assert sum(row["client_days"] for row in doc["tools"]) == 3 * versions
    assert sum(row["client_days_30d"] for row in doc["tools"]) == versions


def _clients_log(log: Path, day: str, clients: range, *, repeat: int = 1) -> None:
    """Append one download per client of ``clients`` (a distinct user agent each, from one
    address, as anyone can send them), ``repeat`` times over."""
    with log.open("a") as out:
        for _ in range(repeat):
            for i in clients:
                out.write(
                    f'192.0.2.1 - - [{day}:10:00:00 +0000] "GET /cloud/x/linux-64/a-1-0.conda'
                    f' HTTP/1.1" 200 10 "-" "conda/24.1.0 bot/{i}"\n'
                )


def test_endless_distinct_clients_in_a_day_do_not_grow_the_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each distinct address and user agent of a day still open was kept (as a hash) until
    the day closed: a log of millions of them in one day grew the memory of the count and
    the state file by as many. A day tells apart so many clients; past them its count is a
    lower bound, and stats.json and the page say so."""
    monkeypatch.setattr(open_day, "CLIENTS_KEPT", 1000)
    log = tmp_path / "access.log"
    config = tmp_path / "channels.yaml"
    config.write_text(_config_text(tmp_path, log))
    today = datetime.now(UTC).date()
    yesterday = (today - timedelta(days=1)).strftime("%d/%b/%Y")
    _clients_log(log, yesterday, range(900), repeat=2)  # fewer than kept: exact
    _clients_log(log, today.strftime("%d/%b/%Y"), range(5000))
    assert main(["stats", "-c", str(config)]) == EXIT_OK
    state = layout.stats_state_path(tmp_path / "site")
    size = state.stat().st_size
    _clients_log(log, today.strftime("%d/%b/%Y"), range(5000, 50_000))
    assert main(["stats", "-c", str(config)]) == EXIT_OK
    assert state.stat().st_size < size + 4096  # 45,000 more clients, no more room
    counts, _cursors = load_state(state)
    assert all(len(opened.clients) <= 1000 for opened in counts.open_days.values())
    doc = json.loads((tmp_path / "site" / "stats.json").read_bytes())
    periods = {row["period"]: row for row in doc["periods"]}
    old, new = periods[(today - timedelta(days=1)).isoformat()], periods[today.isoformat()]
    assert (old["clients"], old["clients_capped"]) == (900, False)
    assert (new["clients"], new["clients_capped"]) == (1000, True)
    assert new["downloads"] == 50_000  # every download counts still
    assert sum(row["client_days"] for row in doc["tools"]) == 1900
    assert main(["render", "-c", str(config)]) == EXIT_OK
    page = (tmp_path / "site" / layout.STATS_PAGE).read_text()
    note = page.split('id="clients-capped">')[1].split("</p>")[0]
    assert note.startswith(f"At least these: on {today.isoformat()}, more distinct clients")


def test_endless_clients_asking_for_ranges_do_not_grow_the_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 206 is counted once per client and file a day, which the day remembers: endless user
    agents each asking for a range (of a package file or an installer) grew the memory of the
    count and the state file without bound past the clients a day tells apart."""
    monkeypatch.setattr(open_day, "CLIENTS_KEPT", 1000)
    log = tmp_path / "access.log"
    config = tmp_path / "channels.yaml"
    config.write_text(_config_text(tmp_path, log))
    day = datetime.now(UTC).strftime("%d/%b/%Y")

    def ranges(clients: range) -> None:
        with log.open("a") as out:
            for i in clients:
                out.write(
                    f'192.0.2.1 - - [{day}:10:00:00 +0000] "GET /cloud/x/linux-64/a-1-0.conda'
                    f' HTTP/1.1" 206 10 "-" "conda/24.1.0 bot/{i}"\n'
                )

    ranges(range(5000))
    assert main(["stats", "-c", str(config)]) == EXIT_OK
    state = layout.stats_state_path(tmp_path / "site")
    size = state.stat().st_size
    ranges(range(5000, 50_000))
    assert main(["stats", "-c", str(config)]) == EXIT_OK
    assert state.stat().st_size < size + 4096  # 45,000 more clients, no more room
    counts, _cursors = load_state(state)
    assert all(len(opened.ranges) <= 1000 for opened in counts.open_days.values())
    doc = json.loads((tmp_path / "site" / "stats.json").read_bytes())
    today = {row["period"]: row for row in doc["periods"]}[datetime.now(UTC).date().isoformat()]
    assert today["downloads"] == 50_000  # every client's range still counts


def test_endless_clients_redirected_and_not_following_do_not_grow_the_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Apache logs the fetcher's outcome on a 302 back to the static URL, held per client and
    file until the 200 that follows: endless user agents each redirected, and never
    following, grew the memory of the count and the state file without bound. Past the pairs
    a day holds, the 200 after a redirect not held counts as served from disk."""
    monkeypatch.setattr(open_day, "CLIENTS_KEPT", 1000)
    log = tmp_path / "access.log"
    config = tmp_path / "channels.yaml"
    config.write_text(_config_text(tmp_path, log))
    day = datetime.now(UTC).strftime("%d/%b/%Y")

    def requests(clients: range, status: int, fetcher: str) -> None:
        with log.open("a") as out:
            for i in clients:
                out.write(
                    f'192.0.2.1 - - [{day}:10:00:00 +0000] "GET /cloud/x/linux-64/a-1-0.conda'
                    f' HTTP/1.1" {status} 10 "-" "conda/24.1.0 bot/{i}" "{fetcher}"\n'
                )

    requests(range(5000), 302, "stored")
    assert main(["stats", "-c", str(config)]) == EXIT_OK
    state = layout.stats_state_path(tmp_path / "site")
    size = state.stat().st_size
    requests(range(5000, 50_000), 302, "stored")
    assert main(["stats", "-c", str(config)]) == EXIT_OK
    assert state.stat().st_size < size + 4096  # 45,000 more redirects, no more room
    counts, _cursors = load_state(state)
    assert all(len(opened.redirected) <= 1000 for opened in counts.open_days.values())
    requests(range(999, 1001), 200, "-")  # the last pair held, the first not
    assert main(["stats", "-c", str(config)]) == EXIT_OK
    counts, _cursors = load_state(state)
    assert counts.passive == {
        datetime.now(UTC).date().isoformat(): {
            "cloud/x|linux-64|stored": 1,
            "cloud/x|linux-64|disk": 1,
        }
    }
