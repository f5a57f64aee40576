"""Date ranges and comparison periods, resolved in the site's time zone and stored as UTC.

A `Period` is a range of whole local days (or hours, or minutes for realtime) with the interval
its chart is bucketed by. `resolve_period` turns a dashboard or API range into one as of `now`;
`compare` gives the period a range is compared with.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass, replace
from typing import Literal
from zoneinfo import ZoneInfo

from app.errors import InvalidInput

Interval = Literal["minute", "hour", "day", "week", "month"]
INTERVALS: tuple[Interval, ...] = ("minute", "hour", "day", "week", "month")
PERIODS: dict[str, str] = {
    "realtime": "Realtime",
    "today": "Today",
    "yesterday": "Yesterday",
    "24h": "Last 24 hours",
    "7d": "Last 7 days",
    "28d": "Last 28 days",
    "30d": "Last 30 days",
    "91d": "Last 91 days",
    "month": "Month to date",
    "last_month": "Last month",
    "year": "Year to date",
    "12mo": "Last 12 months",
    "all": "All time",
    "custom": "Custom range",
}
DEFAULT_PERIOD = "30d"
COMPARISONS: dict[str, str] = {
    "off": "No comparison",
    "previous_period": "Previous period",
    "year_over_year": "Year over year",
    "custom": "Custom period",
}
REALTIME_MINUTES = 30
EARLIEST = dt.date(2000, 1, 1)  # no site has data before this; custom ranges start here at most
MAX_DAY_BUCKETS = 731  # a chart by day spans two years at most; longer ranges go by week/month
_DAYS = {"7d": 7, "28d": 28, "30d": 30, "91d": 91}


@dataclass(frozen=True, slots=True)
class Period:
    key: str
    label: str
    start: dt.datetime  # UTC, inclusive
    end: dt.datetime  # UTC, exclusive
    timezone: str
    interval: Interval
    now: dt.datetime  # UTC: data after it does not exist yet (the incomplete last bucket)

    @property
    def bucket(self) -> Interval:
        return self.interval

    @property
    def local_start(self) -> dt.datetime:
        return _local(self.start, self.timezone)

    @property
    def local_end(self) -> dt.datetime:
        return _local(self.end, self.timezone)

    @property
    def first_day(self) -> dt.date:
        return self.local_start.date()

    @property
    def last_day(self) -> dt.date:
        return (self.local_end - dt.timedelta(seconds=1)).date()

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    def intervals(self) -> tuple[Interval, ...]:
        """The intervals a chart of this period may be bucketed by."""
        return allowed_intervals(self.key, self.days)

    def with_interval(self, interval: str | None) -> Period:
        if not interval:
            return self
        if interval not in self.intervals():
            raise InvalidInput(
                f"interval {interval!r} does not fit {self.label.lower()}; "
                f"use one of {', '.join(self.intervals())}"
            )
        return replace(self, interval=interval)

    def buckets(self) -> list[dt.datetime]:
        """Every bucket start (local wall time, naive) in the period, for zero-filled charts.

        Week and month buckets start on a Monday or the 1st, or at the period's start when that
        comes later (the first bucket is clipped to the range, as the queries clip it).
        """
        current = self.local_start
        last = self.local_end - dt.timedelta(seconds=1)
        result = []
        while current <= last:
            result.append(current)
            current = _next_bucket(current, self.interval)
        return result

    def incomplete_from(self) -> dt.datetime | None:
        """The local start of the first bucket that has not ended yet (drawn as incomplete)."""
        if self.now >= self.end:
            return None
        local_now = _local(self.now, self.timezone)
        started = [start for start in self.buckets() if start <= local_now]
        return started[-1] if started else None

    def elapsed(self) -> Period:
        """The part of the period up to now, rounded up to the hour (rollups are hourly)."""
        if self.now >= self.end:
            return self
        cut = self.now.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
        return replace(self, end=max(self.start, min(cut, self.end)))

    def shifted(self, step: int) -> tuple[dt.date, dt.date] | None:
        """The custom range `step` periods before (< 0) or after this one: the same length,
        or whole months for month ranges. None when the range has no neighbour (realtime)."""
        if self.key in ("realtime", "24h"):
            return None
        first, last = self.first_day, self.last_day
        if self.key in ("month", "last_month") or _whole_months(first, last):
            months = (last.year - first.year) * 12 + last.month - first.month + 1
            start = _add_months(first, step * months)
            return start, _add_months(start, months) - dt.timedelta(days=1)
        length = dt.timedelta(days=self.days)
        return first + step * length, last + step * length


def allowed_intervals(key: str, days: int) -> tuple[Interval, ...]:
    if key == "realtime":
        return ("minute",)
    if days <= 1:
        return ("hour",)
    allowed: list[Interval] = []
    if days <= 7:
        allowed.append("hour")
    if days <= MAX_DAY_BUCKETS:
        allowed.append("day")
    if days >= 14:
        allowed.append("week")
    if days >= 45:
        allowed.append("month")
    return tuple(allowed)


def default_interval(key: str, days: int) -> Interval:
    if key == "realtime":
        return "minute"
    if days <= 1:
        return "hour"
    if (key in ("year", "12mo", "all") and days > 31) or days > 92:
        return "month"
    return "day"


def resolve_period(
    key: str,
    timezone: str,
    now: dt.datetime,
    *,
    start_date: dt.date | None = None,
    end_date: dt.date | None = None,
    first_day: dt.date | None = None,
    interval: str | None = None,
) -> Period:
    """The period a range key names as of `now`, in `timezone`.

    Day ranges end with today (`7d` = the last 7 local days including today); `custom` needs
    `start_date` and `end_date` (inclusive local days); `all` starts at `first_day` (the site's
    first event; today when it has none).
    """
    if key not in PERIODS:
        raise InvalidInput(f"unknown period {key!r}; use one of {', '.join(PERIODS)}")
    zone = ZoneInfo(timezone)
    local_now = now.astimezone(zone).replace(tzinfo=None)
    today = local_now.date()
    if key == "realtime":
        end = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        start = end - dt.timedelta(minutes=REALTIME_MINUTES)
        return Period(key, PERIODS[key], start, end, timezone, "minute", now)
    if key == "24h":
        hour = local_now.replace(minute=0, second=0, microsecond=0)
        start_local, end_local = hour - dt.timedelta(hours=23), hour + dt.timedelta(hours=1)
        period = Period(
            key, PERIODS[key], _utc(start_local, zone), _utc(end_local, zone), timezone, "hour", now
        )
        return period.with_interval(interval)
    first, last = _days_of(key, today, start_date, end_date, first_day)
    label = custom_label(first, last) if key == "custom" else PERIODS[key]
    days = (last - first).days + 1
    period = Period(
        key,
        label,
        _utc(dt.datetime.combine(first, dt.time()), zone),
        _utc(dt.datetime.combine(last + dt.timedelta(days=1), dt.time()), zone),
        timezone,
        default_interval(key, days),
        now,
    )
    return period.with_interval(interval)


def _days_of(
    key: str,
    today: dt.date,
    start_date: dt.date | None,
    end_date: dt.date | None,
    first_day: dt.date | None,
) -> tuple[dt.date, dt.date]:
    """(first, last) local day of a day-based range."""
    if key in _DAYS:
        return today - dt.timedelta(days=_DAYS[key] - 1), today
    match key:
        case "today":
            return today, today
        case "yesterday":
            return today - dt.timedelta(days=1), today - dt.timedelta(days=1)
        case "month":
            return today.replace(day=1), today
        case "last_month":
            last = today.replace(day=1) - dt.timedelta(days=1)
            return last.replace(day=1), last
        case "year":
            return today.replace(month=1, day=1), today
        case "12mo":
            return _add_months(today.replace(day=1), -11), today
        case "all":
            return min(max(first_day or today, EARLIEST), today), today
    return custom_days(start_date, end_date)


def custom_days(start: dt.date | None, end: dt.date | None) -> tuple[dt.date, dt.date]:
    if start is None or end is None:
        raise InvalidInput("a custom range needs both a start and an end date")
    if start > end:
        raise InvalidInput("a custom range must start on or before its end date")
    if start < EARLIEST or end > dt.date(2100, 12, 31):
        raise InvalidInput(f"a custom range must lie between {EARLIEST} and 2100-12-31")
    return start, end


def parse_date(value: str | None, field: str) -> dt.date | None:
    """An ISO date (YYYY-MM-DD) from a URL, or None when absent."""
    if not value:
        return None
    try:
        if len(value) == 10:
            return dt.date.fromisoformat(value)
    except ValueError:
        pass
    raise InvalidInput(f"{field} must be a date as YYYY-MM-DD")


def custom_label(first: dt.date, last: dt.date) -> str:
    if first == last:
        return first.strftime("%a, %b %-d, %Y")
    if first.year == last.year:
        return f"{first.strftime('%b %-d')} – {last.strftime('%b %-d, %Y')}"
    return f"{first.strftime('%b %-d, %Y')} – {last.strftime('%b %-d, %Y')}"


def compare(
    period: Period,
    mode: str,
    *,
    match_day_of_week: bool = False,
    start_date: dt.date | None = None,
    end_date: dt.date | None = None,
) -> Period | None:
    """The period `period` is compared with, bucketed like it (None when `mode` is off).

    `previous_period`: the same length right before (whole months before a month range);
    `year_over_year`: the same dates a year before (29 February → 28 February); `custom`: the
    given days. `match_day_of_week` moves the start back to the weekday the range starts on,
    so Mondays are compared with Mondays.
    """
    if mode not in COMPARISONS:
        raise InvalidInput(f"unknown comparison {mode!r}; use one of {', '.join(COMPARISONS)}")
    if mode == "off":
        return None
    if period.key in ("realtime", "24h"):
        if mode != "previous_period":
            raise InvalidInput(f"{period.label.lower()} compares with the previous period only")
        length = period.end - period.start
        return replace(
            period,
            key="compare",
            label="Previous period",
            start=period.start - length,
            end=period.end - length,
            now=period.now - length,
        )
    first, last = period.first_day, period.last_day
    if mode == "previous_period":
        shifted = period.shifted(-1)
        assert shifted is not None
        first, last = shifted
    elif mode == "year_over_year":
        first, last = _year_before(first), _year_before(last)
    else:
        first, last = custom_days(start_date, end_date)
    if match_day_of_week and mode != "custom":
        back = (first.weekday() - period.first_day.weekday()) % 7
        first, last = first - dt.timedelta(days=back), last - dt.timedelta(days=back)
    zone = ZoneInfo(period.timezone)
    start = _utc(dt.datetime.combine(first, dt.time()), zone)
    return Period(
        key="compare",
        label=custom_label(first, last),
        start=start,
        end=_utc(dt.datetime.combine(last + dt.timedelta(days=1), dt.time()), zone),
        timezone=period.timezone,
        interval=period.interval,
        now=start + (min(period.now, period.end) - period.start),
    )


def utc_offset_minutes(timezone: str, epoch_ms: int) -> int:
    """The timezone's offset from UTC at that moment, in minutes (local time = UTC + offset)."""
    moment = dt.datetime.fromtimestamp(epoch_ms / 1000, ZoneInfo(timezone))
    offset = moment.utcoffset()
    return int(offset.total_seconds()) // 60 if offset is not None else 0


def _next_bucket(current: dt.datetime, interval: Interval) -> dt.datetime:
    if interval == "minute":
        return current + dt.timedelta(minutes=1)
    if interval == "hour":
        return current + dt.timedelta(hours=1)
    day = current.replace(hour=0, minute=0, second=0, microsecond=0)
    if interval == "day":
        return day + dt.timedelta(days=1)
    if interval == "week":
        return day + dt.timedelta(days=7 - day.weekday())
    return dt.datetime.combine(_add_months(day.date().replace(day=1), 1), dt.time())


def _whole_months(first: dt.date, last: dt.date) -> bool:
    return first.day == 1 and (last + dt.timedelta(days=1)).day == 1


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return day.replace(
        year=year, month=month + 1, day=min(day.day, calendar.monthrange(year, month + 1)[1])
    )


def _year_before(day: dt.date) -> dt.date:
    return _add_months(day, -12)


def _local(moment: dt.datetime, timezone: str) -> dt.datetime:
    return moment.astimezone(ZoneInfo(timezone)).replace(tzinfo=None)


def _utc(naive_local: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    return naive_local.replace(tzinfo=zone).astimezone(dt.UTC)
