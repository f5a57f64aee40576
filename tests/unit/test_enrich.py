"""Worker-side enrichment: columns per table, and caches that give what the uncached work gives."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from app.analytics.buffer.enrich import (
    ENGAGEMENT_COLUMNS,
    EVENT_COLUMNS,
    PERFORMANCE_COLUMNS,
    attribution,
    enrich,
    software_of,
    stream_millis,
)
from app.analytics.buffer.referrers import source_from_referrer, source_from_utm, utm_params
from app.analytics.buffer.stream import BufferedEvent
from app.analytics.buffer.useragent import device_class, parse_user_agent, screen_size
from app.analytics.buffer.visits import SESSION_TIMEOUT_MS, SessionState
from app.analytics.ingest.limits import ENGAGEMENT_EVENT, PERFORMANCE_EVENT
from app.cli.demo import AGENTS, SOURCES

T0 = 1_700_000_000_400
CHROME = AGENTS[0][0]
HOST = "example.com"


def _rows(names: tuple[str, ...], columns: list[Any], count: int) -> list[dict[str, Any]]:
    assert len(columns) == len(names)
    assert all(len(column) == count for column in columns)
    # Timing columns are Arrow arrays (the gateway casts them): read them as Python values.
    plain = [c.to_pylist() if hasattr(c, "to_pylist") else c for c in columns]
    return [dict(zip(names, values, strict=True)) for values in zip(*plain, strict=True)]


def _event(event_id: int, name: str = "pageview", **fields: Any) -> BufferedEvent:
    defaults: dict[str, Any] = {"pathname": "/p", "visitor_id": 77}
    return BufferedEvent(
        site_id=3,
        event_id=event_id,
        name=name,
        hostname=HOST,
        user_agent=CHROME,
        **{**defaults, **fields},
    )


def test_each_event_becomes_a_row_of_its_table():
    events = [
        _event(1, referrer="https://www.google.com/", query="a=1&utm_source=hn&utm_medium=social"),
        _event(2, PERFORMANCE_EVENT, interactive=False, perf={"ttfb": 120.6, "cls": 0.123456}),
        _event(3, "Signup", props={"plan": "pro"}, revenue_amount="9.5", revenue_currency="EUR"),
    ]
    millis = [T0, T0 + 1_000, T0 + 61_000]
    states: dict[tuple[int, int], SessionState] = {}
    enriched = enrich(millis, events, states, {})

    first, signup = _rows(EVENT_COLUMNS, enriched.events, enriched.event_rows)
    assert (first["site_id"], first["event_id"], first["timestamp"]) == (3, 1, T0 // 1000)
    assert (first["referrer"], first["referrer_source"]) == (
        "https://www.google.com/",
        "Hacker News",
    )
    assert (first["utm_source"], first["utm_medium"], first["utm_campaign"]) == ("hn", "social", "")
    assert (first["browser"], first["os"], first["device"]) == ("Chrome", "Windows", "Desktop")
    assert (first["session_start"], first["session_bounce"], first["revenue"]) == (1, 1, Decimal(0))
    assert signup["session_id"] == first["session_id"]
    assert signup["referrer_source"] == "Hacker News"  # the session's entry source
    assert signup["referrer"] == ""  # the event itself came from no referrer
    assert (signup["session_start"], signup["session_bounce"], signup["session_seconds"]) == (
        0,
        -1,
        61,
    )
    assert (signup["props"], signup["revenue"], signup["revenue_currency"]) == (
        {"plan": "pro"},
        Decimal("9.5"),
        "EUR",
    )

    [timings] = _rows(PERFORMANCE_COLUMNS, enriched.performance, enriched.performance_rows)
    assert (timings["event_id"], timings["timestamp"], timings["browser"]) == (
        2,
        T0 // 1000 + 1,
        "Chrome",
    )
    assert (timings["ttfb"], timings["cls"], timings["lcp"]) == (121, 0.1235, None)
    assert len(states) == 1  # the beacon takes no part in sessions


def test_a_batch_without_rows_for_a_table_has_no_columns_for_it():
    enriched = enrich([T0], [_event(1)], {}, {})
    assert (enriched.event_rows, enriched.performance_rows, enriched.performance) == (1, 0, [])


def test_stream_ids_give_their_milliseconds():
    assert stream_millis(b"1700000000123-7") == 1_700_000_000_123


def test_cached_lookups_give_what_the_uncached_work_gives():
    for agent, _ in AGENTS:
        for width in (0, 400, 800, 1400):
            software = parse_user_agent.__wrapped__(agent)
            expected = (*software[:4], device_class(software, width))
            assert software_of(agent, width) == software_of(agent, width) == expected
    referrers = [referrer for source in SOURCES for referrer in source.referrers]
    queries = ["", "utm_source=fb&utm_medium=paid", "utm_campaign=only", "x=1&utm_source=Mail"]
    for referrer in [*referrers, f"https://{HOST}/internal"]:
        for query in queries:
            utm = utm_params(query)
            source = source_from_referrer.__wrapped__(referrer, HOST)
            visit = (source_from_utm(utm[1]) if utm[1] else source, utm)
            assert attribution(query, referrer, HOST) == attribution(query, referrer, HOST) == visit


def _sessions(columns: list[Any], count: int) -> list[tuple[int, int, int, int]]:
    rows = _rows(EVENT_COLUMNS, columns, count)
    keys = ("session_id", "session_start", "session_bounce", "session_seconds")
    return [tuple(row[key] for key in keys) for row in rows]


def test_engagement_beacons_read_the_session_they_arrive_in_and_change_nothing():
    beacon = {"scroll_depth": 80, "engaged_ms": 9_000, "screen_width": 390}
    late = T0 + SESSION_TIMEOUT_MS + 5_000
    events = [
        _event(1, referrer="https://news.ycombinator.com/", screen_width=390),
        _event(2, ENGAGEMENT_EVENT, pathname="/p", **beacon),
        _event(3, pathname="/q", screen_width=390),  # a new visit: the 30 minutes are over
        _event(4, ENGAGEMENT_EVENT, pathname="/q", **beacon),
        _event(5, ENGAGEMENT_EVENT, visitor_id=78, **beacon),  # a visitor with no visit
    ]
    millis = [T0, T0 + 9_500, late, late + 1_000, late + 2_000]
    enriched = enrich(millis, events, {}, {})
    without = enrich([T0, late], [events[0], events[2]], {}, {})
    assert _sessions(enriched.events, 2) == _sessions(without.events, 2)  # as if never sent
    first, second = _sessions(enriched.events, 2)
    assert first[1:] == second[1:] == (1, 1, 0)  # two bounced visits

    rows = _rows(ENGAGEMENT_COLUMNS, enriched.engagement, enriched.engagement_rows)
    assert [(row["pathname"], row["session_id"]) for row in rows] == [
        ("/p", first[0]),
        ("/q", second[0]),
        ("/p", 0),
    ]
    assert rows[0]["referrer_source"] == "Hacker News"  # the visit's source
    assert rows[1]["referrer_source"] == ""  # the second visit came from no referrer
    assert {(row["scroll_depth"], row["engaged_ms"], row["screen_size"]) for row in rows} == {
        (80, 9_000, "Mobile")
    }
    assert [row["timestamp"] for row in rows] == [m // 1000 for m in millis[1::2]] + [
        millis[4] // 1000
    ]
    assert (rows[0]["browser"], rows[0]["device"]) == ("Chrome", "Mobile")


def test_beacon_reads_a_state_of_an_earlier_batch_or_of_yesterdays_visitor_id():
    state = SessionState(555, T0 - 60_000, T0 - 60_000, 1, "Google")
    beacon = _event(9, ENGAGEMENT_EVENT, visitor_id=80, previous_visitor_id=77)
    states = {(3, 77): state}
    enriched = enrich([T0], [beacon], states, {})
    [row] = _rows(ENGAGEMENT_COLUMNS, enriched.engagement, 1)
    assert (row["session_id"], row["referrer_source"]) == (555, "Google")
    assert states == {(3, 77): state}  # read, not changed
    assert enriched.event_rows == 0


def test_beacons_are_stamped_with_what_they_add_to_their_page_and_visitor():
    beacons = [  # visitor, page, scroll depth
        (77, "/p", 40), (77, "/p", 70), (77, "/q", 10), (78, "/p", 20), (77, "/p", 50),
        (79, "/p", 30),
    ]  # fmt: skip
    events = [
        _event(i, ENGAGEMENT_EVENT, visitor_id=v, pathname=page, scroll_depth=depth)
        for i, (v, page, depth) in enumerate(beacons)
    ]
    depths = {(3, 79, "/p"): 60}  # 79's deepest on /p, from an earlier batch
    enriched = enrich([T0 + i for i in range(len(events))], events, {}, depths)
    rows = _rows(ENGAGEMENT_COLUMNS, enriched.engagement, len(events))
    assert [(row["first_beacon"], row["depth_gain"]) for row in rows] == [
        (1, 40), (0, 30), (1, 10), (1, 20), (0, 0), (0, 0),
    ]  # fmt: skip
    assert depths == {(3, 77, "/p"): 70, (3, 77, "/q"): 10, (3, 78, "/p"): 20, (3, 79, "/p"): 60}
    # per pair, the gains add up to the deepest scroll and the firsts to one
    for pair in {(v, page) for v, page, _ in beacons} - {(79, "/p")}:
        mine = [row for row in rows if (row["visitor_id"], row["pathname"]) == pair]
        assert sum(row["depth_gain"] for row in mine) == max(row["scroll_depth"] for row in mine)
        assert sum(row["first_beacon"] for row in mine) == 1


def test_screen_sizes_are_plausibles():
    sizes = [screen_size(width) for width in (0, 320, 575, 576, 991, 992, 1439, 1440, 3840)]
    assert sizes == ["", "Mobile", "Mobile", "Tablet", "Tablet", "Laptop", "Laptop", "Desktop",
                     "Desktop"]  # fmt: skip
