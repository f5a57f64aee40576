"""Worker-side enrichment: stream entries → column-oriented rows for ClickHouse.

UA parsing and referrer classification are cached per distinct value; sessionization runs in
stream (= time) order over the whole batch; the result is built column by column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.analytics.buffer import BufferedEvent
from app.analytics.limits import PAGEVIEW, PERFORMANCE_EVENT
from app.analytics.payload import PERF_FIELDS
from app.analytics.referrers import source_from_referrer, source_from_utm, utm_params
from app.analytics.sessions import SessionState, Visit, assign
from app.analytics.useragent import device_class, parse_user_agent

EVENT_COLUMNS = (
    "site_id",
    "timestamp",
    "event_id",
    "name",
    "visitor_id",
    "session_id",
    "session_start",
    "session_bounce",
    "session_seconds",
    "interactive",
    "hostname",
    "pathname",
    "referrer",
    "referrer_source",
    "utm_medium",
    "utm_source",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "country_code",
    "region",
    "city",
    "browser",
    "browser_version",
    "os",
    "os_version",
    "device",
    "props",
    "revenue",
    "revenue_currency",
    "utc_offset",
)
PERFORMANCE_COLUMNS = (
    "site_id",
    "timestamp",
    "event_id",
    "pathname",
    "country_code",
    "browser",
    "device",
    *PERF_FIELDS,
    "utc_offset",
)
_ZERO = Decimal(0)


@dataclass
class Enriched:
    events: list[tuple[Any, ...]] = field(default_factory=list)
    performance: list[tuple[Any, ...]] = field(default_factory=list)

    @staticmethod
    def columns(rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
        """Row tuples → one list per column (callers skip empty row lists)."""
        return [list(column) for column in zip(*rows, strict=True)]


def stream_millis(stream_id: bytes | str) -> int:
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    return int(text.split("-", 1)[0])


def visit_of(event: BufferedEvent, timestamp_ms: int) -> Visit:
    utm = utm_params(event.query)
    source = source_from_referrer(event.referrer, event.hostname)
    if utm[1]:
        source = source_from_utm(utm[1])
    return Visit(
        site_id=event.site_id,
        visitor_id=event.visitor_id,
        previous_visitor_id=event.previous_visitor_id,
        timestamp_ms=timestamp_ms,
        event_id=event.event_id,
        source=source,
        utm=utm,
        interactive=event.interactive or event.name == PAGEVIEW,
    )


def enrich(
    entries: Sequence[tuple[int, BufferedEvent]], states: dict[str, SessionState]
) -> Enriched:
    """`entries` are (timestamp ms, event) in stream order; `states` is updated in place.

    Performance beacons only become `performance` rows: they take no part in sessions, whose
    totals must add up from the rows stored in `events`.
    """
    visits = [visit_of(event, ts) for ts, event in entries if event.name != PERFORMANCE_EVENT]
    sessions = iter(zip(visits, assign(visits, states), strict=True))
    out = Enriched()
    for ts, event in entries:
        software = parse_user_agent(event.user_agent)
        device = device_class(software, event.screen_width)
        seconds = ts // 1000
        if event.perf:
            perf = event.perf
            out.performance.append(
                (
                    event.site_id,
                    seconds,
                    event.event_id,
                    event.pathname,
                    event.country_code,
                    software.browser,
                    device,
                    *(_timing(perf.get(name), name) for name in PERF_FIELDS),
                    event.utc_offset,
                )
            )
        if event.name == PERFORMANCE_EVENT:
            continue
        visit, contribution = next(sessions)
        session = contribution.state
        out.events.append(
            (
                event.site_id,
                seconds,
                event.event_id,
                event.name,
                event.visitor_id,
                session.session_id,
                contribution.start,
                contribution.bounce,
                contribution.seconds,
                visit.interactive,
                event.hostname,
                event.pathname,
                event.referrer if visit.source else "",
                session.source,
                *session.utm,
                event.country_code,
                event.region,
                event.city,
                software.browser,
                software.browser_version,
                software.os,
                software.os_version,
                device,
                event.props,
                Decimal(event.revenue_amount) if event.revenue_amount else _ZERO,
                event.revenue_currency,
                event.utc_offset,
            )
        )
    return out


def _timing(value: float | None, name: str) -> float | int | None:
    if value is None:
        return None
    return round(value, 4) if name == "cls" else round(value)
