"""Download statistics, pure parts: log lines, counting, stats.json, page models and charts."""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from sitegen import layout
from sitegen.config import ConfigError, parse_config
from sitegen.stats import counter as counter_module
from sitegen.stats.charts import bar_chart, hbar_chart, sparkline
from sitegen.stats.counter import line_counter
from sitegen.stats.logline import (
    Kind,
    PathClassifier,
    split,
    split_package,
    strip_tokens,
    tool_of,
    utc_day,
)
from sitegen.stats.model import package_stats, stats_page
from sitegen.stats.report import build_doc, decode_doc, encode_doc
from sitegen.stats.state import StateError, decode_state, encode_state
from sitegen.stats.tally import Tally

pytestmark = pytest.mark.unit

CHANNEL = "cloud/example"
PKG = "numpy-2.1.0-py312h1_0.conda"
CONDA_UA = (
    "conda/24.1.2 requests/2.31.0 CPython/3.11.7 Linux/6.5 solver/libmamba"
    " conda-libmamba-solver/24.1.0 libmambapy/1.5.6"
)


def line(
    path: str,
    status: int = 200,
    size: int = 1000,
    *,
    ip: str = "192.0.2.1",
    agent: str = CONDA_UA,
    when: str = "05/Dec/2026:18:34:46 +0000",
    fetcher: str | None = None,
    method: str = "GET",
) -> bytes:
    text = f'{ip} - - [{when}] "{method} {path} HTTP/1.1" {status} {size} "-" "{agent}"' + (
        f' "{fetcher}"' if fetcher is not None else ""
    )
    return text.encode()


def pkg(fn: str = PKG, subdir: str = "linux-64", prefix: str = "") -> str:
    return f"{prefix}/{CHANNEL}/{subdir}/{fn}"


def flat(table: dict[str, dict[str, Any]]) -> dict[tuple[str, ...], Any]:
    """A per-period table as {(period, *key fields): counts}, without empty periods."""
    return {
        (period, *split(key)): value
        for period, rows in table.items()
        for key, value in rows.items()
    }


TODAY = date(2026, 12, 5)  # the day of line()'s time


def count(lines: list[bytes], channels: tuple[str, ...] = (CHANNEL,), today: date = TODAY) -> Tally:
    tally = Tally()
    line_counter(tally, channels, today).add(lines)
    return tally


# --------------------------------------------------------------------------- log lines


def test_utc_day_applies_the_offset() -> None:
    assert utc_day(b"05/Dec/2026:23:30:00 -0100") == "2026-12-06"
    assert utc_day(b"05/Dec/2026:00:30:00 +0200") == "2026-12-04"
    assert utc_day(b"05/Dec/2026:18:34:46 +0000") == "2026-12-05"
    assert utc_day(b"31/Feb/2026:00:00:00 +0000") is None
    assert utc_day(b"05/Xyz/2026:00:00:00 +0000") is None


def test_an_offset_with_minutes_moves_the_day_by_the_minutes_too() -> None:
    """India (+0530), Newfoundland (-0330), Nepal (+0545): within one local hour, part of
    the lines fall on one UTC day and part on the next, whichever the log gives first."""
    assert utc_day(b"05/Dec/2026:05:45:00 +0530") == "2026-12-05"  # 00:15 UTC
    assert utc_day(b"05/Dec/2026:05:15:00 +0530") == "2026-12-04"  # 23:45 UTC
    assert utc_day(b"04/Dec/2026:20:40:00 -0330") == "2026-12-05"  # 00:10 UTC
    assert utc_day(b"04/Dec/2026:20:20:00 -0330") == "2026-12-04"  # 23:50 UTC
    assert utc_day(b"05/Dec/2026:05:75:00 +0530") is None
    for first, second in (("05:15:00", "05:45:00"), ("05:45:00", "05:15:00")):
        tally = count([line(pkg(), when=f"05/Dec/2026:{t} +0530") for t in (first, second)])
        assert sorted(tally.days) == ["2026-12-04", "2026-12-05"], (first, second)
    tally = count([line(pkg(), when=f"05/Dec/2026:05:{m:02}:00 +0545") for m in range(60)])
    assert {day: totals[0] for day, totals in tally.days.items()} == {
        "2026-12-04": 45,  # 05:00 to 05:44 local: 23:15 to 23:59 UTC
        "2026-12-05": 15,
    }


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (pkg(), (Kind.PACKAGE, CHANNEL, "linux-64", PKG)),
        (pkg(prefix="/conda/mirror"), (Kind.PACKAGE, CHANNEL, "linux-64", PKG)),
        (pkg(prefix="/t/tk-123"), (Kind.PACKAGE, CHANNEL, "linux-64", PKG)),
        (f"/{CHANNEL}/noarch/repodata.json.zst?x=1", (Kind.REFRESH, CHANNEL, "noarch", "repodata.json.zst")),
        (f"/{CHANNEL}/linux-64/repodata_shards.msgpack.zst", (Kind.REFRESH, CHANNEL, "linux-64", "repodata_shards.msgpack.zst")),
        (f"/{CHANNEL}/linux-64/shards/ab12.msgpack.zst", (Kind.SHARD, CHANNEL, "linux-64", "ab12.msgpack.zst")),
        (f"/{CHANNEL}/channeldata.json", (Kind.REFRESH, CHANNEL, "", "channeldata.json")),
        (f"/{CHANNEL}/linux-64/index.html", (Kind.OTHER, "", "", "")),
        ("/other/linux-64/" + PKG, (Kind.OTHER, "", "", "")),
        (f"/{CHANNEL}/linux-64/../../etc/passwd", (Kind.HOSTILE, "", "", "")),
        (f"/{CHANNEL}/linux-64/%2e%2e/x-1-0.conda", (Kind.HOSTILE, "", "", "")),
        (f"/{CHANNEL}/linux-64/<script>alert(1)</script>-1-0.conda", (Kind.HOSTILE, "", "", "")),
        (f"/{CHANNEL}/linux-64/%3Cimg%20src%3Dx%3E-1-0.tar.bz2", (Kind.HOSTILE, "", "", "")),
        (f"/{CHANNEL}/linux-64/%ff%fe-1-0.conda", (Kind.HOSTILE, "", "", "")),
        ("*", (Kind.HOSTILE, "", "", "")),
        (f"/{CHANNEL}/<script>/repodata.json", (Kind.HOSTILE, "", "", "")),
        (f"/{CHANNEL}/linux-64%0a/repodata.json", (Kind.HOSTILE, "", "", "")),
        ("/a|b/linux-64/" + PKG, (Kind.HOSTILE, "", "", "")),
    ],
)  # fmt: skip
def test_paths_are_classified(path: str, expected: tuple) -> None:
    assert PathClassifier([CHANNEL, "cloud"]).classify(path) == expected


def test_tokens_are_stripped_from_path_segments() -> None:
    assert strip_tokens(["t", "secret", "cloud", "x"]) == ["cloud", "x"]
    assert strip_tokens(["cloud", "t", "x"]) == ["cloud", "t", "x"]  # t/x ends the path: no token


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        (CONDA_UA, ("conda", "24.1.2")),
        ("mamba/1.5.8 conda/23.11.0 requests/2.31", ("mamba", "1.5.8")),
        ("micromamba/2.0.5", ("micromamba", "2.0.5")),
        ("pixi/0.39.0 rattler/0.28", ("pixi", "0.39.0")),
        ("py-rattler/0.9.0", ("rattler", "0.9.0")),
        ("rattler/0.28.1", ("rattler", "0.28.1")),
        ("curl/8.5.0", ("other", "")),
        ("<script>conda/1</script>", ("other", "")),
        ("", ("other", "")),
    ],
)
def test_tools_from_user_agents(agent: str, expected: tuple[str, str]) -> None:
    assert tool_of(agent) == expected


def test_package_file_names_split() -> None:
    assert split_package(PKG) == ("numpy", "2.1.0", "py312h1_0")
    assert split_package("python-abi-3.12-4_cp312.tar.bz2") == ("python-abi", "3.12", "4_cp312")
    assert split_package("broken.conda") == ("", "", "")


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


# --------------------------------------------------------------------------- config


def test_stats_section_is_parsed_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    text = f"""\
        output: site
        channels:
          {CHANNEL}: {{url: "https://conda.example/x", subdirs: [linux-64]}}
        stats:
          logs: [logs/access.log, /var/log/nginx/access.log]
          retention_days: 60
        """
    config = parse_config(textwrap.dedent(text), base_dir=tmp_path)
    assert config.stats is not None
    assert config.stats.logs == (tmp_path / "logs/access.log", Path("/var/log/nginx/access.log"))
    assert config.stats.retention_days == 60
    bad = text.replace("retention_days: 60", "retention_days: 7")
    with pytest.raises(ConfigError, match=r"channels.yaml:6: stats.retention_days: must be at"):
        parse_config(textwrap.dedent(bad), base_dir=tmp_path)
    with pytest.raises(ConfigError, match=r":5: stats: missing required key 'logs'"):
        parse_config(textwrap.dedent(text).split("  logs")[0] + "  retention_days: 40\n")


# --------------------------------------------------------------------------- report, pages


def _doc_tally() -> Tally:
    return count(
        [
            line(pkg(), when="05/Dec/2026:10:00:00 +0000"),
            line(pkg(), when="20/Nov/2026:10:00:00 +0000"),
            line(pkg("scipy-1.14-py312_0.conda"), when="01/Oct/2026:10:00:00 +0000"),
            line(pkg("scipy-1.14-py312_0.conda"), when="02/Oct/2026:10:00:00 +0000"),
            line(pkg("scipy-1.14-py312_0.conda"), when="03/Oct/2026:10:00:00 +0000"),
            line(pkg("<b>x</b>-1-0.conda"), 404),
            line(pkg("pandas-2.2-py312_0.conda"), 404),
            line(pkg("pandas-2.2-py312_0.conda"), 404, agent="pixi/0.39.0"),
            line(pkg(), fetcher="fetched", when="05/Dec/2026:11:00:00 +0000", agent="pixi/0.39.0"),
            line(f"/{CHANNEL}/linux-64/repodata.json", 200, 50),
        ]
    )


def test_stats_json_sums_and_windows() -> None:
    doc = build_doc(_doc_tally(), [CHANNEL], [CHANNEL], date(2026, 12, 5))
    assert decode_doc(encode_doc(doc)) == doc
    assert (doc.totals.downloads, doc.totals.bytes, doc.totals.refreshes) == (6, 6000, 1)
    numpy, scipy = doc.packages
    assert (numpy.name, numpy.downloads, numpy.downloads_7d, numpy.downloads_30d) == (
        "numpy", 3, 2, 3)  # fmt: skip
    assert (scipy.name, scipy.downloads, scipy.downloads_7d, scipy.downloads_30d) == (
        "scipy", 3, 0, 0)  # fmt: skip
    assert [(m.name, m.requests) for m in doc.missing] == [("pandas", 2)]  # markup was skipped
    assert doc.skipped == {"hostile": 1}
    channel = doc.channels[0]
    assert channel.passive is not None
    assert (channel.passive.fetched, channel.passive.disk) == (1, 0)  # combined: unknown
    assert {(t.tool, t.client_days) for t in doc.tools} == {("conda", 5), ("pixi", 1)}
    assert numpy.daily[-1] == 2 and numpy.daily[-16] == 1 and sum(numpy.daily) == 3
    assert len(numpy.daily) == 30 and scipy.daily == [0] * 30


def test_page_models_match_the_document() -> None:
    doc = build_doc(_doc_tally(), [CHANNEL], [], date(2026, 12, 5))
    page = stats_page(doc)
    assert [(p.name, p.downloads) for p in page.top_7d] == [("numpy", 2)]
    assert [(p.name, p.downloads) for p in page.top_all] == [("numpy", 3), ("scipy", 3)]
    assert len(page.per_day) == 30 and page.per_day[-1] == ("2026-12-05", 2)
    assert sum(v for _, v in page.per_day) == 3
    assert page.per_day_chart.count("<rect") == 30
    assert [(t.tool, t.client_days) for t in page.tools] == [("conda", 2), ("pixi", 1)]
    assert page.bytes_30d == 3000 and page.bytes_total == 6000
    assert page.channels[0].passive is None
    numpy = package_stats(doc)[(CHANNEL, "numpy")]
    assert numpy.per_day[-1] == ("2026-12-05", 2) and numpy.downloads_30d == 3
    assert "<polyline" in numpy.trend_chart


def test_charts_escape_text_and_follow_the_text_colour() -> None:
    hostile = '<script>alert("x")</script>'
    for svg in (
        bar_chart([(hostile, 3), ("b", 0)], hostile),
        hbar_chart([(hostile, 5)], hostile),
        sparkline([0, 1, 2], hostile),
    ):
        assert "<script>" not in svg and "&lt;script&gt;" in svg
        assert svg.startswith("<svg") and svg.endswith("</svg>")
        assert "currentColor" in svg and "#" not in svg.replace('"http://www.w3.org', "")
    assert bar_chart([], "empty").count("<rect") == 0
    bars = bar_chart([("a", 1), ("b", 4)], "x")
    assert 'height="126"' in bars and 'height="31.5"' in bars  # proportional to the maximum


def test_layout_names_the_stats_paths(tmp_path: Path) -> None:
    assert layout.STATS_JSON in layout.RESERVED_TOP
    assert layout.stats_state_path(tmp_path).parent == layout.stats_dir(tmp_path)
    assert layout.stats_dir(tmp_path).parent == layout.state_dir(tmp_path)


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
