"""The billing chart's events per UTC day, from the metering job's counts of one period."""

from __future__ import annotations

import datetime as dt

from app.billing.overview import UsageDay, daily_usage
from app.models import UsageRecord

START = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def count(at: str, events: int) -> UsageRecord:
    when = dt.datetime.fromisoformat(at).replace(tzinfo=dt.UTC)
    return UsageRecord(
        organization_id=1, period_start=START, period_end=START, events=events, counted_at=when
    )


def test_each_day_is_its_last_count_less_the_day_before() -> None:
    history = [
        count("2026-12-01 00:15", 10),
        count("2026-12-01 23:45", 400),  # the day's last count
        count("2026-12-02 00:00", 410),
        count("2026-12-02 12:00", 600),
        count("2026-12-04 08:00", 800),  # no count on the 3rd (no worker then)
    ]
    assert daily_usage(history) == (
        UsageDay(dt.date(2026, 12, 1), 400, 100),
        UsageDay(dt.date(2026, 12, 2), 200, 50),
        UsageDay(dt.date(2026, 12, 4), 200, 50),
    )


def test_no_counts_no_days_and_a_day_of_nothing_is_zero() -> None:
    assert daily_usage([]) == ()
    assert daily_usage([count("2026-12-01 10:00", 0)]) == (UsageDay(dt.date(2026, 12, 1), 0, 0),)
