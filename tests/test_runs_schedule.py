"""Cron schedules: when a mirror is due, read as cron reads them, and which expressions are
valid."""

from __future__ import annotations

import pytest

from sitegen.config import ConfigError, parse_config, schedule
from testkit.zone import local_zone, ts


@pytest.mark.unit
def test_never_completed_mirror_is_due() -> None:
    assert schedule.is_due("0 2 * * *", None, ts("2026-01-01T00:00:00"))


@pytest.mark.unit
@pytest.mark.parametrize(
    ("expression", "last", "now", "due"),
    [
        ("0 2 * * *", "2026-01-01T02:00:05", "2026-01-02T01:59:00", False),
        ("0 2 * * *", "2026-01-01T02:00:05", "2026-01-02T02:00:00", True),
        ("*/15 * * * *", "2026-01-01T10:00:00", "2026-01-01T10:14:59", False),
        ("*/15 * * * *", "2026-01-01T10:00:00", "2026-01-01T10:15:00", True),
        ("0 0 1 * *", "2026-01-01T00:00:10", "2026-01-31T23:00:00", False),
        ("0 0 1 * *", "2026-01-01T00:00:10", "2026-02-01T00:00:00", True),
        (None, "2026-01-01T12:00:00", "2026-01-01T23:59:00", False),  # default: daily
        (None, "2026-01-01T12:00:00", "2026-01-02T00:00:00", True),
    ],
)
def test_schedule_fires_after_last_completed_run(
    expression, last, now, due, monkeypatch: pytest.MonkeyPatch
) -> None:
    with local_zone(monkeypatch, "UTC0"):
        assert schedule.is_due(expression, ts(last), ts(now)) is due


@pytest.mark.unit
def test_a_schedule_is_read_in_local_time_as_cron_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """02:00 is 02:00 where the mirror runs: 17:00 UTC 9 hours east of it, and the hour moves
    with daylight saving (a US zone: 07:00 UTC in winter, 06:00 UTC in summer)."""
    with local_zone(monkeypatch, "JST-9"):
        assert schedule.next_due("0 2 * * *", ts("2026-12-05T18:00:00")) == ts(
            "2026-12-06T17:00:00"
        )
    with local_zone(monkeypatch, "EST5EDT,M3.2.0,M11.1.0"):
        assert schedule.next_due("0 2 * * *", ts("2026-01-10T12:00:00")) == ts(
            "2026-01-11T07:00:00"
        )
        assert schedule.next_due("0 2 * * *", ts("2026-07-10T12:00:00")) == ts(
            "2026-07-11T06:00:00"
        )


@pytest.mark.unit
def test_day_of_month_and_weekday_combine_as_cron_combines_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both restricted: either day fires. But a field starting with ``*`` (``*/2``) leaves the
    other in charge (both must match), as Vixie cron and cronie read it: ``0 0 */2 * mon`` is
    the Mondays on an odd day of the month (2026-01-05 and 19), not also every odd day."""
    with local_zone(monkeypatch, "UTC0"):
        start = ts("2026-01-01T00:00:30")
        assert schedule.next_due("0 0 13 * fri", start) == ts("2026-01-02T00:00:00")
        assert schedule.next_due("0 0 1-31/2 * mon", start) == ts("2026-01-03T00:00:00")
        assert schedule.next_due("0 0 */2 * mon", start) == ts("2026-01-05T00:00:00")
        assert schedule.next_due("0 0 */2 * mon", ts("2026-01-05T00:00:30")) == ts(
            "2026-01-19T00:00:00"
        )
        assert schedule.next_due("0 0 1 * */3", start) == ts("2026-02-01T00:00:00")  # a Sunday
    assert schedule.is_valid("0 0 30 2 mon")
    assert not schedule.is_valid("0 0 30 2 */2")  # cron: the 30th of February, some weekdays


@pytest.mark.unit
def test_a_run_in_the_repeated_hour_of_fall_back_is_not_followed_by_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On 2026-11-01 01:00-02:00 comes twice in a US zone. A run at 01:10 in the second one
    (06:10 UTC; by --only, say) comes after 01:30 of the first (05:30 UTC) fired: the next
    01:30 is the next day's, not the one already past, which would make every --due of the
    hour run the mirror again."""
    with local_zone(monkeypatch, "EST5EDT,M3.2.0,M11.1.0"):
        last = ts("2026-11-01T06:10:00")
        assert schedule.next_due("30 1 * * *", last) == ts("2026-11-02T06:30:00")
        assert not schedule.is_due("30 1 * * *", last, ts("2026-11-01T06:20:00"))
        assert schedule.next_due("*/15 * * * *", last) > last


@pytest.mark.unit
def test_invalid_cron_expression_names_key_and_line() -> None:
    text = (
        "output: site\nchannels:\n  a/b:\n    url: http://127.0.0.1:1/c\n"
        "    subdirs: [linux-64]\n    schedule: '61 * * * *'\n"
    )
    with pytest.raises(ConfigError, match=r"channels.yaml:6: channels.a/b.schedule: invalid cron"):
        parse_config(text)
    backwards = text.replace("61 * * * *", "30-10 * * * *")
    with pytest.raises(ConfigError, match=r"channels.yaml:6: channels.a/b.schedule: .*'30-10'"):
        parse_config(backwards)


@pytest.mark.unit
@pytest.mark.parametrize(
    "expression",
    [
        "0 0 2 * * *",  # seconds first, daily at 02:00: croniter reads it as the 2nd monthly
        "* * * * * *",  # croniter: every second
        "0 2 * * * 2030",  # a year field
        "R 2 * * *",  # croniter: a random minute, drawn anew on every reading
        "r(0-30) 2 * * *",
        "0 2 * * 1,R",
        "H 2 * * *",
        "@daily 5",
        # Backwards ranges: croniter wraps them around (30-59 and 0-10), cron refuses them.
        "1-0 * * * *",
        "30-10 * * * *",
        "0 5-1 * * *",
        "0 0 20-3 * *",
        "0 0 * dec-jan *",
        "0 0 * * fri-mon",
        "0 0 * * 7-0",
        "30-10/5 * * * *",
        pytest.param("9" * 5000 + "-1 * * * *", id="a range from a number int() refuses"),
    ],
)
def test_a_schedule_cron_would_not_read_is_a_config_error(expression: str) -> None:
    assert not schedule.is_valid(expression)


@pytest.mark.unit
@pytest.mark.parametrize(
    "expression",
    [
        "0 2 * * *",
        "*/15 1-5 1,15 jan-dec/2 mon-fri",
        "10-50/20 * * MAR,apr fri",
        "@hourly",
        "5-5 * * * *",
        "0 0 * * 1-7",
        "0 0 * * sun-sat",
    ],
)
def test_cron_expressions_with_names_steps_and_lists_are_valid(expression: str) -> None:
    assert schedule.is_valid(expression)


@pytest.mark.unit
def test_schedules_check_with_croniter_before_6(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyproject.toml allows croniter 2 to 5, whose package does not export CroniterError (its
    croniter.croniter module does, a ValueError): checking a schedule must not need it."""
    import croniter

    monkeypatch.delattr(croniter, "CroniterError", raising=False)
    assert schedule.is_valid("0 2 * * *")
    assert not schedule.is_valid("0 0 31 2 *")
