"""Sessionization on event time, never on wall-clock expiry."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from app.analytics.buffer.visits import (
    SESSION_TIMEOUT_MS,
    Contribution,
    SessionState,
    Visit,
    Visitor,
    assign,
    assign_in_time_order,
)
from app.analytics.ingest.ids import id_millis

MINUTE = 60_000
NO_UTM = ("", "", "", "", "")


def visit(
    ts: int,
    visitor: int = 1,
    previous: int = 0,
    source: str = "",
    event: int = 7,
    interactive: bool = True,
) -> Visit:
    return Visit(1, visitor, previous, ts, event, source, NO_UTM, interactive)


def test_gap_up_to_thirty_minutes_continues_the_session():
    states: dict[tuple[int, int], SessionState] = {}
    t0 = 1_700_000_000_000
    first, second, third = assign(
        [visit(t0, source="Google"), visit(t0 + 29 * MINUTE), visit(t0 + 59 * MINUTE)], states
    )
    assert first.state.session_id == second.state.session_id == third.state.session_id
    assert third.state.source == "Google"  # the entry source sticks to the whole visit
    assert id_millis(first.state.session_id) == t0


def test_longer_gap_starts_a_new_session():
    states: dict[tuple[int, int], SessionState] = {}
    t0 = 1_700_000_000_000
    first, second = assign([visit(t0), visit(t0 + SESSION_TIMEOUT_MS + 1, source="Bing")], states)
    assert first.state.session_id != second.state.session_id
    assert second.state.source == "Bing"


def test_same_input_gives_same_sessions_regardless_of_processing_time():
    t0 = 1_600_000_000_000  # years ago: back-filled data
    visits = [visit(t0 + i * 10 * MINUTE, event=i) for i in range(6)]
    assert assign(visits, {}) == assign(visits, {})


def test_state_carries_across_batches():
    states: dict[tuple[int, int], SessionState] = {}
    t0 = 1_700_000_000_000
    [first] = assign([visit(t0)], states)
    [later] = assign([visit(t0 + 10 * MINUTE)], states)
    assert later.state.session_id == first.state.session_id
    assert states[1, 1].last_ms == t0 + 10 * MINUTE


def test_out_of_order_event_stays_in_the_session():
    states: dict[tuple[int, int], SessionState] = {}
    t0 = 1_700_000_000_000
    a, b = assign([visit(t0 + 5 * MINUTE), visit(t0)], states)
    assert a.state.session_id == b.state.session_id
    assert states[1, 1].last_ms == t0 + 5 * MINUTE


def test_visit_survives_the_daily_salt_rotation():
    states: dict[tuple[int, int], SessionState] = {}
    t0 = 1_700_000_000_000
    [before] = assign([visit(t0, visitor=111)], states)
    [after] = assign([visit(t0 + MINUTE, visitor=222, previous=111)], states)
    assert after.state.session_id == before.state.session_id


def test_visitors_do_not_share_sessions():
    states: dict[tuple[int, int], SessionState] = {}
    t0 = 1_700_000_000_000
    a, b = assign([visit(t0, visitor=1, event=1), visit(t0, visitor=2, event=2)], states)
    assert a.state.session_id != b.state.session_id


def totals(contributions: list[Contribution]) -> tuple[int, int, int]:
    return (
        sum(c.start for c in contributions),
        sum(c.bounce for c in contributions),
        sum(c.seconds for c in contributions),
    )


def test_contributions_add_up_to_visits_bounces_and_duration():
    states: dict[tuple[int, int], SessionState] = {}
    t0 = 1_700_000_000_400  # not on a whole second: lengths count stored (whole) seconds
    bounced = assign([visit(t0, visitor=1)], states)
    engaged = assign([visit(t0 + ms, visitor=2) for ms in (0, 700, 95_000, 95_500)], {})
    assert totals(bounced) == (1, 1, 0)
    # (t0 + 95.5 s) // 1000 - t0 // 1000 = 95 whole seconds; it bounced no more after event 2.
    assert [c.bounce for c in engaged] == [1, -1, 0, 0]
    assert totals(engaged) == (1, 0, 95)


def test_non_interactive_events_do_not_end_a_bounce():
    states: dict[tuple[int, int], SessionState] = {}
    t0 = 1_700_000_000_000
    contributions = assign(
        [
            visit(t0),
            visit(t0 + MINUTE, interactive=False),
            visit(t0 + 2 * MINUTE, interactive=False),
        ],
        states,
    )
    assert totals(contributions) == (1, 1, 120)
    [more] = assign([visit(t0 + 3 * MINUTE)], states)
    assert more.bounce == -1


def test_contributions_across_batches_and_a_timeout():
    states: dict[tuple[int, int], SessionState] = {}
    t0 = 1_700_000_000_000
    first = assign([visit(t0), visit(t0 + MINUTE)], states)
    second = assign(
        [visit(t0 + 3 * MINUTE), visit(t0 + 3 * MINUTE + SESSION_TIMEOUT_MS + 1)], states
    )
    assert totals(first + second[:1]) == (1, 0, 180)
    assert (second[1].start, second[1].bounce, second[1].seconds) == (1, 1, 0)


def test_out_of_order_event_lengthens_the_session_by_what_it_adds():
    states: dict[tuple[int, int], SessionState] = {}
    t0 = 1_700_000_000_000
    contributions = assign([visit(t0 + 5 * MINUTE), visit(t0), visit(t0 + 6 * MINUTE)], states)
    assert [c.seconds for c in contributions] == [0, 300, 60]


# `assign_in_time_order` (whole arrays, for the demo generator) is `assign`, event for event.

T0 = 1_700_000_000_000
# Gaps around the timeout (and ties) are the interesting ones.
GAPS = st.one_of(
    st.integers(0, 2_000),
    st.sampled_from([SESSION_TIMEOUT_MS, SESSION_TIMEOUT_MS + 1]),
    st.integers(SESSION_TIMEOUT_MS - 1_000, SESSION_TIMEOUT_MS + 1_000),
    st.integers(0, 3 * SESSION_TIMEOUT_MS),
)
EVENTS = st.lists(
    st.tuples(st.integers(1, 4), GAPS, st.integers(0, (1 << 63) - 1), st.booleans()),
    min_size=1,
    max_size=60,
)


def _by_assign(visitors: list[int], times: list[int], ids: list[int], interactive: list[bool]):
    """`assign` over the events in time order (ties as given), back in the given order."""
    order = sorted(range(len(times)), key=times.__getitem__)
    states: dict[Visitor, SessionState] = {}
    visits = [visit(times[i], visitors[i], event=ids[i], interactive=interactive[i]) for i in order]
    contributions = dict(zip(order, assign(visits, states), strict=True))
    return [
        (c.state.session_id, c.start, c.bounce, c.seconds)
        for c in (contributions[i] for i in range(len(times)))
    ]


@settings(max_examples=300, deadline=None)
@given(EVENTS, st.randoms(use_true_random=False))
def test_whole_arrays_give_what_assign_gives(events, random):
    visitors = [visitor for visitor, _, _, _ in events]
    times = list(np.cumsum([gap for _, gap, _, _ in events]) + T0)
    random.shuffle(times)  # any arrival order: the result is that of time order
    ids = [event_id for _, _, event_id, _ in events]
    interactive = [flag for _, _, _, flag in events]
    sessions = assign_in_time_order(
        np.array(visitors, dtype=np.int64),
        np.array(times, dtype=np.int64),
        np.array(ids, dtype=np.int64),
        np.array(interactive, dtype=bool),
    )
    arrays = list(zip(*(values.tolist() for values in sessions), strict=True))
    assert arrays == _by_assign(visitors, [int(t) for t in times], ids, interactive)
