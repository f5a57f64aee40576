"""Client IP: the peer, or the right-most untrusted X-Forwarded-For hop behind trusted proxies."""

from __future__ import annotations

import ipaddress

import pytest

from app.analytics.client_ip import _parse, client_ip

PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("203.0.113.7", None, (), "203.0.113.7"),
        ("203.0.113.7", "198.51.100.1", (), "203.0.113.7"),  # no trusted proxies: ignore XFF
        ("203.0.113.7", "198.51.100.1", PROXIES, "203.0.113.7"),  # peer is not a proxy
        ("10.0.0.2", "198.51.100.1", PROXIES, "198.51.100.1"),
        ("10.0.0.2", "6.6.6.6, 198.51.100.1", PROXIES, "198.51.100.1"),  # left-most is forged
        ("10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.9", PROXIES, "198.51.100.1"),
        ("10.0.0.2", "10.0.0.5, 10.0.0.9", PROXIES, "10.0.0.5"),  # all trusted: left-most
        ("10.0.0.2", "garbage, 198.51.100.1", PROXIES, "198.51.100.1"),
        ("10.0.0.2", "198.51.100.1, garbage", PROXIES, "10.0.0.2"),
        ("10.0.0.2", None, PROXIES, "10.0.0.2"),
        ("fd00::1", "[2001:db8::5]:443", PROXIES, "2001:db8::5"),
        ("10.0.0.2", "198.51.100.1:5000", PROXIES, "198.51.100.1"),
        ("testclient", None, (), None),
        (None, "198.51.100.1", PROXIES, None),
    ],
)
def test_client_ip(peer, forwarded, trusted, expected):
    assert client_ip(peer, forwarded, trusted) == expected


@pytest.mark.parametrize(
    "text",
    [
        "1.2.3.4",
        "0.0.0.0",
        "255.255.255.255",
        "256.1.1.1",
        "01.2.3.4",
        "1.2.3",
        "1.2.3.4.5",
        "1..3.4",
        "0x1.2.3.4",
        "1.2.3.4\x00",
        "\uff11.2.3.4",
        "::1",
        "2001:db8::5",
        "::ffff:1.2.3.4",
        "fe80::1%eth0",
        "",
        "garbage",
    ],
)
def test_addresses_parse_as_ipaddress_parses_them(text):
    try:
        expected = ipaddress.ip_address(text)
    except ValueError:
        expected = None
    assert _parse(text) == expected
