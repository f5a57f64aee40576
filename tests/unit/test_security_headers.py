"""HSTS follows the browser's scheme: the transport's, or a trusted proxy's X-Forwarded-Proto."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from app.web.security_headers import security_headers

PROXY = "10.0.0.2"
TRUSTED = (ipaddress.ip_network("10.0.0.0/8"),)


async def _headers(scope: dict[str, Any], content_type: bytes = b"text/html; charset=utf-8"):
    message: dict[str, Any] = {
        "type": "http.response.start",
        "headers": [(b"content-type", content_type)],
    }
    await security_headers(TRUSTED)(message, scope)  # type: ignore[arg-type]
    return dict(message["headers"])


def _scope(scheme: str, peer: str, *forwarded_proto: bytes) -> dict[str, Any]:
    headers = [(b"x-forwarded-proto", line) for line in forwarded_proto]
    return {"type": "http", "scheme": scheme, "client": (peer, 40000), "headers": headers}


@pytest.mark.parametrize(
    ("scope", "hsts"),
    [
        (_scope("https", "203.0.113.9"), True),
        (_scope("http", "203.0.113.9"), False),
        (_scope("http", "203.0.113.9", b"https"), False),  # anyone may write the header
        (_scope("http", PROXY, b"https"), True),
        (_scope("http", PROXY, b"HTTPS"), True),
        (_scope("http", PROXY, b"https, http"), False),  # the nearest proxy saw http
        (_scope("http", PROXY, b"http, https"), True),
        (_scope("http", PROXY), False),
        (_scope("http", PROXY, b"https", b"http"), False),  # the proxy added its own line
        (_scope("http", PROXY, b"http", b"https"), True),
    ],
)
async def test_hsts_only_when_the_browser_used_https(scope, hsts):
    assert (b"strict-transport-security" in await _headers(scope)) is hsts


async def test_non_html_responses_are_left_alone():
    headers = await _headers(_scope("https", PROXY), b"application/json")
    assert headers == {b"content-type": b"application/json"}
