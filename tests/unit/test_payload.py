"""Parsing `/api/event` bodies: key aliases, limits, coercions."""

from __future__ import annotations

import json

import pytest

from app.analytics.ingest import limits
from app.analytics.ingest.payload import InvalidEvent, parse_event


def body(**fields: object) -> bytes:
    base: dict[str, object] = {"n": "pageview", "u": "https://example.com/a", "d": "example.com"}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not None}).encode()


def test_short_and_long_keys_are_equivalent():
    short = parse_event(body(r="https://ref.example/", p={"a": 1}, i=False, w=390))
    long = parse_event(
        json.dumps(
            {
                "name": "pageview",
                "url": "https://example.com/a",
                "domain": "example.com",
                "referrer": "https://ref.example/",
                "props": {"a": 1},
                "interactive": False,
                "screen_width": 390,
            }
        ).encode()
    )
    assert short == long
    assert short.props == {"a": "1"}
    assert short.interactive is False
    assert short.screen_width == 390


@pytest.mark.parametrize("key", ["p", "props", "m", "meta"])
def test_props_aliases_and_json_string(key):
    event = parse_event(body(**{key: json.dumps({"plan": "pro", "seats": 3, "trial": True})}))
    assert event.props == {"plan": "pro", "seats": "3", "trial": "true"}


def test_null_props_are_skipped():
    assert parse_event(body(p={"a": None, "b": "x"})).props == {"b": "x"}


def test_domain_list_is_split_normalised_and_deduplicated():
    event = parse_event(body(d=" Example.com, blog.example.com ,example.com"))
    assert event.domains == ["example.com", "blog.example.com"]


def test_url_parts_and_hash_mode():
    plain = parse_event(body(u="https://WWW.Example.com/docs/intro?x=1#part"))
    assert (plain.hostname, plain.pathname) == ("example.com", "/docs/intro")
    hashed = parse_event(body(u="https://example.com/#/settings", h=1))
    assert hashed.pathname == "/#/settings"
    assert parse_event(body(u="https://example.com")).pathname == "/"


def test_revenue_is_normalised():
    event = parse_event(body(**{"$": {"currency": "eur", "amount": "19.999"}}))
    assert (event.revenue_amount, event.revenue_currency) == ("19.999", "EUR")
    event = parse_event(body(revenue=json.dumps({"currency": "USD", "amount": 5})))
    assert (event.revenue_amount, event.revenue_currency) == ("5.000", "USD")


def test_event_id_and_performance_fields():
    event = parse_event(
        body(
            n="ursa:performance", ursa={"id": "00000000000000ff", "perf": {"lcp": 2100, "cls": 0.1}}
        )
    )
    assert event.event_id == 255
    assert event.perf == {"lcp": 2100.0, "cls": 0.1}


@pytest.mark.parametrize(
    ("fields", "ok"),
    [
        ({"n": "x" * limits.MAX_NAME_CHARS}, True),
        ({"n": "x" * (limits.MAX_NAME_CHARS + 1)}, False),
        ({"u": "https://example.com/" + "a" * (limits.MAX_URL_CHARS - 20)}, True),
        ({"u": "https://example.com/" + "a" * limits.MAX_URL_CHARS}, False),
        ({"p": {f"k{i}": i for i in range(limits.MAX_PROPS)}}, True),
        ({"p": {f"k{i}": i for i in range(limits.MAX_PROPS + 1)}}, False),
        ({"p": {"k": "é" * (limits.MAX_PROP_VALUE_BYTES // 2)}}, True),
        ({"p": {"k": "é" * (limits.MAX_PROP_VALUE_BYTES // 2 + 1)}}, False),
        ({"p": {"k" * limits.MAX_PROP_KEY_BYTES: "v"}}, True),
        ({"p": {"k" * (limits.MAX_PROP_KEY_BYTES + 1): "v"}}, False),
        ({"ursa": {"perf": {"ttfb": limits.MAX_TIMING_MS}}}, True),
        ({"ursa": {"perf": {"ttfb": limits.MAX_TIMING_MS + 1}}}, False),
    ],
)
def test_limits_are_inclusive(fields, ok):
    if ok:
        parse_event(body(**fields))
    else:
        with pytest.raises(InvalidEvent):
            parse_event(body(**fields))


def test_oversized_body_is_413():
    with pytest.raises(InvalidEvent) as caught:
        parse_event(b" " * (limits.MAX_BODY_BYTES + 1))
    assert (caught.value.status, caught.value.field) == (413, "body")


NESTED = "[" * 1_200 + "]" * 1_200  # deeper than the interpreter's recursion limit


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (NESTED.encode(), "body: nests arrays or objects too deeply"),
        (
            body(x=0).replace(b"0}", NESTED.encode() + b"}"),
            "body: nests arrays or objects too deeply",
        ),
        (body(p=NESTED), "props: nests arrays or objects too deeply"),
        (body(n="café").replace(b"\\u00e9", b"\xe9"), "body: is not valid UTF-8"),  # Latin-1
        (
            body(**{"$": {"currency": "EUR", "amount": "1e1000000"}}),
            "revenue.amount: must be a finite number within range",
        ),
        (
            body(**{"$": {"currency": "EUR", "amount": "-1e1000000"}}),
            "revenue.amount: must be a finite number within range",
        ),
    ],
    ids=["nested", "nested-in-ignored-key", "nested-in-props-string", "latin-1", "huge", "-huge"],
)
def test_bodies_that_broke_the_decoder_are_named_client_errors(raw, error):
    with pytest.raises(InvalidEvent) as caught:
        parse_event(raw)
    assert (caught.value.status, str(caught.value)) == (400, error)


def test_a_vanishing_revenue_amount_rounds_to_zero():
    event = parse_event(body(**{"$": {"currency": "EUR", "amount": "1e-1000000"}}))
    assert event.revenue_amount == "0.000"


def test_engagement_fields_short_and_long():
    short = parse_event(body(n="engagement", sd=64, e=12_345))
    long = parse_event(body(n="engagement", scroll_depth=64, engagement_time=12_345))
    assert short == long
    assert (short.scroll_depth, short.engaged_ms) == (64, 12_345)
    assert (parse_event(body(n="engagement")).scroll_depth, short.name) == (0, "engagement")
    assert parse_event(body(n="engagement", sd=50.0, e=1e3)).engaged_ms == 1_000


def test_engaged_time_is_clamped_and_other_events_ignore_the_fields():
    clamped = parse_event(body(n="engagement", sd=100, e=limits.MAX_ENGAGED_MS * 10))
    assert (clamped.scroll_depth, clamped.engaged_ms) == (100, limits.MAX_ENGAGED_MS)
    pageview = parse_event(body(sd=80, e=5_000))
    assert (pageview.scroll_depth, pageview.engaged_ms) == (0, 0)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"sd": 101}, "scroll_depth"),
        ({"sd": -1}, "scroll_depth"),
        ({"sd": 12.5}, "scroll_depth"),
        ({"sd": "50"}, "scroll_depth"),
        ({"sd": True}, "scroll_depth"),
        ({"e": -5}, "engagement_time"),
        ({"e": "10s"}, "engagement_time"),
        ({"e": 0.5}, "engagement_time"),
        ({"engagement_time": [1]}, "engagement_time"),
    ],
)
def test_bad_engagement_values_are_named(fields, field):
    with pytest.raises(InvalidEvent) as raised:
        parse_event(body(n="engagement", **fields))
    assert (raised.value.field, raised.value.status) == (field, 400)
