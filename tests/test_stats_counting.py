"""Download statistics, counting: downloads, ranges, clients, passive outcomes, months and the
state; hostile times, sizes and counts skipped or bounded."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from sitegen.cli import EXIT_OK, main
from sitegen.stats import counter as counter_module
from sitegen.stats.counter import line_counter
from sitegen.stats.state import StateError, decode_state, encode_state
from sitegen.stats.tally import Tally
from testkit.stats_lines import CHANNEL, PKG, TODAY, count, flat, line, pkg

pytestmark = pytest.mark.unit


# --------------------------------------------------------------------------- counting


def test_downloads_bytes_refreshes_and_missing_are_counted_per_day_and_file() -> None:
    tally = count(
        [
            line(pkg(), 200, 5000),
            line(pkg(), 200, 5000, ip="192.0.2.2"),
            line(pkg(), 304, 0),  # a revalidation is no download
            line(pkg(), 200, 0, method="HEAD"),
            line(f"/{CHANNEL}/linux-64/repodata.json", 200, 700),
            line(f"/{CHANNEL}/linux-64/repodata.json", 304, 0),
            line(f"/{CHANNEL}/linux-64/shards/ab.msgpack.zst", 200, 30),
            line(pkg("gone-1.0-0.conda"), 404, 150),
            line(pkg("gone-1.0-0.conda"), 404, 150, when="06/Dec/2026:01:00:00 +0000"),
            line(f"/{CHANNEL}/index.html", 200, 99),
        ]
    )
    day = "2026-12-05"
    assert flat(tally.files) == {(day, CHANNEL, "linux-64", PKG): [2, 10000, 2]}
    assert flat(tally.refreshes) == {
        (day, CHANNEL, "linux-64", "repodata.json"): [1, 1, 700],
        (day, CHANNEL, "linux-64", "shards"): [1, 0, 30],
    }
    assert flat(tally.missing) == {
        (day, CHANNEL, "linux-64", "gone-1.0-0.conda"): 1,
        ("2026-12-06", CHANNEL, "linux-64", "gone-1.0-0.conda"): 1,
    }
    # requests; distinct clients of the channel; downloads; bytes of package files
    assert tally.days[day] == [9, 2, 2, 10000]
    assert tally.all_time == {f"{CHANNEL}|linux-64|{PKG}": [2, 10000]}
    assert tally.skipped == {}


def test_ranges_of_one_file_count_once_per_client_and_day() -> None:
    tally = count(
        [
            line(pkg(), 206, 100, agent="pixi/0.39.0"),
            line(pkg(), 206, 100, agent="pixi/0.39.0"),
            line(pkg(), 206, 100, agent="pixi/0.39.0", ip="192.0.2.9"),  # another client
            line(pkg(), 206, 100, agent="pixi/0.39.0", when="06/Dec/2026:10:00:00 +0000"),
        ]
    )
    assert flat(tally.files) == {
        ("2026-12-05", CHANNEL, "linux-64", PKG): [2, 300, 3],
        ("2026-12-06", CHANNEL, "linux-64", PKG): [1, 100, 1],
    }


def test_clients_are_distinct_per_day_and_tool_and_never_stored_raw() -> None:
    tally = count(
        [
            line(pkg(), ip="198.51.100.7", agent="micromamba/2.0.5"),
            line(pkg(), ip="198.51.100.7", agent="micromamba/2.0.5"),
            line(pkg(), ip="198.51.100.8", agent="micromamba/2.0.5"),
            line(pkg(), ip="198.51.100.8", agent="curl/8.5.0"),
        ]
    )
    assert flat(tally.tools) == {
        ("2026-12-05", "micromamba", "2.0.5"): 2,
        ("2026-12-05", "other", ""): 1,
    }
    assert tally.days["2026-12-05"][1] == 3
    saved = encode_state(tally, [])
    assert b"198.51.100" not in saved and b"micromamba/2.0.5" not in saved
    tally.close_days("2026-12-06")
    assert tally.open_days == {}
    assert b"salt" not in encode_state(tally, [])


def test_salts_differ_per_day_so_hashes_do_not_link_days() -> None:
    tally = count(
        [line(pkg()), line(pkg(), when="06/Dec/2026:10:00:00 +0000")],
    )
    first, second = tally.open_days["2026-12-05"], tally.open_days["2026-12-06"]
    assert first.salt != second.salt and not first.clients & second.clients


def test_passive_outcomes_come_from_the_fetcher_field() -> None:
    tally = count(
        [
            line(pkg(), fetcher="fetched"),
            line(pkg(), fetcher="stored"),
            line(pkg(), fetcher="-"),
            line(pkg()),  # combined: the log does not tell
        ]
    )
    day = "2026-12-05"
    assert flat(tally.passive) == {(day, CHANNEL, "linux-64", "fetched"): 1,
                             (day, CHANNEL, "linux-64", "stored"): 1,
                             (day, CHANNEL, "linux-64", "disk"): 1}  # fmt: skip


def test_a_redirect_and_the_download_after_it_may_be_read_in_two_runs() -> None:
    """Apache logs the fetcher's outcome on a 302 back to the static URL, then the 200 that
    follows; a log read may end between the two, and the state carries the outcome over."""
    redirect = line(pkg(), 302, 0, fetcher="stored")
    served = line(pkg(), when="05/Dec/2026:18:34:47 +0000", fetcher="-")
    whole = count([redirect, served])
    first = count([redirect])
    again, _ = decode_state(encode_state(first, []))
    line_counter(again, (CHANNEL,), TODAY).add([served])
    day = "2026-12-05"
    assert flat(whole.passive) == flat(again.passive) == {(day, CHANNEL, "linux-64", "stored"): 1}
    assert flat(again.files) == flat(whole.files) == {(day, CHANNEL, "linux-64", PKG): [1, 1000, 1]}
    assert again.open_days[day].redirected == {}


def test_hostile_and_malformed_lines_are_skipped_not_fatal() -> None:
    tally = count(
        [
            b"",
            b"\x00\xff\xfe binary \x89PNG\r\n",
            b"192.0.2.1 - - [05/Dec/2026:18:34:46 +0000] \"\x16\x03\x01\" 400 0 \"-\" \"-\"",
            line(f"/{CHANNEL}/linux-64/../../../etc/passwd", 404),
            line(f"/{CHANNEL}/linux-64/<svg/onload=alert(1)>-1-0.conda", 404),
            line(pkg(), when="99/Dec/2026:18:34:46 +0000"),
            "192.0.2.1 - - [05/Dec/2026:18:34:46 +0000] \"GET /ü HTTP/1.1\" 404 0 \"-\" \"ü\"".encode(),
            line(pkg(), agent='evil\\" <script>'),  # an escaped quote inside the agent
        ]
    )  # fmt: skip
    assert tally.skipped == {"malformed": 3, "hostile": 3, "bad_time": 1}
    assert flat(tally.files) == {("2026-12-05", CHANNEL, "linux-64", PKG): [1, 1000, 1]}


def test_old_days_roll_into_months_and_keep_their_sums() -> None:
    tally = count(
        [
            line(pkg(), when="01/Sep/2026:10:00:00 +0000"),
            line(pkg(), when="02/Sep/2026:10:00:00 +0000", ip="192.0.2.3"),
            line(pkg(), when="05/Dec/2026:10:00:00 +0000"),
        ]
    )
    tally.roll_up(date(2026, 12, 5), keep_days=30)
    assert flat(tally.files) == {
        ("2026-09", CHANNEL, "linux-64", PKG): [2, 2000, 2],
        ("2026-12-05", CHANNEL, "linux-64", PKG): [1, 1000, 1],
    }
    assert tally.days == {"2026-09": [2, 2, 2, 2000], "2026-12-05": [1, 1, 1, 1000]}
    assert tally.all_time == {f"{CHANNEL}|linux-64|{PKG}": [3, 3000]}
    assert flat(tally.tools) == {
        ("2026-09", "conda", "24.1.2"): 2,
        ("2026-12-05", "conda", "24.1.2"): 1,
    }


def test_state_round_trips_and_rejects_garbage() -> None:
    tally = count([line(pkg()), line(pkg("x-1-0.conda"), 404), line(pkg(), 206, 5)])
    again, cursors = decode_state(encode_state(tally, []))
    for table in ("files", "refreshes", "missing", "passive", "tools"):
        assert flat(getattr(again, table)) == flat(getattr(tally, table)), table
    assert (again.days, again.open_days, cursors) == (tally.days, tally.open_days, [])
    with pytest.raises(StateError):
        decode_state(b"{not json")
    with pytest.raises(StateError):
        decode_state(b'{"version": 99}')


# --------------------------------------------------------------------------- hostile input


@pytest.mark.parametrize("when", ["31/Dec/9999:23:30:00 -0100", "01/Jan/0001:00:30:00 +0100"])
def test_a_time_whose_utc_day_is_off_the_calendar_is_a_bad_time(when: str) -> None:
    assert count([line(pkg(), when=when)]).skipped == {"bad_time": 1}


@pytest.mark.parametrize(
    "clock", ["18:99:46", "18:34:60", "18:34:99", "18:6x:46", "18:34:4x", "18:-1:46"]
)
def test_a_time_off_the_clock_after_a_good_one_of_its_hour_is_a_bad_time(clock: str) -> None:
    """The day of a time is cached by its hour: a good line of that hour first made any
    minutes and seconds after it pass, 18:99 and 18:34:99 counted as downloads."""
    tally = count([line(pkg()), line(pkg(), when=f"05/Dec/2026:{clock} +0000"), line(pkg())])
    assert tally.skipped == {"bad_time": 1}
    assert flat(tally.files) == {("2026-12-05", CHANNEL, "linux-64", PKG): [2, 2000, 2]}


def test_a_line_dated_after_tomorrow_is_skipped_as_future() -> None:
    """A server clock set wrong, a log copied from another host: counted, the line would keep
    its day open (its salt and client hashes) until that date. A clock a little ahead, or a
    line of today in a zone ahead of UTC, is counted."""
    tally = count(
        [
            line(pkg(), when="06/Dec/2026:23:59:59 +0000"),
            line(pkg(), when="07/Dec/2026:00:30:00 +0100", ip="192.0.2.2"),  # 23:30 UTC
            line(pkg(), when="07/Dec/2026:00:00:00 +0000", ip="192.0.2.3"),
            line(pkg(), when="01/Jan/2030:10:00:00 +0000", ip="192.0.2.4"),
        ]
    )
    assert tally.skipped == {"future": 2}
    assert tally.days == {"2026-12-06": [2, 2, 2, 2000]}
    assert list(tally.open_days) == ["2026-12-06"]


def test_a_size_of_thousands_of_digits_is_a_malformed_line() -> None:
    bad = line(pkg()).replace(b" 200 1000 ", b" 200 " + b"9" * 5000 + b" ")
    assert count([bad]).skipped == {"malformed": 1}


def test_counts_beyond_64_bits_are_held_at_the_largest_the_state_keeps() -> None:
    """A log of lines each claiming a petabyte can add up past 64 bits: the state is saved all
    the same, with the count held at the largest 64-bit one."""
    huge = line(pkg()).replace(b" 1000 ", b" 999999999999999 ")
    tally = count([huge] * 20_000)
    again, _ = decode_state(encode_state(tally, []))
    assert again.all_time[f"{CHANNEL}|linux-64|{PKG}"] == [20_000, 2**63 - 1]


def test_the_user_agent_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every distinct user agent is read once while cached; the cache is cleared at its limit
    (a log of endless distinct agents does not grow the run's memory)."""
    monkeypatch.setattr(counter_module, "CACHE_LIMIT", 10)
    calls: list[str] = []
    real = counter_module.tool_of

    def counted(agent: str) -> tuple[str, str]:
        calls.append(agent)
        return real(agent)

    monkeypatch.setattr(counter_module, "tool_of", counted)
    counter = line_counter(Tally(), [CHANNEL], TODAY)
    agents = [f"x/{i} " + "A" * 100 for i in range(100)]
    counter.add([line(pkg(), agent=agent, ip=f"192.0.2.{i}") for i, agent in enumerate(agents)])
    # A new client with the first agent (one the day knows has its tool counted already)
    counter.add([line(pkg(), agent=agents[0], ip="192.0.2.200")])
    assert calls.count(agents[0]) == 2  # forgotten since, so read again


def test_a_damaged_state_is_refused_not_a_crash() -> None:
    data = encode_state(count([line(pkg())]), [])
    damaged = data.replace(b"example|linux-64", b"example/linux-64")  # same length: decodes
    with pytest.raises(StateError, match="damaged"):
        decode_state(damaged)


def test_the_summary_counts_one_line_file_and_download_in_the_singular(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(line(pkg(), 200, 5000) + b"\n")
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {tmp_path / 'site'}\n"
        f"channels:\n  {CHANNEL}: {{url: 'https://conda.example/x', subdirs: [linux-64]}}\n"
        f"stats: {{logs: [{log}]}}\n"
    )
    assert main(["stats", "-c", str(config)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "read 1 new line (" in out
    assert ") from 1 file; 1 download counted in all; 0 lines skipped in all" in out
