"""Fuzzing `parse_event`: whatever the bytes, it returns an event or raises `InvalidEvent`.

Any other exception would reach the route as a 500. The strategies aim at what a JSON parser
and our validation can trip on: raw bytes, JSON of any shape, event-shaped objects with fields
of any type, nesting far deeper than the interpreter's recursion limit (at the top level, in
`props`, in a key we ignore, inside a JSON string), bytes that are not UTF-8 inside strings,
and revenue amounts of any magnitude.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.analytics.ingest.limits import MAX_BODY_BYTES, MAX_ENGAGED_MS
from app.analytics.ingest.payload import ALIASES, IncomingEvent, InvalidEvent, parse_event

FUZZ = settings(
    max_examples=200,
    deadline=None,  # no timing assertions: the machine is shared
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
GOOD: dict[str, Any] = {"n": "pageview", "u": "https://example.com/", "d": "example.com"}
# Far past the recursion limit (1,000 frames) and still well under MAX_BODY_BYTES.
DEPTHS = st.integers(min_value=0, max_value=5_000)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=10,
)
amounts = (
    st.from_regex(r"\A-?[0-9]{1,30}(\.[0-9]{0,30})?([eE][+-]?[0-9]{1,12})?\Z")
    | st.integers()
    | st.floats()
    | st.sampled_from(["NaN", "sNaN", "-Infinity", "1e1000000", "-1e-1000000", "1_000"])
)


def _expect_event_or_invalid(body: bytes) -> None:
    """Any other exception fails the test (Hypothesis then shrinks the body that raised it)."""
    outcome: IncomingEvent | InvalidEvent
    try:
        outcome = parse_event(body)
    except InvalidEvent as exc:
        outcome = exc
    if isinstance(outcome, InvalidEvent):
        assert outcome.status in (400, 413)
        assert outcome.field
        assert outcome.message
    else:
        assert isinstance(outcome, IncomingEvent)


def _nested(depth: int, kind: str) -> bytes:
    opener, closer = (b"[", b"]") if kind == "array" else (b'{"a":', b"}")
    return opener * depth + b"1" + closer * depth


def _event(**fields: Any) -> bytes:
    return json.dumps({**GOOD, **fields}).encode()


@FUZZ
@given(st.binary(max_size=4_096))
@example(b"\xff")
@example(b'{"n":"\xff"}')
def test_any_bytes(body: bytes) -> None:
    _expect_event_or_invalid(body)


@FUZZ
@given(json_values)
def test_any_json(value: Any) -> None:
    _expect_event_or_invalid(json.dumps(value).encode())


@FUZZ
@given(
    st.fixed_dictionaries(
        {},
        optional={
            key: st.one_of(st.just(GOOD.get(key[0], "")), json_values)
            for keys in (*ALIASES.values(), ("ursa",))
            for key in keys
        },
    )
)
def test_event_shaped_objects_with_fields_of_any_type(fields: dict[str, Any]) -> None:
    _expect_event_or_invalid(_event(**fields))


@FUZZ
@given(DEPTHS, st.sampled_from(["array", "object"]))
@example(1_200, "array")
def test_deep_nesting_at_the_top_level(depth: int, kind: str) -> None:
    _expect_event_or_invalid(_nested(depth, kind))


@FUZZ
@given(DEPTHS, st.sampled_from(["array", "object"]), st.sampled_from(["p", "x", "ursa", "$"]))
@example(1_200, "array", "p")
@example(1_200, "object", "x")
def test_deep_nesting_inside_a_field(depth: int, kind: str, key: str) -> None:
    body = _event()[:-1] + f', "{key}": '.encode() + _nested(depth, kind) + b"}"
    _expect_event_or_invalid(body)


@FUZZ
@given(DEPTHS, st.sampled_from(["array", "object"]), st.sampled_from(["p", "$"]))
@example(1_200, "array", "p")
def test_deep_nesting_inside_a_json_string(depth: int, kind: str, key: str) -> None:
    _expect_event_or_invalid(_event(**{key: _nested(depth, kind).decode()}))


@FUZZ
@given(st.data(), st.binary(min_size=1, max_size=4))
def test_bytes_that_are_not_utf8_inside_strings(data: st.DataObject, junk: bytes) -> None:
    body = _event(p={"plan": "pro"}, r="https://ref.example/")
    quotes = [i for i, byte in enumerate(body) if byte == ord('"')]
    at = data.draw(st.sampled_from(quotes)) + 1  # just inside a key or a value
    _expect_event_or_invalid(body[:at] + junk + body[at:])


@FUZZ
@given(amounts, st.booleans())
@example("1e1000000", False)
def test_revenue_amounts_of_any_magnitude(amount: Any, as_string: bool) -> None:
    revenue = {"currency": "EUR", "amount": amount}
    _expect_event_or_invalid(_event(**{"$": json.dumps(revenue) if as_string else revenue}))


@FUZZ
@given(
    st.one_of(json_values, st.integers(), st.floats()),
    st.one_of(json_values, st.integers(), st.floats()),
    st.sampled_from(["engagement", "pageview"]),
)
@example(1e308, float("inf"), "engagement")
@example(100, 2**70, "engagement")
def test_engagement_values_of_any_kind(depth: Any, engaged: Any, name: str) -> None:
    """Bounded values, or a 400 naming the field (`body`: JSON that has no infinity)."""
    outcome: IncomingEvent | InvalidEvent
    try:
        outcome = parse_event(_event(n=name, sd=depth, e=engaged))
    except InvalidEvent as exc:
        outcome = exc
    if isinstance(outcome, InvalidEvent):
        assert (outcome.field, outcome.status) in {
            (field, 400) for field in ("scroll_depth", "engagement_time", "body")
        }
    else:
        assert 0 <= outcome.scroll_depth <= 100
        assert 0 <= outcome.engaged_ms <= MAX_ENGAGED_MS


@FUZZ
@given(st.integers(min_value=MAX_BODY_BYTES - 8, max_value=MAX_BODY_BYTES + 8))
def test_bodies_around_the_size_limit(size: int) -> None:
    _expect_event_or_invalid(_event(p={"k": "v"})[:-1].ljust(size - 1) + b"}")
