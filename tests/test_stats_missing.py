"""The 404s of package files kept by ``sitegen stats``: anyone can ask for files under endless
names, so each day and month keeps its most requested ones and counts the rest per channel."""

from __future__ import annotations

import json
import textwrap
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from sitegen import layout
from sitegen.cli import EXIT_OK, main
from sitegen.stats import counter, logline
from sitegen.stats.logline import split
from sitegen.stats.missing import HELD, KEEP, cut, is_file
from sitegen.stats.state import load_state
from sitegen.stats.tally import Tally

pytestmark = pytest.mark.unit

CHANNEL = "cloud/x"
WANTED, ALSO = "wanted-1.0-0.conda", "also-2.0-0.conda"


def _line(day: date, fn: str, ip: str = "192.0.2.1", channel: str = CHANNEL) -> str:
    stamp = day.strftime("%d/%b/%Y:12:00:00 +0000")
    return (
        f'{ip} - - [{stamp}] "GET /{channel}/linux-64/{fn} HTTP/1.1" 404 150 "-" "conda/24.1.0"\n'
    )


def _config(tmp_path: Path, log: Path) -> Path:
    config = tmp_path / "channels.yaml"
    config.write_text(
        textwrap.dedent(f"""\
            output: {tmp_path / "site"}
            channels:
              {CHANNEL}: {{url: "https://conda.example/x", subdirs: [linux-64]}}
            stats: {{logs: [{log}], retention_days: 30}}
            """)
    )
    return config


def _flood(day: date, batch: str, distinct: int) -> list[str]:
    """``distinct`` files asked for once each, and the two wanted ones (7 and 3 times) among
    them, first, in the middle and last."""
    lines = [
        _line(day, f"junk{batch}{i:05d}-1.0-0.conda", ip=f"192.0.2.{i % 200}")
        for i in range(distinct)
    ]
    for at in (0, distinct // 2, len(lines)):
        lines[at:at] = [_line(day, WANTED)] * 2 + [_line(day, ALSO)]
    return [*lines, _line(day, WANTED)]


def test_missing_files_are_bounded_per_day_and_month_keeping_the_most_requested(
    tmp_path: Path,
) -> None:
    """Each distinct 404 added a row to the state and to stats.json for good: requests for
    files under made-up names grew both without bound. Each day and each month keeps its
    KEEP most requested files, stats.json lists KEEP; the totals still count every 404."""
    today = datetime.now(UTC).date()
    # Days rolled up into three or four months, and days still kept as days.
    days = [today - timedelta(days=back) for back in (120, 119, 75, 45, 2, 0)]
    log = tmp_path / "access.log"
    lines = [text for n, day in enumerate(days) for text in _flood(day, f"a{n}", KEEP + 500)]
    log.write_text("".join(lines))
    config = _config(tmp_path, log)
    assert main(["stats", "-c", str(config)]) == EXIT_OK
    # A later count: more of today and of a day already rolled into its month.
    more = _flood(today, "b", KEEP) + _flood(days[0], "c", KEEP)
    with log.open("a") as out:
        out.write("".join(more))
    assert main(["stats", "-c", str(config)]) == EXIT_OK

    state, _cursors = load_state(layout.stats_state_path(tmp_path / "site"))
    periods = {day.isoformat() for day in days[-2:]} | {day.isoformat()[:7] for day in days[:4]}
    assert set(state.missing) == periods
    for rows in state.missing.values():
        assert len([key for key in rows if split(key)[2]]) <= KEEP
        assert len(rows) <= KEEP + 1  # and the rest of the channel's, counted as one
        assert rows[f"{CHANNEL}|linux-64|{WANTED}"] >= 7
    doc = json.loads((tmp_path / "site" / "stats.json").read_bytes())
    assert len(doc["missing"]) == KEEP
    top = [(m["file"], m["requests"]) for m in doc["missing"][:2]]
    assert top == [(WANTED, 7 * 8), (ALSO, 3 * 8)]  # each flood asked for them so often
    assert doc["totals"]["missing"] == len(lines) + len(more)
    assert doc["channels"][0]["missing"] == len(lines) + len(more)
    assert all(m["requests"] == 1 for m in doc["missing"][2:])


def _flood_peak(folder: Path, names: int) -> tuple[int, dict]:
    """The peak of Python memory while ``sitegen stats`` counts a day of ``names`` distinct
    404s of 1 KB names, and the stats.json it wrote."""
    folder.mkdir()
    today = datetime.now(UTC).date()
    log = folder / "access.log"
    with log.open("w") as out:
        for i in range(names):
            out.write(_line(today, f"{i:06d}{'x' * 1000}-1.0-0.conda"))
            if i % 10 == 0:
                out.write(_line(today, WANTED))
    config = _config(folder, log)
    tracemalloc.start()
    try:
        assert main(["stats", "-c", str(config)]) == EXIT_OK
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, json.loads((folder / "site" / "stats.json").read_bytes())


def test_a_days_flood_of_missing_files_does_not_grow_the_counts_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within one count a day's distinct 404s were all held until its end: a day of
    millions of made-up names took gigabytes before any were cut. Four times the names cost
    no more memory at their peak (held at once, the 15 MB more of them would); a first count
    loads what any count loads, outside the comparison."""
    monkeypatch.setattr(logline, "HEAD_CACHE_LIMIT", 100)
    monkeypatch.setattr(counter, "CACHE_LIMIT", 100)
    _flood_peak(tmp_path / "warm", 10)
    small, _doc = _flood_peak(tmp_path / "small", 5 * KEEP)
    peak, doc = _flood_peak(tmp_path / "large", 20 * KEEP)
    assert peak - small < 4 * 2**20
    assert doc["missing"][0]["file"] == WANTED
    assert doc["missing"][0]["requests"] == 2 * KEEP
    assert doc["totals"]["missing"] == 22 * KEEP


def test_a_site_of_many_channels_cuts_a_days_missing_files_once_per_keep_new_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rows of the files cut, one per channel, are never cut: counted by its rows alone,
    a day of KEEP channels or more holding one is at HELD rows after each cut, and is cut
    again at each 404 line, sorting them all. Its files are cut when they reach HELD, so
    the rows the cuts go through come to a few per line, however many lines there are."""
    handled: list[int] = []

    def counted_cut(rows: dict[str, int]) -> None:
        handled.append(len(rows))
        cut(rows)

    monkeypatch.setattr(counter, "cut", counted_cut)
    day = date(2026, 12, 5)
    channels = [f"c/{n:04d}" for n in range(2 * KEEP)]
    # Two files asked for in each channel, a run of new files in the first one, then one
    # file of the last channel asked for five times.
    lines = [_line(day, f"f{i}-1.0-0.conda", channel=c) for c in channels for i in range(2)]
    lines += [_line(day, f"g{i:05d}-1.0-0.conda", channel=channels[0]) for i in range(3 * KEEP)]
    lines += [_line(day, WANTED, channel=channels[-1])] * 5
    tally = Tally()
    counter.line_counter(tally, channels, day).add(text.encode() for text in lines)

    assert sum(handled) <= 10 * len(lines)
    rows = tally.missing[day.isoformat()]
    assert sum(rows.values()) == len(lines)  # the files cut count in their channel's row
    assert len([key for key in rows if is_file(key)]) < HELD
    # A file first asked for once the channels hold rows of the files cut still comes in.
    assert rows[f"{channels[-1]}|linux-64|{WANTED}"] == 5
