"""Malformed requests get the expected 4xx with a JSON error naming the field; nothing stored."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.analytics.ingest.limits import MAX_BODY_BYTES
from app.main import create_app
from tests.integration.helpers import BROWSER_UA, post_event

DOMAIN = "{domain}"
GOOD = {"n": "pageview", "u": "https://{domain}/", "d": DOMAIN}


def _with(**changes: object) -> dict[str, object]:
    body: dict[str, object] = dict(GOOD)
    for key, value in changes.items():
        if value is _DROP:
            body.pop(key)
        else:
            body[key] = value
    return body


_DROP = object()
# Deeper than the interpreter's recursion limit (1,000 frames), which the JSON decoder counts.
NESTED = b"[" * 1_200 + b"]" * 1_200


def _raw_with(key: str, raw: bytes) -> bytes:
    """GOOD with `key` set to the JSON text `raw` (nesting json.dumps cannot write)."""
    return json.dumps(GOOD).encode()[:-1] + f', "{key}": '.encode() + raw + b"}"


# (case id, body (dict or raw bytes), headers override, expected status, field named in error)
CASES = [
    ("not-json", b"{nope", {}, 400, "body"),
    ("json-array", b"[1, 2]", {}, 400, "body"),
    ("json-string", b'"pageview"', {}, 400, "body"),
    ("empty-body", b"", {}, 400, "body"),
    ("deep-nesting", NESTED, {}, 400, "body"),
    ("deep-nesting-in-props", _raw_with("p", NESTED), {}, 400, "body"),
    ("deep-nesting-in-ignored-key", _raw_with("x", NESTED), {}, 400, "body"),
    ("deep-nesting-in-props-string", _with(p=NESTED.decode()), {}, 400, "props"),
    (  # a body sent in Latin-1
        "invalid-utf8-in-string",
        json.dumps(_with(u="https://{domain}/café"), ensure_ascii=False).encode("latin-1"),
        {},
        400,
        "body",
    ),
    ("invalid-utf8-in-ignored-field", _raw_with("x", b'"\xff\xfe"'), {}, 400, "body"),
    ("utf16-body", json.dumps(GOOD).encode("utf-16"), {}, 400, "body"),
    ("missing-name", _with(n=_DROP), {}, 400, "name"),
    ("empty-name", _with(n="  "), {}, 400, "name"),
    ("name-not-string", _with(n=42), {}, 400, "name"),
    ("name-too-long", _with(n="x" * 121), {}, 400, "name"),
    ("missing-url", _with(u=_DROP), {}, 400, "url"),
    ("url-not-string", _with(u=["https://a.b/"]), {}, 400, "url"),
    ("url-too-long", _with(u="https://{domain}/" + "a" * 2001), {}, 400, "url"),
    ("javascript-url", _with(u="javascript:alert(1)"), {}, 400, "url"),
    ("data-url", _with(u="data:text/html,<script>alert(1)</script>"), {}, 400, "url"),
    ("url-without-host", _with(u="https:///path"), {}, 400, "url"),
    ("ftp-url", _with(u="ftp://{domain}/file"), {}, 400, "url"),
    ("missing-domain", _with(d=_DROP), {}, 400, "domain"),
    ("domain-not-string", _with(d=7), {}, 400, "domain"),
    ("domain-only-commas", _with(d=" , ,"), {}, 400, "domain"),
    ("javascript-referrer", _with(r="javascript:alert(1)"), {}, 400, "referrer"),
    ("referrer-not-string", _with(r={"a": 1}), {}, 400, "referrer"),
    ("props-not-object", _with(p=[1, 2]), {}, 400, "props"),
    ("props-bad-json-string", _with(p="{oops"), {}, 400, "props"),
    ("props-nested", _with(p={"a": {"b": 1}}), {}, 400, "props.a"),
    ("props-too-many", _with(p={f"k{i}": i for i in range(31)}), {}, 400, "props"),
    ("props-key-too-long", _with(p={"k" * 301: "v"}), {}, 400, "props"),
    ("props-value-too-long", _with(p={"k": "v" * 2001}), {}, 400, "props.k"),
    ("revenue-no-currency", _with(**{"$": {"amount": 10}}), {}, 400, "revenue.currency"),
    (
        "revenue-bad-amount",
        _with(**{"$": {"currency": "EUR", "amount": "lots"}}),
        {},
        400,
        "revenue.amount",
    ),
    (
        "revenue-infinite",
        _with(**{"$": {"currency": "EUR", "amount": "Infinity"}}),
        {},
        400,
        "revenue.amount",
    ),
    (
        "revenue-overflow",
        _with(**{"$": {"currency": "EUR", "amount": "1e1000000"}}),
        {},
        400,
        "revenue.amount",
    ),
    ("interactive-not-bool", _with(i="yes"), {}, 400, "interactive"),
    ("hash-not-bool", _with(h="yes"), {}, 400, "hash"),
    ("width-negative", _with(w=-5), {}, 400, "screen_width"),
    ("width-string", _with(w="1024"), {}, 400, "screen_width"),
    ("scroll-depth-over-100", _with(n="engagement", sd=150), {}, 400, "scroll_depth"),
    ("engaged-time-negative", _with(n="engagement", e=-1), {}, 400, "engagement_time"),
    ("engaged-time-string", _with(n="engagement", e="5s"), {}, 400, "engagement_time"),
    ("ursa-not-object", _with(ursa=[1]), {}, 400, "ursa"),
    ("bad-event-id", _with(ursa={"id": "xyz"}), {}, 400, "ursa.id"),
    ("unknown-timing", _with(ursa={"perf": {"speed": 1}}), {}, 400, "ursa.perf.speed"),
    ("negative-timing", _with(ursa={"perf": {"lcp": -1}}), {}, 400, "ursa.perf.lcp"),
    ("timing-string", _with(ursa={"perf": {"lcp": "1s"}}), {}, 400, "ursa.perf.lcp"),
    ("perf-event-without-perf", _with(n="ursa:performance"), {}, 400, "ursa.perf"),
    (
        "wrong-content-type",
        GOOD,
        {"Content-Type": "application/x-www-form-urlencoded"},
        415,
        "content-type",
    ),
    ("xml-content-type", GOOD, {"Content-Type": "text/xml"}, 415, "content-type"),
    ("missing-user-agent", GOOD, {"User-Agent": ""}, 400, "user-agent"),
    ("oversized-body", b"{" + b" " * (MAX_BODY_BYTES + 10) + b"}", {}, 413, "body"),
]


def _fill(body: object, domain: str) -> object:
    if isinstance(body, bytes):
        return body
    return json.loads(json.dumps(body).replace("{domain}", domain))


@pytest.mark.parametrize(
    ("body", "headers", "status", "field"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_malformed_request_is_rejected(
    client, services, site_domain, body, headers, status, field
):
    content = _fill(body, site_domain)
    raw = content if isinstance(content, bytes) else json.dumps(content).encode()
    request_headers = {"Content-Type": "text/plain", "User-Agent": BROWSER_UA, **headers}
    before = await services.redis.xlen(services.settings.BUFFER_STREAM)
    response = await client.post("/api/event", content=raw, headers=request_headers)
    assert response.status_code == status, response.text
    assert response.json()["field"] == field
    assert response.headers["access-control-allow-origin"] == "*"
    assert await services.redis.xlen(services.settings.BUFFER_STREAM) == before


async def test_accepted_variants(client, site_domain):
    """Content types with parameters or none, long keys, props as a JSON string, legacy keys."""
    variants = [
        (
            {"name": "pageview", "url": f"https://{site_domain}/", "domain": site_domain},
            "application/json; charset=utf-8",
        ),
        (
            {
                "n": "Buy",
                "u": f"https://{site_domain}/",
                "d": site_domain,
                "m": '{"sku": 12}',
                "$": '{"currency": "usd", "amount": "9.5"}',
            },
            "",
        ),
        (
            {
                "n": "pageview",
                "u": f"https://{site_domain}/#/a",
                "d": site_domain,
                "h": 1,
                "w": 390,
            },
            "text/plain;charset=UTF-8",
        ),
    ]
    for body, content_type in variants:
        response = await post_event(client, body, content_type=content_type)
        assert response.status_code == 202, response.text


def test_case_table_is_large_enough():
    assert len(CASES) >= 30


async def test_other_methods_are_not_allowed(client):
    for method in ("GET", "PUT", "DELETE"):
        response = await client.request(method, "/api/event")
        assert response.status_code == 405
        assert response.json() == {"error": "Method Not Allowed"}


def _post_scope() -> Any:  # an HTTPScope
    headers = [(b"content-type", b"text/plain"), (b"user-agent", BROWSER_UA.encode())]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/event",
        "raw_path": b"/api/event",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("81.2.69.160", 40000),
        "server": ("testserver", 80),
    }


async def test_an_endless_body_is_read_only_up_to_the_limit(services):
    """The body is read as it streams in and abandoned one chunk past the limit."""
    app = create_app(services.settings, services)
    chunk = b" " * 65536
    chunks_read = 0
    sent: list[dict[str, Any]] = []

    async def receive():
        nonlocal chunks_read
        chunks_read += 1
        assert chunks_read < 100, "read far past the limit"
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message):
        sent.append(message)

    await app(_post_scope(), receive, send)
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["field"] == "body"
    assert (chunks_read - 1) * len(chunk) <= MAX_BODY_BYTES


async def test_a_client_that_leaves_mid_body_gets_no_answer_and_nothing_is_stored(
    services, site_domain
):
    app = create_app(services.settings, services)
    start = f'{{"n":"pageview","u":"https://{site_domain}/","d":"{site_domain}"}}'.encode()
    messages = iter(
        [
            {"type": "http.request", "body": start, "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    sent: list[dict[str, Any]] = []

    async def receive():
        return next(messages)

    async def send(message):
        sent.append(message)

    before = await services.redis.xlen(services.settings.BUFFER_STREAM)
    await app(_post_scope(), receive, send)
    assert sent == []
    assert await services.redis.xlen(services.settings.BUFFER_STREAM) == before
