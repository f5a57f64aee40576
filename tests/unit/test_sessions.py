"""Sessionization on event time, never on wall-clock expiry."""

from __future__ import annotations

from app.analytics.ids import id_millis
from app.analytics.sessions import SESSION_TIMEOUT_MS, SessionState, Visit, assign, state_key

MINUTE = 60_000
NO_UTM = ("", "", "", "", "")


def visit(ts: int, visitor: int = 1, previous: int = 0, source: str = "", event: int = 7) -> Visit:
    return Visit(1, visitor, previous, ts, event, source, NO_UTM)


def test_gap_up_to_thirty_minutes_continues_the_session():
    states: dict[str, SessionState] = {}
    t0 = 1_700_000_000_000
    first, second, third = assign(
        [visit(t0, source="Google"), visit(t0 + 29 * MINUTE), visit(t0 + 59 * MINUTE)], states
    )
    assert first.session_id == second.session_id == third.session_id
    assert third.source == "Google"  # the entry source sticks to the whole visit
    assert id_millis(first.session_id) == t0


def test_longer_gap_starts_a_new_session():
    states: dict[str, SessionState] = {}
    t0 = 1_700_000_000_000
    first, second = assign([visit(t0), visit(t0 + SESSION_TIMEOUT_MS + 1, source="Bing")], states)
    assert first.session_id != second.session_id
    assert second.source == "Bing"


def test_same_input_gives_same_sessions_regardless_of_processing_time():
    t0 = 1_600_000_000_000  # years ago: back-filled data
    visits = [visit(t0 + i * 10 * MINUTE, event=i) for i in range(6)]
    assert assign(visits, {}) == assign(visits, {})


def test_state_carries_across_batches():
    states: dict[str, SessionState] = {}
    t0 = 1_700_000_000_000
    [first] = assign([visit(t0)], states)
    [later] = assign([visit(t0 + 10 * MINUTE)], states)
    assert later.session_id == first.session_id
    assert states[state_key(1, 1)].last_ms == t0 + 10 * MINUTE


def test_out_of_order_event_stays_in_the_session():
    states: dict[str, SessionState] = {}
    t0 = 1_700_000_000_000
    a, b = assign([visit(t0 + 5 * MINUTE), visit(t0)], states)
    assert a.session_id == b.session_id
    assert states[state_key(1, 1)].last_ms == t0 + 5 * MINUTE


def test_visit_survives_the_daily_salt_rotation():
    states: dict[str, SessionState] = {}
    t0 = 1_700_000_000_000
    [before] = assign([visit(t0, visitor=111)], states)
    [after] = assign([visit(t0 + MINUTE, visitor=222, previous=111)], states)
    assert after.session_id == before.session_id


def test_visitors_do_not_share_sessions():
    states: dict[str, SessionState] = {}
    t0 = 1_700_000_000_000
    a, b = assign([visit(t0, visitor=1, event=1), visit(t0, visitor=2, event=2)], states)
    assert a.session_id != b.session_id
