"""Worker-side enrichment: stream entries → column-oriented data for ClickHouse.

Work that depends only on a few fields is done once per distinct value and cached: the
User-Agent's browser, OS and device class (per User-Agent and screen width), and the source and
UTM values an event brings to a visit (per query string, referrer and hostname). Sessionization
runs in stream (= time) order over the whole batch. The result is built column by column, one
list per column in the order of `EVENT_COLUMNS` / `PERFORMANCE_COLUMNS` / `ENGAGEMENT_COLUMNS`,
as the gateway inserts it; no row tuples are built.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from operator import attrgetter
from typing import Any

from app.analytics.buffer import engaged
from app.analytics.buffer.referrers import source_from_referrer, source_from_utm, utm_params
from app.analytics.buffer.stream import BufferedEvent
from app.analytics.buffer.useragent import device_class, parse_user_agent, screen_size
from app.analytics.buffer.visits import Contribution, SessionState, Visit, Visitor, assign
from app.analytics.ingest.limits import ENGAGEMENT_EVENT, PAGEVIEW, PERFORMANCE_EVENT
from app.analytics.ingest.payload import PERF_FIELDS

# What a row of the events and the engagement tables carries of its visit, in this order.
VISIT_COLUMNS = (
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
    "screen_size",
)
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
    *VISIT_COLUMNS,
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
ENGAGEMENT_COLUMNS = (
    "site_id",
    "timestamp",
    "event_id",
    "session_id",
    "visitor_id",
    "hostname",
    "pathname",
    "scroll_depth",
    "engaged_ms",
    "first_beacon",
    "depth_gain",
    *VISIT_COLUMNS,
    "utc_offset",
)
_ZERO = Decimal(0)
# Columns stored as the buffered event carries them (the same name on both sides).
_COPIED_TO_EVENTS = (
    "site_id",
    "event_id",
    "name",
    "visitor_id",
    "hostname",
    "pathname",
    "country_code",
    "region",
    "city",
    "props",
    "revenue_currency",
    "utc_offset",
)
_COPIED_TO_PERFORMANCE = ("site_id", "event_id", "pathname", "country_code", "utc_offset")
_COPIED_TO_ENGAGEMENT = (
    "site_id",
    "event_id",
    "visitor_id",
    "hostname",
    "pathname",
    "scroll_depth",
    "engaged_ms",
    "country_code",
    "region",
    "city",
    "utc_offset",
)
_TIMING_DIGITS = {name: 4 if name == "cls" else 0 for name in PERF_FIELDS}  # 0: whole ms
_SOFTWARE_COLUMNS = ("browser", "browser_version", "os", "os_version", "device")
_UTM_COLUMNS = ("utm_medium", "utm_source", "utm_campaign", "utm_content", "utm_term")
# Keys of the caches below are at most a few KiB (limits.py): each holds at most ~20 MiB.
_CACHED_VALUES = 4_096

UTM = tuple[str, str, str, str, str]
_NO_UTM: UTM = ("", "", "", "", "")
Software = tuple[str, str, str, str, str]  # in the order of `_SOFTWARE_COLUMNS`


@dataclass
class Enriched:
    """Column-oriented data for `events`, `performance` and `engagement` (each empty when it
    has no rows)."""

    events: list[Sequence[Any]]
    performance: list[Sequence[Any]]
    event_rows: int
    performance_rows: int
    engagement: list[Sequence[Any]] = dataclasses.field(default_factory=list)
    engagement_rows: int = 0


def stream_millis(stream_id: bytes) -> int:
    return int(stream_id.split(b"-", 1)[0])


@lru_cache(maxsize=_CACHED_VALUES)
def software_of(user_agent: str, screen_width: int) -> Software:
    software = parse_user_agent(user_agent)
    return (
        software.browser,
        software.browser_version,
        software.os,
        software.os_version,
        device_class(software, screen_width),
    )


@lru_cache(maxsize=_CACHED_VALUES)
def attribution(query: str, referrer: str, hostname: str) -> tuple[str, UTM]:
    """The source an event would give a visit it starts (`utm_source` wins) and its UTM values."""
    utm = utm_params(query)
    if utm[1]:
        return source_from_utm(utm[1]), utm
    return source_from_referrer(referrer, hostname), utm


def enrich(
    millis: Sequence[int],
    events: Sequence[BufferedEvent],
    states: dict[Visitor, SessionState],
    depths: engaged.Depths,
) -> Enriched:
    """`events` in stream order, `millis` their timestamps; `states` and `depths` (the deepest
    scroll of each pair of visitor and page that has a beacon in the batch) are updated in place.

    Performance beacons only become `performance` rows, and engagement beacons `engagement`
    rows: they take no part in sessions, whose totals must add up from the rows stored in
    `events`. An engagement beacon only reads the session its visitor is in at that point of the
    stream (`_engagement_columns`), so it never starts, extends or un-bounces a visit.
    """
    stored: list[BufferedEvent] = []
    visits: list[Visit] = []
    beacons: list[Beacon] = []
    for ts, event in zip(millis, events, strict=True):
        if event.name == PERFORMANCE_EVENT:
            continue
        if event.name == ENGAGEMENT_EVENT:
            beacons.append(Beacon(ts, event, len(visits)))
            continue
        source, utm = attribution(event.query, event.referrer, event.hostname)
        interactive = event.interactive or event.name == PAGEVIEW
        visits.append(
            Visit(
                event.site_id,
                event.visitor_id,
                event.previous_visitor_id,
                ts,
                event.event_id,
                source,
                utm,
                interactive,
            )
        )
        stored.append(event)
    before = dict(states) if beacons else {}  # `assign` replaces the states it changes
    contributions = assign(visits, states)
    timed = [index for index, event in enumerate(events) if event.perf]
    performance = (
        _performance_columns([millis[i] for i in timed], [events[i] for i in timed])
        if timed
        else []
    )
    return Enriched(
        events=_event_columns(stored, visits, contributions) if stored else [],
        performance=performance,
        event_rows=len(stored),
        performance_rows=len(timed),
        engagement=(
            _engagement_columns(beacons, visits, contributions, before, depths) if beacons else []
        ),
        engagement_rows=len(beacons),
    )


@dataclass(frozen=True, slots=True)
class Beacon:
    """An engagement beacon of a batch and how many of the batch's visits came before it."""

    timestamp_ms: int
    event: BufferedEvent
    after: int


def _engagement_columns(
    beacons: list[Beacon],
    visits: list[Visit],
    contributions: list[Contribution],
    before: dict[Visitor, SessionState],
    depths: engaged.Depths,
) -> list[Sequence[Any]]:
    """Each beacon with the session its visitor was in when it arrived (the state of their
    latest event before it, in this batch or an earlier one; none: session 0), that session's
    source and UTM values, its own request's location, software and screen size, and what it
    adds to its pair of page and visitor (`engaged.stamp`)."""
    known = dict(before)
    seen = 0
    sessions: list[SessionState | None] = []
    for beacon in beacons:
        for visit, contribution in zip(
            visits[seen : beacon.after], contributions[seen : beacon.after], strict=True
        ):
            known[visit.site_id, visit.visitor_id] = contribution.state
        seen = beacon.after
        event = beacon.event
        state = known.get((event.site_id, event.visitor_id))
        if state is None and event.previous_visitor_id:
            state = known.get((event.site_id, event.previous_visitor_id))
        sessions.append(state)
    events = [beacon.event for beacon in beacons]
    firsts, gains = engaged.stamp(
        (((e.site_id, e.visitor_id, e.pathname), e.scroll_depth) for e in events), depths
    )
    columns = _copied(events, _COPIED_TO_ENGAGEMENT)
    columns |= _software_columns(events)
    columns |= _transposed(_UTM_COLUMNS, (s.utm if s else _NO_UTM for s in sessions))
    columns |= {
        "timestamp": [beacon.timestamp_ms // 1000 for beacon in beacons],
        "session_id": [s.session_id if s else 0 for s in sessions],
        "referrer_source": [s.source if s else "" for s in sessions],
        "screen_size": [screen_size(event.screen_width) for event in events],
        "first_beacon": firsts,
        "depth_gain": gains,
    }
    return [columns[name] for name in ENGAGEMENT_COLUMNS]


def _event_columns(
    events: list[BufferedEvent], visits: list[Visit], contributions: list[Contribution]
) -> list[Sequence[Any]]:
    sessions = [contribution.state for contribution in contributions]
    columns = _copied(events, _COPIED_TO_EVENTS)
    columns |= _software_columns(events)
    columns |= _transposed(_UTM_COLUMNS, (session.utm for session in sessions))
    columns |= {
        "timestamp": [visit.timestamp_ms // 1000 for visit in visits],
        "session_id": [session.session_id for session in sessions],
        "session_start": [contribution.start for contribution in contributions],
        "session_bounce": [contribution.bounce for contribution in contributions],
        "session_seconds": [contribution.seconds for contribution in contributions],
        "interactive": [visit.interactive for visit in visits],
        "referrer": [
            event.referrer if visit.source else ""
            for event, visit in zip(events, visits, strict=True)
        ],
        "referrer_source": [session.source for session in sessions],
        "screen_size": [screen_size(event.screen_width) for event in events],
        "revenue": [
            Decimal(event.revenue_amount) if event.revenue_amount else _ZERO for event in events
        ],
    }
    return [columns[name] for name in EVENT_COLUMNS]


def _performance_columns(millis: list[int], events: list[BufferedEvent]) -> list[Sequence[Any]]:
    import pyarrow as pa  # type: ignore[import-untyped]  # worker-side only, like the gateway
    import pyarrow.compute as pc  # type: ignore[import-untyped]

    columns = _copied(events, _COPIED_TO_PERFORMANCE)
    columns |= _software_columns(events)  # only browser and device are stored
    columns["timestamp"] = [ts // 1000 for ts in millis]
    # Arrow reads the beacons' timings (dicts) into a column per timing in one pass in C,
    # missing ones null, and rounds them (halves up: timings are never negative); the gateway
    # casts each to its column's type. Picking and rounding value by value in Python cost more
    # than the rest of a beacon's enrichment.
    timings = pa.array([event.perf for event in events], type=_timings_type())
    for name, digits in _TIMING_DIGITS.items():
        columns[name] = pc.round(timings.field(name), ndigits=digits, round_mode="half_up")
    return [columns[name] for name in PERFORMANCE_COLUMNS]


@lru_cache(maxsize=1)
def _timings_type() -> Any:
    import pyarrow as pa

    return pa.struct([(name, pa.float64()) for name in PERF_FIELDS])


def _copied(events: list[BufferedEvent], names: tuple[str, ...]) -> dict[str, Sequence[Any]]:
    # One column at a time: reading rows and transposing them would make an object per row
    # for the garbage collector to count.
    return {name: list(map(attrgetter(name), events)) for name in names}


def _software_columns(events: list[BufferedEvent]) -> dict[str, Sequence[Any]]:
    return _transposed(
        _SOFTWARE_COLUMNS, (software_of(e.user_agent, e.screen_width) for e in events)
    )


def _transposed(names: Sequence[str], rows: Iterable[Sequence[Any]]) -> dict[str, Sequence[Any]]:
    """Rows of values (one per name; here shared, cached tuples) → a column per name (C `zip`)."""
    return dict(zip(names, zip(*rows, strict=True), strict=True))
