"""Download statistics, reading log lines: the UTC day of a time, paths classified, tokens
stripped, tools named from user agents, package file names split."""

from __future__ import annotations

import pytest

from sitegen.stats.logline import (
    Kind,
    PathClassifier,
    split_package,
    strip_tokens,
    tool_of,
    utc_day,
)
from testkit.stats_lines import CHANNEL, CONDA_UA, PKG, count, line, pkg

pytestmark = pytest.mark.unit


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
