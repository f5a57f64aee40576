"""Sessionization on event time.

A visit ends after 30 minutes without events, measured between event timestamps (never by
wall-clock expiry), so a backlog, a restart or back-filled data produce the same sessions. The
state per visitor (session id, last event time, entry source and UTM values) lives in Redis;
key TTLs only clean up. Session ids are minted from the entry event's timestamp and id, so the
same input always gives the same session id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import msgspec

from app.analytics.ids import make_id

SESSION_TIMEOUT_MS = 30 * 60 * 1000
STATE_TTL_SECONDS = 2 * 3600
STATE_KEY = "ursa:session:{site}:{visitor}"


class SessionState(msgspec.Struct, array_like=True):
    session_id: int
    last_ms: int
    source: str = ""
    utm: tuple[str, str, str, str, str] = ("", "", "", "", "")


@dataclass(slots=True)
class Visit:
    """What the sessionizer needs from one event (in stream order)."""

    site_id: int
    visitor_id: int
    previous_visitor_id: int
    timestamp_ms: int
    event_id: int
    source: str
    utm: tuple[str, str, str, str, str]


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(SessionState)


def state_key(site_id: int, visitor_id: int) -> str:
    return STATE_KEY.format(site=site_id, visitor=visitor_id)


def keys_for(visitors: Iterable[tuple[int, int, int]]) -> list[str]:
    """State keys for (site id, visitor id, previous-day visitor id) triples, deduplicated."""
    keys: dict[str, None] = {}
    for site_id, visitor_id, previous_visitor_id in visitors:
        keys[state_key(site_id, visitor_id)] = None
        if previous_visitor_id:
            keys[state_key(site_id, previous_visitor_id)] = None
    return list(keys)


def decode_states(keys: Sequence[str], raw: Sequence[bytes | None]) -> dict[str, SessionState]:
    return {key: _decoder.decode(value) for key, value in zip(keys, raw, strict=True) if value}


def encode_state(state: SessionState) -> bytes:
    return _encoder.encode(state)


def assign(visits: Sequence[Visit], states: dict[str, SessionState]) -> list[SessionState]:
    """The session of each visit, in order; `states` is updated in place.

    A visitor seen under yesterday's salt (the day rolled over mid-visit) keeps its session.
    """
    result = []
    for visit in visits:
        key = state_key(visit.site_id, visit.visitor_id)
        state = states.get(key)
        if state is None and visit.previous_visitor_id:
            state = states.get(state_key(visit.site_id, visit.previous_visitor_id))
        if state is None or visit.timestamp_ms - state.last_ms > SESSION_TIMEOUT_MS:
            state = SessionState(
                session_id=make_id(visit.timestamp_ms, visit.event_id),
                last_ms=visit.timestamp_ms,
                source=visit.source,
                utm=visit.utm,
            )
        else:
            state = SessionState(
                state.session_id, max(state.last_ms, visit.timestamp_ms), state.source, state.utm
            )
        states[key] = state
        result.append(state)
    return result
