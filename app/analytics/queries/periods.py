"""Date ranges a dashboard can show, resolved in the site's timezone and stored as UTC."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from app.errors import InvalidInput

Bucket = Literal["hour", "day"]
PERIODS: dict[str, tuple[str, int]] = {
    "today": ("Today", 1),
    "7d": ("Last 7 days", 7),
    "30d": ("Last 30 days", 30),
}
DEFAULT_PERIOD = "30d"


@dataclass(frozen=True, slots=True)
class Period:
    key: str
    label: str
    start: dt.datetime  # UTC, inclusive
    end: dt.datetime  # UTC, exclusive
    timezone: str
    bucket: Bucket

    def buckets(self) -> list[dt.datetime]:
        """Every bucket start (local wall time, naive) in the period, for zero-filled charts."""
        zone = ZoneInfo(self.timezone)
        current = self.start.astimezone(zone).replace(tzinfo=None)
        last = (self.end - dt.timedelta(seconds=1)).astimezone(zone).replace(tzinfo=None)
        step = dt.timedelta(hours=1) if self.bucket == "hour" else dt.timedelta(days=1)
        result = []
        while current <= last:
            result.append(current)
            current += step
        return result


def resolve_period(key: str, timezone: str, now: dt.datetime) -> Period:
    """`today` = local midnight until the next; `7d`/`30d` = the last N local days incl. today."""
    if key not in PERIODS:
        raise InvalidInput(f"unknown period {key!r}; use one of {', '.join(PERIODS)}")
    label, days = PERIODS[key]
    zone = ZoneInfo(timezone)
    local_midnight = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    start_local = local_midnight - dt.timedelta(days=days - 1)
    end_local = local_midnight + dt.timedelta(days=1)
    return Period(
        key=key,
        label=label,
        start=_to_utc(start_local.replace(tzinfo=None), zone),
        end=_to_utc(end_local.replace(tzinfo=None), zone),
        timezone=timezone,
        bucket="hour" if days == 1 else "day",
    )


def utc_offset_minutes(timezone: str, epoch_ms: int) -> int:
    """The timezone's offset from UTC at that moment, in minutes (local time = UTC + offset)."""
    moment = dt.datetime.fromtimestamp(epoch_ms / 1000, ZoneInfo(timezone))
    offset = moment.utcoffset()
    return int(offset.total_seconds()) // 60 if offset is not None else 0


def _to_utc(naive_local: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    return naive_local.replace(tzinfo=zone).astimezone(dt.UTC)
