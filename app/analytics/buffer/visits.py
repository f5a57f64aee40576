"""Sessionization on event time.

A visit ends after 30 minutes without events, measured between event timestamps (never by
wall-clock expiry), so a backlog, a restart or back-filled data produce the same sessions. The
state per visitor (session id, last event time, entry source and UTM values) lives in Redis;
key TTLs only clean up. Session ids are minted from the entry event's timestamp and id, so the
same input always gives the same session id.
Every event also gets what it adds to its session's totals (`Contribution`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, NamedTuple, cast

import msgspec

from app.analytics.ingest.ids import make_id
from app.store import keys

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Int64s = npt.NDArray[np.int64]

SESSION_TIMEOUT_MS = 30 * 60 * 1000
STATE_TTL_SECONDS = 2 * 3600


# States, visits and contributions are made once per event, as msgspec structs: built in C,
# several times faster than dataclasses (a frozen one sets each field through
# object.__setattr__), and with `gc=False` never tracked by the garbage collector, whose full
# collections otherwise walk every one of a batch's objects, again and again. They hold only
# numbers, strings and each other, so they can never be part of a reference cycle.
class SessionState(msgspec.Struct, array_like=True, gc=False):
    session_id: int
    first_ms: int
    last_ms: int
    interactions: int  # capped at 2: a bounce is a session with at most one
    source: str = ""
    utm: tuple[str, str, str, str, str] = ("", "", "", "", "")

    def length_seconds(self) -> int:
        return self.last_ms // 1000 - self.first_ms // 1000


class Visit(msgspec.Struct, gc=False):
    """What the sessionizer needs from one event (in stream order)."""

    site_id: int
    visitor_id: int
    previous_visitor_id: int
    timestamp_ms: int
    event_id: int
    source: str
    utm: tuple[str, str, str, str, str]
    interactive: bool = True


class Contribution(msgspec.Struct, frozen=True, gc=False):
    """One event's session and what it adds to that session's totals.

    Summed over a session these give 1 visit, 1 if it bounced (at most one interaction) else 0,
    and its duration, so visits, bounce rate and visit duration are plain sums that rollups can
    pre-aggregate, with no grouping by session at query time.
    """

    state: SessionState
    start: int  # 1 when the event started the session
    bounce: int  # +1 when the session starts, -1 when it gets its second interaction
    seconds: int  # growth of the session's length (whole seconds of stored timestamps)


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(SessionState)


Visitor = tuple[int, int]  # (site id, visitor id): the key of a state in a batch


def state_key(visitor: Visitor) -> str:
    """The Redis key holding a visitor's state (made once per visitor and batch, not per event)."""
    return f"{keys.VISIT}{visitor[0]}:{visitor[1]}"


def visitors_of(ids: Iterable[tuple[int, int, int]]) -> list[Visitor]:
    """Visitors for (site id, visitor id, previous-day visitor id) triples, deduplicated."""
    visitors: dict[Visitor, None] = {}
    for site_id, visitor_id, previous_visitor_id in ids:
        visitors[site_id, visitor_id] = None
        if previous_visitor_id:
            visitors[site_id, previous_visitor_id] = None
    return list(visitors)


def decode_states(
    visitors: Sequence[Visitor], raw: Sequence[bytes | None]
) -> dict[Visitor, SessionState]:
    return {
        visitor: _decoder.decode(value)
        for visitor, value in zip(visitors, raw, strict=True)
        if value
    }


def encode_state(state: SessionState) -> bytes:
    return _encoder.encode(state)


def assign(visits: Sequence[Visit], states: dict[Visitor, SessionState]) -> list[Contribution]:
    """Each visit's session and contribution, in order; `states` is updated in place.

    A visitor seen under yesterday's salt (the day rolled over mid-visit) keeps its session.
    """
    result = []
    for visit in visits:
        key = (visit.site_id, visit.visitor_id)
        state = states.get(key)
        if state is None and visit.previous_visitor_id:
            state = states.get((visit.site_id, visit.previous_visitor_id))
        ts = visit.timestamp_ms
        if state is None or ts - state.last_ms > SESSION_TIMEOUT_MS:
            new = SessionState(
                make_id(ts, visit.event_id),
                ts,
                ts,
                int(visit.interactive),
                visit.source,
                visit.utm,
            )
            contribution = Contribution(new, 1, 1, 0)
        else:
            interactions = min(state.interactions + visit.interactive, 2)
            new = SessionState(
                state.session_id,
                min(state.first_ms, ts),
                max(state.last_ms, ts),
                interactions,
                state.source,
                state.utm,
            )
            second_interaction = interactions == 2 and state.interactions == 1
            contribution = Contribution(
                new,
                0,
                -1 if second_interaction else 0,
                new.length_seconds() - state.length_seconds(),
            )
        states[key] = new
        result.append(contribution)
    return result


class Sessions(NamedTuple):
    """Per event, what `assign` gives it: its session id and `Contribution` (numpy arrays)."""

    session_id: Int64s
    start: Int64s
    bounce: Int64s
    seconds: Int64s


def assign_in_time_order(
    visitor_ids: Int64s,
    timestamps_ms: Int64s,
    event_ids: Int64s,
    interactive: npt.NDArray[np.bool_],
) -> Sessions:
    """`assign` over whole arrays, for events of one site that no visitor state precedes.

    The result is what `assign` gives the events when they arrive in time order (ties in the
    order given), each under one visitor id (no day's salt rotates in the middle of a visit).
    The demo generator sessionizes millions of events with it; a property test holds it equal
    to `assign`.
    """
    import numpy as np  # only the demo generator uses numpy: web and worker never load it

    order = np.lexsort((timestamps_ms, visitor_ids))  # by visitor, then time; stable
    visitor, ts = visitor_ids[order], timestamps_ms[order]
    interacted = interactive[order].astype(np.int64)
    continues = np.zeros(len(ts), dtype=bool)
    continues[1:] = (visitor[1:] == visitor[:-1]) & (ts[1:] - ts[:-1] <= SESSION_TIMEOUT_MS)
    starts = ~continues
    entry = np.flatnonzero(starts)
    session = np.cumsum(starts) - 1
    # `make_id` is plain integer arithmetic, which numpy does element-wise on whole arrays.
    minted = make_id(cast(int, ts[entry]), cast(int, event_ids[order][entry]))
    so_far = np.cumsum(interacted)
    interactions = so_far - (so_far[entry] - interacted[entry])[session]
    second_interaction = (interacted == 1) & (interactions == 2)
    seconds = np.zeros(len(ts), dtype=np.int64)
    seconds[1:] = ts[1:] // 1000 - ts[:-1] // 1000
    sorted_sessions = Sessions(
        np.asarray(minted)[session],
        starts.astype(np.int64),
        np.where(starts, 1, np.where(second_interaction, -1, 0)),
        np.where(starts, 0, seconds),
    )
    return Sessions(*(_unsorted(values, order) for values in sorted_sessions))


def _unsorted(values: Int64s, order: Int64s) -> Int64s:
    """`values` of events sorted by `order`, back in the events' own order."""
    result = values.copy()
    result[order] = values
    return result
