"""Every date range and comparison, resolved in the site's time zone."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.analytics.queries.periods import (
    EARLIEST,
    PERIODS,
    compare,
    resolve_period,
)
from app.errors import InvalidInput

NOW = dt.datetime(2026, 3, 29, 10, 30, tzinfo=dt.UTC)  # Berlin's 23-hour day (DST starts)


def _days(key: str, **kwargs: object) -> tuple[dt.date, dt.date]:
    period = resolve_period(key, "Europe/Berlin", NOW, **kwargs)  # type: ignore[arg-type]
    return period.first_day, period.last_day


@pytest.mark.parametrize(
    ("key", "first", "last"),
    [
        ("today", dt.date(2026, 3, 29), dt.date(2026, 3, 29)),
        ("yesterday", dt.date(2026, 3, 28), dt.date(2026, 3, 28)),
        ("7d", dt.date(2026, 3, 23), dt.date(2026, 3, 29)),
        ("28d", dt.date(2026, 3, 2), dt.date(2026, 3, 29)),
        ("91d", dt.date(2025, 12, 29), dt.date(2026, 3, 29)),
        ("month", dt.date(2026, 3, 1), dt.date(2026, 3, 29)),
        ("last_month", dt.date(2026, 2, 1), dt.date(2026, 2, 28)),
        ("year", dt.date(2026, 1, 1), dt.date(2026, 3, 29)),
        ("12mo", dt.date(2025, 4, 1), dt.date(2026, 3, 29)),
    ],
)
def test_day_ranges_end_today_in_the_site_timezone(key, first, last):
    assert _days(key) == (first, last)


def test_the_23_hour_day_is_one_local_day_of_wall_clock_hours():
    today = resolve_period("today", "Europe/Berlin", NOW)
    assert today.end - today.start == dt.timedelta(hours=23)
    assert today.interval == "hour"
    assert len(today.buckets()) == 24  # wall-clock hours; 02:00 never happens and stays empty
    assert today.incomplete_from() == dt.datetime(2026, 3, 29, 12)  # 10:30 UTC is 12:30 CEST


def test_all_time_starts_at_the_first_event_and_custom_ranges_are_checked():
    assert _days("all", first_day=dt.date(2024, 5, 6)) == (dt.date(2024, 5, 6), NOW.date())
    assert _days("all") == (NOW.date(), NOW.date())  # no event yet
    assert _days("custom", start_date=dt.date(2026, 1, 5), end_date=dt.date(2026, 1, 9)) == (
        dt.date(2026, 1, 5),
        dt.date(2026, 1, 9),
    )
    for start, end in [(None, None), (dt.date(2026, 2, 2), dt.date(2026, 2, 1))]:
        with pytest.raises(InvalidInput):
            _days("custom", start_date=start, end_date=end)
    with pytest.raises(InvalidInput):
        _days("custom", start_date=dt.date(1999, 1, 1), end_date=dt.date(2026, 1, 1))


def test_realtime_is_the_last_30_minutes_by_minute_and_24h_by_hour():
    realtime = resolve_period("realtime", "UTC", NOW)
    assert (realtime.end - realtime.start, realtime.interval) == (
        dt.timedelta(minutes=30),
        "minute",
    )
    assert len(realtime.buckets()) == 30
    day = resolve_period("24h", "UTC", NOW)
    assert (len(day.buckets()), day.interval) == (24, "hour")


def test_intervals_follow_the_range_and_can_be_switched_within_it():
    assert resolve_period("7d", "UTC", NOW).intervals() == ("hour", "day")
    assert resolve_period("30d", "UTC", NOW).intervals() == ("day", "week")
    year = resolve_period("12mo", "UTC", NOW)
    assert (year.interval, year.intervals()) == ("month", ("day", "week", "month"))
    weekly = resolve_period("30d", "UTC", NOW, interval="week")
    starts = weekly.buckets()
    assert starts[0] == dt.datetime(2026, 2, 28)  # clipped to the range: a Saturday
    assert all(start.weekday() == 0 for start in starts[1:])  # then Mondays
    with pytest.raises(InvalidInput, match="interval 'minute'"):
        resolve_period("30d", "UTC", NOW, interval="minute")


def test_previous_period_year_over_year_and_day_of_week():
    week = resolve_period("7d", "UTC", NOW)  # Mon 23 to Sun 29 March
    before = compare(week, "previous_period")
    assert before
    assert (before.first_day, before.last_day) == (
        dt.date(2026, 3, 16),
        dt.date(2026, 3, 22),
    )
    year = compare(week, "year_over_year")
    assert year
    assert (year.first_day, year.last_day) == (dt.date(2025, 3, 23), dt.date(2025, 3, 29))
    matched = compare(week, "year_over_year", match_day_of_week=True)
    assert matched
    assert matched.first_day.weekday() == week.first_day.weekday()
    assert dt.timedelta(0) <= year.start - matched.start < dt.timedelta(days=7)
    last_month = resolve_period("last_month", "UTC", NOW)  # February
    january = compare(last_month, "previous_period")
    assert january
    assert (january.first_day, january.last_day) == (
        dt.date(2026, 1, 1),
        dt.date(2026, 1, 31),
    )
    leap = resolve_period(
        "custom", "UTC", NOW, start_date=dt.date(2028, 2, 29), end_date=dt.date(2028, 2, 29)
    )
    assert (compared := compare(leap, "year_over_year"))
    assert compared.first_day == dt.date(2027, 2, 28)
    assert compare(week, "off") is None
    with pytest.raises(InvalidInput):
        compare(week, "last_decade")


def test_today_is_compared_up_to_the_same_hour_of_yesterday():
    today = resolve_period("today", "UTC", NOW)
    yesterday = compare(today, "previous_period")
    assert yesterday is not None
    assert yesterday.elapsed().end == dt.datetime(2026, 3, 28, 11, tzinfo=dt.UTC)
    assert yesterday.end == dt.datetime(2026, 3, 29, tzinfo=dt.UTC)  # the chart shows all of it


def test_the_arrows_step_by_the_range_length_or_by_whole_months():
    week = resolve_period("7d", "UTC", NOW)
    assert week.shifted(-1) == (dt.date(2026, 3, 16), dt.date(2026, 3, 22))
    assert resolve_period("last_month", "UTC", NOW).shifted(1) == (
        dt.date(2026, 3, 1),
        dt.date(2026, 3, 31),
    )
    assert resolve_period("realtime", "UTC", NOW).shifted(-1) is None


def test_unknown_ranges_are_refused_with_the_valid_ones():
    with pytest.raises(InvalidInput, match="use one of realtime, today"):
        resolve_period("1y", "UTC", NOW)


@given(
    start=st.dates(EARLIEST, dt.date(2100, 1, 1)),
    length=st.integers(0, 800),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/St_Johns", "Pacific/Kiritimati"]),
)
def test_custom_ranges_cover_their_days_in_contiguous_buckets(start, length, zone):
    end = min(start + dt.timedelta(days=length), dt.date(2100, 12, 31))
    period = resolve_period("custom", zone, NOW, start_date=start, end_date=end)
    assert (period.first_day, period.last_day) == (start, end)
    buckets = period.buckets()
    assert buckets[0] == dt.datetime.combine(start, dt.time())
    assert buckets == sorted(set(buckets))
    assert buckets[-1] < dt.datetime.combine(end + dt.timedelta(days=1), dt.time())
    assert period.interval in period.intervals()
    assert set(PERIODS) >= {period.key}
